import gzip

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.expression.io import (
    check_no_empty_cells,
    counts_matrix,
    read,
    recover_counts,
    write_h5ad,
)
from tests.expression.conftest import simulate


def _table(tmp_path, frame, name):
    path = tmp_path / name
    frame.to_csv(path, sep="\t" if ".tsv" in name else ",")
    return path


def test_csv_cells_by_genes_and_genes_by_cells_read_the_same(tmp_path):
    frame = pd.DataFrame([[1, 0, 3], [0, 2, 5]], index=["c1", "c2"], columns=["A", "B", "C"])
    frame.index.name = "cell"
    a = read(_table(tmp_path, frame, "cells.csv"))
    t = frame.T
    t.index.name = "gene"
    b = read(_table(tmp_path, t, "genes.tsv.gz"))
    for x in (a, b):
        assert list(x.obs_names) == ["c1", "c2"] and list(x.var_names) == ["A", "B", "C"]
        dense = x.X.toarray() if sp.issparse(x.X) else x.X
        np.testing.assert_array_equal(dense, frame.to_numpy())
    forced = read(tmp_path / "cells.csv", orientation="genes-by-cells")
    assert forced.shape == (3, 2)


def test_10x_folder(tmp_path):
    m = sp.random(4, 3, density=0.5, random_state=0, format="coo") * 10
    m.data = np.round(m.data) + 1
    folder = tmp_path / "filtered_feature_bc_matrix"
    folder.mkdir()
    with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
        scipy.io.mmwrite(fh, m.astype(np.int64))
    with gzip.open(folder / "features.tsv.gz", "wt") as fh:
        for i in range(4):
            fh.write(f"ENSG{i}\tGENE{i}\tGene Expression\n")
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        for i in range(3):
            fh.write(f"AAACCTGAGAAACC{i}G-1\n")
    adata = read(folder)
    assert adata.shape == (3, 4)
    assert list(adata.var_names) == [f"GENE{i}" for i in range(4)]
    np.testing.assert_array_equal(adata.X.toarray(), m.toarray().T)
    assert read(folder, var_names="gene_ids").var_names[0] == "ENSG0"


def test_duplicated_gene_names_are_an_error_unless_made_unique(tmp_path):
    frame = pd.DataFrame([[1, 2], [3, 4]], index=["c1", "c2"], columns=["A", "A"])
    path = tmp_path / "dup.csv"
    frame.to_csv(path)
    with pytest.raises(BadInputError, match="duplicated gene name.*A.*--make-unique"):
        read(path, orientation="cells-by-genes")
    adata = read(path, orientation="cells-by-genes", make_unique=True)
    assert list(adata.var_names) == ["A", "A-1"]


