"""Drug response's file workflows as a Python user calls them (tests/cli runs them through
pmt): simulate_panel -> train_file (cold-pair split) -> load -> predict_file ->
evaluate_file on a tiny simulated panel."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd


def test_train_load_predict_and_evaluate_files(tmp_path):
    from pmtoolkit.response.config import PanelConfig, ResponseConfig
    from pmtoolkit.response.model import load
    from pmtoolkit.response.run import evaluate_file, predict_file, train_file
    from pmtoolkit.response.simulate import simulate_panel

    panel = tmp_path / "panel"
    simulate_panel(panel, PanelConfig(samples=24, drugs=16, genes=80, module_size=8, seed=2))
    files = (panel / "responses.csv", panel / "drugs.csv", panel / "expression.h5ad")
    config = ResponseConfig(sample_hidden=(16,), drug_hidden=(16,), head=(16,),
                            fingerprint_bits=256, top_genes=60, epochs=3, batch_size=128,
                            device="cpu")
    metrics = train_file(*files, tmp_path / "run", config=config, split="cold-pair",
                         baselines=["drug-mean"])
    assert set(metrics["baselines"]) == {"drug-mean"} and np.isfinite(metrics["test"]["rmse"])
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    responses = pd.read_csv(files[0])
    train, test = (responses.iloc[split[k]] for k in ("train", "test"))
    assert split["method"] == "cold-pair"  # neither test drugs nor test samples were seen
    assert not set(train["drug_id"]) & set(test["drug_id"])
    assert not set(train["sample_id"]) & set(test["sample_id"])

    model = load(tmp_path / "run")
    counts = predict_file(model, files[1], files[2], tmp_path / "p.csv")
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == counts["rows"] == counts["predicted"] == 24 * 16  # every pair
    assert np.isfinite(pred["response_pred"]).all()  # named after the trained response

    scores = evaluate_file(model, *files, tmp_path / "eval")
    assert (tmp_path / "eval" / "metrics.json").is_file() and np.isfinite(scores["rmse"])
