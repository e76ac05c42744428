"""File-to-file workflows behind ``pmt property train|predict|evaluate`` (and pipelines).

``train_file`` reads a table, applies the bad-input policy, splits, trains, evaluates on the
held-out test set and writes an output folder: ``model.safetensors``, ``config.json`` (resolved),
``split.json``, ``metrics.json``, ``test_predictions.csv``, a parity plot or ROC curve, and
``rejected.csv`` when records were skipped.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid, atomic_dir, atomic_write, work_dir
from pmtoolkit.property.config import PropertyConfig, SplitOptions
from pmtoolkit.property.model import PropertyModel, evaluate, fit

log = logging.getLogger(__name__)

#: shipped models by the name users type; each is a ``model`` entry in data/MANIFEST
SHIPPED_MODELS = ("solubility", "lipophilicity", "bbbp", "tox21")


def load_property_model(name_or_path: str | os.PathLike) -> PropertyModel:
    """A saved model file, or a shipped model by name (``solubility``, ...)."""
    from pmtoolkit.core.model import load_named

    return load_named(name_or_path, shipped_names=SHIPPED_MODELS, model_class=PropertyModel,
                      what="property model")


def train_file(input: str | os.PathLike, outdir: str | os.PathLike, *, smiles_column: str,
               target_columns: Sequence[str], config: PropertyConfig,
               split: SplitOptions | None = None, split_file: str | os.PathLike | None = None,
               on_invalid: OnInvalid = "error", overwrite: bool = False,
               resume: bool = False) -> dict[str, Any]:
    """Train on ``input`` and write the model, split, metrics and test predictions to
    ``outdir``; an interrupted run keeps its checkpoints in ``outdir/work`` and continues
    from them with ``resume``."""
    from pmtoolkit.chem.splits import load_split, make_split
    from pmtoolkit.core.config import to_dict, write_resolved
    from pmtoolkit.property.data import read_property_data

    if not target_columns:
        raise BadInputError("name the target column(s) with --target-columns")
    split = split or SplitOptions()
    data, rejects = read_property_data(input, smiles_column=smiles_column,
                                       target_columns=target_columns, task=config.task)
    if rejects and on_invalid == "error":
        rejects.raise_first()
    if len(data) < 10:
        raise BadInputError(f"only {len(data)} usable molecules in '{input}'; need at least 10")
    if split_file:
        s = load_split(split_file)
        s.check(data.smiles)
    else:
        s = make_split(split.split, mols=data.mols(), y=data.y[:, 0], n=len(data),
                       sizes=split.sizes, seed=split.split_seed, smiles=data.smiles)
    idx = s.indices()
    train, valid, test = (data.subset(idx[k]) for k in ("train", "val", "test"))
    log.info("%d molecules: %d train, %d validation, %d test (%s split)", len(data), len(train),
             len(valid), len(test), s.method)
    settings = {"model": to_dict(config), "split": to_dict(split), "data": {
        "input": str(input), "smiles-column": smiles_column,
        "target-columns": list(target_columns), "on-invalid": on_invalid,
        "split-file": None if split_file is None else str(split_file)}}
    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        if rejects:
            rejects.apply("skip", tmp, final=outdir)
        model = fit(train, valid if len(valid) else None, config, workdir=tmp / "training",
                    checkpoints=work_dir(outdir, settings), resume=resume)
        metrics: dict[str, Any] = {"valid": model.metadata.get("metrics", {}).get("valid")}
        if len(test):
            metrics["test"] = evaluate(model, test)
        model.save(tmp / "model.safetensors", metrics=metrics,
                   training_data_sha256=train.fingerprint())
        s.save(tmp / "split.json")
        write_resolved(tmp / "config.json", **settings)
        with atomic_write(tmp / "metrics.json") as fh:
            json.dump(metrics, fh, indent=2)
            fh.write("\n")
        if len(test):
            pred = model.predict(test.smiles).frame
            pred.insert(0, "line", test.lines)
            for j, name in enumerate(test.target_names):
                pred.insert(2 + j, name, test.y[:, j])
            pred.to_csv(tmp / "test_predictions.csv", index=False)
            _plot_test(pred, model, tmp / "test_plot.png")
    return metrics


def _plot_test(pred, model: PropertyModel, path: Path) -> None:
    """Parity plot (regression) or ROC curve (classification) of the first target."""
    from pmtoolkit.core import metrics as M
    from pmtoolkit.core.plots import figure, parity

    name = model.target_names[0]
    y, p = pred[name].to_numpy(float), pred[f"{name}_pred"].to_numpy(float)
    keep = ~(np.isnan(y) | np.isnan(p))
    y, p = y[keep], p[keep]
    with figure(path, size=(4.2, 4.0)) as (_, ax):
        if model.config.task == "regression":
            parity(ax, y, p, xlabel=f"measured {name}", ylabel=f"predicted {name}",
                   title=f"test RMSE {M.rmse(y, p):.3f}, R² {M.r2(y, p):.3f}", size=10,
                   alpha=0.6)
        else:
            order = np.argsort(-p)
            tps = np.cumsum(y[order])
            fps = np.cumsum(1 - y[order])
            tpr = np.r_[0, tps / max(tps[-1], 1)]
            fpr = np.r_[0, fps / max(fps[-1], 1)]
            ax.plot([0, 1], [0, 1], color="#999999", lw=1)
            ax.plot(fpr, tpr, color="#3867d6")
            ax.set_xlabel("false-positive rate")
            ax.set_ylabel("true-positive rate")
            ax.set_title(f"{name}: test ROC-AUC {M.roc_auc(y, p):.3f}")


def predict_file(input: str | os.PathLike, output: str | os.PathLike, *, model: PropertyModel,
                 smiles_column: str = "smiles", fmt: str | None = None,
                 on_invalid: OnInvalid = "skip", chunksize: int = 10_000) -> int:
    """Stream ``input`` through ``model`` into ``output``: every input row gets an output row
    (NaN and an ``error`` reason where the SMILES is invalid). Returns the number of rows."""
    import pandas as pd

    from pmtoolkit.chem.molecules import iter_molecules
    from pmtoolkit.core.io import Rejects, TableWriter
    from pmtoolkit.core.progress import progress

    all_rejects = Rejects(source=str(input), item_name="smiles")
    rows = 0
    with TableWriter(output) as writer:
        for chunk in progress(iter_molecules(input, smiles_column=smiles_column, fmt=fmt,
                                             chunksize=chunksize), desc="predict", unit="chunk"):
            smiles = chunk.frame[chunk.smiles_column].tolist()
            mols = [None if m is None else m.mol for m in chunk.molecules]
            result = model.predict(smiles, mols=mols)
            if result.rejects and on_invalid == "error":
                first = result.rejects.items[0]
                line = int(chunk.frame.index[first.line - 1])
                raise BadInputError(f"{input}: line {line}: {first.reason}: {first.item!r}",
                                    hint="use --on-invalid skip to score the rest")
            for r in result.rejects:
                all_rejects.add(r.item, int(chunk.frame.index[r.line - 1]), r.reason)
            # the input's own columns first, then <target>_pred [, _uncertainty], error
            added = result.frame.drop(columns=["smiles"])
            base = chunk.frame.drop(columns=[c for c in added.columns if c in chunk.frame])
            frame = pd.concat([base.reset_index(drop=True), added], axis=1)
            writer.write(frame)
            rows += len(frame)
    if all_rejects:
        all_rejects.apply("skip", output)
    return rows


def evaluate_file(input: str | os.PathLike, *, model: PropertyModel, smiles_column: str,
                  target_columns: Sequence[str] | None = None,
                  on_invalid: OnInvalid = "error") -> dict[str, Any]:
    from pmtoolkit.property.data import read_property_data

    targets = list(target_columns or model.target_names)
    if len(targets) != model.n_tasks:
        raise BadInputError(f"the model predicts {model.n_tasks} target(s) "
                            f"({', '.join(model.target_names)}); {len(targets)} column(s) given")
    data, rejects = read_property_data(input, smiles_column=smiles_column,
                                       target_columns=targets, task=model.config.task)
    if rejects and on_invalid == "error":
        rejects.raise_first()
    if rejects:
        log.warning("%d invalid record(s) skipped; first: %s", len(rejects),
                    rejects.items[0].describe())
    data.target_names = list(model.target_names)
    return evaluate(model, data)

