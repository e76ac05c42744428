"""Write the shipped single-cell example (data/examples/pbmc68k_counts.h5ad): scanpy's
pbmc68k_reduced (700 PBMCs of Zheng et al. 2017, 765 genes, with the ``bulk_labels`` cell
types of its FACS-sorted reference populations) with its raw counts restored.

The file as scanpy ships it holds scaled values in X and ``log1p(counts / n_counts * 1e4)`` in
``.raw``; with ``obs['n_counts']`` that inverts to integers (largest rounding error 0.08
on a count of 213, float32 storage; 99.9% of values within 0.025), so X here is the UMI counts of those 765 genes. obs keeps ``bulk_labels`` and
``phase``; everything computed (PCA, UMAP, clusters) is dropped, so the example starts where a
user's own Cell Ranger output would.

    python scripts/make_pbmc_example.py
    python scripts/update_manifest.py
"""
from __future__ import annotations

import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "expression" / "pbmc68k_reduced" / \
    "10x_pbmc68k_reduced.h5ad"
OUT = ROOT / "data" / "examples" / "pbmc68k_counts.h5ad"


def load_pbmc68k_counts(path: Path = SOURCE):
    """pbmc68k_reduced as raw counts (cells × 765 genes) with its labels."""
    import anndata as ad

    from pmtoolkit.expression.io import recover_counts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        src = ad.read_h5ad(path)
    counts = recover_counts(src.raw.X, src.obs["n_counts"].to_numpy())
    obs = src.obs[["bulk_labels", "phase"]].copy()
    out = ad.AnnData(X=counts, obs=obs, var=src.raw.var[[]].copy())
    out.var_names = src.raw.var_names.astype(str)
    out.obs_names = src.obs_names.astype(str)
    return out


def main() -> None:
    adata = load_pbmc68k_counts()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(OUT, compression="gzip")
    print(f"wrote {OUT} ({adata.n_obs} cells × {adata.n_vars} genes, "
          f"{OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
