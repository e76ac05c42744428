"""Gene expression on AnnData: readers, QC, the standard scanpy pipeline, marker-list
annotation, pseudobulk differential expression, and deep models (an NB-VAE for embedding and
integration, a classifier for label transfer and bulk phenotypes).

Every function follows scanpy's contract: ``adata`` first, in place, results under a
documented key (``key_added``), ``copy=True`` for a new object. Submodules load on first use.
``run(adata)`` is the standard pipeline returning the AnnData; ``load("pbmc68k")`` the shipped
cell-type classifier. Also reachable as ``pmt.expr``.
"""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "read": "io", "counts_matrix": "io", "recover_counts": "io",
    "store_counts": "qc", "qc_metrics": "qc", "filter_cells_genes": "qc",
    "doublet_scores": "qc",
    "rank_markers": "annotate", "markers_table": "annotate", "read_marker_lists": "annotate",
    "annotate_by_markers": "annotate",
    "pseudobulk": "pseudobulk", "pseudobulk_de": "pseudobulk",
    "run": "standard", "standard_pipeline": "standard", "run_file": "standard",
    "cluster_metrics": "standard",
    "ExpressionVAE": "vae", "fit_vae": "vae", "load_vae": "vae",
    "ExpressionClassifier": "classifier", "fit_classifier": "classifier",
    "cross_validate": "classifier",
    "SingleCellConfig": "config", "VAEConfig": "config", "ExpressionClassifierConfig": "config",
    "load": "classify", "load_or_train_classifier": "classify",
    "train_file": "classify", "evaluate_file": "classify",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
