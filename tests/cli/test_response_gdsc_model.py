"""The shipped ``gdsc`` drug-response model, called as a user would on GDSC's own tables:
every input row kept with ``ln_IC50_pred``, a new drug given as a new SMILES row, the BRAF
positive control, ``pmt info gdsc`` and ``pmt response explain``."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

FEATURES = ("cell_expression_zscore", "cell_copynumber", "cell_mutation")


def _features(gdsc):
    return [x for name in FEATURES for x in ("--features", gdsc / f"{name}.csv.gz")]


@pytest.fixture
def gdsc(shared_data):
    return shared_data / "response" / "gdsc"


@pytest.fixture(scope="module")
def measured(request):
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "response" / "gdsc" / "ln_ic50.csv.gz"
    if not path.is_file():
        pytest.skip("../shared/data is not available")
    return pd.read_csv(path)


def test_predict_keeps_every_row_and_adds_ln_ic50_pred(pmt, tmp_path, gdsc, measured):
    rows = measured.sample(300, random_state=0)[["DepMap_ID", "drug_name"]]
    extra = pd.DataFrame({"DepMap_ID": ["ACH-999999", "ACH-000001"],
                          "drug_name": ["Dabrafenib", "Aspirin"]})  # unknown cell; new drug
    pairs = pd.concat([rows, extra], ignore_index=True).assign(note=lambda d: range(len(d)))
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    drugs = pd.read_csv(gdsc / "drugs.csv")
    new = pd.DataFrame({"drug_name": ["Aspirin"], "CanonicalSMILES": ["CC(=O)OC1=CC=CC=C1C(=O)O"]})
    pd.concat([drugs, new], ignore_index=True).to_csv(tmp_path / "drugs.csv", index=False)
    result = pmt("response", "predict", "-m", "gdsc", "-i", tmp_path / "pairs.csv",
                 "-d", tmp_path / "drugs.csv", *_features(gdsc), "-o", tmp_path / "pred.csv")
    assert result.exit_code == 0, result.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == len(pairs) and pred["note"].tolist() == pairs["note"].tolist()
    assert pred["ln_IC50_pred"].notna().sum() == len(pairs) - 1
    assert "ACH-999999" in pred["error"].iloc[-2] and np.isfinite(pred["ln_IC50_pred"].iloc[-1])
    # the pairs were trained on: this checks the shipped weights load and predict right
    joined = rows.merge(measured, on=["DepMap_ID", "drug_name"]).groupby(
        ["DepMap_ID", "drug_name"], as_index=False)["ln_IC50"].mean()
    both = pred.merge(joined, on=["DepMap_ID", "drug_name"])
    assert np.corrcoef(both["ln_IC50_pred"], both["ln_IC50"])[0, 1] > 0.9


def test_braf_inhibitors_are_predicted_more_potent_in_braf_mutant_lines(tmp_path, gdsc):
    """The positive control the model records (in-sample): dabrafenib's mean predicted ln IC50
    is lower in BRAF-mutant cell lines than in wild-type ones, as measured."""
    from pmtoolkit.core import shipped
    from pmtoolkit.core.checkpoint import read_metadata

    meta = read_metadata(shipped.path("gdsc", "model"), verified=True)
    control = meta["metrics"]["positive control (in-sample)"]
    for drug in ("Dabrafenib", "PLX-4720"):
        mutant, wild = control[drug]["predicted mean ln IC50, mutant / wild type"]
        assert mutant < wild - 0.5, (drug, mutant, wild)
        assert control[drug]["BRAF mutant lines"] >= 10


def test_info_says_what_the_model_saw(pmt):
    result = pmt("info", "gdsc", "--json")
    assert result.exit_code == 0, result.stderr
    meta = json.loads(result.stdout)["metadata"]
    metrics = meta["metrics"]
    assert "140 drugs" in metrics["training_set"] and "580 cell" in metrics["training_set"]
    assert "validation (chose the epoch; not a test figure)" in metrics
    assert meta["config"]["fusion"] == "both"


def test_explain_names_genes_and_draws_the_drug(pmt, tmp_path, gdsc):
    mutation = pd.read_csv(gdsc / "cell_mutation.csv.gz", usecols=["DepMap_ID", "entrez_673"])
    line = mutation.loc[mutation["entrez_673"] > 0, "DepMap_ID"].iloc[0]
    pd.DataFrame({"DepMap_ID": [line], "drug_name": ["Dabrafenib"]}).to_csv(
        tmp_path / "pairs.csv", index=False)
    out = tmp_path / "why"
    result = pmt("response", "explain", "-m", "gdsc", "-i", tmp_path / "pairs.csv",
                 "-d", gdsc / "drugs.csv", *_features(gdsc), "-o", out)
    assert result.exit_code == 0, result.stderr
    attr = pd.read_csv(out / "attributions.csv")
    assert len(attr) == 10 and not attr["label"].str.startswith("entrez_").any()  # gene names
    assert (out / "drug_1.png").stat().st_size > 1000 and (out / "report.html").is_file()
