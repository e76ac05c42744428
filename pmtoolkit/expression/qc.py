"""Quality control of single cells, on the AnnData contract (adata first, in place, results
under documented keys, ``copy=True`` for a new object).

Keys written:
- ``layers['counts']``: the raw counts (kept through normalisation);
- ``var['mito']``, ``var['ribo']``: gene flags; ``obs['n_genes_by_counts']``,
  ``obs['total_counts']``, ``obs['pct_counts_mito']``, ``obs['pct_counts_ribo']``;
- ``obs['doublet_score']``, ``obs['predicted_doublet']`` (scrublet);
- ``uns['pmt_qc']``: where the counts came from, the doublet count, and ``filters`` (a table:
  each threshold and how many cells or genes it removed).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.expression.io import counts_matrix

if TYPE_CHECKING:
    import anndata as ad

log = logging.getLogger(__name__)


def store_counts(adata: ad.AnnData, counts_layer: str = "auto", *, copy: bool = False
                 ) -> ad.AnnData | None:
    """Find the raw counts (see :func:`~pmtoolkit.expression.io.counts_matrix`), check them,
    and put them in ``layers['counts']`` and ``X`` (float32), ready for QC."""
    import scipy.sparse as sp

    adata = adata.copy() if copy else adata
    X, where = counts_matrix(adata, counts_layer)
    X = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else \
        np.asarray(X, dtype=np.float32)
    adata.layers["counts"] = X
    adata.X = X.copy()
    adata.uns.setdefault("pmt_qc", {})["counts_from"] = where
    log.info("raw counts from %s: %d cells × %d genes", where, adata.n_obs, adata.n_vars)
    return adata if copy else None


def _flag(names: Sequence[str], prefixes: Sequence[str]) -> np.ndarray:
    upper = np.char.upper(np.asarray(names, dtype=str))
    flag = np.zeros(len(upper), dtype=bool)
    for p in prefixes:
        if p:
            flag |= np.char.startswith(upper, p.upper())
    return flag


def qc_metrics(adata: ad.AnnData, *, mito_prefix: str = "MT-",
               ribo_prefixes: Sequence[str] = ("RPS", "RPL"), layer: str | None = "counts",
               copy: bool = False) -> ad.AnnData | None:
    """Per-cell detected genes, total counts and mitochondrial / ribosomal percentages, and
    per-gene detection (scanpy's ``calculate_qc_metrics`` with ``mito`` and ``ribo`` flags)."""
    import scanpy as sc

    adata = adata.copy() if copy else adata
    if layer is not None and layer not in adata.layers:
        layer = None
    adata.var["mito"] = _flag(adata.var_names, [mito_prefix])
    adata.var["ribo"] = _flag(adata.var_names, ribo_prefixes)
    if not adata.var["mito"].any():
        log.warning("no gene starts with %r: pct_counts_mito is 0 for every cell "
                    "(set --mito-prefix, e.g. mt- for mouse)", mito_prefix)
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mito", "ribo"], percent_top=None, log1p=False,
                               layer=layer, inplace=True)
    return adata if copy else None


def filter_cells_genes(adata: ad.AnnData, *, min_genes: int = 200, max_genes: int | None = None,
                       min_counts: int | None = None, max_pct_mito: float | None = 20.0,
                       min_cells: int = 3, copy: bool = False) -> ad.AnnData | None:
    """Drop cells outside the thresholds, then genes detected in fewer than ``min_cells``
    cells; records each threshold and what it removed in ``uns['pmt_qc']['filters']``.
    Needs :func:`qc_metrics` first."""
    if "n_genes_by_counts" not in adata.obs:
        raise BadInputError("QC metrics missing", hint="run qc_metrics(adata) first")
    adata = adata.copy() if copy else adata
    obs = adata.obs
    rules = [("min_genes", min_genes, obs["n_genes_by_counts"] < min_genes if min_genes else None),
             ("max_genes", max_genes,
              obs["n_genes_by_counts"] > max_genes if max_genes is not None else None),
             ("min_counts", min_counts,
              obs["total_counts"] < min_counts if min_counts is not None else None),
             ("max_pct_mito", max_pct_mito,
              obs["pct_counts_mito"] > max_pct_mito if max_pct_mito is not None else None)]
    drop = np.zeros(adata.n_obs, dtype=bool)
    record = []
    for name, value, mask in rules:
        if mask is None:
            continue
        mask = np.asarray(mask)
        record.append({"filter": name, "threshold": value,
                       "cells_removed": int((mask & ~drop).sum())})
        drop |= mask
    n_before = adata.n_obs
    if drop.all():
        shown = ", ".join(f"{r['filter']} {r['threshold']} removes {r['cells_removed']}"
                          for r in record)
        raise BadInputError(f"no cells pass QC ({n_before} cells: {shown})",
                            hint="loosen --min-genes / --max-pct-mito, or check the input "
                                 "holds raw counts of whole transcriptomes")
    if drop.any():
        adata._inplace_subset_obs(~drop)
    detected = np.asarray(adata.layers.get("counts", adata.X)
                          .__gt__(0).sum(axis=0)).ravel()
    keep_genes = detected >= min_cells
    record.append({"filter": "min_cells (genes)", "threshold": min_cells,
                   "genes_removed": int((~keep_genes).sum())})
    if not keep_genes.any():
        raise BadInputError(f"no gene is detected in {min_cells} or more of the {adata.n_obs} "
                            "cells left", hint="lower --min-cells")
    if not keep_genes.all():
        adata._inplace_subset_var(keep_genes)
    import pandas as pd

    table = pd.DataFrame(record)
    table["threshold"] = table["threshold"].astype(str)
    adata.uns.setdefault("pmt_qc", {})["filters"] = table.fillna(0).astype(
        {c: "int64" for c in ("cells_removed", "genes_removed") if c in table})
    log.info("QC: %d of %d cells kept, %d genes kept", adata.n_obs, n_before, adata.n_vars)
    return adata if copy else None


