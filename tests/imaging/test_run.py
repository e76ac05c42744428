"""imaging's file workflows as a Python user calls them (tests/cli runs them through pmt):
train_file on a MedMNIST-layout NPZ -> load -> evaluate_file on its test part."""
from __future__ import annotations

import json

import numpy as np

from tests.imaging.conftest import bright_side


def test_train_load_and_evaluate_an_npz(tmp_path):
    from pmtoolkit.imaging.config import ImageClassifierConfig
    from pmtoolkit.imaging.run import evaluate_file, load, train_file

    parts = {"train": bright_side(32, seed=0), "val": bright_side(12, seed=1),
             "test": bright_side(12, seed=2)}
    npz = tmp_path / "tiny.npz"
    np.savez(npz, **{f"{k}_{kind}": v[i][:, 0] if kind == "images" else v[i][:, None]
                     for k, v in parts.items() for i, kind in enumerate(("images", "labels"))})
    config = ImageClassifierConfig(width=0.25, epochs=2, batch_size=16, augment=False, device="cpu")
    metrics = train_file(npz, tmp_path / "run", task="classify", config=config,
                         class_names=["right", "left"])
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["classes"] == \
        metrics["classes"] == ["right", "left"]

    model = load(tmp_path / "run" / "model.safetensors")
    assert model.classes == ["right", "left"]
    scores = evaluate_file(model, npz, tmp_path / "eval", split="test")
    assert scores["n"] == 12 and 0 <= scores["auc"] <= 1
    assert (tmp_path / "eval" / "report.html").is_file()
