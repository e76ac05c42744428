"""The expression classifier's file workflows through core.workflow: train_file (folds, the
final fit, cv.csv, attributions.csv, strict metrics.json) and evaluate_file."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.expression.config import ExpressionClassifierConfig
from tests.expression.conftest import simulate

TINY = ExpressionClassifierConfig(epochs=15, hidden=(16,), n_top_genes=40)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from pmtoolkit.expression.classify import train_file

    folder = tmp_path_factory.mktemp("classify")
    simulate(n_per_group=20, n_genes=60, groups=2, seed=3).write_h5ad(folder / "cells.h5ad")
    out = folder / "run"
    metrics = train_file(folder / "cells.h5ad", out, label_key="group", config=TINY, folds=2)
    return folder, out, metrics


def test_train_file_writes_the_run_folder_and_returns_its_metrics(run):
    _, out, metrics = run
    assert {"model.safetensors", "metrics.json", "config.json", "cv.csv",
            "attributions.csv"} <= {p.name for p in out.iterdir()}
    assert not (out / "work").exists() and not (out / "split.json").exists()
    written = json.loads((out / "metrics.json").read_text())
    assert written == metrics
    assert metrics["classes"] == ["type0", "type1"] and metrics["n_profiles"] == 40
    assert metrics["split"] == "cross-validation" and metrics["n_train"] == 40
    cv = pd.read_csv(out / "cv.csv")
    assert cv["fold"].tolist() == [0, 1]
    assert metrics["cv"]["accuracy"] == pytest.approx(cv["accuracy"].mean())
    assert json.loads((out / "config.json").read_text())["data"]["folds"] == 2
    attr = pd.read_csv(out / "attributions.csv")
    assert set(attr["class"]) == {"type0", "type1"} and attr["rank"].min() == 1


def test_evaluate_file_scores_labelled_profiles(run):
    from pmtoolkit.expression.classify import evaluate_file, load

    folder, out, _ = run
    model = load(out / "model.safetensors")
    metrics = evaluate_file(model, folder / "cells.h5ad")  # the model's label column
    assert metrics["n"] == 40
    assert set(metrics) == {"n", "accuracy", "balanced_accuracy", "macro_f1"}
    assert 0.5 < metrics["accuracy"] <= 1
    other = simulate(n_per_group=5, n_genes=60, groups=3, seed=1)
    other.write_h5ad(folder / "three.h5ad")
    with pytest.raises(BadInputError, match=r"labels \['type2'\] are not classes"):
        evaluate_file(model, folder / "three.h5ad")


def test_train_file_refuses_before_writing_anything(tmp_path):
    from pmtoolkit.expression.classify import train_file

    simulate(n_per_group=3, n_genes=60, groups=2).write_h5ad(tmp_path / "few.h5ad")
    with pytest.raises(BadInputError, match="fewer than 5 folds"):
        train_file(tmp_path / "few.h5ad", tmp_path / "run", label_key="group", config=TINY)
    with pytest.raises(BadInputError, match="no obs column 'status'"):
        train_file(tmp_path / "few.h5ad", tmp_path / "run", label_key="status", config=TINY,
                   folds=0)
    assert not (tmp_path / "run").exists()
