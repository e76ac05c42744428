"""`pmt mol` and `pmt property` end to end on tiny fixtures, including bad input."""
from __future__ import annotations

import json

import pandas as pd
import pytest

FAST = ["--epochs", "3", "--hidden-size", "16", "--ffn-hidden-size", "16", "--device", "cpu"]


def test_mol_standardize_keeps_rows_aligned(pmt, tmp_path, test_data):
    out = tmp_path / "std.csv"
    result = pmt("mol", "standardize", "-i", test_data / "esol_tiny_invalid.csv", "-o", out)
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 40 and list(frame.columns[-1:]) == ["standardized_smiles"]
    assert frame["standardized_smiles"].isna().tolist()[3] and frame["name"].iloc[3] == \
        pd.read_csv(test_data / "esol_tiny_invalid.csv")["name"].iloc[3]
    rejected = pd.read_csv(tmp_path / "std.rejected.csv")
    assert rejected["line"].tolist() == [5, 12]


def test_mol_invalid_error_mode_writes_nothing(pmt, tmp_path, test_data):
    out = tmp_path / "d.csv"
    result = pmt("mol", "descriptors", "-i", test_data / "esol_tiny_invalid.csv", "-o", out,
                 "--on-invalid", "error")
    assert result.exit_code == 2 and "line 5: cannot parse SMILES" in result.stderr
    assert not out.exists()


def test_mol_descriptors_fingerprints_filter(pmt, tmp_path, test_data):
    assert pmt("mol", "descriptors", "-i", test_data / "tiny.smi", "-o", tmp_path / "d.tsv",
               "--names", "MolWt,TPSA").exit_code == 0
    d = pd.read_csv(tmp_path / "d.tsv", sep="\t")
    assert list(d.columns) == ["smiles", "id", "MolWt", "TPSA", "qed", "sa_score"]
    assert d["MolWt"].round(2).tolist()[:2] == [46.07, 78.11] and pd.isna(d["MolWt"][2])
    assert pmt("mol", "fingerprints", "-i", test_data / "tiny.sdf.gz", "-o",
               tmp_path / "f.parquet", "--n-bits", "64", "--counts").exit_code == 0
    f = pd.read_parquet(tmp_path / "f.parquet")
    assert f.shape[0] == 4 and "fp_63" in f and f["fp_0"].isna().tolist() == [False, True,
                                                                                False, False]
    assert pmt("mol", "filter", "-i", test_data / "esol_tiny.csv", "-o", tmp_path / "p.csv",
               "--passing-only").exit_code == 0
    passed = pd.read_csv(tmp_path / "p.csv")
    assert 0 < len(passed) < 40 and passed["passes"].all()


def test_mol_descriptors_header_is_unique(pmt, tmp_path, test_data):
    from pmtoolkit.chem.descriptors import descriptor_names

    assert pmt("mol", "descriptors", "-i", test_data / "tiny.smi", "-o",
               tmp_path / "d.csv").exit_code == 0
    header = (tmp_path / "d.csv").read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header)) and header.count("qed") == 1  # RDKit's list has qed
    assert header == ["smiles", "id", *descriptor_names(), "sa_score"]
    assert pmt("mol", "descriptors", "-i", test_data / "tiny.smi", "-o", tmp_path / "q.csv",
               "--names", "qed,MolWt,qed").exit_code == 0
    assert pd.read_csv(tmp_path / "q.csv").columns.tolist() == ["smiles", "id", "qed", "MolWt",
                                                                "sa_score"]


@pytest.mark.parametrize("args, message", [
    (["fingerprints", "--n-bits", "0"], "--n-bits"),
    (["fingerprints", "--n-bits", "-5"], "--n-bits"),
    (["fingerprints", "--radius", "-1"], "--radius"),
    (["fingerprints", "--radius", "nan"], "--radius"),
    (["descriptors", "--names", "MolWT"], ("unknown RDKit descriptor 'MolWT' (did you mean "
                                           "'MolWt'? valid: AvgIpc")),
    (["descriptors", "--names", " , "], "--names"),
    (["filter", "--alerts", "PAINS,NOPE"], "unknown alert catalog 'NOPE'"),
    (["standardize", "--max-atoms", "0"], "--max-atoms"),
])
def test_mol_bad_option_values_exit_2(pmt, tmp_path, test_data, args, message):
    out = tmp_path / "out.csv"
    result = pmt("mol", args[0], "-i", test_data / "tiny.smi", "-o", out, *args[1:])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--split", "kfold", "--folds", "0"], "--folds"),
    (["--split", "kfold", "--folds", "-1"], "--folds"),
    (["--split", "kfold", "--folds", "1"], "--folds"),
    (["--sizes", "-0.1", "0.6", "0.5"], "--sizes"),
    (["--sizes", "nan", "0.5", "0.5"], "--sizes"),
    (["--sizes", "0.5", "0.2", "0.2"], "0.5 0.2 0.2 sum to 0.9, not 1"),
    (["--seed", "-1"], "--seed"),
])
def test_mol_split_bad_values_exit_2(pmt, tmp_path, test_data, args, message):
    result = pmt("mol", "split", "-i", test_data / "esol_tiny.csv", "-o", tmp_path / "s", *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "s").exists()