def test_bad_tables_and_formats(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text("cell,A,B\nc1,1,x\n")
    with pytest.raises(BadInputError, match="column 'B' is not numeric"):
        read(path, orientation="cells-by-genes")
    odd = tmp_path / "matrix.xlsx"
    odd.write_text("?")
    with pytest.raises(BadInputError, match="cannot tell the format"):
        read(odd)
    with pytest.raises(BadInputError, match="does not exist"):
        read(tmp_path / "missing.h5ad")


def test_counts_matrix_finds_counts_and_names_bad_values():
    adata = simulate(n_per_group=5, n_genes=20, groups=2)
    _, where = counts_matrix(adata)
    assert where == "X"
    adata.layers["counts"] = adata.X.copy()
    adata.X = adata.X.multiply(0.5).tocsr()
    assert counts_matrix(adata)[1] == "layers['counts']"
    del adata.layers["counts"]
    with pytest.raises(BadInputError, match=r"non-integer value .*cell 'cell\d+', gene"):
        counts_matrix(adata)
    adata.X = -adata.X
    with pytest.raises(BadInputError, match="negative value"):
        counts_matrix(adata, "X")
    with pytest.raises(BadInputError, match="no layer 'spliced'"):
        counts_matrix(adata, "spliced")


def test_empty_cells_are_named():
    X = sp.csr_matrix(np.array([[1, 0], [0, 0]], dtype=np.float32))
    with pytest.raises(BadInputError, match="1 cell\\(s\\) have no counts, e.g. 'b'"):
        check_no_empty_cells(X, ["a", "b"])


def test_recover_counts_inverts_log_normalisation():
    counts = sp.csr_matrix(np.array([[1, 0, 4], [2, 7, 0]], dtype=np.float64))
    lib = np.array([10.0, 20.0])
    norm = counts.multiply(1e4 / lib[:, None]).tocsr()
    norm.data = np.log1p(norm.data).astype(np.float32)
    np.testing.assert_array_equal(recover_counts(norm, lib).toarray(), counts.toarray())
    with pytest.raises(BadInputError, match="do not invert"):
        recover_counts(norm, lib * 1.5)


def test_write_h5ad_is_atomic_and_readable(tmp_path):
    adata = simulate(n_per_group=5, n_genes=20, groups=2)
    out = tmp_path / "a.h5ad"
    write_h5ad(adata, out)
    assert read(out).shape == adata.shape
    assert [p.name for p in tmp_path.iterdir()] == ["a.h5ad"]


def test_10x_h5(tmp_path):
    import h5py

    dense = np.array([[0, 2, 1], [3, 0, 0]], dtype=np.int32)  # genes x cells, as 10x stores it
    csc = sp.csc_matrix(dense)
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"], g["indices"], g["indptr"] = csc.data, csc.indices, csc.indptr
        g["shape"] = np.array(dense.shape)
        g["barcodes"] = np.array([b"AAAC-1", b"AAAG-1", b"AAAT-1"])
        feat = g.create_group("features")
        feat["id"] = np.array([b"ENSG1", b"ENSG2"])
        feat["name"] = np.array([b"CD3E", b"MS4A1"])
        feat["feature_type"] = np.array([b"Gene Expression"] * 2)
        feat["genome"] = np.array([b"GRCh38"] * 2)
        feat["_all_tag_keys"] = np.array([b"genome"])
    adata = read(path)
    assert list(adata.var_names) == ["CD3E", "MS4A1"] and adata.n_obs == 3
    np.testing.assert_array_equal(adata.X.toarray(), dense.T)


def test_shared_10x_v3_folder_reads_as_cell_ranger_output(shared_data):
    adata = read(shared_data / "expression" / "scanpy_10x_v3")
    assert adata.shape == (1107, 507)
    assert counts_matrix(adata)[1] == "X"


# ----------------------------------------------------------------------------- hardening

def test_check_finite_names_the_first_nan_or_inf_dense_and_sparse():
    from pmtoolkit.expression.io import check_counts, check_finite

    X = np.ones((3, 4), dtype=np.float32)
    check_finite(X, ["a", "b", "c"], list("WXYZ"))
    X[1, 2] = np.inf
    with pytest.raises(BadInputError, match=r"X: inf is not a finite number \(cell 'b', "
                                            r"gene 'Y'\)"):
        check_finite(X, ["a", "b", "c"], list("WXYZ"), source="X")
    S = sp.csr_matrix(np.where(X == np.inf, np.nan, X))
    with pytest.raises(BadInputError, match="nan is not a finite number .* raw counts"):
        check_counts(S, ["a", "b", "c"], list("WXYZ"))


def test_check_memory_refuses_what_would_not_fit(monkeypatch, tmp_path):
    from pmtoolkit.expression import io

    assert io.available_memory() > 0
    monkeypatch.setattr(io, "available_memory", lambda: 2**20)
    io.check_memory(2**19, "a small thing")
    with pytest.raises(BadInputError, match=r"a big thing needs 0.0 GiB of memory, more than "
                                            r"the 0.0 GiB available \(lower it\)"):
        io.check_memory(2**21, "a big thing", hint="lower it")
    # an h5ad whose arrays, as declared, exceed what is available: refused before loading
    simulate(n_per_group=5, n_genes=20).write_h5ad(tmp_path / "a.h5ad")
    monkeypatch.setattr(io, "available_memory", lambda: 100)
    with pytest.raises(BadInputError, match="largest array"):
        read(tmp_path / "a.h5ad")


def test_loom_layout_is_checked_before_loompy(tmp_path):
    import h5py

    from pmtoolkit.expression.io import check_hdf5

    path = tmp_path / "x.loom"
    with h5py.File(path, "w") as f:
        f["matrix"] = np.ones((5, 4), dtype=np.float32)
        f["row_attrs/Gene"] = np.array([b"g%d" % i for i in range(5)])
        f["col_attrs/CellID"] = np.array([b"c%d" % i for i in range(4)])
        f["layers/spliced"] = np.ones((5, 3), dtype=np.float32)
    with pytest.raises(BadInputError, match="layer 'spliced' is"):
        check_hdf5(path, "loom")
    with h5py.File(path, "r+") as f:
        del f["layers/spliced"]
    check_hdf5(path, "loom")  # consistent
    with h5py.File(path, "r+") as f:
        del f["matrix"]
    with pytest.raises(BadInputError, match="no 2-D 'matrix'"):
        check_hdf5(path, "loom")


def test_n_pcs_is_lowered_with_a_warning_and_refused_without_data(caplog):
    from pmtoolkit.expression.standard import _n_pcs

    assert _n_pcs(50, 1000, 2000) == 50
    with caplog.at_level("WARNING"):
        assert _n_pcs(50, 30, 2000) == 29
    assert "--n-pcs 50 lowered to 29" in caplog.text
    assert _n_pcs(50, 1000, 12) == 11
    with pytest.raises(BadInputError, match="PCA needs at least 2 of each"):
        _n_pcs(50, 1, 2000)


def test_too_few_cells_for_a_graph_are_an_input_error():
    from pmtoolkit.expression.config import SingleCellConfig
    from pmtoolkit.expression.standard import standard_pipeline

    adata = simulate(n_per_group=3, n_genes=300, groups=1)
    adata.X = adata.X * 4
    with pytest.raises(BadInputError, match="3 cell.s. left after QC: clustering and UMAP need "
                                            "at least 4"):
        standard_pipeline(adata, SingleCellConfig(min_genes=10, min_cells=0, doublets=False))


def test_highly_variable_genes_refuse_data_without_variation():
    """Identical cells, or a batch of one cell, leave no gene that varies: scanpy's seurat
    flavours fail (seurat_v3's loess takes the interpreter down), so they are refused."""
    from pmtoolkit.expression.qc import highly_variable_genes

    adata = simulate(n_per_group=20, n_genes=60)
    adata.layers["counts"] = adata.X.copy()
    copies = adata.copy()
    copies.X = sp.csr_matrix(np.tile(adata.X[0].toarray(), (adata.n_obs, 1)))
    with pytest.raises(BadInputError, match="0 gene.s. vary among the 60 cell.s.: seurat "
                                            "highly variable genes need 2"):
        highly_variable_genes(copies, "seurat", 30)
    adata.obs["batch"] = ["a"] * (adata.n_obs - 1) + ["b"]
    with pytest.raises(BadInputError, match="vary among the 1 cell.s. in batch 'b': "
                                            "seurat_v3 highly variable genes need 20"):
        highly_variable_genes(adata, "seurat_v3", 30, layer="counts", batch_key="batch")
    highly_variable_genes(adata, "seurat", 30)  # the same data without the batch split
    assert adata.var["highly_variable"].sum() == 30
