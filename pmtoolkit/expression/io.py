"""Readers of the field's expression formats into AnnData, and the checks raw counts must pass.

``read`` takes an h5ad file, a 10x Cell Ranger folder (``matrix.mtx(.gz)``, ``features.tsv``
or ``genes.tsv``, ``barcodes.tsv``), a 10x ``.h5``, a CSV/TSV matrix (cells × genes or genes ×
cells, plain or gzipped) or a loom file, and always returns cells × genes. Duplicated gene names
are an error unless the caller asks for scanpy's ``var_names_make_unique``: silently renaming
genes changes which gene a marker list or a reference model means.

``counts_matrix`` finds the raw counts of an AnnData (``X``, a ``counts`` layer or ``.raw``) and
rejects what is not counts (negative or non-integer values) with the cell and gene at fault.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from pmtoolkit.core.errors import BadInputError, MissingInputError, first_line

if TYPE_CHECKING:
    import anndata as ad
    import torch

log = logging.getLogger(__name__)

Orientation = Literal["auto", "cells-by-genes", "genes-by-cells"]
#: column headers that say the rows of a table are genes
_GENE_HEADERS = {"gene", "genes", "gene_id", "gene_ids", "gene_name", "gene_symbol", "symbol",
                 "geneid", "ensembl", "ensembl_id", "feature", "features", "id", ""}
#: a 10x barcode (ACGT x 12-16, optional -N suffix): rows named so are cells
_BARCODE = re.compile(r"^[ACGTN]{12,16}(-\d+)?$")
_TABLE = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")


def read(path: str | os.PathLike, *, orientation: Orientation = "auto",
         make_unique: bool = False, var_names: Literal["gene_symbols", "gene_ids"] =
         "gene_symbols") -> ad.AnnData:
    """Read an expression matrix as a cells × genes AnnData.

    ``orientation`` applies to CSV/TSV tables; ``auto`` reads a table as genes × cells when
    its first header names genes (``gene``, ``gene_id``, ``symbol``, or empty) or its column
    names look like 10x barcodes, else as cells × genes. ``var_names`` picks symbols or
    Ensembl ids for 10x inputs."""
    import warnings

    import anndata as ad
    import scanpy as sc

    p = Path(path)
    if not p.exists():
        raise MissingInputError(f"expression input '{p}' does not exist")
    name = p.name.lower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # anndata's legacy-layout notices
        warnings.simplefilter("ignore", UserWarning)  # "Variable names are not unique"
        if p.is_dir():
            adata = _library_read(p, "10x matrix folder", _read_10x_dir, p, var_names)
        elif name.endswith(".h5ad"):
            check_hdf5(p, "h5ad")
            adata = _library_read(p, "h5ad file", ad.read_h5ad, p)
        elif name.endswith((".h5", ".hdf5")):
            check_hdf5(p, "10x h5")
            adata = _library_read(p, "10x h5 file", sc.read_10x_h5, p, gex_only=True)
            if var_names == "gene_ids" and "gene_ids" in adata.var:
                adata.var_names = adata.var["gene_ids"].astype(str)
        elif name.endswith(".loom"):
            check_hdf5(p, "loom")
            adata = _library_read(p, "loom file", _read_loom, p)
        elif name.endswith(_TABLE):
            adata = _read_table(p, orientation)
        else:
            raise BadInputError(f"cannot tell the format of '{p}'",
                                hint="give an .h5ad, .h5 (10x), .loom, .csv/.tsv(.gz) "
                                     "file or a 10x matrix folder")
    check_names(adata, make_unique=make_unique, source=str(p))
    return adata


def _library_read(p: Path, what: str, reader, *args, **kwargs):
    """``reader(*args, **kwargs)``, a library's reader of a binary format (anndata, scanpy,
    h5py, scipy): whatever it raises for a truncated, corrupt or mislabelled file (h5py
    alone raises OSError, KeyError, ValueError, RuntimeError or TypeError, by where the
    damage is) becomes one :class:`BadInputError` naming the file. A file that would not
    fit in memory is refused the same way."""
    from pmtoolkit.core.errors import PmtError
    from pmtoolkit.core.io import reading

    try:
        with reading(p):  # text parts (features.tsv, a gzipped matrix.mtx) decode here
            return reader(*args, **kwargs)
    except PmtError:
        raise
    except MemoryError:
        raise BadInputError(f"'{p}' does not fit in memory",
                            hint="use a machine with more memory, or subset the data") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the library on this file
        raise BadInputError(f"cannot read '{p}' as {_a(what)}: {first_line(exc, 300)}",
                            hint="is it truncated, corrupt or another format? check the "
                                 "download or write the file again") from None


def _a(what: str) -> str:
    return f"{'an' if what.startswith('h5') else 'a'} {what}"


def available_memory() -> int:
    """Bytes of memory this process can still use: the kernel's MemAvailable, or less under
    a cgroup limit; physical memory where /proc is absent."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            return 2**63 - 1
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit.isdigit():
            avail = min(avail, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(0, avail)


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_memory(n_bytes: float, what: str, *, hint: str | None = None) -> None:
    """Refuse, before allocating, ``n_bytes`` for ``what`` when that is more than the memory
    available: a one-line error instead of the kernel killing the run (or swap for hours)."""
    avail = available_memory()
    if n_bytes > avail:
        raise BadInputError(f"{what} needs {_gib(n_bytes)} of memory, more than the "
                            f"{_gib(avail)} available",
                            hint=hint or "use a machine with more memory, or subset the data")


def check_hdf5(p: Path, kind: str) -> None:
    """Look at an HDF5 input (h5ad, 10x h5, loom) before a library loads it: it must open
    as HDF5, its arrays must fit in memory as declared (a file of a few kB can declare a
    dense 10^6 x 10^6 matrix), and a loom's attributes must match its matrix."""
    import h5py

    from pmtoolkit.core.errors import PmtError

    try:
        with h5py.File(p, "r") as f:
            if kind == "loom":
                _check_loom(f, p)
                arrays = [(n, s, i) for n, s, i in _datasets(f)
                          if not n.startswith(("matrix", "layers/"))]  # read sparse, by chunks
            else:
                arrays = _datasets(f)
            if kind == "h5ad":
                _check_h5ad_x(f, p)
    except PmtError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py's errors for a damaged file vary
        raise BadInputError(f"cannot read '{p}' as {_a(kind)} file: {first_line(exc, 300)}",
                            hint="is it truncated, corrupt or not HDF5? check the download "
                                 "or write the file again") from None
    total = sum(float(np.prod(shape, dtype=np.float64)) * size for _, shape, size in arrays)
    if arrays:
        name, shape, _ = max(arrays, key=lambda a: float(np.prod(a[1], dtype=np.float64)) * a[2])
        check_memory(total, f"'{p}' (its largest array, {name}, is "
                            f"{' x '.join(map(str, shape))})")


def _datasets(f) -> list[tuple[str, tuple[int, ...], int]]:
    import h5py

    out: list[tuple[str, tuple[int, ...], int]] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.shape is not None:
            out.append((name, tuple(int(d) for d in obj.shape), int(obj.dtype.itemsize)))

    f.visititems(visit)
    return out


def _check_h5ad_x(f, p: Path) -> None:
    """X of an h5ad: a 2-D array, or a sparse group whose parts agree with its shape."""
    import h5py

    if "X" not in f:
        return  # anndata allows it (an AnnData of obs and var only); check_names reports it
    X = f["X"]
    if isinstance(X, h5py.Dataset):
        if len(X.shape or ()) != 2:
            raise BadInputError(f"'{p}': X has shape {X.shape}, expected cells x genes")
        return
    enc = X.attrs.get("encoding-type", X.attrs.get("h5sparse_format", ""))
    enc = enc.decode() if isinstance(enc, bytes) else str(enc)
    shape = tuple(int(v) for v in np.ravel(X.attrs.get("shape", X.attrs.get("h5sparse_shape",
                                                                            []))))
    if len(shape) != 2 or min(shape) < 0 or not {"data", "indices", "indptr"} <= set(X):
        raise BadInputError(f"'{p}': X is neither an array nor a sparse matrix anndata "
                            "can read")
    major = shape[0] if enc.startswith("csr") else shape[1]
    n_ptr, n_data, n_idx = (X[k].shape[0] for k in ("indptr", "data", "indices"))
    if n_ptr != major + 1 or n_data != n_idx:
        raise BadInputError(f"'{p}': X declares {shape[0]} x {shape[1]} but holds {n_ptr} "
                            f"row pointers, {n_data} values and {n_idx} indices",
                            hint="the file is damaged; write it again")


def _check_loom(f, p: Path) -> None:
    """A loom file: ``matrix`` (genes x cells), one value per gene in each ``row_attrs``
    array and one per cell in each ``col_attrs`` array, layers of the matrix's shape."""
    import h5py

    if not isinstance(f.get("matrix"), h5py.Dataset) or len(f["matrix"].shape or ()) != 2:
        raise BadInputError(f"'{p}' has no 2-D 'matrix' (genes x cells); is it a loom file?")
    genes, cells = f["matrix"].shape
    for group, n, what in (("row_attrs", genes, "genes"), ("col_attrs", cells, "cells")):
        for key, obj in (f[group].items() if group in f else []):
            if isinstance(obj, h5py.Dataset) and (not obj.shape or obj.shape[0] != n):
                raise BadInputError(f"'{p}': {group}/{key} has {obj.shape[0] if obj.shape else 0}"
                                    f" values but the matrix has {n} {what}",
                                    hint="the file is damaged or its attributes were written "
                                         "for another matrix")
    for key, obj in (f["layers"].items() if "layers" in f else []):
        if isinstance(obj, h5py.Dataset) and obj.shape != f["matrix"].shape:
            raise BadInputError(f"'{p}': layer {key!r} is {obj.shape}, the matrix "
                                f"{f['matrix'].shape}")


def _read_10x_dir(p: Path, var_names: str) -> ad.AnnData:
    import scanpy as sc

    files = {f.name for f in p.iterdir()}
    if not any(f.startswith("matrix.mtx") for f in files):
        raise BadInputError(f"folder '{p}' has no matrix.mtx(.gz)",
                            hint="a 10x folder holds matrix.mtx, features.tsv (or genes.tsv) "
                                 "and barcodes.tsv")
    # make_unique=False: duplicated symbols are reported by check_names, not renamed quietly
    return sc.read_10x_mtx(p, var_names=var_names, make_unique=False, gex_only=True)


def _read_loom(p: Path) -> ad.AnnData:
    import anndata as ad

    try:
        return ad.read_loom(p)
    except ImportError:
        raise BadInputError("reading loom files needs the loompy package",
                            hint="pip install loompy") from None


def _read_table(p: Path, orientation: Orientation) -> ad.AnnData:
    import anndata as ad
    import pandas as pd

    from pmtoolkit.core.io import reading

    sep = "\t" if re.search(r"\.(tsv|txt)(\.gz)?$", p.name.lower()) else ","
    try:
        with reading(p):  # binary bytes, a truncated .gz: one line naming the file
            frame = pd.read_csv(p, sep=sep, index_col=0)
            # pandas renames duplicated headers A, A.1: keep the names as written, so that
            # duplicated genes are reported rather than quietly renamed
            header = pd.read_csv(p, sep=sep, header=None, nrows=1, dtype=str).iloc[0, 1:]
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise BadInputError(f"cannot read '{p}' as a {'TSV' if sep != ',' else 'CSV'} "
                            f"matrix: {first_line(exc, 300)}") from None
    if frame.empty:
        raise BadInputError(f"'{p}' holds no matrix (no rows or no columns after the first)")
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        col = bad[0]
        values = pd.to_numeric(frame[col], errors="coerce")
        row = frame.index[values.isna() & frame[col].notna()]
        where = f", row {row[0]!r}" if len(row) else ""
        raise BadInputError(f"'{p}': column {col!r} is not numeric{where}",
                            hint="a matrix table has one header row, one name column, then "
                                 "numbers only")
    if len(header) == frame.shape[1]:
        frame.columns = header.fillna("").astype(str).to_numpy()
    if orientation == "auto":
        orientation = _guess_orientation(frame)
        log.info("reading %s as %s (use --orientation to override)", p.name, orientation)
    if orientation == "genes-by-cells":
        frame = frame.T
    X = frame.to_numpy(dtype=np.float32)
    obs = pd.DataFrame(index=frame.index.astype(str))
    var = pd.DataFrame(index=frame.columns.astype(str))
    return ad.AnnData(X=_sparse_if_sparse(X), obs=obs, var=var)


def _guess_orientation(frame) -> Orientation:
    head = str(frame.index.name or "").strip().lower()
    if head in _GENE_HEADERS:
        return "genes-by-cells"
    cols = [str(c) for c in frame.columns[:50]]
    if cols and sum(bool(_BARCODE.match(c)) for c in cols) > len(cols) // 2:
        return "genes-by-cells"
    return "cells-by-genes"


def _sparse_if_sparse(X: np.ndarray):
    import scipy.sparse as sp

    return sp.csr_matrix(X) if X.size and np.count_nonzero(X) < 0.5 * X.size else X


def check_names(adata: ad.AnnData, *, make_unique: bool = False, source: str = "input") -> None:
    """Duplicated gene names are an error (or made unique, ``GENE-1``, on request); cell
    names are made unique with a warning (barcodes from merged runs often clash)."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise BadInputError(f"{source}: empty matrix ({adata.n_obs} cells × {adata.n_vars} "
                            "genes)")
    dup = adata.var_names[adata.var_names.duplicated()]
    if len(dup):
        if not make_unique:
            shown = ", ".join(sorted(set(map(str, dup)))[:5])
            raise BadInputError(f"{source}: {len(dup)} duplicated gene name(s), e.g. {shown}",
                                hint="pass --make-unique to rename them GENE-1, GENE-2 "
                                     "(scanpy's var_names_make_unique), or use gene ids")
        adata.var_names_make_unique()
        log.warning("%s: %d duplicated gene name(s) renamed with -1, -2, ...", source, len(dup))
    if adata.obs_names.has_duplicates:
        n = int(adata.obs_names.duplicated().sum())
        adata.obs_names_make_unique()
        log.warning("%s: %d duplicated cell name(s) renamed with -1, -2, ...", source, n)


def _first_bad(X, mask_fn) -> tuple[int, int, float] | None:
    """(row, column, value) of the first entry where ``mask_fn(values)`` holds."""
    import scipy.sparse as sp

    if sp.issparse(X):
        coo = X.tocoo()
        bad = mask_fn(coo.data)
        if not bad.any():
            return None
        i = int(np.flatnonzero(bad)[0])
        return int(coo.row[i]), int(coo.col[i]), float(coo.data[i])
    arr = np.asarray(X)
    bad = mask_fn(arr)
    if not bad.any():
        return None
    r, c = np.argwhere(bad)[0]
    return int(r), int(c), float(arr[r, c])


def _values(X) -> np.ndarray:
    import scipy.sparse as sp

    return X.data if sp.issparse(X) else np.asarray(X)


def is_counts(X) -> bool:
    """Whether ``X`` holds non-negative integers (raw counts)."""
    v = _values(X)
    if v.size == 0:
        return True
    if np.issubdtype(v.dtype, np.integer):
        return bool((v >= 0).all())
    return bool((v >= 0).all() and np.all(np.mod(v, 1) == 0))


def check_finite(X, obs_names, var_names, *, source: str = "counts",
                 what: str = "expression values") -> None:
    """Raise a one-line error naming the first NaN or infinite value of ``X`` (NaN would
    flow through normalisation and models into silently wrong results)."""
    bad = _first_bad(X, lambda v: ~np.isfinite(v))
    if bad is not None:
        r, c, v = bad
        raise BadInputError(f"{source}: {v} is not a finite number (cell {obs_names[r]!r}, "
                            f"gene {var_names[c]!r}); {what} are required",
                            hint="fill or drop the missing values before the analysis")


def check_counts(X, obs_names, var_names, *, source: str = "counts") -> None:
    """Raise a one-line error naming the first NaN/infinite, negative or non-integer value
    of ``X``."""
    check_finite(X, obs_names, var_names, source=source, what="raw counts")
    neg = _first_bad(X, lambda v: v < 0)
    if neg is not None:
        r, c, v = neg
        raise BadInputError(f"{source}: negative value {v:g} (cell {obs_names[r]!r}, gene "
                            f"{var_names[c]!r}); raw counts are required",
                            hint="give the unnormalised UMI/read counts")
    frac = _first_bad(X, lambda v: np.mod(v, 1) != 0)
    if frac is not None:
        r, c, v = frac
        raise BadInputError(f"{source}: non-integer value {v:g} (cell {obs_names[r]!r}, gene "
                            f"{var_names[c]!r}); raw counts are required, this looks "
                            "normalised or log-transformed",
                            hint="give the raw counts (a 'counts' layer or .raw works too)")


def counts_matrix(adata: ad.AnnData, layer: str = "auto"):
    """The raw counts of ``adata`` (cells × its genes) and where they came from.

    ``layer='auto'`` takes ``X`` if it holds counts, else a ``counts`` layer, else ``.raw.X``
    when ``.raw`` has the same genes and holds counts. A named layer (or ``X``) must hold
    counts; anything else is a one-line error."""
    if layer == "auto":
        if is_counts(adata.X):
            return adata.X, "X"
        if "counts" in adata.layers and is_counts(adata.layers["counts"]):
            return adata.layers["counts"], "layers['counts']"
        if adata.raw is not None and list(adata.raw.var_names) == list(adata.var_names) \
                and is_counts(adata.raw.X):
            return adata.raw.X, "raw.X"
        check_counts(adata.X, adata.obs_names, adata.var_names, source="X")
    if layer == "X":
        X = adata.X
    elif layer == "raw":
        if adata.raw is None:
            raise BadInputError("the AnnData has no .raw", hint="choose another counts layer")
        X = adata.raw.X
        check_counts(X, adata.obs_names, adata.raw.var_names, source="raw.X")
        return X, "raw.X"
    elif layer in adata.layers:
        X = adata.layers[layer]
    else:
        layers = ", ".join(["X", "raw", *adata.layers.keys()])
        raise BadInputError(f"no layer {layer!r} in the AnnData", hint=f"available: {layers}")
    check_counts(X, adata.obs_names, adata.var_names,
                 source="X" if layer == "X" else f"layers[{layer!r}]")
    return X, "X" if layer == "X" else f"layers[{layer!r}]"


def check_no_empty_cells(X, obs_names, *, source: str = "counts") -> None:
    """Cells without a single count cannot be normalised or embedded: name them."""
    totals = np.asarray(X.sum(axis=1)).ravel()
    empty = np.flatnonzero(totals <= 0)
    if len(empty):
        raise BadInputError(f"{source}: {len(empty)} cell(s) have no counts, e.g. "
                            f"{obs_names[empty[0]]!r}",
                            hint="filter them first (pmt expr run does, with --min-genes)")


def recover_counts(X, library_sizes, *, target_sum: float = 1e4, tolerance: float = 0.01):
    """Undo ``log1p(counts / library * target_sum)`` when each cell's library size is known
    (e.g. ``obs['n_counts']``, as in scanpy's pbmc68k_reduced ``.raw``): the counts, rounded,
    as a sparse float32 matrix. A value further from an integer than ``tolerance`` times
    max(1, value) (float32 storage blurs large counts a little) means the data were not
    normalised that way: a one-line error."""
    import scipy.sparse as sp

    X = sp.csr_matrix(X, dtype=np.float64)
    lib = np.asarray(library_sizes, dtype=np.float64).ravel()
    if lib.shape[0] != X.shape[0] or (lib <= 0).any():
        raise BadInputError("library sizes must be positive, one per cell")
    X.data = np.expm1(X.data) * np.repeat(lib / target_sum, np.diff(X.indptr))
    err = np.abs(X.data - np.round(X.data)) / np.maximum(1.0, X.data)
    if err.size and err.max() > tolerance:
        raise BadInputError(f"values do not invert to integer counts (largest relative error "
                            f"{err.max():.2f}); was the matrix log1p(counts per "
                            f"{target_sum:g})?")
    X.data = np.round(X.data)
    X.eliminate_zeros()
    return X.astype(np.float32)


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike, *, compression: str | None = "gzip"
               ) -> None:
    """Write ``adata`` to ``path`` atomically (a temporary sibling, then a rename)."""
    from pmtoolkit.core.io import atomic_path

    # anndata writes to a path (h5py reads back what it writes), not to a stream
    with atomic_path(path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp, compression=compression)


def dense_tensor(X) -> torch.Tensor:
    """Rows of a (sparse) matrix as a dense float32 torch tensor."""
    import torch

    arr = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def align_genes(X, var_names, genes: list[str], what: str, max_missing: float = 0.0):
    """The columns of ``X`` in the order of ``genes``; absent genes are zero columns when
    they are at most ``max_missing`` of the model's genes, else a one-line error."""
    import pandas as pd
    import scipy.sparse as sp

    index = pd.Index(var_names)
    pos = index.get_indexer(genes)
    missing = [g for g, p in zip(genes, pos) if p < 0]
    if missing:
        frac = len(missing) / len(genes)
        if frac > max_missing:
            raise BadInputError(f"{len(missing)} of the {what} model's {len(genes)} genes are "
                                f"missing from the data, e.g. {', '.join(missing[:5])}",
                                hint="use the same gene names (symbols vs Ensembl ids) as the "
                                     "reference" + (f"; at most {max_missing:.0%} may be "
                                                    "missing" if max_missing else ""))
        log.warning("%d of %d model genes missing from the data (%.1f%%); they count as zero",
                    len(missing), len(genes), 100 * frac)
    X = sp.csr_matrix(X) if not sp.issparse(X) else X.tocsr()
    X = sp.hstack([X, sp.csr_matrix((X.shape[0], 1), dtype=X.dtype)], format="csr")
    pos = np.where(pos < 0, X.shape[1] - 1, pos)
    return X[:, pos]
