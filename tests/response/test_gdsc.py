"""Drug response on the GDSC layout (issue 27): several feature tables read side by side,
rejects with reasons, splits without leakage over seeds, per-drug metrics by hand."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from pmtoolkit import response as R
from pmtoolkit.core.errors import BadInputError, MissingInputError, MissingResourceError
from pmtoolkit.response.data import LAYOUTS, layout_columns
from tests.response.gdsc_layout import DRUGS, GENES, TABLES, cells, feature_paths, write_gdsc

GDSC = layout_columns("gdsc")


def test_reads_the_gdsc_layout_with_three_feature_tables(tmp_path):
    paths = write_gdsc(tmp_path)
    data, drug_rejects, rejects = R.load_panel(paths["responses"], paths["drugs"],
                                               feature_paths(paths), columns=GDSC)
    assert not drug_rejects and not rejects
    assert len(data) == 12 * len(DRUGS) and data.drugs.ids == list(DRUGS)
    assert data.samples.ids == cells(12)
    assert data.samples.names == [f"{t}:{g}" for t in TABLES for g in GENES]
    # every table's values land in its own block, row for row
    mut = pd.read_csv(paths["cell_mutation"])
    block = data.samples.X[:, 2 * len(GENES):]
    assert np.array_equal(block, mut[GENES].to_numpy(np.float32))
    responses = pd.read_csv(paths["responses"])
    assert np.allclose(data.y, responses["ln_IC50"])
    # the expression z-scores hold negatives: not counts, so no log-cpm under --normalize auto
    assert not data.samples.counts


def test_a_cell_missing_from_a_table_and_a_drug_without_smiles_are_rejects(tmp_path):
    paths = write_gdsc(tmp_path, no_smiles="Camptothecin", missing_mutation="ACH-000005")
    data, drug_rejects, rejects = R.load_panel(paths["responses"], paths["drugs"],
                                               feature_paths(paths), columns=GDSC)
    assert len(drug_rejects) == 1 and drug_rejects.items[0].line == 5
    assert "'Camptothecin'" in drug_rejects.items[0].reason
    reasons = pd.Series([r.reason for r in rejects])
    no_smiles = reasons.str.fullmatch("drug 'Camptothecin' has no SMILES in the drugs table")
    missing = reasons.str.contains("sample 'ACH-000005' is missing from .*cell_mutation")
    # every row of the drug (12 cells) and of the cell (6 drugs, one of them also the drug's)
    assert no_smiles.sum() == 12 and missing.sum() == 5 and len(rejects) == 17
    assert len(data) == 12 * 6 - 17
    assert "ACH-000005" not in data.samples.ids and "Camptothecin" not in data.drugs.ids
    with pytest.raises(BadInputError, match="Camptothecin"):
        R.apply_rejects(drug_rejects, rejects, "error")


def test_missing_column_truncated_gzip_and_clashing_table_names_are_one_line_errors(tmp_path):
    paths = write_gdsc(tmp_path)
    feats = feature_paths(paths)
    drugs = pd.read_csv(paths["drugs"]).drop(columns=["CanonicalSMILES"])
    drugs.to_csv(tmp_path / "drugs_nosmiles.csv", index=False)
    with pytest.raises(MissingInputError, match="column 'CanonicalSMILES' not found"):
        R.load_panel(paths["responses"], tmp_path / "drugs_nosmiles.csv", feats, columns=GDSC)
    with pytest.raises(MissingInputError, match="column 'response' not found"):
        R.load_panel(paths["responses"], paths["drugs"], feats,
                     columns=layout_columns("default", sample="DepMap_ID", drug="drug_name",
                                            smiles="CanonicalSMILES"))
    raw = gzip.decompress(paths["responses"].read_bytes())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    with pytest.raises(BadInputError, match="cut.csv.gz"):
        R.load_panel(cut, paths["drugs"], feats, columns=GDSC)
    other = tmp_path / "other"
    other.mkdir()
    (other / "cell_mutation.csv.gz").write_bytes(paths["cell_mutation"].read_bytes())
    with pytest.raises(BadInputError, match="two feature tables are named 'cell_mutation'"):
        R.load_panel(paths["responses"], paths["drugs"],
                     [paths["cell_mutation"], other / "cell_mutation.csv.gz"], columns=GDSC)


def test_layouts_and_a_feature_id_column_of_its_own(tmp_path):
    assert layout_columns("gdsc").sample == "DepMap_ID"
    assert layout_columns("gdsc", response="AUC").response == "AUC"
    assert layout_columns("default") == LAYOUTS["default"] == R.Columns()
    with pytest.raises(MissingResourceError, match="unknown layout 'ccle'"):
        layout_columns("ccle")
    # DepMap's own matrices name the cell column ModelID
    paths = write_gdsc(tmp_path)
    expr = pd.read_csv(paths["cell_expression_zscore"]).rename(columns={"DepMap_ID": "ModelID"})
    expr.to_csv(tmp_path / "expr.csv", index=False)
    data, _, rejects = R.load_panel(paths["responses"], paths["drugs"], tmp_path / "expr.csv",
                                    columns=layout_columns("gdsc", feature_sample="ModelID"))
    assert len(data) == 12 * len(DRUGS) and data.samples.names == GENES and not rejects


def test_cli_layout_names_are_the_library_s():
    from pmtoolkit.cli.response import LAYOUTS as CLI_LAYOUTS

    assert tuple(LAYOUTS) == CLI_LAYOUTS


def _panel(n_samples: int = 60, n_drugs: int = 30, seed: int = 0) -> R.ResponseData:
    """Pairs of a panel with ~85% of pairs measured (no files: splits need only indices)."""
    rng = np.random.default_rng(seed)
    s, d = np.meshgrid(np.arange(n_samples), np.arange(n_drugs), indexing="ij")
    keep = rng.random(s.size) < 0.85
    samples = R.SampleFeatures([f"c{i}" for i in range(n_samples)],
                               np.zeros((n_samples, 1), np.float32), ["g"], False)
    drugs = R.Drugs([f"d{i}" for i in range(n_drugs)], ["C"] * n_drugs)
    return R.ResponseData(samples, drugs, s.ravel()[keep], d.ravel()[keep],
                          rng.normal(size=int(keep.sum())))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", R.SPLITS)
def test_no_leakage_across_train_validation_and_test(method, seed):
    data = _panel()
    parts = R.response_split(data, method, seed=seed).indices()
    drugs = {k: set(data.drug_index[v]) for k, v in parts.items()}
    cells_ = {k: set(data.sample_index[v]) for k, v in parts.items()}
    pairs = {k: set(zip(data.sample_index[v], data.drug_index[v])) for k, v in parts.items()}
    assert all(len(v) for v in parts.values())
    assert not pairs["train"] & (pairs["val"] | pairs["test"]) and \
        not pairs["val"] & pairs["test"]
    if method in ("cold-drug", "cold-pair"):  # a held-out drug never appears in training
        assert not drugs["train"] & (drugs["val"] | drugs["test"])
        assert not drugs["val"] & drugs["test"]
    if method in ("cold-sample", "cold-pair"):
        assert not cells_["train"] & (cells_["val"] | cells_["test"])
        assert not cells_["val"] & cells_["test"]
    if method == "random":
        assert drugs["test"] <= drugs["train"] and cells_["test"] <= cells_["train"]


def test_per_drug_pearson_and_spearman_by_hand():
    #            drug A: ranked right     drug B: one swap       drug C: two cells only
    y = np.array([1.0, 2.0, 3.0,          1.0, 2.0, 3.0,         1.0, 2.0])
    p = np.array([1.0, 2.0, 4.0,          3.0, 1.0, 2.0,         2.0, 1.0])
    d = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    s = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    m = R.response_metrics(y, p, d, s, min_pairs=3)
    # A: r = 3 / sqrt(2 * 42/9) = 9 / sqrt(84), rho = 1; B: r = rho = 1 - 6*6/(3*8) = -0.5
    assert m["per_drug_pearson"] == pytest.approx((9 / np.sqrt(84) - 0.5) / 2)
    assert m["per_drug_spearman"] == pytest.approx((1.0 - 0.5) / 2)
    assert m["drugs_scored"] == 2 and m["n_drugs"] == 3 and m["n"] == 8
    assert m["pearson"] == pytest.approx(np.corrcoef(y, p)[0, 1])
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))
    # with two pairs enough, drug C counts too (r = rho = -1)
    m2 = R.response_metrics(y, p, d, s, min_pairs=2)
    assert m2["drugs_scored"] == 3
    assert m2["per_drug_spearman"] == pytest.approx((1.0 - 0.5 - 1.0) / 3)


def test_drug_ridge_ranks_each_drug_s_cells_by_its_own_gene(tmp_path):
    """In the fixture each drug's ln IC50 follows one gene's expression (a different gene for
    each drug): one ridge per drug finds it, an additive model cannot."""
    paths = write_gdsc(tmp_path, n_cells=60)
    data, _, _ = R.load_panel(paths["responses"], paths["drugs"], feature_paths(paths),
                              columns=GDSC)
    idx = R.response_split(data, "random", seed=0).indices()
    train, valid, test = (data.subset(idx[k]) for k in ("train", "val", "test"))
    config = R.ResponseConfig(top_genes=0)
    ridge = R.fit_baseline("drug-ridge", train, valid, config)
    assert ridge.alpha in ridge.ALPHAS
    per_drug = R.evaluate(ridge, test)["per_drug_pearson"]
    additive = R.evaluate(R.fit_baseline("additive", train, valid), test)["per_drug_pearson"]
    assert per_drug > 0.9 and per_drug > additive + 0.3, (per_drug, additive)
    # a drug never seen in training gets the mean of every drug model's prediction
    idx = R.response_split(data, "cold-drug", seed=0).indices()
    train, test = data.subset(idx["train"]), data.subset(idx["test"])
    ridge = R.fit_baseline("drug-ridge", train, None, config)
    assert ridge.alpha == ridge.DEFAULT_ALPHA
    pred = ridge.predict(test)
    S = ridge.prep.standardized(data.samples).astype(float)
    models = np.stack([ridge.intercept[k] + (S[test.sample_index] - ridge.center[k])
                       @ ridge.W[k] for k in range(len(ridge.drugs))], axis=1)
    assert np.allclose(pred, models.mean(1))


def test_the_shared_gdsc_panel_reads_whole_and_splits_without_leakage(shared_data):
    """The real panel of shared/data: every pair, drug and cell read, none rejected; the
    held-out drugs and cells of every split and seed unseen in training."""
    folder = shared_data / "response" / "gdsc"
    data, drug_rejects, rejects = R.load_panel(
        folder / "ln_ic50.csv.gz", folder / "drugs.csv",
        [folder / f"{t}.csv.gz" for t in TABLES], columns=GDSC)
    assert (len(data), len(data.drugs.ids), len(data.samples.ids)) == (66_918, 140, 580)
    assert data.samples.X.shape == (580, 3 * 706) and not drug_rejects and not rejects
    for method in ("cold-drug", "cold-sample", "cold-pair"):
        for seed in (0, 1, 2):
            parts = R.response_split(data, method, seed=seed).indices()
            index = data.drug_index if method == "cold-drug" else data.sample_index
            train = set(index[parts["train"]])
            assert not train & (set(index[parts["val"]]) | set(index[parts["test"]]))
            if method == "cold-pair":
                assert not set(data.drug_index[parts["train"]]) & \
                    set(data.drug_index[parts["test"]])
