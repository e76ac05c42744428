"""chemprop v2 anchor for the side-by-side molecular property benchmark.

Run with the anchor venv's interpreter (built by benchmarks/molprop/setup_anchor_env.sh):

    benchmarks/.venv-chemprop/bin/python benchmarks/molprop/chemprop_runner.py \
        --data DATA.csv --smiles-column smiles --target-columns y1 [y2 ...] \
        --task regression|classification --split split.json --seed 0 --epochs 50 \
        --workdir WORKDIR --out result.json

trains `chemprop train` (a subprocess, chemprop's defaults: hidden 300, depth 3, batch 64) on a
pmtoolkit split ({"train": [...], "val": [...], "test": [...]}, 0-based data-row indices), and
scores chemprop's test-set predictions with numpy/sklearn.

    benchmarks/.venv-chemprop/bin/python benchmarks/molprop/chemprop_runner.py \
        --featurize-throughput --data DATA.csv --smiles-column smiles --out throughput.json

measures SMILES -> graph featurization speed of chemprop (SimpleMoleculeMolGraphFeaturizer) and
deepchem (MolGraphConvFeaturizer, use_edges=True), best of 3, single process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, RDLogger

RDLogger.DisableLog("rdApp.*")

CHEMPROP_WARMUP_EPOCHS = 2  # chemprop train's --warmup-epochs default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, type=Path, help="input CSV with a header row")
    p.add_argument("--smiles-column", required=True)
    p.add_argument("--out", required=True, type=Path, help="where to write the result JSON")
    p.add_argument(
        "--featurize-throughput",
        action="store_true",
        help="measure featurization speed instead of training",
    )
    p.add_argument("--target-columns", nargs="+")
    p.add_argument("--task", choices=["regression", "classification"])
    p.add_argument("--split", type=Path, help="pmtoolkit split JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument(
        "--workdir", type=Path, help="scratch dir for the cleaned CSV and chemprop's output"
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        help="intra-op threads for training (default: torch's, one per core)",
    )
    p.add_argument("--repeats", type=int, default=3, help="throughput mode: best of this many runs")
    args = p.parse_args(argv)
    if not args.featurize_throughput:
        missing = [
            f"--{n.replace('_', '-')}"
            for n in ("target_columns", "task", "split", "workdir")
            if getattr(args, n) is None
        ]
        if missing:
            p.error("training mode needs " + ", ".join(missing))
        if args.epochs <= CHEMPROP_WARMUP_EPOCHS:
            p.error(f"chemprop needs --epochs > its {CHEMPROP_WARMUP_EPOCHS} warmup epochs")
    return args


def load_smiles(csv: Path, smiles_column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The CSV with stripped SMILES, and a mask of the rows RDKit can parse.

    chemprop aborts the whole run on one unparsable SMILES, so those rows are dropped up front.
    """
    df = pd.read_csv(csv)
    df[smiles_column] = df[smiles_column].astype(str).str.strip()
    valid = np.array([Chem.MolFromSmiles(s) is not None for s in df[smiles_column]])
    return df, valid


# ---------------------------------------------------------------------------------------------
# training mode


def write_chemprop_inputs(args: argparse.Namespace, workdir: Path) -> dict:
    df, valid = load_smiles(args.data, args.smiles_column)
    split = json.loads(args.split.read_text())
    n_rows = len(df)
    for part in ("train", "val", "test"):
        bad = [i for i in split[part] if not 0 <= i < n_rows]
        if bad:
            raise SystemExit(f"split '{part}' has indices outside 0..{n_rows - 1}: {bad[:5]}")

    # chemprop indexes the rows of the file it reads, so indices are remapped onto the
    # cleaned CSV, which keeps only the parsable rows.
    new_index = np.cumsum(valid) - 1
    parts = {
        part: [int(new_index[i]) for i in split[part] if valid[i]]
        for part in ("train", "val", "test")
    }
    dropped = {part: len(split[part]) - len(parts[part]) for part in parts}

    clean = df.loc[valid, [args.smiles_column, *args.target_columns]].reset_index(drop=True)
    clean_csv = workdir / "data_clean.csv"
    clean.to_csv(clean_csv, index=False)
    splits_file = workdir / "chemprop_splits.json"
    # chemprop v2's --splits-file: a list with one {"train", "val", "test"} dict per replicate.
    splits_file.write_text(json.dumps([parts]))
    return {
        "clean_csv": clean_csv,
        "splits_file": splits_file,
        "clean": clean,
        "parts": parts,
        "dropped": dropped,
        "n_invalid_smiles": int((~valid).sum()),
    }


