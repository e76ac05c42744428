"""The file workflows every supervised domain shares: ``train_file`` and ``evaluate_file``.

A domain describes its run as a :class:`SupervisedTask`: how to read its input (typed records
plus rejects), how to split them, how to fit and evaluate a model and what to write about the
test set. :func:`train_file` does the rest the same way for every domain:

1. read, and apply the bad-input policy (``error`` stops at the first reject; ``skip`` writes
   ``rejected.csv`` beside the results);
2. refuse too little data; split into train / validation / test;
3. build the output folder atomically (nothing half-written; an existing pmtoolkit folder is
   replaced only with ``overwrite``), training with its resume checkpoint in ``OUTDIR/work``
   (weights only; ``resume`` continues an interrupted run with the same settings);
4. save ``model.safetensors``, ``split.json``, ``config.json`` (the resolved settings),
   ``metrics.json`` (strict JSON: validation and test metrics, sizes, time) and whatever the
   task writes about the test set (predictions table, figures);
5. return the metrics.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid, Rejects, atomic_dir, work_dir, write_json

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """A dataset cut into train / validation / test, and how the cut is recorded."""

    train: Any
    valid: Any
    test: Any
    method: str
    #: writes ``split.json`` (the indices and how they were drawn) into a folder
    save: Any


class SupervisedTask(Protocol):
    """What a domain declares for its file workflows (see the module docstring)."""

    #: what one record is called in messages ("molecules", "pairs", "sequences")
    noun: str
    #: the fewest usable records a training run accepts
    min_records: int

    def settings(self) -> dict[str, Any]:
        """The resolved settings of the run as JSON values (``config.json``; a resumed run
        must have the same)."""

    def read(self) -> tuple[Any, Rejects]:
        """The labelled records of the input, and the ones that could not be used."""

    def split(self, data: Any) -> Parts:
        """Train / validation / test parts of ``data``."""

    def fit(self, train: Any, valid: Any | None, *, workdir: Path, checkpoints: Path,
            resume: bool) -> Any:
        """A trained model (with ``save(path, metrics=..., training_data_sha256=...)``)."""

    def evaluate(self, model: Any, data: Any) -> dict[str, Any]:
        """Metrics of ``model`` on labelled ``data``."""

    def write_test(self, model: Any, test: Any, folder: Path) -> None:
        """Predictions on the test set (``test_predictions.csv``) and figures, in ``folder``."""

    # optional: ``summary(model) -> dict``, more entries for ``metrics.json`` (e.g. targets)


def _size(data: Any) -> int:
    return 0 if data is None else len(data)


def read_checked(task: SupervisedTask, on_invalid: OnInvalid, source: Any) -> tuple[Any, Rejects]:
    """The task's records after the bad-input policy, refusing fewer than it needs."""
    data, rejects = task.read()
    if rejects and on_invalid == "error":
        rejects.raise_first()
    if len(data) < task.min_records:
        raise BadInputError(f"only {len(data)} usable {task.noun} in '{source}'; need at least "
                            f"{task.min_records}")
    return data, rejects


def train_file(task: SupervisedTask, outdir: str | os.PathLike, *, source: Any,
               on_invalid: OnInvalid = "error", overwrite: bool = False,
               resume: bool = False) -> dict[str, Any]:
    """Train ``task``'s model on its input (``source``: the input's name, for messages) and
    write the run folder ``outdir``; returns the metrics written to ``metrics.json``."""
    data, rejects = read_checked(task, on_invalid, source)
    parts = task.split(data)
    train, valid, test = parts.train, parts.valid, parts.test
    log.info("%d %s: %d train, %d validation, %d test (%s split)", len(data), task.noun,
             len(train), _size(valid), _size(test), parts.method)
    settings = task.settings()
    from pmtoolkit.core.config import write_resolved

    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        if rejects:
            rejects.apply("skip", tmp, final=outdir)
        start = time.perf_counter()
        model = task.fit(train, valid if _size(valid) else None, workdir=tmp / "training",
                         checkpoints=work_dir(outdir, settings), resume=resume)
        metrics: dict[str, Any] = {"train_seconds": time.perf_counter() - start,
                                   "split": parts.method, "n_train": len(train),
                                   "n_valid": _size(valid), "n_test": _size(test)}
        summary = getattr(task, "summary", None)
        if summary is not None:
            metrics.update(summary(model))
        if _size(valid):
            metrics["valid"] = task.evaluate(model, valid)
        if _size(test):
            metrics["test"] = task.evaluate(model, test)
        model.save(tmp / "model.safetensors", metrics=metrics,
                   training_data_sha256=train.fingerprint())
        parts.save(tmp)
        write_resolved(tmp / "config.json", **settings)
        write_json(tmp / "metrics.json", metrics)
        if _size(test):
            task.write_test(model, test, tmp)
    return metrics


def evaluate_file(task: SupervisedTask, model: Any, *, source: Any,
                  on_invalid: OnInvalid = "error") -> dict[str, Any]:
    """Metrics of ``model`` on every usable labelled record of ``task``'s input."""
    data, rejects = task.read()
    if rejects and on_invalid == "error":
        rejects.raise_first()
    if rejects:
        log.warning("%d invalid %s skipped; first: %s", len(rejects), task.noun,
                    rejects.items[0].describe())
    if not len(data):
        raise BadInputError(f"no usable {task.noun} in '{source}'")
    return task.evaluate(model, data)
