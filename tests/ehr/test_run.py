"""EHR's file workflows as a Python user calls them (tests/cli/test_ehr_cli.py runs them through
pmt): build a dataset from the shipped Synthea sample -> train_file -> load -> predict_file and
evaluate_file agree with each other and with the run's own test metrics."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from pmtoolkit.core import shipped
    from pmtoolkit.ehr.config import TaskConfig
    from pmtoolkit.ehr.run import build

    events = shipped.path("synthea_example", "dataset").parent
    out = tmp_path_factory.mktemp("ehr") / "mortality.jsonl.gz"
    summary = build(events, out, TaskConfig(index="each_visit", min_visits=1,
                                            horizon_days=365))
    assert summary["positives"] > 0
    return out


def test_train_load_predict_and_evaluate(dataset, tmp_path):
    from pmtoolkit.ehr.config import RiskModelConfig
    from pmtoolkit.ehr.run import evaluate_file, load, predict_file, train_file

    config = RiskModelConfig(arch="gru", embedding_dim=8, hidden_dim=8, epochs=2,
                             device="cpu")
    metrics = train_file(dataset, tmp_path / "run", config=config)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["n_test"] == saved["test"]["n"] and "auroc" in saved["test"]
    assert metrics["test"]["auroc"] == pytest.approx(saved["test"]["auroc"])

    model = load(tmp_path / "run" / "model.safetensors")
    rows = predict_file(model, dataset, tmp_path / "risk.csv", split="test")
    risk = pd.read_csv(tmp_path / "risk.csv")
    assert rows == len(risk) == saved["n_test"] and risk["probability"].between(0, 1).all()

    scores = evaluate_file(model, dataset, tmp_path / "ev", split="test")
    assert scores["auroc"] == pytest.approx(saved["test"]["auroc"], rel=1e-6)
    brier = float(np.mean((risk["probability"] - risk["label"]) ** 2))
    assert scores["brier"] == pytest.approx(brier, rel=1e-4)  # the file's risks, scored
    assert (tmp_path / "ev" / "report.html").is_file()


def test_a_file_that_is_not_a_dataset_is_refused_before_anything_is_written(tmp_path):
    from pmtoolkit.core.errors import BadInputError
    from pmtoolkit.ehr.config import RiskModelConfig
    from pmtoolkit.ehr.run import train_file

    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n")
    with pytest.raises(BadInputError):
        train_file(junk, tmp_path / "run", config=RiskModelConfig(epochs=1))
    assert not (tmp_path / "run").exists()