def doublet_scores(adata: ad.AnnData, *, batch_key: str | None = None, remove: bool = False,
                   seed: int = 0, copy: bool = False) -> ad.AnnData | None:
    """Scrublet doublet scores on the raw counts (scanpy's implementation):
    ``obs['doublet_score']`` and ``obs['predicted_doublet']``; ``remove`` drops the
    predicted doublets. Small inputs (< 100 cells or genes), and data scrublet's own gene filter
    leaves too little of, are skipped with a warning (an error with ``remove``): scrublet's
    simulated doublets need a population to be compared with."""
    import scanpy as sc

    adata = adata.copy() if copy else adata
    if adata.n_obs < 100 or adata.n_vars < 100:
        log.warning("doublet scores skipped: %d cells x %d genes are too few for scrublet "
                    "(it needs 100 of each)", adata.n_obs, adata.n_vars)
        return adata if copy else None
    counts = adata.layers.get("counts", adata.X)
    tmp = sc.AnnData(X=counts.copy(), obs=adata.obs[[batch_key]] if batch_key else None)
    tmp.obs_names = adata.obs_names
    n_pcs = int(min(30, tmp.n_obs - 1, tmp.n_vars - 1))
    try:
        sc.pp.scrublet(tmp, batch_key=batch_key, n_prin_comps=n_pcs, random_state=seed,
                       verbose=False)
    except ValueError as exc:
        # scrublet's PCA runs on the genes its own variability filter keeps, which on a small
        # or flat panel are fewer than its components (or none): it cannot score these data
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if remove:
            raise BadInputError(f"scrublet cannot score doublets in these {adata.n_obs} cells "
                                f"x {adata.n_vars} genes ({why})", hint="run without "
                                "--remove-doublets, or with --no-doublets") from None
        log.warning("doublet scores skipped: scrublet cannot score these data (%s)", why)
        adata.uns.setdefault("pmt_qc", {})["doublets"] = {"skipped": why}
        return adata if copy else None
    adata.obs["doublet_score"] = tmp.obs["doublet_score"].to_numpy()
    adata.obs["predicted_doublet"] = tmp.obs["predicted_doublet"].to_numpy().astype(bool)
    n = int(adata.obs["predicted_doublet"].sum())
    adata.uns.setdefault("pmt_qc", {})["doublets"] = {"predicted": n, "removed": remove}
    if remove and n:
        adata._inplace_subset_obs(~adata.obs["predicted_doublet"].to_numpy())
    log.info("doublets: %d predicted%s", n, ", removed" if remove and n else "")
    return adata if copy else None


#: the fewest genes the highly-variable-gene step (each flavour's trend fit) works on
MIN_GENES = 20


def highly_variable_genes(adata: ad.AnnData, flavor: str, n_top: int, *,
                          layer: str | None = None, batch_key: str | None = None,
                          hint: str = "use another --hvg-flavor") -> None:
    """scanpy's highly variable genes (``var['highly_variable']``), on data they can work on.

    Each flavour fits a trend of dispersion on mean; seurat_v3's is a loess (scikit-misc)
    that crashes the interpreter when a batch has only a handful of genes that vary (one cell
    in a batch, identical cells). So the genes that vary are counted first, per batch for
    seurat_v3, and too few are a one-line error; a trend the library still cannot fit is one
    too, naming the flavour."""
    import scanpy as sc

    X = adata.layers[layer] if layer else adata.X
    need = MIN_GENES if flavor == "seurat_v3" else 2
    groups = [("", np.ones(adata.n_obs, dtype=bool))]
    if batch_key and flavor == "seurat_v3":
        values = adata.obs[batch_key].astype(str).to_numpy()
        groups = [(f" in batch {b!r}", values == b) for b in sorted(set(values))]
    for where, rows in groups:
        n = _varying_genes(X[rows] if where else X)
        if n < need:
            raise BadInputError(f"{n} gene(s) vary among the {int(rows.sum())} cell(s){where}: "
                                f"{flavor} highly variable genes need {need} or more",
                                hint="check that the cells are not copies of one profile"
                                     + ("" if not where else ", and that every batch holds "
                                        "several cells"))
    try:
        sc.pp.highly_variable_genes(adata, flavor=flavor, n_top_genes=n_top, layer=layer,
                                    batch_key=batch_key,
                                    **({"check_values": False} if flavor == "seurat_v3" else {}))
    except (ValueError, IndexError) as exc:  # a trend the library cannot fit to these data
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(
            exc.args[0], bytes) else str(exc)
        detail = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
        raise BadInputError(f"{flavor} highly variable genes cannot be fitted to these "
                            f"{adata.n_obs} cells x {adata.n_vars} genes ({detail})",
                            hint=hint) from None


def _varying_genes(X) -> int:
    """How many columns of ``X`` hold more than one value (exactly: max above min)."""
    import scipy.sparse as sp

    if X.shape[0] == 0:
        return 0
    if sp.issparse(X):
        X = sp.csc_matrix(X)
        hi = np.asarray(X.max(axis=0).todense()).ravel()
        lo = np.asarray(X.min(axis=0).todense()).ravel()
    else:
        hi, lo = np.max(X, axis=0), np.min(X, axis=0)
    return int((hi > lo).sum())
