"""DeepPurpose anchor for the drug-target benchmark.

Run with the anchor venv's interpreter (built by benchmarks/dti/setup_anchor_env.sh):

    benchmarks/.venv-deeppurpose/bin/python benchmarks/dti/deeppurpose_runner.py \
        --data pairs.csv --split split.json --drug-encoding CNN --target-encoding CNN \
        --epochs 100 --seed 0 --out result.json

trains DeepPurpose's DTI model on a pmtoolkit split of a pairs table (columns smiles,
sequence, value; split = {"train": [...], "val": [...], "test": [...]} row indices) with
DeepPurpose's own defaults apart from the epochs, and writes its test predictions with the
measured values; benchmarks/dti/run.py scores them with pmtoolkit's metrics, as it scores
pmtoolkit's own runs.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--drug-encoding", default="CNN")
    ap.add_argument("--target-encoding", default="CNN")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pmt-dti-deeppurpose"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    for name in ("data", "split", "workdir", "out"):
        setattr(args, name, getattr(args, name).resolve())

    import torch
    from DeepPurpose import DTI as models
    from DeepPurpose import utils

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    frame = pd.read_csv(args.data)
    split = json.loads(args.split.read_text())
    t0 = time.perf_counter()
    data = utils.data_process(frame["smiles"].to_numpy(), frame["sequence"].to_numpy(),
                              frame["value"].to_numpy(), args.drug_encoding,
                              args.target_encoding, split_method="no_split")
    parts = {k: data.iloc[split[k]].reset_index(drop=True) for k in ("train", "val", "test")}
    config = utils.generate_config(drug_encoding=args.drug_encoding,
                                   target_encoding=args.target_encoding,
                                   train_epoch=args.epochs, batch_size=args.batch_size,
                                   result_folder=str(args.workdir))
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(args.workdir)  # DeepPurpose's TensorBoard writer logs to ./runs
    model = models.model_initialize(**config)
    val = parts["val"] if len(parts["val"]) else parts["test"].iloc[:0]
    model.train(parts["train"], val if len(val) else None, None, verbose=False)
    seconds = time.perf_counter() - t0
    pred = np.asarray(model.predict(parts["test"]), dtype=float)
    y = parts["test"]["Label"].to_numpy(dtype=float)
    result = {"tool": f"DeepPurpose {version('DeepPurpose')}",
              "model": f"{args.drug_encoding}-{args.target_encoding}", "seed": args.seed,
              "epochs": args.epochs, "train_seconds": seconds, "threads": torch.get_num_threads(),
              "cpus": os.cpu_count(), "y_test": y.tolist(), "pred_test": pred.tolist()}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
