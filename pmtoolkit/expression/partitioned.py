"""A trained model applied to the cells of an ``.h5ad`` in partitions, with flat memory:
``pmt expr annotate`` (a classifier) and ``pmt expr embed`` (a VAE), in this process or on
Dask (:mod:`pmtoolkit.core.distributed`).

A partition is a range of cell rows. The client reads only the file's layout (the number of
cells, the genes) and ships ``(start, stop)``, never the data: each worker opens the ``.h5ad``
itself (a path on a filesystem the workers share, as the FASTA of ``pmt variants score``),
reads its rows of ``X`` (a CSR or dense matrix; a ``counts`` layer or ``.raw`` as well when
``X`` does not hold counts), applies the model and returns the new obs columns and obsm array
of those rows. The output is the input file copied byte for byte to a temporary file beside
``OUTPUT``, the new elements written into it partition by partition in anndata's encoding,
then renamed into place: neither client nor worker ever holds all of ``X``. What grows with
the number of cells is small: the cell names, read once by the merge (a duplicated name is
made unique, as :func:`pmtoolkit.expression.io.read` does).

A partition is whole model batches (4096 cells for the classifier, 1024 for the VAE), so a
single-process run (``Cluster()``, which runs the same partitions here) and a run on Dask give
the same values to the last digit at the same torch thread count. Training a model is not
partitioned: a reference ``.h5ad`` (or the input, for ``embed`` without ``--model``) is read
whole in the client, the model saved beside the output, and workers load it from there.

Other inputs (10x folders and ``.h5``, CSV/TSV, loom) and ``.h5ad`` files written by anndata
before 0.7 are read whole, as before: :func:`chunked_reason` says why a file is not read in
chunks.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError, MissingInputError, PmtError, first_line

log = logging.getLogger(__name__)

#: cells a partition holds by default: a few model batches; its sparse rows, made dense a
#: batch at a time, stay well under a gigabyte for a whole-transcriptome 10x matrix
PARTITION_CELLS = 8192
#: cells per forward pass of each model (their predict functions' own batch sizes)
BATCH_CELLS = {"annotate": 4096, "embed": 1024}
_ARRAY = {"encoding-type": "array", "encoding-version": "0.2.0"}


def _elem_io():
    """anndata's element reader and writers (``anndata.io`` from 0.11, ``experimental``
    before)."""
    try:
        from anndata.io import read_elem, sparse_dataset, write_elem
    except ImportError:  # anndata 0.10
        from anndata.experimental import read_elem, sparse_dataset, write_elem
    return read_elem, sparse_dataset, write_elem


# --------------------------------------------------------------------------- the input file


def chunked_reason(path: str | os.PathLike) -> str | None:
    """None when ``path`` is an ``.h5ad`` that can be read in cell chunks, else why not (the
    caller then reads it whole, or stops a run on Dask with that reason)."""
    import h5py

    p = Path(path)
    if p.is_dir() or not p.name.lower().endswith(".h5ad"):
        return f"'{p}' is not an .h5ad file"
    f = _open(p)
    with f:
        obs = f.get("obs")
        if not isinstance(obs, h5py.Group) or _attr(obs, "encoding-type") != "dataframe":
            return f"'{p}' was written by anndata before 0.7 (obs is not a dataframe group)"
    return None


def _open(p: Path):
    """``p`` opened read-only by h5py; a missing, truncated or non-HDF5 file is a one-line
    error naming it."""
    import h5py

    if not p.exists():
        raise MissingInputError(f"expression input '{p}' does not exist")
    try:
        return h5py.File(p, "r")
    except Exception as exc:  # noqa: BLE001 - h5py's errors for a damaged file vary
        raise BadInputError(f"cannot read '{p}' as an h5ad file: {first_line(exc, 300)}",
                            hint="is it truncated, corrupt or not HDF5? check the download "
                                 "or write the file again") from None


def _attr(obj, name: str, default: Any = "") -> Any:
    value = obj.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def _strings(dataset, start: int | None = None, stop: int | None = None) -> np.ndarray:
    """A string dataset's values as an object array of str."""
    values = dataset.asstr()[start:stop] if dataset.dtype.kind in "OS" else dataset[start:stop]
    return np.asarray(values, dtype=object).astype(str).astype(object)