def test_mol_split(pmt, tmp_path, test_data):
    out = tmp_path / "split"
    assert pmt("mol", "split", "-i", test_data / "esol_tiny.csv", "-o", out, "--split",
               "scaffold").exit_code == 0
    sizes = [len(pd.read_csv(out / f"{k}.csv")) for k in ("train", "val", "test")]
    assert sum(sizes) == 40 and sizes[0] >= 30
    assert json.loads((out / "split.json").read_text())["method"] == "scaffold"
    assert pmt("mol", "split", "-i", test_data / "esol_tiny.csv", "-o", tmp_path / "k",
               "--split", "kfold", "--folds", "4").exit_code == 0
    assert len(list((tmp_path / "k").glob("fold_*/split.json"))) == 4


def test_property_train_predict_evaluate(pmt, tmp_path, test_data):
    run = tmp_path / "run"
    result = pmt("property", "train", "-i", test_data / "esol_tiny.csv", "--label-column",
                 "logS", "-o", run, "--split", "random", *FAST)
    assert result.exit_code == 0, result.stderr
    for name in ("model.safetensors", "config.json", "split.json", "metrics.json",
                 "test_predictions.csv", "test_plot.png"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["epochs"] == 3 and config["split"]["split"] == "random"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["n"] == 4
    # predictions: one output row per input row, invalid ones empty with a reason
    preds = tmp_path / "preds.csv"
    result = pmt("property", "predict", "-i", test_data / "esol_tiny_invalid.csv", "-m",
                 run / "model.safetensors", "-o", preds)
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(preds)
    assert len(frame) == 40 and frame["name"].tolist() == pd.read_csv(
        test_data / "esol_tiny_invalid.csv")["name"].tolist()
    assert frame["logS_pred"].isna().tolist().count(True) == 2
    assert frame.loc[3, "error"] == "cannot parse SMILES"
    out = pmt("property", "evaluate", "-i", test_data / "esol_tiny.csv", "-m",
              run / "model.safetensors")
    assert out.exit_code == 0 and json.loads(out.stdout)["n"] == 40


def test_property_train_bad_input(pmt, tmp_path, test_data):
    result = pmt("property", "train", "-i", test_data / "esol_tiny_invalid.csv",
                 "--label-column", "logS", "-o", tmp_path / "r", *FAST)
    assert result.exit_code == 2
    assert "line 5: cannot parse SMILES: 'C1CC(('" in result.stderr
    assert not (tmp_path / "r").exists()
    result = pmt("property", "train", "-i", test_data / "esol_tiny_invalid.csv",
                 "--label-column", "logS", "-o", tmp_path / "r", "--on-invalid", "skip",
                 "--split", "random", *FAST)
    assert result.exit_code == 0, result.stderr
    rejected = pd.read_csv(tmp_path / "r" / "rejected.csv")
    assert list(rejected.columns) == ["line", "smiles", "reason"]
    assert rejected["line"].tolist() == [5, 12]
    result = pmt("property", "train", "-i", test_data / "esol_tiny.csv", "--label-column",
                 "logs", "-o", tmp_path / "x", *FAST)
    assert result.exit_code == 2 and "column 'logs' not found" in result.stderr


@pytest.mark.parametrize("model,message", [
    ("solubilty", "unknown property model 'solubilty'"),
    ("missing.safetensors", "model file 'missing.safetensors' does not exist"),
])
def test_property_predict_bad_model(pmt, tmp_path, test_data, model, message):
    result = pmt("property", "predict", "-i", test_data / "tiny.smi", "-m", model, "-o",
                 tmp_path / "p.csv")
    assert result.exit_code == 2 and message in result.stderr


def test_property_predict_with_several_models(pmt, tmp_path, test_data):
    """-m repeats and takes commas: one column set per model, the single-model columns
    unchanged; two models of one target name get their names as prefixes."""
    import pandas as pd

    one, two, same = tmp_path / "one.csv", tmp_path / "two.csv", tmp_path / "same.csv"
    assert pmt("property", "predict", "-i", test_data / "tiny.smi", "-m", "solubility", "-o",
               one).exit_code == 0
    assert pmt("property", "predict", "-i", test_data / "tiny.smi", "-m", "solubility,bbbp",
               "-o", two).exit_code == 0
    a, b = pd.read_csv(one), pd.read_csv(two)
    assert "logS_pred" in b and "bbb_penetration_pred" in b and len(a) == len(b)
    pd.testing.assert_frame_equal(a, b[a.columns])
    shipped = pmt("info", "solubility", "--json")
    path = __import__("json").loads(shipped.stdout)["path"]
    r = pmt("property", "predict", "-i", test_data / "tiny.smi", "-m", "solubility", "-m", path,
            "-o", same)
    assert r.exit_code == 0, r.stderr
    c = pd.read_csv(same)
    assert "solubility_logS_pred" in c and f"{path}_logS_pred" in c
    pd.testing.assert_series_equal(c["solubility_logS_pred"], c[f"{path}_logS_pred"],
                                   check_names=False)
