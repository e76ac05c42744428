"""The pictures of an expression run (QC violins, UMAPs, marker dot plot) and its HTML report."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.io import atomic_write

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd

    from pmtoolkit.expression.config import SingleCellConfig


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def qc_violins(values: dict[str, np.ndarray], path: str | os.PathLike, *,
               config: SingleCellConfig) -> None:
    """Genes detected, total counts and % mitochondrial counts per cell before filtering,
    with the thresholds drawn as dashed lines."""
    from pmtoolkit.core.plots import figure

    panels = [("n_genes_by_counts", "genes detected", config.min_genes, config.max_genes),
              ("total_counts", "total counts", config.min_counts, None),
              ("pct_counts_mito", "% mitochondrial", None, config.max_pct_mito)]
    with figure(path, size=(9.0, 3.2), ncols=3) as (fig, axes):
        for ax, (key, title, lo, hi) in zip(axes, panels):
            v = np.asarray(values[key], dtype=float)
            if v.size and np.ptp(v) > 0:
                ax.violinplot(v, showmedians=True)
            rng = np.random.default_rng(0)
            ax.scatter(1 + rng.uniform(-0.15, 0.15, v.size), v, s=1, alpha=0.3, color="k")
            for t in (lo, hi):
                if t is not None:
                    ax.axhline(t, ls="--", color="#b42318", lw=1)
            ax.set_title(title)
            ax.set_xticks([])
        fig.suptitle(f"{len(values['total_counts']):,} cells before filtering")


def umap_plot(adata: ad.AnnData, key: str, path: str | os.PathLike, *, title: str) -> None:
    """The UMAP coloured by ``obs[key]`` (labels on the clusters for ``leiden``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import scanpy as sc

    fig = sc.pl.umap(adata, color=key, show=False, return_fig=True, frameon=False,
                     legend_loc="on data" if key == "leiden" else "right margin",
                     legend_fontsize=8, title=title)
    _save(fig, Path(path))


def markers_dotplot(adata: ad.AnnData, path: str | os.PathLike, *, n_genes: int) -> None:
    """The top ``n_genes`` marker genes of each group (``rank_genes_groups``) as a dot plot."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import scanpy as sc

    dot = sc.pl.rank_genes_groups_dotplot(adata, n_genes=max(1, n_genes), show=False,
                                          return_fig=True)
    dot.make_figure()
    _save(dot.fig, Path(path))


def draw_all(adata: ad.AnnData, folder: str | os.PathLike, *, config: SingleCellConfig,
             qc_before: dict[str, np.ndarray]) -> dict[str, list[tuple[str, str]]]:
    """Write every picture of a run into ``folder``; returns, per report section ("qc",
    "clusters", "markers"), its (caption, path relative to the report) pairs."""
    import matplotlib

    matplotlib.use("Agg", force=False)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[tuple[str, str]]] = {"qc": [], "clusters": [], "markers": []}
    if qc_before:
        qc_violins(qc_before, folder / "qc_violins.png", config=config)
        out["qc"].append(("QC metrics per cell before filtering; dashed: thresholds",
                          "figures/qc_violins.png"))
    colours = [("leiden", "UMAP by Leiden cluster", "umap_leiden.png")]
    if config.label_key:
        colours.append((config.label_key, f"UMAP by {config.label_key}", "umap_label.png"))
    if "cell_type" in adata.obs:
        colours.append(("cell_type", "UMAP by marker-list annotation", "umap_cell_type.png"))
    if "doublet_score" in adata.obs:
        colours.append(("doublet_score", "UMAP by doublet score (scrublet)", "umap_doublets.png"))
    for key, caption, name in colours:
        umap_plot(adata, key, folder / name, title=caption)
        out["clusters"].append((caption, f"figures/{name}"))
    n = max(1, config.n_marker_genes)
    markers_dotplot(adata, folder / "markers_dotplot.png", n_genes=n)
    out["markers"].append((f"Top {n} marker genes per cluster (Wilcoxon)",
                           "figures/markers_dotplot.png"))
    return out


def write_report(path: str | os.PathLike, adata: ad.AnnData, *, info: dict[str, Any],
                 figures: dict[str, list[tuple[str, str]]], markers: pd.DataFrame,
                 config: SingleCellConfig) -> None:
    """The run's HTML report: summary, QC, embeddings, markers, annotation, parameters."""
    import pandas as pd

    from pmtoolkit.core.report import Report

    m = info["metrics"]
    rep = Report("Single-cell analysis", subtitle=f"input: {info['input']}")
    s = rep.section("Summary")
    rows = [("cells (input → kept)", f"{m['cells_in']:,} → {m['cells']:,}"),
            ("genes (input → kept)", f"{m['genes_in']:,} → {m['genes']:,}"),
            ("Leiden clusters", f"{m['clusters']} (resolution {config.resolution})"),
            ("embedding for neighbours", config.embedding),
            ("run time", f"{info['seconds']:.1f} s")]
    if "leiden_ari" in m:
        rows.append((f"clusters vs {config.label_key}",
                     f"ARI {m['leiden_ari']:.3f}, NMI {m['leiden_nmi']:.3f}"))
    s.table(pd.DataFrame(rows, columns=["", "value"]))
    qc = rep.section("Quality control")
    filters = adata.uns.get("pmt_qc", {}).get("filters")
    if filters is not None:
        qc.table(filters)
    doublets = adata.uns.get("pmt_qc", {}).get("doublets")
    if doublets and "skipped" in doublets:
        qc.text(f"Doublets were not scored: scrublet cannot score these data "
                f"({doublets['skipped']}).")
    elif doublets:
        qc.text(f"scrublet predicts {doublets['predicted']} doublet(s)"
                + (" (removed)." if doublets["removed"] else " (kept; see obs "
                   "predicted_doublet)."))
    for caption, src in figures.get("qc", []):
        qc.figure(src, caption)
    emb = rep.section("Clusters and labels")
    for caption, src in figures.get("clusters", []):
        emb.figure(src, caption)
    mk = rep.section("Marker genes")
    for caption, src in figures.get("markers", []):
        mk.figure(src, caption)
    top = markers[markers["rank"] <= 3][["group", "rank", "gene", "log2_fold_change",
                                          "padj", "frac_in_group", "frac_in_rest"]]
    mk.table(top, max_rows=90)
    mk.text("Full table: markers.csv.")
    if "cell_type" in adata.uns:
        an = rep.section("Annotation by marker lists")
        an.text("Mean marker score of each cluster per label; each cluster takes the highest "
                "(unassigned when none is above zero).")
        an.table(adata.uns["cell_type"]["scores"])
    params = rep.section("Steps and parameters")
    params.table(pd.DataFrame([{"step": r["step"], "seconds": r["seconds"],
                                "parameters": ", ".join(f"{k}={v}" for k, v in
                                                        r["params"].items())}
                               for r in info["steps"]]), max_rows=50)
    params.text("The resolved configuration is in config.json; the analysed AnnData in "
                "adata.h5ad.")
    rep.write(path)