@dataclass(frozen=True)
class Layout:
    """What the client and each worker know of an ``.h5ad`` without reading its matrix: the
    number of cells, the genes (made unique on request), and where counts may be."""

    n_obs: int
    var_names: list[str]
    obs_keys: list[str]
    layers: list[str]
    raw_var_names: list[str] | None
    x_format: str  # csr_matrix, csc_matrix or array

    @classmethod
    def of(cls, path: str | os.PathLike, *, make_unique: bool = False) -> Layout:
        """The layout of ``path``; an empty matrix or duplicated gene names (without
        ``make_unique``) is a one-line error, as for :func:`pmtoolkit.expression.io.read`."""
        import h5py

        from pmtoolkit.expression.io import _check_h5ad_x

        p = Path(path)
        f = _open(p)
        try:
            with f:
                if "X" not in f:
                    raise BadInputError(f"'{p}' has no X (an AnnData of obs and var only)")
                _check_h5ad_x(f, p)
                X = f["X"]
                shape = tuple(X.shape) if isinstance(X, h5py.Dataset) else \
                    tuple(int(v) for v in np.ravel(X.attrs.get("shape")))
                var = _names(f["var"])
                if len(var) != shape[1] or _n_rows(f["obs"]) != shape[0]:
                    raise BadInputError(f"'{p}': X is {shape[0]} x {shape[1]} but obs has "
                                        f"{_n_rows(f['obs'])} cells and var {len(var)} genes",
                                        hint="the file is damaged; write it again")
                raw = _names(f["raw/var"]) if "raw/var" in f and "raw/X" in f else None
                layout = cls(shape[0], _unique_genes(var, make_unique, p),
                             [str(k) for k in f["obs"]],
                             [str(k) for k in f["layers"]] if "layers" in f else [],
                             raw, _attr(X, "encoding-type") or "array")
        except PmtError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged file's errors vary
            raise BadInputError(f"cannot read '{p}' as an h5ad file: {first_line(exc, 300)}",
                                hint="is it truncated or corrupt? write the file again") \
                from None
        if layout.n_obs == 0 or not layout.var_names:
            raise BadInputError(f"{p}: empty matrix ({layout.n_obs} cells × "
                                f"{len(layout.var_names)} genes)")
        if layout.x_format == "csc_matrix":
            log.warning("X of '%s' is stored by gene (CSC): each partition reads all of it; "
                        "write it by cell (CSR) for flat memory", p)
        return layout


def _n_rows(df_group) -> int:
    return int(df_group[_attr(df_group, "_index", "_index")].shape[0])


def _names(df_group) -> list[str]:
    """The index of a dataframe group (obs or var) as strings."""
    return list(_strings(df_group[_attr(df_group, "_index", "_index")]))


def _unique_genes(var: list[str], make_unique: bool, p: Path) -> list[str]:
    import pandas as pd

    index = pd.Index(var)
    if not index.has_duplicates:
        return var
    dup = index[index.duplicated()]
    if not make_unique:
        shown = ", ".join(sorted(set(map(str, dup)))[:5])
        raise BadInputError(f"{p}: {len(dup)} duplicated gene name(s), e.g. {shown}",
                            hint="pass --make-unique to rename them GENE-1, GENE-2 "
                                 "(scanpy's var_names_make_unique), or use gene ids")
    from anndata.utils import make_index_unique

    log.warning("%s: %d duplicated gene name(s) renamed with -1, -2, ...", p, len(dup))
    return list(make_index_unique(index).astype(str))


def _matrix_rows(elem, start: int, stop: int):
    """Rows ``start:stop`` of a matrix element (a CSR/CSC group or a dense dataset)."""
    import h5py

    if isinstance(elem, h5py.Dataset):
        return elem[start:stop]
    _, sparse_dataset, _ = _elem_io()
    return sparse_dataset(elem)[start:stop]


