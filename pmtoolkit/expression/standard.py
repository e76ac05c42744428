"""The standard single-cell pipeline in one call, and the file-level run behind ``pmt expr
run``: an h5ad, a markers table, pictures and an HTML report, with every step's parameters.

:func:`standard_pipeline` makes the same scanpy calls a user would type, with scanpy's
defaults and in its tutorial's order except that Leiden runs before UMAP (scanpy 1.11's UMAP
prunes the neighbour graph in place), so its cost is scanpy's; what it adds is checking the
input, recording each step's parameters and time in ``uns['pmt_run']``, and the annotation
steps.

Keys written (besides scanpy's own ``X_pca``, ``X_umap``, ``neighbors``, ``leiden``,
``rank_genes_groups``): ``layers['counts']``, the QC keys of :mod:`~pmtoolkit.expression.qc`,
``obsm['X_pmt_vae']`` (``embedding='vae'``), ``obs['cell_type']`` (with ``markers``) and
``uns['pmt_run']`` (``steps``: a table of step, seconds and parameters as JSON; ``metrics``).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.expression.config import SingleCellConfig, VAEConfig
from pmtoolkit.expression.qc import MIN_GENES, highly_variable_genes

if TYPE_CHECKING:
    import anndata as ad

log = logging.getLogger(__name__)

#: the fewest cells the clustering stage can embed, cluster and draw
MIN_CELLS = 4


class _Steps:
    """Times each step and keeps its parameters, for uns['pmt_run'] and the report."""

    def __init__(self):
        self.rows: list[dict[str, Any]] = []

    @contextmanager
    def step(self, name: str, **params: Any):
        log.info("%s ...", name)
        start = time.perf_counter()
        yield
        self.rows.append({"step": name, "seconds": round(time.perf_counter() - start, 3),
                          "params": {k: v for k, v in params.items()}})

    def frame(self):
        """The steps as a table h5ad can store (parameters as JSON text)."""
        import json

        import pandas as pd

        return pd.DataFrame({"step": [r["step"] for r in self.rows],
                             "seconds": [r["seconds"] for r in self.rows],
                             "params": [json.dumps(r["params"], default=str)
                                        for r in self.rows]})


def run_steps(adata: ad.AnnData) -> list[dict[str, Any]]:
    """The steps recorded in ``uns['pmt_run']``: step, seconds, params (a dict)."""
    import json

    table = adata.uns["pmt_run"]["steps"]
    return [{"step": r.step, "seconds": float(r.seconds), "params": json.loads(r.params)}
            for r in table.itertuples(index=False)]


def cluster_metrics(labels, clusters) -> dict[str, float]:
    """ARI and NMI of ``clusters`` against known ``labels``."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {"ari": float(adjusted_rand_score(labels, clusters)),
            "nmi": float(normalized_mutual_info_score(labels, clusters))}


def _steps_of(adata: ad.AnnData) -> _Steps:
    """The steps already recorded in ``adata`` (a pipeline continued stage by stage)."""
    steps = _Steps()
    if "pmt_run" in adata.uns and "steps" in adata.uns["pmt_run"]:
        steps.rows = run_steps(adata)
    return steps


def _record(adata: ad.AnnData, steps: _Steps, metrics: dict[str, Any] | None = None) -> None:
    run = dict(adata.uns.get("pmt_run", {}))
    run["steps"] = steps.frame()
    if metrics is not None:
        run["metrics"] = {**dict(run.get("metrics", {})), **metrics}
    adata.uns["pmt_run"] = run


