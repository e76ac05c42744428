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
