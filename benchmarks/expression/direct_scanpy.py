"""The scanpy calls behind ``pmt expr run``, typed directly: the reference for the expression
benchmark's run-time ratio and for its "scanpy called directly" clustering row.

    python benchmarks/expression/direct_scanpy.py INPUT.h5ad -o OUTDIR [--label-key bulk_labels]
        [--timings timings.json] [--no-doublets]

Reads the h5ad (raw counts in X), keeps the counts in a layer, computes the same QC metrics
(mitochondrial ``MT-`` and ribosomal ``RPS``/``RPL`` flags), filters cells (>= 200 genes,
<= 20% mitochondrial counts) and genes (>= 3 cells), scores doublets with scrublet, normalises
(``normalize_total`` 1e4, ``log1p``), picks highly variable genes (seurat, 2,000 or all),
scales them (max 10) and runs PCA (50), neighbours (15), Leiden (igraph, 2 iterations,
resolution 1), UMAP (min_dist 0.5) and Wilcoxon markers (Leiden before UMAP, as pmtoolkit's
pipeline does: scanpy 1.11's ``tl.umap`` prunes the neighbour graph in place,
scverse/scanpy#4028); draws the same pictures (QC violins before
filtering, UMAPs by cluster, label and doublet score, a marker dot plot) and writes the same
h5ad (gzip) and markers table. No HTML report and no parameter bookkeeping: that is what
pmtoolkit adds, and what the ratio measures.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

#: the parameters pmtoolkit's SingleCellConfig uses by default
MIN_GENES, MAX_PCT_MITO, MIN_CELLS = 200, 20.0, 3
TARGET_SUM, N_TOP_GENES, N_PCS, N_NEIGHBORS, MIN_DIST = 1e4, 2000, 50, 15, 0.5


def qc(adata) -> None:
    """Counts layer and QC metrics (scanpy's calculate_qc_metrics with mito/ribo flags)."""
    import scanpy as sc

    adata.layers["counts"] = adata.X.copy()
    names = adata.var_names.str.upper()
    adata.var["mito"] = names.str.startswith("MT-")
    adata.var["ribo"] = names.str.startswith(("RPS", "RPL"))
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mito", "ribo"], percent_top=None, log1p=False,
                               layer="counts", inplace=True)


def filter_cells_genes(adata):
    """The tutorial's filters; returns the filtered AnnData."""
    import scanpy as sc

    keep = (adata.obs["n_genes_by_counts"] >= MIN_GENES) & \
        (adata.obs["pct_counts_mito"] <= MAX_PCT_MITO)
    adata = adata[keep.to_numpy()].copy()
    sc.pp.filter_genes(adata, min_cells=MIN_CELLS)
    return adata


def embed_and_cluster(adata, *, seed: int = 0, resolution: float = 1.0,
                      umap: bool = True) -> None:
    """normalise -> log1p -> HVGs -> scale + PCA on the HVGs -> neighbours -> Leiden -> UMAP,
    in place (X ends log-normalised, as the markers need). Leiden runs on the graph before
    ``tl.umap`` prunes it (scverse/scanpy#4028), as in pmtoolkit's pipeline."""
    import scanpy as sc

    sc.pp.normalize_total(adata, target_sum=TARGET_SUM)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, flavor="seurat", n_top_genes=min(N_TOP_GENES,
                                                                          adata.n_vars))
    hvg = adata[:, adata.var["highly_variable"].to_numpy()].copy()
    sc.pp.scale(hvg, max_value=10)
    n_pcs = int(min(N_PCS, hvg.n_obs - 1, hvg.n_vars - 1))
    sc.pp.pca(hvg, n_comps=n_pcs, random_state=seed)
    adata.obsm["X_pca"] = hvg.obsm["X_pca"]
    del hvg
    sc.pp.neighbors(adata, n_neighbors=N_NEIGHBORS, use_rep="X_pca", random_state=seed)
    sc.tl.leiden(adata, resolution=resolution, flavor="igraph", n_iterations=2,
                 directed=False, random_state=seed)
    if umap:
        sc.tl.umap(adata, min_dist=MIN_DIST, random_state=seed)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", type=Path)
    ap.add_argument("-o", "--outdir", type=Path, required=True)
    ap.add_argument("--label-key", default=None)
    ap.add_argument("--timings", type=Path, default=None)
    ap.add_argument("--no-doublets", action="store_true", help="skip scrublet")
    args = ap.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    t: dict[str, float] = {}
    start = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        t[name] = round(now - last, 3)
        last = now

    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    lap("imports")
    adata = ad.read_h5ad(args.input)
    lap("read")
    qc(adata)
    before = {k: adata.obs[k].to_numpy().copy()
              for k in ("n_genes_by_counts", "total_counts", "pct_counts_mito")}
    adata = filter_cells_genes(adata)
    lap("qc_filter")
    if not args.no_doublets:  # X still holds the counts here
        sc.pp.scrublet(adata, n_prin_comps=int(min(30, adata.n_obs - 1, adata.n_vars - 1)),
                       random_state=0, verbose=False)
    lap("doublets")
    embed_and_cluster(adata)
    lap("normalize_to_umap")
    sc.tl.rank_genes_groups(adata, "leiden", method="wilcoxon", pts=True, use_raw=False)
    lap("markers")
    if args.label_key:
        labels = adata.obs[args.label_key].astype(str)
        print(f"ARI {adjusted_rand_score(labels, adata.obs['leiden']):.3f} "
              f"NMI {normalized_mutual_info_score(labels, adata.obs['leiden']):.3f}")
    fig_dir = args.outdir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.2), dpi=120)
    rng = np.random.default_rng(0)
    for ax, (key, v) in zip(axes, before.items()):
        ax.violinplot(np.asarray(v, dtype=float), showmedians=True)
        ax.scatter(1 + rng.uniform(-0.15, 0.15, v.size), v, s=1, alpha=0.3, color="k")
        ax.set_title(key)
    fig.tight_layout()
    fig.savefig(fig_dir / "qc_violins.png")
    plt.close(fig)
    for key in ["leiden", args.label_key, "doublet_score"]:
        if key and key in adata.obs:
            _save(sc.pl.umap(adata, color=key, show=False, return_fig=True, frameon=False,
                             legend_loc="on data" if key == "leiden" else "right margin"),
                  fig_dir / f"umap_{key}.png")
    dot = sc.pl.rank_genes_groups_dotplot(adata, n_genes=5, show=False, return_fig=True)
    dot.make_figure()
    _save(dot.fig, fig_dir / "markers_dotplot.png")
    lap("plots")
    sc.get.rank_genes_groups_df(adata, group=None).to_csv(args.outdir / "markers.csv",
                                                          index=False)
    adata.write_h5ad(args.outdir / "adata.h5ad", compression="gzip")
    lap("write")
    t["total_in_process"] = round(time.perf_counter() - start, 3)
    if args.timings:
        args.timings.write_text(json.dumps(t, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