def _obs_column(obs, key: str, start: int, stop: int):
    """Rows ``start:stop`` of one obs column (categorical, strings or numbers)."""
    import h5py
    import pandas as pd

    col = obs[key]
    if isinstance(col, h5py.Group) and _attr(col, "encoding-type") == "categorical":
        return pd.Categorical.from_codes(col["codes"][start:stop],
                                         categories=_strings(col["categories"]))
    if isinstance(col, h5py.Dataset):
        return _strings(col, start, stop) if col.dtype.kind in "OS" else col[start:stop]
    read_elem, _, _ = _elem_io()  # a nullable array or another encoding: small, read whole
    return np.asarray(read_elem(col))[start:stop]


def read_cells(path: str | os.PathLike, start: int, stop: int, layout: Layout, *,
               layer: str = "auto", obs_keys: tuple[str, ...] = ()):
    """Cells ``start:stop`` of an ``.h5ad`` as an in-memory AnnData: their names, the
    ``obs_keys`` columns and the counts a model's ``layer`` may take (``auto``: ``X``, and
    when ``X`` does not hold counts also a ``counts`` layer and ``.raw``)."""
    import anndata as ad
    import pandas as pd

    from pmtoolkit.expression.io import is_counts

    p = Path(path)
    f = _open(p)
    try:
        with f:
            obs = pd.DataFrame(index=pd.Index(
                _strings(f["obs"][_attr(f["obs"], "_index", "_index")], start, stop)))
            for key in obs_keys:
                obs[key] = _obs_column(f["obs"], key, start, stop)
            var = pd.DataFrame(index=pd.Index(layout.var_names))
            X = _matrix_rows(f["X"], start, stop) if layer in ("auto", "X") else None
            adata = ad.AnnData(X=X, obs=obs, var=var) if X is not None else \
                ad.AnnData(obs=obs, var=var)
            # auto: X when it holds counts (both models take it then), else what they try next
            more = layer != "auto" or not is_counts(X)
            named = "counts" if layer == "auto" else None if layer in ("X", "raw") else layer
            if more and named in layout.layers:
                adata.layers[named] = _matrix_rows(f["layers"][named], start, stop)
            if more and layer in ("auto", "raw") and layout.raw_var_names is not None:
                adata.raw = ad.AnnData(X=_matrix_rows(f["raw/X"], start, stop), obs=obs,
                                       var=pd.DataFrame(index=pd.Index(layout.raw_var_names)))
    except PmtError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated stretch of the file
        raise BadInputError(f"cannot read cells {start + 1:,}-{stop:,} of '{p}': "
                            f"{first_line(exc, 300)}",
                            hint="is it truncated or corrupt? write the file again") from None
    return adata


# --------------------------------------------------------------------------- the job


