"""`pmt dti` end to end on tiny fixtures, including bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parents[1] / "data"
TINY = ["--drug-hidden", "24", "--protein-embedding", "8", "--protein-filters", "8", "8", "8",
        "--protein-kernel", "5", "--head", "32", "--head", "16", "--epochs", "2",
        "--pairs-per-batch", "40", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny pair model trained through the CLI (shared by the tests below)."""
    from click.testing import CliRunner
    from pmtoolkit.cli.main import cli

    out = tmp_path_factory.mktemp("dti") / "run"
    result = CliRunner().invoke(cli, ["dti", "train", "-i", str(DATA / "dti_tiny.csv"),
                                      "--split", "cold-drug", "-o", str(out), *TINY],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "test (" in result.output
    return out


def test_train_writes_the_run_folder(trained):
    for name in ("model.safetensors", "config.json", "metrics.json", "split.json",
                 "test_predictions.csv", "test_plot.png"):
        assert (trained / name).is_file(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["split"] == "cold-drug" and 0 <= metrics["test"]["ci"] <= 1
    split = json.loads((trained / "split.json").read_text())
    test = pd.read_csv(trained / "test_predictions.csv")
    assert len(test) == len(split["test"]) == metrics["test"]["n"]
    config = json.loads((trained / "config.json").read_text())
    assert config["model"]["head"] == [32, 16]


def test_predict_keeps_rows_aligned_and_lists_rejects(pmt, trained, tmp_path):
    table = pd.read_csv(DATA / "dti_tiny.csv").head(4)
    table.loc[1, "smiles"] = "C1CC(("
    table.loc[2, "sequence"] = "MKV1LA"
    table.to_csv(tmp_path / "pairs.csv", index=False)
    out = tmp_path / "pred.csv"
    result = pmt("dti", "predict", "-i", tmp_path / "pairs.csv", "-m",
                 trained / "model.safetensors", "-o", out)
    assert result.exit_code == 0, result.stderr
    pred = pd.read_csv(out)
    assert len(pred) == 4 and list(pred["smiles"]) == list(table["smiles"])
    assert pred["prediction"].isna().tolist() == [False, True, True, False]
    assert "cannot parse SMILES" in pred["error"][1]
    assert "non-amino-acid" in pred["error"][2]
    rejected = pd.read_csv(tmp_path / "pred.rejected.csv")
    assert rejected["line"].tolist() == [3, 4]
    # the same table stops training at its first bad line by default
    result = pmt("dti", "train", "-i", tmp_path / "pairs.csv", "-o", tmp_path / "run", *TINY)
    assert result.exit_code == 2
    assert "line 3" in result.stderr and not (tmp_path / "run").exists()


def test_evaluate_reports_ci(pmt, trained, tmp_path):
    out = tmp_path / "m.json"
    result = pmt("dti", "evaluate", "-i", DATA / "dti_tiny.csv", "-m",
                 trained / "model.safetensors", "-o", out)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 120 and {"ci", "mse", "rm2", "pearson", "spearman"} <= set(metrics)


def test_screen_ranks_a_library_per_target(pmt, trained, tmp_path):
    out = tmp_path / "hits.csv"
    result = pmt("dti", "screen", "--target", DATA / "dti_targets.fasta", "--library",
                 DATA / "tiny.smi", "--top", "3", "-m", trained / "model.safetensors",
                 "-o", out, "--chunk-size", "2")
    assert result.exit_code == 0, result.stderr
    assert "molecules/s" in result.stderr
    hits = pd.read_csv(out)
    assert hits.groupby("target").size().tolist() == [3, 3]
    for _, group in hits.groupby("target"):
        assert group["rank"].tolist() == [1, 2, 3]
        assert group["prediction"].is_monotonic_decreasing
    assert "not_a_smiles" not in set(hits["smiles"])
    assert (tmp_path / "hits.rejected.csv").is_file()


def test_screen_bad_fasta_is_a_one_line_error(pmt, trained, tmp_path):
    empty = tmp_path / "empty.fasta"
    empty.write_text("")
    result = pmt("dti", "screen", "--target", empty, "--library", DATA / "tiny.smi",
                 "-m", trained / "model.safetensors", "-o", tmp_path / "hits.csv")
    assert result.exit_code == 2 and "no FASTA records" in result.stderr
    assert not (tmp_path / "hits.csv").exists()
    bad = tmp_path / "bad.fasta"
    bad.write_text(">p1\nMKV1LA\n")
    result = pmt("dti", "screen", "--target", bad, "--library", DATA / "tiny.smi",
                 "-m", trained / "model.safetensors", "-o", tmp_path / "hits.csv")
    assert result.exit_code == 2 and "non-amino-acid" in result.stderr


def test_screen_reads_tables_with_ids_and_names_bad_lines(pmt, trained, tmp_path):
    lib = tmp_path / "lib.csv"
    lib.write_text("name,smiles\nethanol,CCO\nbroken,C1CC((\nphenol,c1ccccc1O\n")
    out = tmp_path / "hits.csv"
    result = pmt("dti", "screen", "--target", DATA / "dti_targets.fasta", "--library", lib,
                 "--id-column", "name", "--top", "5", "-m", trained / "model.safetensors",
                 "-o", out)
    assert result.exit_code == 0, result.stderr
    hits = pd.read_csv(out)
    assert set(hits["id"]) == {"ethanol", "phenol"}
    assert set(hits["line"]) == {2, 4}
    rejected = pd.read_csv(tmp_path / "hits.rejected.csv")
    assert rejected["line"].tolist() == [3]


def test_predict_with_an_ensemble_adds_uncertainty(pmt, tmp_path):
    from pmtoolkit.dti.config import DTIConfig
    from pmtoolkit.dti.data import read_pairs
    from pmtoolkit.dti.model import fit

    data, _ = read_pairs(DATA / "dti_tiny.csv", value_column="value")
    model = fit(data, None, DTIConfig(epochs=1, ensemble_size=2, drug_hidden=16, head=(32,),
                                      device="cpu"))
    model.save(tmp_path / "e.safetensors")
    out = tmp_path / "pred.csv"
    result = pmt("dti", "predict", "-i", DATA / "dti_tiny.csv", "-m", tmp_path / "e.safetensors",
                 "-o", out)
    assert result.exit_code == 0, result.stderr
    pred = pd.read_csv(out)
    assert len(pred) == 120 and (pred["uncertainty"] > 0).all()


def test_shipped_davis_model_ranks_unseen_test_pairs(pmt, shared_data, tmp_path):
    """`-m davis` works offline; it never saw DAVIS' setting-1 test fold, and ranks it."""
    from pmtoolkit.dti.data import load_benchmark
    from pmtoolkit.dti.model import pair_metrics
    from pmtoolkit.dti.splits import setting1_split

    bench = load_benchmark(shared_data / "dti" / "davis")
    test = setting1_split(bench, -1).indices()["test"][:400]
    d = bench.data
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"smiles": [d.drugs[d.drug_index[i]] for i in test],
                  "sequence": [d.proteins[d.protein_index[i]] for i in test]}).to_csv(pairs,
                                                                                      index=False)
    out = tmp_path / "pred.csv"
    result = pmt("dti", "predict", "-i", pairs, "-m", "davis", "-o", out)
    assert result.exit_code == 0, result.stderr
    pred = pd.read_csv(out)
    assert len(pred) == 400
    assert pair_metrics(d.y[test], pred["prediction"].to_numpy())["ci"] > 0.8
