"""dti's file workflows as a Python user calls them (tests/cli runs them through pmt):
train_file -> load -> predict_file -> evaluate_file on tests/data/dti_tiny.csv."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


def test_train_load_predict_and_evaluate_a_file(test_data, tmp_path):
    from pmtoolkit.dti.config import DTIConfig
    from pmtoolkit.dti.run import evaluate_file, load, predict_file, train_file

    table = test_data / "dti_tiny.csv"
    config = DTIConfig(drug_hidden=24, protein_embedding=8, protein_filters=(8, 8, 8),
                       protein_kernel=5, head=(32, 16), epochs=2, pairs_per_batch=40,
                       device="cpu")
    metrics = train_file(table, tmp_path / "run", config=config, split="cold-drug")
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["method"] == "cold-drug"
    data = pd.read_csv(table)
    drugs = {k: set(data["smiles"].iloc[split[k]]) for k in ("train", "test")}
    assert drugs["test"] and not drugs["train"] & drugs["test"]  # the split does what it says
    assert "test" in metrics

    model = load(tmp_path / "run" / "model.safetensors")
    assert predict_file(model, table, tmp_path / "p.csv") == len(data)
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == len(data) and pred.filter(like="pred").notna().all().all()

    scores = evaluate_file(model, table)
    assert scores["n"] == len(data) and 0 <= scores["ci"] <= 1
    column = next(c for c in pred.columns if "pred" in c)
    mse = float(np.mean((pred[column].to_numpy() - data["value"].to_numpy()) ** 2))
    assert scores["mse"] == pytest.approx(mse, rel=1e-4)  # the file's predictions, scored


def test_unknown_split_is_refused_before_anything_is_written(test_data, tmp_path):
    from pmtoolkit.core.errors import BadInputError
    from pmtoolkit.dti.config import DTIConfig
    from pmtoolkit.dti.run import train_file

    with pytest.raises(BadInputError, match="split"):
        train_file(test_data / "dti_tiny.csv", tmp_path / "run", config=DTIConfig(epochs=1),
                   split="cold-protein")
    assert not (tmp_path / "run").exists()
