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

:func:`evaluate_file` reads the same way and returns the task's metrics of a model on every
usable record; given ``outdir`` it writes an evaluation folder (``metrics.json``,
``rejected.csv`` and what the task writes there).

Optional hooks (a task without them gets the behaviour above):

- ``summary(model) -> dict``: more entries for ``metrics.json`` (e.g. targets, epochs run);
- ``extras(model, parts, folder) -> dict``: the rest of a training run, after the test
  metrics: more entries for ``metrics.json`` and files in ``folder`` (e.g. baselines fitted
  on the same split, a second rejects table);
- ``write_evaluation(model, data, folder) -> dict``: :func:`evaluate_file` with ``outdir``:
  the metrics of ``model`` on ``data`` and the tables, figures and report it writes into
  ``folder`` (default: ``evaluate(model, data)`` and nothing else);
- a split given by the input (e.g. a dataset file that holds its parts) has
  ``Parts.save = None`` and writes no ``split.json``; training records without a
  ``fingerprint()`` save the model without a training-data sha256.
- ``evaluate_valid = False``: the validation part is not scored again after training
  (its fit scored it already, e.g. per-slice Dice, and ``summary`` reports that).

:func:`predict_file` is the one streaming batch-inference loop of a table of inputs: a
:class:`PredictTask` yields :class:`InputChunk` s (the input's rows by line number, the usable
records among them, the rejects), the model predicts the records, and every input row gets
an output row — its own columns, the prediction columns, ``error`` — appended to one table
written atomically. Memory stays flat for any input size. A task that also splits its reading
in two — ``rows()`` (the input's rows chunk by chunk, unparsed: cheap) and ``parse(rows) ->
InputChunk`` — runs in partitions on Dask too (``cluster``; see :mod:`pmtoolkit.core.distributed`),
with the same output.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pmtoolkit.core.config import write_resolved
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import (
    ON_INVALID_CHOICES,
    OnInvalid,
    Rejects,
    TableWriter,
    atomic_dir,
    check_choice,
    check_output_dir,
    work_dir,
    write_json,
)
from pmtoolkit.core.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """A dataset cut into train / validation / test, and how the cut is recorded."""

    train: Any
    valid: Any
    test: Any
    method: str
    #: writes ``split.json`` (the indices and how they were drawn) into a folder; None: the
    #: split was given by the input, nothing to record
    save: Any

    @classmethod
    def of(cls, data: Any, split: Any, method: str | None = None) -> Parts:
        """The parts of ``data`` that ``split`` (a :class:`pmtoolkit.chem.splits.Split`, or
        anything with ``indices()`` -> train/val/test and ``save(path)``) names, recorded as
        its ``split.json``."""
        idx = split.indices()
        return cls(*(data.subset(idx[k]) for k in ("train", "val", "test")),
                   method=method or split.method,
                   save=lambda folder: split.save(Path(folder) / "split.json"))


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

    # optional: ``summary(model) -> dict``, ``extras(model, parts, folder) -> dict`` and
    # ``write_evaluation(model, data, folder) -> dict`` (see the module docstring)


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
        if _size(valid) and getattr(task, "evaluate_valid", True):
            metrics["valid"] = task.evaluate(model, valid)
        if _size(test):
            metrics["test"] = task.evaluate(model, test)
        extras = getattr(task, "extras", None)
        if extras is not None:
            metrics.update(extras(model, parts, tmp))
        fingerprint = getattr(train, "fingerprint", None)
        model.save(tmp / "model.safetensors", metrics=metrics,
                   training_data_sha256=fingerprint() if fingerprint is not None else None)
        if parts.save is not None:
            parts.save(tmp)
        write_resolved(tmp / "config.json", **settings)
        write_json(tmp / "metrics.json", metrics)
        if _size(test):
            task.write_test(model, test, tmp)
    return metrics


def evaluate_file(task: SupervisedTask, model: Any, *, source: Any,
                  on_invalid: OnInvalid = "error", outdir: str | os.PathLike | None = None,
                  overwrite: bool = False) -> dict[str, Any]:
    """Metrics of ``model`` on every usable labelled record of ``task``'s input. With
    ``outdir``, also the evaluation folder: ``metrics.json``, ``rejected.csv`` when records
    were skipped, and what the task's optional ``write_evaluation`` writes (its metrics are
    then the ones returned)."""
    if outdir is not None:
        check_output_dir(outdir, overwrite=overwrite)
    data, rejects = task.read()
    if rejects and on_invalid == "error":
        rejects.raise_first()
    if rejects and outdir is None:
        log.warning("%d invalid %s skipped; first: %s", len(rejects), task.noun,
                    rejects.items[0].describe())
    if not len(data):
        raise BadInputError(f"no usable {task.noun} in '{source}'")
    if outdir is None:
        return task.evaluate(model, data)
    write = getattr(task, "write_evaluation", None)
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        if rejects:
            rejects.apply("skip", tmp, final=outdir)
        metrics = write(model, data, tmp) if write is not None else task.evaluate(model, data)
        write_json(tmp / "metrics.json", metrics)
    return metrics


@dataclass
class InputChunk:
    """A chunk of a prediction input, as a :class:`PredictTask` yields it."""

    #: the input's rows (a DataFrame indexed by input line number), usable or not
    rows: Any
    #: the usable records among ``rows``, in row order: one per row without a reject
    records: Any
    #: the rows that cannot be predicted, by input line number
    rejects: Rejects


class PredictTask(Protocol):
    """What a domain declares for :func:`predict_file`."""

    #: what one input row is called in the progress bar ("molecules", "pairs")
    noun: str
    #: the input's name in messages and in the rejects table
    source: str
    #: header of the item column of the rejects table ("smiles", "pair")
    item_name: str

    def chunks(self) -> Iterator[InputChunk]:
        """The input, chunk by chunk (a bounded number of rows each)."""

    def predict(self, model: Any, records: Any) -> Any:
        """The prediction columns of ``records``: a DataFrame of one row per record, with the
        same columns for every chunk (also when ``records`` is empty)."""


def predict_file(task: PredictTask, model: Any, output: str | os.PathLike, *,
                 on_invalid: OnInvalid = "skip", desc: str = "predict",
                 cluster: Any = None) -> int:
    """Stream ``task``'s input through ``model`` into the table ``output`` (CSV, TSV or
    Parquet by suffix; ``-``: CSV on stdout), written atomically: every input row gets an
    output row, its own columns first (those named like an added column are replaced), then
    the prediction columns, then ``error`` (empty, or why the row was not predicted; its
    predictions are empty). ``on_invalid='error'`` stops at the first reject with a one-line
    error naming its input line, and nothing is written; ``skip`` writes the rejects beside
    ``output`` (``<stem>.rejected.csv``). Returns the number of rows written.

    ``model``: a loaded model or a :class:`~pmtoolkit.core.distributed.WorkerModel`; with a
    ``cluster`` that runs on Dask, the latter (each worker loads it once) and a task with
    ``rows`` and ``parse``: partitions of whole chunks, the same output."""
    from pmtoolkit.core.distributed import WorkerModel, named_model, run_job

    check_choice("on_invalid", on_invalid, ON_INVALID_CHOICES)
    if cluster is not None:
        job = PredictJob(task, named_model(model), on_invalid,
                         cluster.chunks_per_partition(task.chunksize))
        return run_job(job, output, cluster)["rows"]
    if isinstance(model, WorkerModel):
        model = model.get()

    def outputs():
        for chunk in task.chunks():
            rejects = sorted(chunk.rejects, key=lambda r: r.line)
            _stop_at(task, rejects, on_invalid)
            first = int(chunk.rows.index[0]) if len(chunk.rows) else None
            yield _output_rows(task, model, chunk, rejects), rejects, first

    return _write_outputs(task, outputs(), output, desc)


def _stop_at(task: PredictTask, rejects: list, on_invalid: OnInvalid) -> None:
    if rejects and on_invalid == "error":
        where = "" if rejects[0].file else f"{task.source}: "  # a shard's reject names it
        raise BadInputError(f"{where}{rejects[0].describe()}",
                            hint="use --on-invalid skip to score the rest")


def _write_outputs(task: PredictTask, outputs: Iterator[tuple[Any, list, int | None]],
                   output: str | os.PathLike, desc: str | None) -> int:
    """Write each chunk's output rows (``(frame, its rejects, its first input line)``) into
    ``output``, and the rejects beside it; a progress bar when ``desc``."""
    skipped = Rejects(source=task.source, item_name=task.item_name)
    bar = progress_bar(desc=desc or "", unit=task.noun, enabled=None if desc else False)
    columns: list | None = None  # the output's, fixed by its first rows
    left_out: set = set()
    try:
        with TableWriter(output) as writer:
            for frame, rejects, line in outputs:
                skipped.items.extend(rejects)
                if columns is None:
                    columns = list(frame.columns)
                elif list(frame.columns) != columns:
                    # an SDF's later records may carry other properties
                    new = [c for c in frame.columns if c not in columns and c not in left_out]
                    if new:
                        log.warning("%s: column(s) %s from line %s on are left out (the "
                                    "output has the columns of its first rows)", task.source,
                                    ", ".join(map(str, new)), line)
                        left_out.update(new)
                    frame = frame.reindex(columns=columns)
                writer.write(frame)
                bar.update(len(frame))
    finally:
        bar.close()
    if skipped:
        skipped.apply("skip", output)
    return writer.rows


@dataclass
class PredictJob:
    """:func:`predict_file` as a :class:`pmtoolkit.core.distributed.Job`: a partition is
    ``per_partition`` chunks of the task's ``rows()``; a worker parses and predicts them with
    its copy of the model, the merge writes them in order as a single-process run does."""

    task: Any  # a PredictTask with rows() and parse()
    model: Any  # WorkerModel
    on_invalid: OnInvalid
    per_partition: int
    name: str = "predict"

    def __post_init__(self):
        from pmtoolkit.core.distributed import shard_list

        if not hasattr(self.task, "rows"):
            raise BadInputError(f"{type(self.task).__name__} cannot run in partitions")
        # a task per shard (the task's ``input`` may be a list of files)
        self.shards = shard_list(getattr(self.task, "input", self.task.source))
        self.tasks = [dataclasses.replace(self.task, input=s) if len(self.shards) > 1
                      else self.task for s in self.shards]
        self.stop_on_rejects = self.on_invalid == "error"

    def settings(self) -> dict[str, Any]:
        # not --on-invalid: a partition's rows are the same under either policy, so a run
        # stopped at a reject resumes with skip
        options = {k: v for k, v in dataclasses.asdict(self.task).items() if k != "input"}
        return {"task": type(self.task).__name__, "options": options,
                "model": list(self.model.args), "model-version": self.model.version,
                "partition-size": self.task.chunksize * self.per_partition}

    def read(self, shard: str):
        from pmtoolkit.core.distributed import batched

        number = self.shards.index(shard)
        return ((number, rows) for rows in batched(self.tasks[number].rows(),
                                                   self.per_partition))

    def run(self, payload):
        from pmtoolkit.core.distributed import PartResult

        model = self.model.get()
        tables, rejected = [], []
        shard, chunks = payload
        task = self.tasks[shard]
        for rows in chunks:
            chunk = task.parse(rows)
            rejects = sorted(chunk.rejects, key=lambda r: r.line)
            tables.append(_output_rows(task, model, chunk, rejects))
            rejected.append(rejects)
        # the rejects of each chunk, for the merge (a chunk's table is one entry)
        return PartResult(tables, [r for rs in rejected for r in rs],
                          {"chunk_rejects": [len(rs) for rs in rejected]})

    def merge(self, parts, output) -> dict[str, Any]:
        task = self.tasks[0] if len(self.shards) == 1 else \
            dataclasses.replace(self.task, input=", ".join(self.shards))  # its name

        def outputs():
            for part in parts:
                start = 0
                for table, n in zip(part.tables, part.counts["chunk_rejects"]):
                    rejects = part.rejects[start:start + n]
                    start += n
                    _stop_at(task, rejects, self.on_invalid)
                    yield table, rejects, None

        return {"rows": _write_outputs(task, outputs(), output, None)}


def _output_rows(task: PredictTask, model: Any, chunk: InputChunk, rejects: list) -> Any:
    """One chunk's output rows: the input's columns, the predictions, ``error``."""
    import numpy as np
    import pandas as pd

    rows = chunk.rows
    reasons = {r.line: r.reason for r in rejects}
    usable = np.array([line not in reasons for line in rows.index], dtype=bool)
    pred = task.predict(model, chunk.records)
    if len(pred) != usable.sum():
        raise ValueError(f"{len(pred)} predictions for {usable.sum()} usable rows")
    # rejected rows get empty predictions (NaN), in place
    pred = pred.set_axis(rows.index[usable]).reindex(rows.index).reset_index(drop=True)
    pred["error"] = [reasons.get(line, "") for line in rows.index]
    base = rows.drop(columns=[c for c in pred.columns if c in rows.columns])
    return pd.concat([base.reset_index(drop=True), pred], axis=1)