def chemprop_train_command(
    args: argparse.Namespace, clean_csv: Path, splits_file: Path, out_dir: Path
) -> list[str]:
    chemprop = Path(sys.executable).with_name("chemprop")
    return [
        str(chemprop),
        "train",
        "--data-path",
        str(clean_csv),
        "--smiles-columns",
        args.smiles_column,
        "--target-columns",
        *args.target_columns,
        "--task-type",
        args.task,
        "--splits-file",
        str(splits_file),
        "--output-dir",
        str(out_dir),
        "--epochs",
        str(args.epochs),
        # chemprop's defaults, spelled out so a changed default cannot silently change the anchor
        "--message-hidden-dim",
        "300",
        "--depth",
        "3",
        "--batch-size",
        "64",
        "--accelerator",
        "cpu",
        "--devices",
        "1",
        "--num-workers",
        "0",
        "--data-seed",
        str(args.seed),
        "--pytorch-seed",
        str(args.seed),
    ]


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    rmse, mae, r2 = [], [], []
    for t in range(y.shape[1]):
        m = np.isfinite(y[:, t])
        err = pred[m, t] - y[m, t]
        rmse.append(math.sqrt(float(np.mean(err**2))))
        mae.append(float(np.mean(np.abs(err))))
        ss_tot = float(np.sum((y[m, t] - y[m, t].mean()) ** 2))
        r2.append(1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan"))
    return {
        "test_rmse": float(np.mean(rmse)),
        "test_mae": float(np.mean(mae)),
        "test_r2": float(np.mean(r2)),
        "per_task": {"rmse": rmse, "mae": mae, "r2": r2},
    }


def classification_metrics(y: np.ndarray, prob: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    aucs: list[float | None] = []
    for t in range(y.shape[1]):
        m = np.isfinite(y[:, t])
        labels = y[m, t]
        # a task whose test labels are all one class has no ROC-AUC; it is left out of the mean
        aucs.append(
            float(roc_auc_score(labels, prob[m, t])) if len(np.unique(labels)) == 2 else None
        )
    scored = [a for a in aucs if a is not None]
    return {
        "test_roc_auc": float(np.mean(scored)) if scored else float("nan"),
        "per_task": {"roc_auc": aucs},
    }


def chemprop_logged_test_metrics(log: str) -> dict[str, float]:
    """chemprop's own end-of-training test scores ('test/rmse: 0.73'), kept as a cross-check."""
    found = re.findall(r"test/([\w-]+): ([-+0-9.eE]+|nan)\s*$", log, flags=re.MULTILINE)
    return {name: float(value) for name, value in found}


def training_env(torch_threads: int | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if torch_threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(torch_threads)
    return env


def torch_num_threads(env: dict[str, str]) -> int:
    """Intra-op threads torch picks in the training subprocess's environment."""
    probe = [sys.executable, "-c", "import torch; print(torch.get_num_threads())"]
    return int(subprocess.run(probe, env=env, capture_output=True, text=True, check=True).stdout)


def run_training(args: argparse.Namespace) -> dict:
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    inputs = write_chemprop_inputs(args, workdir)
    out_dir = workdir / "chemprop_train"
    if out_dir.exists():
        shutil.rmtree(out_dir)  # a stale model_0/ from an earlier run would be read back otherwise

    cmd = chemprop_train_command(args, inputs["clean_csv"], inputs["splits_file"], out_dir)
    log_path = workdir / "chemprop_train.log"
    env = training_env(args.torch_threads)
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    train_seconds = time.perf_counter() - t0
    log_path.write_text(" ".join(cmd) + "\n\n" + proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:])
        raise SystemExit(f"chemprop train exited {proc.returncode}; full log: {log_path}")

    # chemprop writes predictions of the best (val-loss) checkpoint for the test rows, in the
    # order of the test indices, to model_0/test_predictions.csv.
    preds_csv = out_dir / "model_0" / "test_predictions.csv"
    preds = pd.read_csv(preds_csv)
    test = inputs["clean"].iloc[inputs["parts"]["test"]]
    if len(preds) != len(test) or list(preds[args.smiles_column]) != list(test[args.smiles_column]):
        raise SystemExit(f"{preds_csv} does not line up with the test rows of the split")
    y = test[args.target_columns].to_numpy(dtype=float)
    yhat = preds[args.target_columns].to_numpy(dtype=float)
    metrics = (
        regression_metrics(y, yhat)
        if args.task == "regression"
        else classification_metrics(y, yhat)
    )

    split_meta = json.loads(args.split.read_text())
    return {
        "model": "chemprop",
        "version": version("chemprop"),
        "torch_version": version("torch"),
        "torch_num_threads": torch_num_threads(env),
        "omp_wait_policy": env.get("OMP_WAIT_POLICY"),
        "dataset_csv": str(args.data),
        "smiles_column": args.smiles_column,
        "target_columns": args.target_columns,
        "task": args.task,
        "split_file": str(args.split),
        "split_method": split_meta.get("method"),
        "seed": args.seed,
        "epochs": args.epochs,
        "train_seconds": train_seconds,
        **{k: v for k, v in metrics.items() if k != "per_task"},
        "per_task": metrics["per_task"],
        "chemprop_logged_test": chemprop_logged_test_metrics(proc.stdout),
        "n_train": len(inputs["parts"]["train"]),
        "n_val": len(inputs["parts"]["val"]),
        "n_test": len(inputs["parts"]["test"]),
        "n_invalid_smiles": inputs["n_invalid_smiles"],
        "dropped_from_split": inputs["dropped"],
        "chemprop_command": cmd,
        "chemprop_output_dir": str(out_dir),
    }


# ---------------------------------------------------------------------------------------------
# featurization throughput mode


def best_seconds(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_throughput(args: argparse.Namespace) -> dict:
    from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer
    from chemprop.utils import make_mol

    df, valid = load_smiles(args.data, args.smiles_column)
    # both featurizers get the same parsable SMILES, so neither pays for failures the other skips
    smiles = df.loc[valid, args.smiles_column].tolist()
    n = len(smiles)

    featurizer = SimpleMoleculeMolGraphFeaturizer()  # chemprop's default: V2 multi-hot atoms/bonds

    def chemprop_featurize():
        return [featurizer(make_mol(s)) for s in smiles]

    import deepchem as dc

    dc_featurizer = dc.feat.MolGraphConvFeaturizer(use_edges=True)

    def deepchem_featurize():
        return dc_featurizer.featurize(smiles)

    # deepchem returns an empty array in place of a molecule it fails on instead of raising
    dc_failed = sum(1 for g in deepchem_featurize() if not isinstance(g, dc.feat.GraphData))

    cp_s = best_seconds(chemprop_featurize, args.repeats)
    dc_s = best_seconds(deepchem_featurize, args.repeats)
    return {
        "chemprop_mols_per_s": n / cp_s,
        "deepchem_mols_per_s": n / dc_s,
        "n": n,
        "chemprop_best_seconds": cp_s,
        "deepchem_best_seconds": dc_s,
        "repeats": args.repeats,
        "n_invalid_smiles_skipped": int((~valid).sum()),
        "deepchem_failed": dc_failed,
        "dataset_csv": str(args.data),
        "chemprop_version": version("chemprop"),
        "deepchem_version": version("deepchem"),
        "rdkit_version": version("rdkit"),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run_throughput(args) if args.featurize_throughput else run_training(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps({k: v for k, v in result.items() if not isinstance(v, (dict, list))}, indent=2)
    )


if __name__ == "__main__":
    main()