def qc_stage(adata: ad.AnnData, config: SingleCellConfig, *, qc_before: dict | None = None) -> None:
    """Counts layer, QC metrics, cell and gene filters and doublet scores, in place."""
    from pmtoolkit.expression import qc

    steps = _steps_of(adata)
    for key in (config.label_key, config.batch_key):
        if key is not None and key not in adata.obs:
            raise BadInputError(f"no obs column {key!r}",
                                hint="columns: " + ", ".join(map(str, adata.obs.columns)))
    n_cells_in, n_genes_in = adata.n_obs, adata.n_vars
    with steps.step("counts", counts_layer=config.counts_layer):
        qc.store_counts(adata, config.counts_layer)
    with steps.step("qc_metrics", mito_prefix=config.mito_prefix,
                    ribo_prefixes=list(config.ribo_prefixes)):
        qc.qc_metrics(adata, mito_prefix=config.mito_prefix, ribo_prefixes=config.ribo_prefixes)
    if qc_before is not None:
        qc_before.update({k: adata.obs[k].to_numpy().copy() for k in
                          ("n_genes_by_counts", "total_counts", "pct_counts_mito")})
    with steps.step("filter", min_genes=config.min_genes, max_genes=config.max_genes,
                    min_counts=config.min_counts, max_pct_mito=config.max_pct_mito,
                    min_cells=config.min_cells):
        qc.filter_cells_genes(adata, min_genes=config.min_genes, max_genes=config.max_genes,
                              min_counts=config.min_counts, max_pct_mito=config.max_pct_mito,
                              min_cells=config.min_cells)
    if config.doublets:
        with steps.step("doublets", method="scrublet", remove=config.remove_doublets):
            qc.doublet_scores(adata, batch_key=config.batch_key, remove=config.remove_doublets,
                              seed=config.seed)
    _record(adata, steps, {"cells_in": n_cells_in, "genes_in": n_genes_in,
                           "cells": adata.n_obs, "genes": adata.n_vars})


def cluster_stage(adata: ad.AnnData, config: SingleCellConfig, *,
                  vae_config: VAEConfig | None = None,
                  vae_checkpoints: Callable[[], Path] | None = None,
                  resume: bool = False) -> None:
    """Normalise + log1p, highly variable genes, PCA (or the VAE), neighbours, Leiden and
    UMAP, in place, on the output of :func:`qc_stage`. ``vae_checkpoints`` gives, when the
    VAE starts training (not before, so a run that fails earlier leaves no work folder),
    the folder of its resume checkpoint; ``resume`` continues from it."""
    import numpy as np
    import scanpy as sc

    if "counts" not in adata.layers:
        raise BadInputError("no 'counts' layer: run the QC stage first (pmt expr run, or a "
                            "pipeline's expr.qc step)")
    if adata.n_obs < MIN_CELLS:  # UMAP's spectral start needs more cells than dimensions + 1
        raise BadInputError(f"{adata.n_obs} cell(s) left after QC: clustering and UMAP need "
                            f"at least {MIN_CELLS}", hint="loosen the QC filters "
                                                          "(--min-genes) or give more cells")
    if adata.n_vars < MIN_GENES:  # scanpy's HVG trends fail on fewer (seurat_v3's crashes)
        raise BadInputError(f"{adata.n_vars} gene(s) left after QC: the highly variable gene "
                            f"step needs at least {MIN_GENES}",
                            hint="lower --min-cells, or give a whole-transcriptome matrix")
    steps = _steps_of(adata)
    with steps.step("normalize", target_sum=config.target_sum, log1p=True):
        sc.pp.normalize_total(adata, target_sum=config.target_sum)
        sc.pp.log1p(adata)
    n_top = min(config.n_top_genes, adata.n_vars)
    with steps.step("highly_variable_genes", flavor=config.hvg_flavor, n_top_genes=n_top,
                    batch_key=config.batch_key):
        highly_variable_genes(adata, config.hvg_flavor, n_top, batch_key=config.batch_key,
                              layer="counts" if config.hvg_flavor == "seurat_v3" else None)
    n_hvg = int(adata.var["highly_variable"].sum())
    n_pcs = _n_pcs(config.n_pcs, adata.n_obs, n_hvg)
    if config.embedding == "vae":
        from pmtoolkit.core.config import to_dict
        from pmtoolkit.expression.vae import fit_vae

        vcfg = replace(vae_config or VAEConfig(), seed=config.seed)
        with steps.step("vae", **to_dict(vcfg), batch_key=config.batch_key):
            model = fit_vae(adata, vcfg, batch_key=config.batch_key, layer="counts",
                            checkpoints=vae_checkpoints() if vae_checkpoints else None,
                            resume=resume)
            model.embed(adata, layer="counts")
        rep = "X_pmt_vae"
        adata.uns["pmt_vae"] = {k: v for k, v in model.metadata["metrics"].items()
                                if v is not None}
    with steps.step("pca", n_comps=n_pcs, scale=config.scale, max_value=10,
                    mask_var="highly_variable"):
        if config.scale:  # scaling densifies the cells x HVG matrix (and a copy of it)
            from pmtoolkit.expression.io import check_memory

            check_memory(2 * 4 * adata.n_obs * n_hvg,
                         f"scaling {adata.n_obs:,} cells x {n_hvg:,} genes densely",
                         hint="pass --no-scale to keep the PCA input sparse, or lower "
                              "--n-top-genes")
        hvg = adata[:, adata.var["highly_variable"].to_numpy()].copy()
        if config.scale:
            import warnings

            with warnings.catch_warnings():  # densifying is the point (docs: --no-scale)
                warnings.filterwarnings("ignore", message="zero-centering a sparse")
                sc.pp.scale(hvg, max_value=10)
        sc.pp.pca(hvg, n_comps=n_pcs, random_state=config.seed)
        adata.obsm["X_pca"] = hvg.obsm["X_pca"]
        adata.uns["pca"] = hvg.uns["pca"]
        pcs = np.zeros((adata.n_vars, n_pcs), dtype=np.float32)
        pcs[adata.var["highly_variable"].to_numpy()] = hvg.varm["PCs"]
        adata.varm["PCs"] = pcs
        del hvg
    if config.embedding == "pca":
        rep = "X_pca"
    with steps.step("neighbors", n_neighbors=config.n_neighbors, use_rep=rep):
        sc.pp.neighbors(adata, n_neighbors=config.n_neighbors, use_rep=rep,
                        random_state=config.seed)
    # Leiden before UMAP: scanpy 1.11's tl.umap prunes the weakest edges of the neighbour graph
    # in place (scverse/scanpy#4028), so clusters computed after it would depend on UMAP
    with steps.step("leiden", resolution=config.resolution, flavor="igraph", n_iterations=2):
        sc.tl.leiden(adata, resolution=config.resolution, flavor="igraph", n_iterations=2,
                     directed=False, random_state=config.seed)
    with steps.step("umap", min_dist=config.umap_min_dist):
        sc.tl.umap(adata, min_dist=config.umap_min_dist, random_state=config.seed)
    metrics: dict[str, Any] = {"clusters": int(adata.obs["leiden"].nunique())}
    if config.label_key:
        metrics.update({f"leiden_{k}": v for k, v in
                        cluster_metrics(adata.obs[config.label_key].astype(str),
                                        adata.obs["leiden"]).items()})
    _record(adata, steps, metrics)


