"""Gene expression on AnnData: readers, QC, the standard scanpy pipeline, marker-list
annotation, pseudobulk differential expression, and deep models (an NB-VAE for embedding and
integration, a classifier for label transfer and bulk phenotypes).

Every function follows scanpy's contract: ``adata`` first, in place, results under a
documented key (``key_added``), ``copy=True`` for a new object. Submodules load on first use.
``run(adata)`` is the standard pipeline returning the AnnData; ``load("pbmc68k")`` the shipped
cell-type classifier. Also reachable as ``pmt.expr``.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "read": "io", "counts_matrix": "io", "recover_counts": "io",
    "store_counts": "qc", "qc_metrics": "qc", "filter_cells_genes": "qc",
    "doublet_scores": "qc",
    "rank_markers": "annotate", "markers_table": "annotate", "read_marker_lists": "annotate",
    "annotate_by_markers": "annotate",
    "pseudobulk": "pseudobulk", "pseudobulk_de": "pseudobulk",
    "run": "pipeline", "standard_pipeline": "pipeline", "run_file": "pipeline",
    "cluster_metrics": "pipeline",
    "ExpressionVAE": "vae", "fit_vae": "vae",
    "ExpressionClassifier": "classifier", "fit_classifier": "classifier",
    "cross_validate": "classifier",
    "RunConfig": "config", "VAEConfig": "config", "ClassifierConfig": "config",
    "load": "classify", "load_or_train_classifier": "classify",
    "train_classifier_file": "classify",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 (built from the table above)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