@dataclass
class CellJob:
    """``pmt expr annotate`` or ``embed`` (``task``) as a
    :class:`~pmtoolkit.core.distributed.Job`: one shard (the ``.h5ad``), partitions of
    ``per_partition`` cells, the model as a :class:`~pmtoolkit.core.distributed.WorkerModel`.
    ``predictions``: also a table of each cell's label, confidence and probabilities
    (annotate)."""

    task: str
    input: str
    model: Any  # WorkerModel
    key_added: str
    per_partition: int
    layer: str = "auto"
    make_unique: bool = False
    predictions: str | None = None
    layout: Layout = field(init=False)
    name: str = field(init=False)
    shards: list[str] = field(init=False)

    def __post_init__(self):
        if self.task not in BATCH_CELLS:
            raise ValueError(f"unknown task {self.task!r}")
        if self.per_partition % BATCH_CELLS[self.task]:
            raise ValueError("a partition is whole model batches")
        self.name = f"expr {self.task}"
        self.shards = [str(self.input)]
        self.layout = Layout.of(self.input, make_unique=self.make_unique)
        self._check(self.model.get())

    def _check(self, model) -> None:
        """What every partition would refuse, found here once: genes the model needs that
        the input lacks, its batch column."""
        import scipy.sparse as sp

        from pmtoolkit.expression.io import align_genes

        empty = sp.csr_matrix((0, len(self.layout.var_names)), dtype=np.float32)
        what, most = ("classifier", model.config.max_missing) if self.task == "annotate" \
            else ("VAE", 0.0)
        align_genes(empty, self.layout.var_names, model.genes, what, most)
        where = ["X", "raw", *self.layout.layers]
        if self.layer != "auto" and self.layer not in where or \
                self.layer == "raw" and self.layout.raw_var_names is None:
            raise BadInputError(f"no layer {self.layer!r} in '{self.input}'",
                                hint="available: " + ", ".join(
                                    w for w in where if w != "raw" or self.layout.raw_var_names
                                    is not None))
        key = getattr(model, "batch_key", None)
        if key and key not in self.layout.obs_keys:
            raise BadInputError(f"no obs column {key!r} (the model's batch key) in "
                                f"'{self.input}'")

    def settings(self) -> dict[str, Any]:
        return {"task": self.task, "model": list(self.model.args),
                "model-version": self.model.version, "key-added": self.key_added,
                "layer": self.layer, "make-unique": self.make_unique,
                "partition-size": self.per_partition, "predictions": self.predictions}

    def read(self, shard: str):
        st = Path(shard).stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"  # a rewritten input is computed again
        for start in range(0, self.layout.n_obs, self.per_partition):
            yield {"start": start, "stop": min(start + self.per_partition, self.layout.n_obs),
                   "input": stamp}

    def run(self, payload) -> Any:
        import pandas as pd

        from pmtoolkit.core.distributed import PartResult

        start, stop = payload["start"], payload["stop"]
        model = self.model.get()
        key = getattr(model, "batch_key", None) if self.task == "embed" else None
        adata = read_cells(self.input, start, stop, self.layout, layer=self.layer,
                           obs_keys=(key,) if key else ())
        try:
            if self.task == "annotate":
                model.annotate(adata, key_added=self.key_added)
                probs = adata.obsm[f"{self.key_added}_probabilities"].to_numpy()
                table = pd.DataFrame(probs, columns=[f"p{i}" for i in range(probs.shape[1])])
                table.insert(0, "confidence", adata.obs[f"{self.key_added}_confidence"]
                             .to_numpy())
                table.insert(0, "code", adata.obs[self.key_added].cat.codes.to_numpy())
                table.insert(0, "cell", adata.obs_names.to_numpy(dtype=object))
            else:
                z = model.latent(adata, layer=self.layer)
                table = pd.DataFrame(z, columns=[f"z{i}" for i in range(z.shape[1])])
        except BadInputError as exc:
            raise BadInputError(f"cells {start + 1:,}-{stop:,} of '{self.input}': "
                                f"{exc.message}", hint=exc.hint) from None
        return PartResult([table], counts={"cells": stop - start})

    def merge(self, parts, output) -> dict[str, Any]:
        """The input with the new elements, written as the module docstring says."""
        import contextlib

        from pmtoolkit.core.io import TableWriter, atomic_path

        model = self.model.get()
        n = 0
        summary: dict[str, Any] = {}
        confidence = []  # 4 bytes a cell, for the median the command reports
        with (TableWriter(self.predictions) if self.predictions
              else contextlib.nullcontext()) as table_out, \
                atomic_path(output, suffix=".h5ad") as tmp:
            shutil.copyfile(self.input, tmp)
            with _Output(tmp, self.layout) as out:
                if self.task == "annotate":
                    writer = out.annotation(self.key_added, list(model.classes))
                else:
                    writer = out.embedding(self.key_added, model.config.n_latent)
                for part in parts:
                    table = part.tables[0]
                    writer(n, table)
                    if table_out is not None:
                        table_out.write(_prediction_rows(table, model.classes))
                    n += len(table)
                    if self.task == "annotate":
                        confidence.append(table["confidence"].to_numpy())
                        for code, count in zip(*np.unique(table["code"], return_counts=True)):
                            label = model.classes[code]
                            summary[label] = summary.get(label, 0) + int(count)
            if n != self.layout.n_obs:
                raise RuntimeError(f"{n} cells merged of {self.layout.n_obs}")
        out = {"cells": n, "labels": summary}
        if confidence:
            values = np.concatenate(confidence)
            out.update(median_confidence=float(np.median(values)),
                       below_half=int((values < 0.5).sum()))
        return out