def _n_pcs(requested: int, n_cells: int, n_hvg: int) -> int:
    """The principal components PCA can give: at most one fewer than the cells and the
    highly variable genes. More are asked for whenever the data are small (the default of 50
    on 40 cells), so the number is lowered with a warning (uns['pmt_run'] records the one
    used); data with fewer than 2 cells or 2 genes left have no PCA at all: an error."""
    limit = min(n_cells, n_hvg) - 1
    if limit < 1:
        raise BadInputError(f"{n_cells} cell(s) and {n_hvg} highly variable gene(s) left "
                            "after QC: PCA needs at least 2 of each",
                            hint="loosen the QC filters (--min-genes, --min-cells) or give "
                                 "more cells")
    if requested > limit:
        log.warning("--n-pcs %d lowered to %d: PCA of %d cells x %d highly variable genes "
                    "has at most %d components", requested, limit, n_cells, n_hvg, limit)
        return limit
    return requested


def markers_stage(adata: ad.AnnData, *, groupby: str = "leiden", method: str = "wilcoxon"
                  ) -> None:
    """Marker genes of each cluster (``rank_genes_groups``) and the clusters' dendrogram."""
    import scanpy as sc

    from pmtoolkit.expression.annotate import rank_markers

    if groupby not in adata.obs:
        raise BadInputError(f"no obs column {groupby!r}: cluster first")
    steps = _steps_of(adata)
    with steps.step("markers", groupby=groupby, method=method):
        rank_markers(adata, groupby, method=method)
        if adata.obs[groupby].nunique() > 1:  # orders the dot plot's clusters
            try:  # on the PCA: scanpy's default uses X below 50 genes, and fails on sparse X
                sc.tl.dendrogram(adata, groupby, use_rep="X_pca" if "X_pca" in adata.obsm
                                 else None)
            except ValueError as exc:  # clusters whose mean profiles do not correlate (NaN)
                log.warning("clusters left unordered: no dendrogram of %r (%s)", groupby,
                            str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
    _record(adata, steps)


def annotate_stage(adata: ad.AnnData, markers: str | os.PathLike, *, groupby: str = "leiden",
                   key_added: str = "cell_type", seed: int = 0) -> None:
    """Name each cluster from marker lists (a TOML of label = [genes])."""
    from pmtoolkit.expression.annotate import annotate_by_markers, read_marker_lists

    lists = read_marker_lists(markers)
    steps = _steps_of(adata)
    with steps.step("annotate", markers=str(markers), groupby=groupby, key_added=key_added):
        annotate_by_markers(adata, lists, groupby=groupby, key_added=key_added, seed=seed)
    _record(adata, steps)


def standard_pipeline(adata: ad.AnnData, config: SingleCellConfig | None = None, *,
                      vae_config: VAEConfig | None = None, qc_before: dict | None = None,
                      vae_checkpoints: Callable[[], Path] | None = None, resume: bool = False,
                      copy: bool = False) -> ad.AnnData | None:
    """Run the whole standard pipeline on ``adata`` (raw counts), in place: the QC, cluster,
    markers and (with ``config.markers``) annotate stages. A dict given as ``qc_before``
    receives the per-cell QC metrics before filtering (for the QC plots);
    ``vae_checkpoints`` and ``resume`` as for :func:`cluster_stage`."""
    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.expression.annotate import read_marker_lists

    config = config or SingleCellConfig()
    check_ranges(config, source="expression run config")
    if vae_config is not None:
        check_ranges(vae_config, source="VAE config")
    adata = adata.copy() if copy else adata
    if config.markers:
        read_marker_lists(config.markers)  # a bad marker file fails before any work
    adata.uns.pop("pmt_run", None)
    qc_stage(adata, config, qc_before=qc_before)
    cluster_stage(adata, config, vae_config=vae_config, vae_checkpoints=vae_checkpoints,
                  resume=resume)
    markers_stage(adata)
    if config.markers:
        annotate_stage(adata, config.markers, seed=config.seed)
    return adata if copy else None


def run(adata: ad.AnnData, config: SingleCellConfig | None = None, *,
        vae_config: VAEConfig | None = None, copy: bool = False) -> ad.AnnData:
    """:func:`standard_pipeline` on ``adata`` (raw counts), returning the processed AnnData:
    ``adata`` itself, changed in place, or with ``copy=True`` a processed copy."""
    out = standard_pipeline(adata, config, vae_config=vae_config, copy=copy)
    return out if copy else adata


def run_file(input: str | os.PathLike, outdir: str | os.PathLike, *,
             config: SingleCellConfig | None = None, vae_config: VAEConfig | None = None,
             orientation: str = "auto", make_unique: bool = False, overwrite: bool = False,
             plots: bool = True, resume: bool = False) -> dict[str, Any]:
    """Read ``input``, run :func:`standard_pipeline`, and write ``outdir``: ``adata.h5ad``,
    ``markers.csv``, ``report.html`` with its ``figures/``, and ``config.json`` (every step's
    resolved parameters). The folder appears only when everything was written. With
    ``embedding='vae'``, the VAE keeps its resume checkpoint in ``outdir/work``; ``resume``
    continues an interrupted run from it."""
    from pmtoolkit.core.config import to_dict, write_resolved
    from pmtoolkit.core.io import atomic_dir, check_output_dir, work_dir, write_table
    from pmtoolkit.expression.annotate import markers_table
    from pmtoolkit.expression.io import read

    config = config or SingleCellConfig()
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    start = time.perf_counter()
    adata = read(input, orientation=orientation, make_unique=make_unique)
    before: dict = {}
    settings = {"run": to_dict(config), "vae": to_dict(vae_config or VAEConfig()),
                "data": {"input": str(input), "orientation": orientation,
                         "make-unique": make_unique}}
    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        standard_pipeline(adata, config, vae_config=vae_config, qc_before=before,
                          vae_checkpoints=lambda: work_dir(outdir, settings), resume=resume)
        markers = markers_table(adata)
        figures = {}
        if plots:
            from pmtoolkit.expression.plots import draw_all

            figures = draw_all(adata, tmp / "figures", config=config, qc_before=before)
        write_table(markers, tmp / "markers.csv")
        adata.write_h5ad(tmp / "adata.h5ad", compression="gzip")
        seconds = time.perf_counter() - start
        info = {"input": str(input), "seconds": round(seconds, 2),
                "metrics": dict(adata.uns["pmt_run"]["metrics"]), "steps": run_steps(adata)}
        write_resolved(tmp / "config.json", run=config,
                       **({"vae": vae_config or VAEConfig()} if config.embedding == "vae"
                          else {}),
                       steps=info["steps"])
        from pmtoolkit.expression.plots import write_report

        write_report(tmp / "report.html", adata, info=info, figures=figures, markers=markers,
                     config=config)
    return info
