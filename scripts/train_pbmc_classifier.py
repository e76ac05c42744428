"""Train the shipped cell-type classifier (data/models/pbmc68k.safetensors, ``-r pbmc68k``) on
the pbmc68k example (data/examples/pbmc68k_counts.h5ad: 700 PBMCs of Zheng et al. 2017 with
raw counts and the 10 ``bulk_labels`` types of its FACS-sorted reference populations).

First a stratified 5-fold cross-validation of the same recipe (its accuracy is stored in the
model's metrics and shown by ``pmt info``), then the fit on all 700 cells. Weights are stored
as float16 (the model computes in float32).

    python scripts/make_pbmc_example.py      # if the example is missing
    python scripts/train_pbmc_classifier.py
    python scripts/update_manifest.py         # then refresh sizes and hashes
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "examples" / "pbmc68k_counts.h5ad"
OUT = ROOT / "data" / "models" / "pbmc68k.safetensors"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import anndata as ad

    from pmtoolkit.core.io import sha256_file
    from pmtoolkit.expression.classifier import cross_validate, fit_classifier
    from pmtoolkit.expression.config import ExpressionClassifierConfig

    adata = ad.read_h5ad(DATA)
    config = ExpressionClassifierConfig(device="cpu")
    t0 = time.perf_counter()
    cv = cross_validate(adata, "bulk_labels", config, folds=5, seed=0)
    model = fit_classifier(adata, "bulk_labels", config)
    metrics = dict(model.metadata["metrics"])
    metrics.update({
        "cv_5fold": {k: float(cv[k].mean()) for k in ("accuracy", "balanced_accuracy",
                                                      "macro_f1")},
        "cv_5fold_sd": {k: float(cv[k].std(ddof=1)) for k in ("accuracy",
                                                              "balanced_accuracy",
                                                              "macro_f1")},
        "training_set": "scanpy pbmc68k_reduced (Zheng et al. 2017), 700 cells, raw counts "
                        "restored (scripts/make_pbmc_example.py), labels bulk_labels",
        "total_seconds": time.perf_counter() - t0,
    })
    model.save(args.out, metrics=metrics, training_data_sha256=sha256_file(DATA), half=True)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
