import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.expression.annotate import annotate_by_markers, read_marker_lists
from pmtoolkit.expression.pseudobulk import _bh, _squeeze_var, pseudobulk, pseudobulk_de
from pmtoolkit.expression.qc import filter_cells_genes, qc_metrics, store_counts
from tests.expression.conftest import simulate


def test_qc_metrics_mito_and_ribo_percentages_by_hand():
    import anndata as ad

    X = sp.csr_matrix(np.array([[1, 3, 6, 0], [0, 0, 5, 5]], dtype=np.float32))
    adata = ad.AnnData(X=X, var=pd.DataFrame(index=["MT-CO1", "mt-nd1", "ACTB", "RPL3"]))
    store_counts(adata)
    qc_metrics(adata)
    np.testing.assert_allclose(adata.obs["pct_counts_mito"], [40.0, 0.0])
    np.testing.assert_allclose(adata.obs["pct_counts_ribo"], [0.0, 50.0])
    np.testing.assert_array_equal(adata.obs["n_genes_by_counts"], [3, 2])
    assert adata.layers["counts"].sum() == 20


def test_filters_record_what_they_removed():
    adata = simulate(n_per_group=20, n_genes=40, groups=2)
    store_counts(adata)
    qc_metrics(adata)
    keep_min = int(np.median(adata.obs["n_genes_by_counts"]))
    expected = int((adata.obs["n_genes_by_counts"] >= keep_min).sum())
    filter_cells_genes(adata, min_genes=keep_min, max_pct_mito=None, min_cells=1)
    assert adata.n_obs == expected
    table = adata.uns["pmt_qc"]["filters"]
    assert table.loc[table["filter"] == "min_genes", "cells_removed"].item() == 40 - expected
    with pytest.raises(BadInputError, match="no cells pass QC"):
        filter_cells_genes(adata, min_genes=10_000)


def test_annotation_by_markers_finds_the_planted_types(tmp_path):
    adata = simulate(n_per_group=40, n_genes=60, groups=3)
    store_counts(adata)
    import scanpy as sc

    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.obs["cluster"] = adata.obs["group"].cat.rename_categories(["0", "1", "2"])
    path = tmp_path / "markers.toml"
    path.write_text('alpha = ["G0", "G1", "G2", "G3"]\nbeta = ["G10", "G11", "G12"]\n'
                    'gamma = ["g20", "G21", "G22", "NOT_A_GENE"]\n')
    markers = read_marker_lists(path)
    annotate_by_markers(adata, markers, groupby="cluster")
    mapping = dict(zip(adata.obs["cluster"], adata.obs["cell_type"]))
    assert mapping == {"0": "alpha", "1": "beta", "2": "gamma"}
    assert set(adata.uns["cell_type"]["scores"].columns) >= {"alpha", "beta", "gamma"}
    annotate_by_markers(adata, {**markers, "delta": ["X1"]}, groupby="cluster", key_added="ct2")
    assert "delta" not in adata.uns["ct2"]["markers"]
    with pytest.raises(BadInputError, match="none of the 1 marker lists"):
        annotate_by_markers(adata, {"delta": ["X1", "X2"]}, groupby="cluster")


def test_marker_csv_with_header(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("label,gene\nB,CD79A\nB,MS4A1\nT,CD3E\n")
    assert read_marker_lists(path) == {"B": ["CD79A", "MS4A1"], "T": ["CD3E"]}


def test_pseudobulk_sums_counts_per_sample():
    adata = simulate(n_per_group=30, n_genes=30, groups=2, samples_per_group=3)
    pb = pseudobulk(adata, "sample", min_cells=1)
    for s in pb.obs_names:
        np.testing.assert_allclose(np.asarray(pb[s].X.sum()),
                                   adata[adata.obs["sample"] == s].X.sum())
    assert set(pb.obs["condition"]) == {"ctrl", "case"}  # constant within samples: kept


def test_pseudobulk_de_finds_a_planted_gene():
    rng = np.random.default_rng(1)
    adata = simulate(n_per_group=60, n_genes=80, groups=1, samples_per_group=4, seed=3)
    X = adata.X.toarray()
    case = (adata.obs["condition"] == "case").to_numpy()
    X[case, 50] = rng.poisson(X[case, 50].mean() * 4 + 20)
    adata.X = sp.csr_matrix(X)
    table = pseudobulk_de(adata, "condition", "sample", case="case", reference="ctrl",
                          min_cells=5)
    top = table.iloc[0]
    assert top["gene"] == adata.var_names[50] and top["log2_fold_change"] > 1
    assert top["padj"] < 0.01
    null = table[table["gene"] != adata.var_names[50]]
    assert (null["padj"].dropna() < 0.05).mean() < 0.05
    with pytest.raises(BadInputError, match="has no value 'treated'"):
        pseudobulk_de(adata, "condition", "sample", case="treated", reference="ctrl")


def test_benjamini_hochberg_and_variance_moderation():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(0).uniform(size=200) ** 2
    np.testing.assert_allclose(_bh(p), multipletests(p, method="fdr_bh")[1])
    s2 = np.random.default_rng(1).chisquare(4, size=2000) / 4 * 0.5
    mod, d0 = _squeeze_var(s2, 4.0)
    assert d0 > 20  # the variances share one prior: strong moderation
    assert mod.std() < s2.std() / 3


def test_pseudobulk_de_names_a_missing_sample_or_group_column():
    adata = simulate(n_per_group=10, n_genes=30, samples_per_group=2)
    for key in ("sample_key", "groupby"):
        args = {"sample_key": "sample", "groupby": "group", key: "nope"}
        with pytest.raises(BadInputError, match="no obs column 'nope' .columns: group, sample"):
            pseudobulk_de(adata, "condition", args["sample_key"], case="case",
                          reference="ctrl", groupby=args["groupby"])
