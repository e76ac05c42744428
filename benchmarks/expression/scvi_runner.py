"""scvi-tools anchor for the expression benchmark.

Run with the anchor venv's interpreter (built by benchmarks/expression/setup_anchor_env.sh):

    benchmarks/.venv-scvi/bin/python benchmarks/expression/scvi_runner.py \
        --data counts.h5ad --seed 0 --latent latent.npy --out result.json

trains ``scvi.model.SCVI`` with scvi-tools' defaults (n_latent 10, n_hidden 128, one layer,
gene likelihood zinb, max_epochs = scvi-tools' rule min(400, 20,000 / cells × 400), 90/10
train/validation split, no early stopping) on the raw counts in X of an h5ad, on the CPU, and
writes the posterior-mean latent (cells × 10, float32, in the h5ad's cell order) to ``--latent``
and the train time and settings to ``--out``; benchmarks/expression/run.py clusters and scores
the latent with the same code it uses for pmtoolkit's embeddings.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="h5ad with raw counts in X")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-epochs", type=int, default=None,
                    help="default: scvi-tools' own rule")
    ap.add_argument("--latent", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    warnings.simplefilter("ignore", FutureWarning)
    import anndata as ad
    import scvi
    import torch

    scvi.settings.seed = args.seed
    scvi.settings.dl_num_workers = 0
    adata = ad.read_h5ad(args.data)
    t0 = time.perf_counter()
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(adata)
    kwargs = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False}
    if args.max_epochs is not None:
        kwargs["max_epochs"] = args.max_epochs
    model.train(**kwargs)
    seconds = time.perf_counter() - t0
    latent = np.asarray(model.get_latent_representation(), dtype=np.float32)
    np.save(args.latent, latent)
    history = model.history
    epochs = len(history["elbo_train"]) if "elbo_train" in history else None
    result = {"tool": f"scvi-tools {version('scvi-tools')}", "torch": torch.__version__,
              "seed": args.seed, "n_cells": int(adata.n_obs), "n_genes": int(adata.n_vars),
              "epochs_run": epochs, "n_latent": int(model.module.n_latent),
              "gene_likelihood": str(model.module.gene_likelihood),
              "final_elbo_train": float(history["elbo_train"].iloc[-1, 0])
              if "elbo_train" in history else None,
              "train_seconds": seconds, "threads": torch.get_num_threads(),
              "cpus": os.cpu_count()}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
