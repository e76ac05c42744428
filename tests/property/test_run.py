"""property's file workflows as a Python user calls them (tests/cli runs them through pmt):
train_file -> load -> predict_file -> evaluate_file on tests/data/esol_tiny.csv."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError


def test_train_load_predict_and_evaluate_a_file(test_data, tmp_path):
    from pmtoolkit.property.config import PropertyConfig
    from pmtoolkit.property.run import evaluate_file, load, predict_file, train_file

    table = test_data / "esol_tiny.csv"
    config = PropertyConfig(hidden_size=16, ffn_hidden_size=16, epochs=3, device="cpu")
    metrics = train_file(table, tmp_path / "run", smiles_column="smiles",
                         target_columns=["logS"], config=config)
    assert metrics["n_train"] + metrics["n_valid"] + metrics["n_test"] == 40
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"] == \
        metrics["test"]
    model = load(tmp_path / "run" / "model.safetensors")
    assert model.target_names == ["logS"]

    assert predict_file(model, table, tmp_path / "p.csv") == 40
    pred = pd.read_csv(tmp_path / "p.csv")
    smiles = pd.read_csv(table)["smiles"].tolist()
    assert pred["smiles"].tolist() == smiles  # rows stay aligned with the input
    direct = model.predict(smiles).frame
    np.testing.assert_allclose(pred["logS_pred"], direct["logS_pred"], rtol=1e-5)

    scores = evaluate_file(model, table, smiles_column="smiles", target_columns=["logS"])
    assert scores["n"] == 40
    truth = pd.read_csv(table)["logS"].to_numpy()
    rmse = float(np.sqrt(np.mean((pred["logS_pred"].to_numpy() - truth) ** 2)))
    assert scores["tasks"]["logS"]["rmse"] == pytest.approx(rmse, rel=1e-4)


def test_train_file_names_a_missing_label_column(test_data, tmp_path):
    from pmtoolkit.property.config import PropertyConfig
    from pmtoolkit.property.run import train_file

    with pytest.raises(BadInputError, match="solubility"):
        train_file(test_data / "esol_tiny.csv", tmp_path / "run", smiles_column="smiles",
                   target_columns=["solubility"], config=PropertyConfig(epochs=1))
    assert not (tmp_path / "run").exists()
