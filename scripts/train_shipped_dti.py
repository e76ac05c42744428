"""Train the shipped drug-target model (data/models/davis.safetensors): DAVIS pKd, trained on
DeepDTA's five setting-1 training folds only (the test fold stays unseen, so the benchmark's
setting-1 row for this model is honest), scored on the test fold.

    python scripts/train_shipped_dti.py               # the shipped settings
    python scripts/train_shipped_dti.py --epochs 5    # a quick check
    python scripts/update_manifest.py                 # then refresh sizes and hashes

Options not named here keep the defaults of ``pmt dti train`` (DTIConfig).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAVIS = ROOT.parent / "shared" / "data" / "dti" / "davis"
OUT = ROOT / "data" / "models" / "davis.safetensors"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--protein-encoder", default="kmer", choices=["cnn", "kmer"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    from pmtoolkit.dti.config import DTIConfig
    from pmtoolkit.dti.data import load_benchmark
    from pmtoolkit.dti.model import DTIModel, fit, pair_metrics
    from pmtoolkit.dti.splits import setting1_split

    bench = load_benchmark(DAVIS)
    idx = setting1_split(bench, -1).indices()
    train, test = bench.data.subset(idx["train"]), bench.data.subset(idx["test"])
    config = DTIConfig(epochs=args.epochs, protein_encoder=args.protein_encoder,
                       seed=args.seed, device="cpu")
    t0 = time.perf_counter()
    model = fit(train, None, config)
    seconds = time.perf_counter() - t0
    # shipped in float16 (half the file): the test metrics are those of the stored weights
    model.save(args.out, half=True)
    model = DTIModel.load(args.out)
    metrics = {"test": pair_metrics(test.y, model.predict(test)), "train_seconds": seconds,
               "training_set": f"DAVIS (Davis et al. 2011, DeepDTA's files): setting-1 "
                               f"training folds, {len(train)} pairs; test fold {len(test)} "
                               "pairs held out", "target": "pKd = -log10(Kd / 1 M)"}
    model.save(args.out, metrics=metrics, training_data_sha256=train.fingerprint(), half=True)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {seconds / 60:.1f} min",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