def _prediction_rows(table, classes: list[str]):
    """A partition's rows of ``--predictions``: cell, label, confidence, one column per
    class (as the in-memory annotate writes them)."""
    import pandas as pd

    probs = table[[f"p{i}" for i in range(len(classes))]].to_numpy()
    out = pd.DataFrame(probs, columns=classes)
    out.insert(0, "confidence", table["confidence"].to_numpy())
    out.insert(0, "label", np.asarray(classes, dtype=object)[table["code"].to_numpy()])
    out.insert(0, "cell", table["cell"].to_numpy())
    return out


class _Output:
    """The copy of the input ``.h5ad`` the new elements are written into, a partition at a
    time, in anndata's on-disk encoding (what ``AnnData.write_h5ad`` writes for a categorical
    obs column, a float obs column, a DataFrame and an array in obsm)."""

    def __init__(self, path: Path, layout: Layout):
        self.path, self.layout = path, layout

    def __enter__(self):
        import h5py

        self.f = h5py.File(self.path, "r+")
        self._unique_names()
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()

    def _unique_names(self) -> None:
        """Duplicated cell names made unique (with a warning), and genes as the layout has
        them, as :func:`pmtoolkit.expression.io.check_names` does in memory."""
        import pandas as pd
        from anndata.utils import make_index_unique

        _, _, write_elem = _elem_io()
        obs = self.f["obs"]
        names = pd.Index(_names(obs))
        if names.has_duplicates:
            log.warning("%d duplicated cell name(s) renamed with -1, -2, ...",
                        int(names.duplicated().sum()))
            key = _attr(obs, "_index", "_index")
            del obs[key]
            write_elem(obs, key, np.asarray(make_index_unique(names).astype(str), dtype=object))
        if _names(self.f["var"]) != self.layout.var_names:
            key = _attr(self.f["var"], "_index", "_index")
            del self.f["var"][key]
            write_elem(self.f["var"], key, np.asarray(self.layout.var_names, dtype=object))

    def _array(self, group, name: str, shape: tuple[int, ...], dtype):
        ds = group.create_dataset(name, shape=shape, dtype=dtype, compression="gzip",
                                  chunks=(min(shape[0], 16384), *shape[1:]) if shape[0]
                                  else None)
        ds.attrs.update(_ARRAY)
        return ds

    def _obs_column(self, name: str):
        """Where a new obs column goes: an existing one of that name is replaced in place
        (in the column order), else it is added last."""
        obs = self.f["obs"]
        order = [str(c) for c in np.ravel(obs.attrs.get("column-order", []))]
        if name in obs:
            del obs[name]
        if name not in order:
            order.append(name)
        obs.attrs["column-order"] = np.asarray(order, dtype=object)
        return obs

    def _obsm(self, name: str):
        if "obsm" not in self.f:
            self.f.create_group("obsm").attrs.update(
                {"encoding-type": "dict", "encoding-version": "0.1.0"})
        obsm = self.f["obsm"]
        if name in obsm:
            del obsm[name]
        return obsm

    def annotation(self, key: str, classes: list[str]):
        """obs ``key`` (categorical), ``key_confidence`` and obsm ``key_probabilities`` (a
        DataFrame of one column per class); returns the writer of a partition's rows."""
        _, _, write_elem = _elem_io()
        n = self.layout.n_obs
        obs = self._obs_column(key)
        labels = obs.create_group(key)
        labels.attrs.update({"encoding-type": "categorical", "encoding-version": "0.2.0",
                             "ordered": False})
        write_elem(labels, "categories", np.asarray(classes, dtype=object))
        code_type = np.int8 if len(classes) < 128 else np.int16 if len(classes) < 2**15 \
            else np.int32
        codes = self._array(labels, "codes", (n,), code_type)
        confidence = self._array(self._obs_column(f"{key}_confidence"), f"{key}_confidence",
                                 (n,), np.float32)
        probs = self._obsm(f"{key}_probabilities").create_group(f"{key}_probabilities")
        probs.attrs.update({"_index": "_index", "column-order": np.asarray(classes, dtype=object),
                            "encoding-type": "dataframe", "encoding-version": "0.2.0"})
        self.f.copy(self.f["obs"][_attr(self.f["obs"], "_index", "_index")], probs, "_index")
        columns = [self._array(probs, c, (n,), np.float32) for c in classes]

        def write(start: int, table) -> None:
            stop = start + len(table)
            codes[start:stop] = table["code"].to_numpy()
            confidence[start:stop] = table["confidence"].to_numpy()
            for i, ds in enumerate(columns):
                ds[start:stop] = table[f"p{i}"].to_numpy()

        return write

    def embedding(self, key: str, n_latent: int):
        """obsm ``key``, cells × ``n_latent``; returns the writer of a partition's rows."""
        ds = self._array(self._obsm(key), key, (self.layout.n_obs, n_latent), np.float32)

        def write(start: int, table) -> None:
            ds[start:start + len(table)] = table.to_numpy()

        return write


