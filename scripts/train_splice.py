"""Train the shipped splice-site model (data/models/splice.safetensors) on the UCI splice-junction
sequences: 60-nt windows labelled EI (exon-intron boundary: donor), IE (intron-exon: acceptor)
or N (neither), the boundary between bases 30 and 31. Random 80/10/10 split (seed 0); the
test split is scored once, at the end. About a minute on 2 cores.

    python scripts/train_splice.py
    python scripts/update_manifest.py     # then refresh sizes and hashes

The model recommends ``--scan 20`` to ``pmt variants score``: a variant is scored on every
window centred within 20 bases of it, so it can create or break a junction nearby.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "variants" / "uci_splice" / "splice.csv"
OUT = ROOT / "data" / "models" / "splice.safetensors"
SCAN = 20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    from pmtoolkit.core.io import Rejects
    from pmtoolkit.genomics.config import SequenceModelConfig
    from pmtoolkit.genomics.data import read_sequence_table
    from pmtoolkit.genomics.model import evaluate, fit
    from pmtoolkit.genomics.run import sequence_split

    rejects = Rejects(str(DATA), "sequence")
    data = read_sequence_table(DATA, window=60, task="multiclass", label_columns=["Class"],
                               sequence_column="Sequence", id_column="Donor", rejects=rejects)
    idx = sequence_split(len(data), (0.8, 0.1, 0.1), 0)
    train, valid, test = (data.subset(idx[k]) for k in ("train", "val", "test"))
    config = SequenceModelConfig(task="multiclass", window=60, filters=(64, 96),
                                 kernels=(9, 5), pools=(2, 2), hidden=128, dropout=0.3,
                                 epochs=args.epochs, patience=8, lr=2e-3, batch_size=64,
                                 seed=args.seed, device="cpu")
    t0 = time.perf_counter()
    model = fit(train, valid, config)
    seconds = time.perf_counter() - t0
    model.recommended_scan = SCAN
    metrics = {"test": evaluate(model, test), "valid": evaluate(model, valid),
               "train_seconds": seconds, "n_train": len(train), "n_valid": len(valid),
               "n_test": len(test), "rejected": len(rejects),
               "training_set": "UCI Molecular Biology (Splice-junction Gene Sequences), "
                               "Towell, Noordewier & Shavlik; CC BY 4.0; 3190 sequences, "
                               "random 80/10/10 split (seed 0)",
               "classes": {"EI": "exon-intron boundary (donor)",
                           "IE": "intron-exon boundary (acceptor)", "N": "neither"}}
    model.save(args.out, metrics=metrics, training_data_sha256=train.fingerprint())
    print(json.dumps(metrics, indent=2))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {seconds:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
