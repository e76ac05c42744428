"""`pmt response` end to end on a tiny simulated panel: simulate -> train -> predict ->
evaluate, and bad input (one line, exit code 2, nothing written)."""
from __future__ import annotations

import io
import json
import re

import pandas as pd
import pytest

TINY = ["--sample-hidden", "16", "--drug-hidden", "16", "--head", "16",
        "--fingerprint-bits", "256", "--top-genes", "60", "--epochs", "3",
        "--batch-size", "128", "--device", "cpu"]


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    from click.testing import CliRunner
    from pmtoolkit.cli.main import cli

    out = tmp_path_factory.mktemp("response") / "panel"
    result = CliRunner().invoke(cli, ["response", "simulate", "-o", str(out), "--samples", "24",
                                      "--drugs", "16", "--genes", "80", "--module-size", "8",
                                      "--seed", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "noise ceiling" in result.output
    return out


@pytest.fixture(scope="module")
def trained(panel, tmp_path_factory):
    from click.testing import CliRunner
    from pmtoolkit.cli.main import cli

    out = tmp_path_factory.mktemp("response") / "run"
    result = CliRunner().invoke(cli, ["response", "train", "-i", str(panel / "responses.csv"),
                                      "-d", str(panel / "drugs.csv"),
                                      "--features", str(panel / "expression.h5ad"),
                                      "--split", "cold-drug", "-o", str(out), *TINY],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "test model" in result.output and "test additive" in result.output
    return out


def _args(panel, **replace):
    files = {"-i": panel / "responses.csv", "-d": panel / "drugs.csv",
             "--features": panel / "expression.h5ad", **replace}
    return [x for k, v in files.items() for x in (k, v)]


def test_simulate_writes_the_panel_files(panel):
    for name in ("responses.csv", "drugs.csv", "expression.h5ad", "truth.csv", "panel.json",
                 "drug_mechanisms.csv", "sample_programmes.csv"):
        assert (panel / name).is_file(), name
    info = json.loads((panel / "panel.json").read_text())
    assert info["spec"]["samples"] == 24 and 0 < info["noise_ceiling"]["pearson"] < 1
    assert list(pd.read_csv(panel / "responses.csv").columns) == ["sample_id", "drug_id",
                                                                 "response"]


def test_train_writes_model_split_metrics_and_baselines(panel, trained):
    for name in ("model.safetensors", "config.json", "split.json", "metrics.json",
                 "test_predictions.csv"):
        assert (trained / name).is_file(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["split"] == "cold-drug"
    assert set(metrics["baselines"]) == {"drug-mean", "sample-mean", "additive", "ridge"}
    split = json.loads((trained / "split.json").read_text())
    test = pd.read_csv(trained / "test_predictions.csv", dtype={"drug_id": str})
    assert len(test) == len(split["test"]) == metrics["test"]["n"]
    assert split["info"]["test_drugs"] >= 1
    # cold-drug: no test drug among the training pairs (split indices are response rows)
    responses = pd.read_csv(panel / "responses.csv")
    assert not set(responses["drug_id"].iloc[split["train"]]) & set(test["drug_id"])
    config = json.loads((trained / "config.json").read_text())
    assert config["model"]["sample-hidden"] == [16] and config["data"]["split"] == "cold-drug"


def test_predict_every_pair_to_stdout_and_given_pairs_aligned(pmt, panel, trained, tmp_path):
    result = pmt("response", "predict", "-m", trained, "-d", panel / "drugs.csv",
                 "--features", panel / "expression.h5ad", "-o", "-")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    assert len(table) == 24 * 16 and table["response_pred"].notna().all()
    pairs = pd.DataFrame({"sample_id": ["S0003", "S9999", "S0001"],
                          "drug_id": ["D0002", "D0002", "D0005"], "note": ["a", "b", "c"]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    out = tmp_path / "pred.tsv"
    result = pmt("response", "predict", "-m", trained / "model.safetensors",
                 "-d", panel / "drugs.csv", "--features", panel / "expression.h5ad",
                 "-i", tmp_path / "pairs.csv", "-o", out)
    assert result.exit_code == 0, result.stderr
    pred = pd.read_csv(out, sep="\t")
    assert list(pred["note"]) == ["a", "b", "c"]
    assert pred["response_pred"].isna().tolist() == [False, True, False]
    assert "no features" in pred["error"][1]
    s3 = table[(table["sample_id"] == "S0003") & (table["drug_id"] == "D0002")]["response_pred"]
    assert pred["response_pred"][0] == pytest.approx(float(s3.iloc[0]), rel=1e-5)


def test_evaluate_writes_metrics_and_report(pmt, panel, trained, tmp_path):
    out = tmp_path / "eval"
    result = pmt("response", "evaluate", "-m", trained, *_args(panel), "-o", out)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == len(pd.read_csv(panel / "responses.csv"))
    assert {"rmse", "pearson", "spearman", "per_drug_pearson", "per_sample_pearson"} <= \
        set(metrics)
    for name in ("report.html", "scatter.png", "per_drug.png", "predictions.csv",
                 "per_drug.csv"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert "scatter.png" in html and "per_drug.png" in html
    assert len(pd.read_csv(out / "per_drug.csv")) == 16


def _fails_cleanly(result, out, *words):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("pmt: error:")]
    # one error line; anything else on stderr is the start-up log line, never a traceback
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert all(re.match(r"\d\d:\d\d:\d\d INFO ", line) for line in lines[:-1]), result.stderr
    for w in words:
        assert w in errors[0], errors[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def test_missing_column_is_one_line_and_writes_nothing(pmt, panel, tmp_path):
    out = tmp_path / "run"
    result = pmt("response", "train", *_args(panel), "--response-column", "ln_ic50",
                 "-o", out, *TINY)
    _fails_cleanly(result, out, "'ln_ic50' not found", "responses.csv")


def test_unknown_split_is_a_usage_error(pmt, panel, tmp_path):
    out = tmp_path / "run"
    result = pmt("response", "train", *_args(panel), "--split", "cold-target", "-o", out)
    _fails_cleanly(result, out, "cold-target")


def test_no_overlapping_sample_ids(pmt, panel, tmp_path):
    feats = pd.DataFrame({"sample_id": ["X1", "X2"], "g1": [1.0, 2.0]})
    feats.to_csv(tmp_path / "feats.csv", index=False)
    out = tmp_path / "run"
    result = pmt("response", "train", *_args(panel, **{"--features": tmp_path / "feats.csv"}),
                 "-o", out, *TINY)
    _fails_cleanly(result, out, "no sample id", "'S0000'", "'X1'")


def test_bad_smiles_stop_training_or_are_counted_with_skip(pmt, panel, tmp_path):
    drugs = pd.read_csv(panel / "drugs.csv")
    drugs.loc[2, "smiles"] = "C1CC(("
    drugs.to_csv(tmp_path / "drugs.csv", index=False)
    out = tmp_path / "run"
    args = _args(panel, **{"-d": tmp_path / "drugs.csv"})
    result = pmt("response", "train", *args, "-o", out, *TINY)
    _fails_cleanly(result, out, "line 4", "cannot parse SMILES", "D0002")
    result = pmt("response", "train", *args, "-o", out, "--on-invalid", "skip",
                 "--baselines", "none", *TINY)
    assert result.exit_code == 0, result.stderr
    rejected = pd.read_csv(out / "rejected_drugs.csv")
    assert rejected["line"].tolist() == [4] and "D0002" in rejected["reason"][0]
    rows = pd.read_csv(out / "rejected.csv")
    assert len(rows) > 0 and rows["reason"].str.contains("invalid SMILES").all()
    assert json.loads((out / "metrics.json").read_text())["baselines"] == {}


def test_unknown_baseline_is_a_usage_error(pmt, panel, tmp_path):
    out = tmp_path / "run"
    result = pmt("response", "train", *_args(panel), "--baselines", "ridge,lasso", "-o", out)
    _fails_cleanly(result, out, "lasso")


# ------------------------------------------------------------------ the GDSC layout (issue 27)

def _gdsc_features(paths):
    from tests.response.gdsc_layout import TABLES

    return [x for t in TABLES for x in ("--features", paths[t])]


def _gdsc_args(paths):
    return ["--layout", "gdsc", "-i", paths["responses"], "-d", paths["drugs"],
            *_gdsc_features(paths)]


def test_gdsc_layout_with_three_feature_tables_end_to_end(pmt, tmp_path):
    from tests.response.gdsc_layout import write_gdsc

    paths = write_gdsc(tmp_path / "gdsc", n_cells=24)
    out = tmp_path / "run"
    result = pmt("response", "train", *_gdsc_args(paths), "--split", "cold-sample",
                 "--baselines", "drug-mean,additive,drug-ridge", "-o", out,
                 *[("0" if a == "60" else a) for a in TINY])  # --top-genes 0
    assert result.exit_code == 0, result.stderr
    assert "per-drug Pearson" in result.stderr and "Spearman" in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"drug-mean", "additive", "drug-ridge"}
    assert {"per_drug_spearman", "drugs_scored"} <= set(metrics["test"])
    config = json.loads((out / "config.json").read_text())
    assert len(config["data"]["features"]) == 3
    assert config["data"]["sample-column"] == "DepMap_ID"
    from pmtoolkit.response.model import load  # --top-genes 0: every feature of every table

    assert len(load(out).prep.names) == 3 * 5 and config["model"]["top-genes"] == 0
    test = pd.read_csv(out / "test_predictions.csv")
    train = pd.read_csv(paths["responses"]).iloc[json.loads(
        (out / "split.json").read_text())["train"]]
    assert len(test) and not set(test["sample_id"]) & set(train["DepMap_ID"])  # cold cells
    pairs = pd.DataFrame({"DepMap_ID": ["ACH-000003", "ACH-000099"],
                          "drug_name": ["Erlotinib", "Erlotinib"]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    # the model keeps its layout's columns: no --layout needed; ln_IC50_pred is added
    result = pmt("response", "predict", "-m", out, "-d", paths["drugs"],
                 *_gdsc_features(paths), "-i", tmp_path / "pairs.csv",
                 "-o", tmp_path / "pred.csv")
    assert result.exit_code == 0, result.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert pred["ln_IC50_pred"].notna().tolist() == [True, False]
    assert "'ACH-000099' has no features" in pred["error"][1]
    # explain the same pairs: the predictable one is explained, the other listed as rejected
    why = tmp_path / "why"
    result = pmt("response", "explain", "-m", out, "-d", paths["drugs"],
                 *_gdsc_features(paths), "-i", tmp_path / "pairs.csv", "-o", why, "--top", "5")
    assert result.exit_code == 0, result.stderr
    attr = pd.read_csv(why / "attributions.csv")
    assert attr["DepMap_ID"].unique().tolist() == ["ACH-000003"] and len(attr) == 5
    assert attr["ln_IC50_pred"][0] == pytest.approx(pred["ln_IC50_pred"][0], abs=1e-4)
    assert set(attr["feature"]) <= set(load(out).prep.names)
    for name in ("report.html", "features_1.png", "drug_1.png", "rejected.csv"):
        assert (why / name).is_file(), name
    assert pmt("response", "explain", "-m", out, "-d", paths["drugs"], *_gdsc_features(paths),
               "-i", tmp_path / "pairs.csv", "-o", why, "--top", "0").exit_code == 2


def test_gdsc_drug_without_smiles_and_cell_missing_from_a_table(pmt, tmp_path):
    from tests.response.gdsc_layout import write_gdsc

    paths = write_gdsc(tmp_path / "gdsc", n_cells=24, no_smiles="Paclitaxel",
                       missing_mutation="ACH-000007")
    out = tmp_path / "run"
    result = pmt("response", "train", *_gdsc_args(paths), "-o", out, *TINY)
    _fails_cleanly(result, out, "Paclitaxel", "missing SMILES")
    result = pmt("response", "train", *_gdsc_args(paths), "-o", out, "--on-invalid", "skip",
                 "--baselines", "none", *TINY)
    assert result.exit_code == 0, result.stderr
    drugs = pd.read_csv(out / "rejected_drugs.csv")
    assert drugs["line"].tolist() == [7] and "Paclitaxel" in drugs["reason"][0]
    rows = pd.read_csv(out / "rejected.csv")
    no_smiles = rows["reason"].str.contains("'Paclitaxel' has no SMILES")
    missing = rows["reason"].str.contains("'ACH-000007' is missing from .*cell_mutation")
    # the drug's 24 rows and the cell's other 5: every rejected row has its reason
    assert no_smiles.sum() == 24 and missing.sum() == 5 and len(rows) == 29


def test_gdsc_missing_column_and_truncated_gzip_are_one_line_errors(pmt, tmp_path):
    import gzip

    from tests.response.gdsc_layout import write_gdsc

    paths = write_gdsc(tmp_path / "gdsc")
    out = tmp_path / "run"
    result = pmt("response", "train", *_gdsc_args(paths), "--response-column", "AUC",
                 "-o", out, *TINY)
    _fails_cleanly(result, out, "'AUC' not found", "ln_ic50.csv.gz")
    whole = gzip.compress(gzip.decompress(paths["cell_copynumber"].read_bytes()))
    cut = tmp_path / "cut" / "cell_copynumber.csv.gz"
    cut.parent.mkdir()
    cut.write_bytes(whole[: len(whole) // 2])
    result = pmt("response", "train", *_gdsc_args({**paths, "cell_copynumber": cut}),
                 "-o", out, *TINY)
    _fails_cleanly(result, out, "cell_copynumber.csv.gz")