# --------------------------------------------------------------------------- entry points


def trained_model(load, model, path: str | os.PathLike):
    """``model``, just trained, saved at ``path`` for the workers to load with ``load``: a
    :class:`~pmtoolkit.core.distributed.WorkerModel` named by the file's content, so that a
    resumed run whose training gives the same weights again resumes its partitions too."""
    from pmtoolkit.core.distributed import WorkerModel
    from pmtoolkit.core.io import sha256_file

    model.save(path)
    return WorkerModel(load, (os.path.abspath(path),), sha256_file(path))


def partition_cells(task: str, cluster) -> int:
    """Cells per partition: ``cluster.partition_size`` (whole model batches) or
    :data:`PARTITION_CELLS`."""
    return BATCH_CELLS[task] * cluster.chunks_per_partition(BATCH_CELLS[task], PARTITION_CELLS)


def check_chunked(path: str | os.PathLike, cluster) -> bool:
    """Whether ``path`` is read in cell chunks; a run on Dask (``cluster``) of a file that
    cannot be is a one-line error saying why."""
    reason = chunked_reason(path)
    if reason and cluster is not None and cluster.distributed:
        raise BadInputError(f"{reason}; a run on Dask reads .h5ad files in cell chunks",
                            hint="convert it with anndata (adata.write_h5ad), or run without "
                                 "--workers/--scheduler")
    return reason is None


def apply_file(task: str, input: str | os.PathLike, output: str | os.PathLike, model, *,
               cluster=None, key_added: str | None = None, layer: str = "auto",
               make_unique: bool = False, predictions: str | os.PathLike | None = None
               ) -> dict[str, Any]:
    """Apply ``model`` (a :class:`~pmtoolkit.core.distributed.WorkerModel` of a classifier
    for ``task='annotate'``, of a VAE for ``'embed'``) to the cells of the ``.h5ad``
    ``input`` and write ``output`` (see the module docstring) where ``cluster`` says (None:
    this process). Returns the summary: cells, labels (annotate: cells per label),
    partitions."""
    from pmtoolkit.core.distributed import Cluster, named_model, run_job

    cluster = cluster or Cluster()
    if not check_chunked(input, cluster):
        raise BadInputError(f"{chunked_reason(input)}; a partitioned run reads .h5ad files "
                            "in cell chunks")
    # workers open the file themselves, maybe in another working directory
    job = CellJob(task, os.path.abspath(input), named_model(model),
                  key_added or ("pmt_label" if task == "annotate" else "X_pmt_vae"),
                  partition_cells(task, cluster), layer=layer, make_unique=make_unique,
                  predictions=str(predictions) if predictions else None)
    return run_job(job, output, cluster)
