"""Train the shipped SMILES prior (data/models/prior.safetensors) on the MOSES training set.

The full set is 1.58M SMILES; on 2 CPU cores a GRU of the shipped size reads about
``--molecules`` x ``--epochs`` SMILES in the time a session allows, so it trains on a seeded
random subset (recorded in the model's metadata and in data/MANIFEST). With a GPU, pass
``--molecules 0`` (all of it) and more epochs.

    python scripts/train_prior.py                       # the shipped settings
    python scripts/train_prior.py --molecules 0 --epochs 10 --device cuda
    python scripts/update_manifest.py                   # then refresh sizes and hashes

It prints the validity and uniqueness of 10k samples at the end.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOSES = ROOT.parent / "shared" / "data" / "generative" / "moses" / "train.csv.gz"
OUT = ROOT / "data" / "models" / "prior.safetensors"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--molecules", type=int, default=400_000,
                    help="random subset of the MOSES training set (0: all)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--cell", default="gru")
    ap.add_argument("--hidden-size", type=int, default=192)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--embedding-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pmt-prior"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import numpy as np
    import pandas as pd

    from pmtoolkit.design.config import GeneratorConfig
    from pmtoolkit.design.run import sample_summary, train_file

    smiles = pd.read_csv(MOSES)["SMILES"].tolist()
    if args.molecules and args.molecules < len(smiles):
        rng = np.random.default_rng(args.seed)
        pick = np.sort(rng.choice(len(smiles), size=args.molecules, replace=False))
        smiles = [smiles[i] for i in pick]
    args.workdir.mkdir(parents=True, exist_ok=True)
    subset = args.workdir / "train.smi"
    subset.write_text("\n".join(smiles) + "\n")
    config = GeneratorConfig(cell=args.cell, hidden_size=args.hidden_size, layers=args.layers,
                             embedding_size=args.embedding_size, epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             device=args.device)
    t0 = time.perf_counter()
    metrics = train_file(subset, args.workdir / "run", config=config, valid_fraction=0.01,
                         on_invalid="skip", overwrite=True, n_check=0)
    seconds = time.perf_counter() - t0
    from pmtoolkit.core.model import load_model

    model = load_model(args.workdir / "run" / "model.safetensors")
    samples = model.sample(10_000, seed=1)
    check = sample_summary(samples.smiles)
    metrics.update(train_seconds=seconds, samples_10k=check,
                   training_set=f"MOSES train, {len(smiles)} SMILES"
                   + (f" (seeded random subset, seed {args.seed})" if args.molecules else ""))
    model.save(args.out, metrics=metrics)
    print(json.dumps(metrics, indent=2))
    shutil.copy(args.workdir / "run" / "history.csv", args.workdir / "history.csv")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {seconds / 60:.1f} min",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
