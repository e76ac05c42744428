"""deepchem baseline for the molecular property benchmark: its multitask fully connected network
(MultitaskRegressor / MultitaskClassifier) on 2048-bit ECFP4, trained on a pmtoolkit split.
The torch graph models deepchem offers (GCN, AttentiveFP) need DGL, which is not installed here.

    python benchmarks/molprop/deepchem_runner.py --data data.csv --target-columns y \
        --task regression --split split.json --seed 0 --epochs 50 --out result.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--smiles-column", default="smiles")
    ap.add_argument("--target-columns", nargs="+", required=True)
    ap.add_argument("--task", choices=["regression", "classification"], required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    t0 = time.perf_counter()
    import torch

    from pmtoolkit.chem.deepchem_bridge import deepchem, to_deepchem
    from pmtoolkit.core import metrics as M

    dc = deepchem()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    frame = pd.read_csv(args.data)
    split = json.loads(args.split.read_text())
    y = frame[args.target_columns].to_numpy(dtype=float)
    sets = {}
    for part in ("train", "val", "test"):
        idx = np.asarray(split[part], dtype=np.int64)
        sets[part] = to_deepchem(frame[args.smiles_column].to_numpy()[idx], y[idx],
                                 featurizer_name="ecfp")
    n_tasks = len(args.target_columns)
    common = dict(n_tasks=n_tasks, n_features=2048, layer_sizes=[1000, 500], dropouts=0.25,
                  learning_rate=1e-3, batch_size=64)
    if args.task == "regression":
        transformer = dc.trans.NormalizationTransformer(transform_y=True, dataset=sets["train"])
        train = transformer.transform(sets["train"])
        model = dc.models.MultitaskRegressor(**common)
    else:
        transformer = None
        train = sets["train"]
        model = dc.models.MultitaskClassifier(**common)
    model.fit(train, nb_epoch=args.epochs)
    pred = model.predict(sets["test"])
    if transformer is not None:
        pred = transformer.untransform(pred)
    test_y = np.where(sets["test"].w > 0, sets["test"].y, np.nan)
    if args.task == "regression":
        p = pred.reshape(len(test_y), n_tasks)
        value = float(np.nanmean([M.rmse(test_y[:, j], p[:, j]) for j in range(n_tasks)]))
        key = "test_rmse"
    else:
        p = pred[:, :, 1] if pred.ndim == 3 else pred
        value = float(np.nanmean([M.roc_auc(test_y[:, j], p[:, j]) for j in range(n_tasks)]))
        key = "test_roc_auc"
    seconds = time.perf_counter() - t0
    args.out.write_text(json.dumps({"model": "deepchem MultitaskNetwork (ECFP4)",
                                    "version": dc.__version__, "train_seconds": seconds,
                                    key: value}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
