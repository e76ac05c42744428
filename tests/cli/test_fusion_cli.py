"""`pmt fusion` end to end on a tiny simulated cohort (simulate -> run -> train -> predict),
and bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pmtoolkit.cli.main import cli
from tests.conftest import _reset_logging


def _run(*args):
    result = CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)
    _reset_logging()
    return result


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusioncli")
    r = _run("fusion", "simulate", "-o", root / "cohort", "--patients", 240, "--seed", 3,
             "--missing", "imaging=0.5", "--weight", "genotype=0")
    assert r.exit_code == 0, r.output
    r = _run("fusion", "run", "-i", root / "cohort", "-o", root / "run", "--epochs", 2,
             "--fusion", "gated", "--fusion", "concat")
    assert r.exit_code == 0, r.output
    return root


def test_simulate_writes_what_was_asked(experiment):
    spec = json.loads((experiment / "cohort" / "cohort.json").read_text())["spec"]
    assert spec["weights"]["genotype"] == 0 and spec["weights"]["ehr"] == 1.2
    truth = pd.read_csv(experiment / "cohort" / "outcomes.csv")
    assert len(truth) == 240 and 0.3 < 1 - truth["has_imaging"].mean() < 0.7


def test_run_writes_report_models_and_embeddings(experiment):
    run = experiment / "run"
    res = json.loads((run / "results.json").read_text())
    assert set(res["fused"]) == {"gated", "concat"}
    assert set(res["single"]) == {"ehr", "expression", "imaging", "genotype"}
    assert res["planted_weights"]["genotype"] == 0 and 0.5 < res["oracle"] <= 1
    for f in ("report.html", "auroc.png", "masking.png", "attribution.png", "summary.tsv",
              "models/gated.safetensors", "models/concat.safetensors"):
        assert (run / f).is_file(), f
    html = (run / "report.html").read_text()
    assert "Missing modalities" in html and "auroc.png" in html
    emb = pd.read_csv(run / "embeddings" / "imaging.csv")
    truth = pd.read_csv(experiment / "cohort" / "outcomes.csv")
    assert set(emb["patient_id"]) == set(truth.loc[truth["has_imaging"] == 1, "patient_id"])


def test_train_and_predict_on_embedding_tables(experiment, tmp_path):
    emb = experiment / "run" / "embeddings"
    mods = [a for m in ("ehr", "expression", "imaging") for a in ("--modality",
                                                                  f"{m}={emb / m}.csv")]
    r = _run("fusion", "train", *mods, "--outcomes", emb / "outcomes.csv", "--fusion",
             "attention", "--epochs", 3, "-o", tmp_path / "m.safetensors")
    assert r.exit_code == 0, r.output
    # predict from two of the three modalities: the third is absent for everyone
    r = _run("fusion", "predict", "-m", tmp_path / "m.safetensors", "--modality",
             f"ehr={emb / 'ehr.csv'}", "--modality", f"imaging={emb / 'imaging.csv'}",
             "-o", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    p = pd.read_csv(tmp_path / "p.csv")
    assert len(p) == 240 and p["prediction"].between(0, 1).all()
    assert p["contribution_expression"].isna().all()
    both = p["modalities"] == "ehr,imaging"
    assert both.any() and np.isfinite(p.loc[both, "contribution_imaging"]).all()
    assert np.allclose(p.loc[both, ["weight_ehr", "weight_imaging"]].sum(1), 1, atol=1e-4)


@pytest.mark.parametrize("args, message", [
    (["simulate", "-o", "{tmp}/c", "--weight", "liver=1"], "unknown modality 'liver'"),
    (["simulate", "-o", "{tmp}/c", "--missing", "ehr=1.5"], "a share in [0, 1)"),
    (["run", "-i", "{tmp}", "-o", "{tmp}/r"], "no outcomes.csv"),
    (["train", "--modality", "ehr={tmp}/emb.csv", "--outcomes", "{tmp}/y.csv", "-o",
      "{tmp}/m.safetensors"], "'x' is not numeric"),
    (["train", "--modality", "ehr={tmp}/ok.csv", "--outcomes", "{tmp}/y.csv", "-o",
      "{tmp}/m.pt"], "must end in .safetensors"),
    (["train", "--modality", "ehr", "--outcomes", "{tmp}/y.csv", "-o", "{tmp}/m.safetensors"],
     "expected NAME=VALUE"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    pd.DataFrame({"patient_id": ["a", "b"], "x": ["u", "v"]}).to_csv(tmp_path / "emb.csv",
                                                                     index=False)
    pd.DataFrame({"patient_id": ["a", "b"], "x": [1.0, 2.0]}).to_csv(tmp_path / "ok.csv",
                                                                     index=False)
    pd.DataFrame({"patient_id": ["a", "b"], "outcome": [0, 1]}).to_csv(tmp_path / "y.csv",
                                                                       index=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = _run("fusion", *[a.format(tmp=tmp_path) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
