"""File-level workflows behind ``pmt ehr``: build a labelled dataset from events, train,
predict, evaluate and explain (``build``, ``train_file``, ``predict_file``,
``evaluate_file``, ``explain``); training and evaluation are a :class:`RiskTask` run through
:mod:`pmtoolkit.core.workflow`.

A dataset file is JSON lines (``.jsonl`` or ``.jsonl.gz``): a header line with the task
settings, the build summary (samples, positives, exclusions with counts) and the split
fractions, then one sample per line with its patient-level ``split`` (train / valid / test).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.core.io import OnInvalid, Rejects
from pmtoolkit.core.workflow import Parts
from pmtoolkit.ehr.config import TaskConfig
from pmtoolkit.ehr.tasks import Sample

log = logging.getLogger(__name__)

FORMAT = "pmtoolkit-ehr-dataset/1"
#: what a dataset file's name ends with (JSON lines, optionally gzip-compressed)
DATASET_SUFFIXES = (".jsonl", ".jsonl.gz")
#: Shipped risk models users name with ``--model`` (data/MANIFEST).
SHIPPED_MODELS = ("synthea-mortality",)


def read_events(source: str | os.PathLike, *, layout: str | None = None,
                patients: str | None = None, columns: dict[str, str] | None = None,
                system: str | None = None, tables: tuple[str, ...] = ()):
    """Events of a record layout (:data:`~pmtoolkit.ehr.importers.LAYOUTS`): a MIMIC-III,
    MIMIC-IV, eICU, OMOP or Synthea folder, or an event table file (``events``); ``layout``
    None: told from the folder's tables. ``tables``: a hospital layout reads only the tables
    giving these events (default: all)."""
    from pmtoolkit.core.io import check_choice
    from pmtoolkit.ehr.events import read_event_table, read_synthea
    from pmtoolkit.ehr.importers import LAYOUTS, READERS, detect_layout

    p = Path(source)
    if not p.exists():
        raise MissingInputError(f"events '{p}' do not exist")
    layout = detect_layout(p) if layout is None else check_choice("--format", layout, LAYOUTS)
    if (layout == "events") != p.is_file():
        wants, found = ("a file", "a folder") if layout == "events" else ("a folder", "a file")
        raise BadInputError(f"--format {layout} reads {wants}, and '{p}' is {found}")
    extra = [o for o, v in (("--patients", patients), ("--column", columns),
                            ("--system", system)) if v]
    if extra and layout != "events":
        raise BadInputError(f"{extra[0]} is for event tables, not a {layout} folder")
    if layout == "events":
        return read_event_table(p, patients=patients, columns=columns, system=system)
    if layout == "synthea":
        return read_synthea(p)
    return READERS[layout](p, tables=tuple(tables) or None)


def build(source: str | os.PathLike, output: str | os.PathLike, config: TaskConfig, *,
          fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), split_seed: int = 0,
          layout: str | None = None, patients: str | None = None,
          columns: dict[str, str] | None = None, system: str | None = None) -> dict[str, Any]:
    """Events + task -> a dataset file; returns the build summary."""
    from pmtoolkit.core.config import to_dict
    from pmtoolkit.core.io import atomic_write
    from pmtoolkit.ehr.tasks import build_samples, patient_split

    if not str(output).lower().endswith(DATASET_SUFFIXES):
        raise BadInputError(f"output '{output}': a dataset is written as JSON lines",
                            hint="name it .jsonl or .jsonl.gz")
    from pmtoolkit.ehr.importers import detect_layout

    layout = layout or detect_layout(source)
    wanted = config.tables + (config.target_tables if config.kind == "next_visit" else ())
    table = read_events(source, layout=layout, patients=patients, columns=columns,
                        system=system, tables=wanted if config.tables else ())
    samples = build_samples(table, config)
    if not len(samples):
        excluded = ", ".join(f"{n} {r}" for r, n in samples.excluded.most_common())
        rejected = (f"; {len(table.rejects)} record(s) rejected, first: "
                    f"{table.rejects.items[0].describe()}" if table.rejects else "")
        raise BadInputError("the task selects no samples",
                            hint=f"excluded: {excluded or 'none'}{rejected}")
    split = patient_split(samples, fractions, seed=split_seed)
    side = np.empty(len(samples), dtype=object)
    for name, idx in split.items():
        side[idx] = name
    summary = samples.summary()
    summary["events"] = table.summary()
    summary["rejected_records"] = table.reject_counts()
    summary["split"] = {name: {"samples": len(idx),
                               "positives": int(samples.labels[idx].sum())}
                        for name, idx in split.items()}
    ev = table.events.dropna(subset=["description"]).drop_duplicates(["system", "code"])
    used = {c for s in samples.samples for v in s.visits for c in v}
    used |= {c for s in samples.samples for c in (s.targets or ())}
    descriptions = {f"{sy}:{co}": str(d) for sy, co, d in
                    zip(ev["system"], ev["code"], ev["description"]) if f"{sy}:{co}" in used}
    header = {"format": FORMAT, "task": to_dict(config), "source": str(source),
              "layout": layout,
              "fractions": list(fractions), "split_seed": split_seed, "summary": summary,
              "descriptions": descriptions}
    with atomic_write(output) as fh:  # gzip-compressed when the name ends in .gz
        fh.write(json.dumps(header) + "\n")
        for s, part in zip(samples.samples, side):
            fh.write(json.dumps({**s.to_dict(), "split": part}) + "\n")
    return summary


@dataclass
class Dataset:
    """A dataset file as read: its header, the valid samples with the part each belongs to,
    and the lines that are not samples (line number and reason)."""

    header: dict[str, Any]
    samples: list[Sample]
    parts: list[str]
    rejects: Rejects


#: what a dataset line's ``split`` may be (absent: a dataset written without a split)
PARTS = ("train", "valid", "test")


def load_dataset(path: str | os.PathLike, *, split: str | None = None) -> Dataset:
    """Read a dataset file; ``split`` keeps one part. Every line after the header must be a
    sample (:meth:`Sample.from_dict`) within the header task's ``max_visits`` and
    ``max_codes_per_visit``; any other line is a reject with its number and reason. A file
    that is not a dataset (no header, not text, a truncated ``.gz``) is a one-line error."""
    from pmtoolkit.core.io import open_text, require_file

    p = require_file(path, "dataset")
    samples, parts = [], []
    rejects = Rejects(source=str(p), item_name="sample")
    with open_text(p) as fh:
        header, task = _header(fh.readline().lstrip("\ufeff"), p)  # a BOM is not content
        for line_no, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                sample = Sample.from_dict(d)
                part = d.get("split", "")
                if part not in PARTS + ("",):
                    raise ValueError(f"'split' must be one of {', '.join(PARTS)}, not "
                                     f"{part!r}")
                _within_task(sample, task)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
                reason = "not JSON" if isinstance(exc, json.JSONDecodeError) else \
                    "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                rejects.add(line.strip()[:80], line_no, reason)
                continue
            if split is None or part == split:
                samples.append(sample)
                parts.append(part)
    return Dataset(header, samples, parts, rejects)


def _header(line: str, path: Path) -> tuple[dict[str, Any], TaskConfig]:
    """The header line of a dataset and its task (checked as a config file would be)."""
    from pmtoolkit.core.config import from_mapping

    try:
        header = json.loads(line)
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BadInputError(f"'{path}' is not a pmtoolkit EHR dataset (line 1 is not its "
                            "header)", hint="make one with pmt ehr build")
    task = header.get("task", {})
    if not isinstance(task, dict) or not isinstance(header.get("descriptions", {}), dict):
        raise BadInputError(f"'{path}': the header's task or descriptions are not JSON "
                            "objects", hint="make the dataset with pmt ehr build")
    return header, from_mapping(TaskConfig, task, source=f"the task in '{path}'")


def _within_task(sample: Sample, task: TaskConfig) -> None:
    """A sample longer than its task keeps is not one the task built (and could make the
    padded batches of a model arbitrarily large)."""
    if len(sample.visits) > task.max_visits:
        raise ValueError(f"{len(sample.visits)} visits, more than the task's max_visits "
                         f"{task.max_visits}")
    longest = max(len(v) for v in sample.visits)
    if longest > task.max_codes_per_visit:
        raise ValueError(f"a visit of {longest} codes, more than the task's "
                         f"max_codes_per_visit {task.max_codes_per_visit}")


def read_dataset(path: str | os.PathLike, *, split: str | None = None
                 ) -> tuple[dict[str, Any], list[Sample], list[str]]:
    """``(header, samples, splits)`` of a dataset file; ``split`` keeps one part. A line
    that is not a valid sample is an error naming it (:func:`load_dataset` keeps them)."""
    data = load_dataset(path, split=split)
    data.rejects.raise_first()
    return data.header, data.samples, data.parts


def _dataset(path, split: str | None, on_invalid: OnInvalid) -> Dataset:
    """:func:`load_dataset` under the bad-input policy: ``error`` stops on the first invalid
    line; ``skip`` keeps going (the caller lists the rejects beside its output)."""
    from pmtoolkit.core.io import check_choice

    check_choice("on_invalid", on_invalid, ("error", "skip"))
    data = load_dataset(path, split=split)
    if on_invalid == "error":
        data.rejects.raise_first()
    return data


def _target_index(model, code: str) -> int:
    if code not in (model.targets or []):
        raise BadInputError(f"the model does not predict {code!r}",
                            hint="codes are SYSTEM:CODE, e.g. SNOMED-CT:444814009")
    return model.targets.index(code)


def _short(pid: str) -> str:
    return pid if len(pid) <= 12 else pid[:8] + "…"


def _file_part(pid: str) -> str:
    """A patient id as part of a file name: ids come from the user's data, so a ``/`` or
    ``..`` in one must not write outside the output folder."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", pid)[:40].lstrip(".") or "patient"


def load(name_or_path: str | os.PathLike):
    """A saved EHR risk model, or a shipped one by name (``synthea-mortality``)."""
    from pmtoolkit.core.model import load_named
    from pmtoolkit.ehr.models import RiskModel

    return load_named(name_or_path, shipped_names=SHIPPED_MODELS, model_class=RiskModel,
                      what="EHR risk model")


@dataclass
class RiskTask:
    """The EHR domain's :class:`~pmtoolkit.core.workflow.SupervisedTask`: a dataset file from
    ``pmt ehr build``, whose patient-level split is given (the task's split returns its
    parts), a risk model (its validation part decides early stopping, calibration and
    threshold and is scored by the fit), and the test part's risk or next-visit metrics.
    ``part`` and ``threshold`` are what :func:`evaluate_file` scores."""

    dataset: str | os.PathLike
    config: Any = None
    on_invalid: OnInvalid = "error"
    part: str | None = None
    threshold: float | None = None
    min_records: int = 1
    #: the fit scores the validation part (val_auprc, val_auroc, threshold)
    evaluate_valid: bool = False

    def __post_init__(self):
        from pmtoolkit.core.io import check_choice

        check_choice("on_invalid", self.on_invalid, ("error", "skip"))
        self.noun = "samples" if self.part is None else f"{self.part} samples"
        self._header: dict[str, Any] = {}

    def settings(self) -> dict[str, Any]:
        from pmtoolkit.core.config import to_dict

        return {"model": to_dict(self.config), "data": {
            "dataset": str(self.dataset), "task": self._header.get("task"),
            "on-invalid": self.on_invalid}}

    def read(self):
        data = load_dataset(self.dataset, split=self.part)
        self._header = data.header
        return _Samples(data.samples, data.parts), data.rejects

    def split(self, data) -> Parts:
        from pmtoolkit.core.devices import resolve_device
        from pmtoolkit.ehr.models import check_training

        by = {name: [s for s, p in zip(data, data.parts) if p == name] for name in PARTS}
        # everything that can refuse the run does so before the work folder exists
        check_training(by["train"], self.config)
        resolve_device(self.config.device)
        return Parts(by["train"], by["valid"], by["test"], method="given", save=None)

    def fit(self, train, valid, *, workdir, checkpoints, resume):
        from pmtoolkit.ehr.models import fit_risk_model

        return fit_risk_model(train, valid or [], self.config, task=self._header.get("task"),
                              workdir=workdir, checkpoints=checkpoints, resume=resume)

    def summary(self, model) -> dict[str, Any]:
        return dict(model.metadata["metrics"])

    def evaluate(self, model, data):
        return _metrics(model, list(data), self.threshold)

    def write_test(self, model, test, folder: Path) -> None:
        """Nothing: an EHR run folder holds no predictions (``pmt ehr predict --part test``
        writes them, ``pmt ehr evaluate`` the figures)."""

    def write_evaluation(self, model, data, folder: Path) -> dict[str, Any]:
        """:func:`evaluate_file`'s folder: a reliability diagram, a ROC curve and a report
        (next-visit models: see :func:`_write_next_visit`)."""
        samples = list(data)
        if model.multilabel:
            return _write_next_visit(model, samples, folder, split=self.part)
        return _write_risk(model, samples, folder, split=self.part, threshold=self.threshold)


class _Samples(list):
    """A dataset's samples with the part each belongs to."""

    def __init__(self, samples: list[Sample], parts: list[str]):
        super().__init__(samples)
        self.parts = parts


def train_file(dataset: str | os.PathLike, outdir: str | os.PathLike, *, config,
               overwrite: bool = False, resume: bool = False,
               on_invalid: OnInvalid = "error") -> dict[str, Any]:
    """Train on the dataset's train part (valid part: early stopping, calibration,
    threshold), score its test part, and write ``outdir`` (a :class:`RiskTask` run through
    :func:`pmtoolkit.core.workflow.train_file`): ``model.safetensors``, ``metrics.json``,
    ``config.json`` (and ``rejected.csv`` when lines were skipped). An interrupted run keeps
    its checkpoint in ``outdir/work`` and continues from it with ``resume``."""
    from pmtoolkit.core import workflow
    from pmtoolkit.core.io import check_output_dir

    task = RiskTask(dataset, config, on_invalid)
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    return workflow.train_file(task, outdir, source=dataset, on_invalid=on_invalid,
                               overwrite=overwrite, resume=resume)


def _metrics(model, samples: list[Sample], threshold: float | None = None) -> dict[str, Any]:
    """Risk metrics of binary samples, or next-visit metrics (recall@k, AUPRC, AUROC)."""
    from pmtoolkit.ehr.evaluate import risk_metrics
    from pmtoolkit.ehr.models import next_visit_metrics

    p = model.predict_proba(samples)
    if model.multilabel:
        return next_visit_metrics(model.target_matrix(samples), p)
    y = np.array([s.label for s in samples])
    t = threshold if threshold is not None else (model.threshold or 0.5)
    return risk_metrics(y, p, t)


def _is_dataset(path: str | os.PathLike) -> bool:
    name = Path(path).name.lower()
    return Path(path).is_file() and name.endswith(DATASET_SUFFIXES)


def predict_file(model, source: str | os.PathLike, output: str | os.PathLike, *,
                 split: str | None = None, layout: str | None = None,
                 patients: str | None = None,
                 columns: dict[str, str] | None = None, system: str | None = None,
                 on_invalid: OnInvalid = "error") -> int:
    """Risks of a dataset's samples, or — for records (a folder of a layout of
    :func:`read_events`, or an event table) — of every living patient as of their last visit, with the history built as the model's
    training task built it. Invalid dataset lines: see :func:`_dataset`; skipped ones are
    listed in ``<stem>.rejected.csv`` beside the output."""
    from pmtoolkit.core.config import from_mapping
    from pmtoolkit.core.io import write_table
    from pmtoolkit.ehr.tasks import current_samples

    rejects = None
    if _is_dataset(source):
        if layout is not None:
            raise BadInputError(f"--format {layout} is for records; '{source}' is a dataset")
        data = _dataset(source, split, on_invalid)
        samples, parts, rejects = data.samples, data.parts, data.rejects
        table = model.predict(samples)
        if model.multilabel:  # long table: rank, code, probability, observed in the visit
            k = len(table) // max(1, len(samples))
            table.insert(2, "split", np.repeat(parts, k))
            truth = np.repeat([set(s.targets or ()) for s in samples], k)
            table["observed"] = [int(c in t) for c, t in zip(table["code"], truth)]
        else:
            table.insert(2, "split", parts)
            table.insert(3, "label", [s.label for s in samples])
    else:
        config = from_mapping(TaskConfig, model.task or {}, source="the model's task")
        events = read_events(source, layout=layout, patients=patients, columns=columns,
                             system=system, tables=config.tables)
        samples = current_samples(events, config).samples
        if not samples:
            raise BadInputError(f"no living patient with enough visits in '{source}'")
        table = model.predict(samples)
    write_table(table, output)
    if rejects:
        rejects.apply("skip", output)
    return len(table)


def evaluate_file(model, dataset: str | os.PathLike, outdir: str | os.PathLike, *,
                  split: str = "test", threshold: float | None = None,
                  overwrite: bool = False, on_invalid: OnInvalid = "error") -> dict[str, Any]:
    """Metrics of one part of a dataset, a reliability diagram and a report (and
    ``rejected.csv`` when invalid lines were skipped): a :class:`RiskTask` run through
    :func:`pmtoolkit.core.workflow.evaluate_file`."""
    from pmtoolkit.core import workflow

    task = RiskTask(dataset, model.config, on_invalid, part=split, threshold=threshold)
    return workflow.evaluate_file(task, model, source=dataset, on_invalid=on_invalid,
                                  outdir=outdir, overwrite=overwrite)


def _write_risk(model, samples: list[Sample], folder: Path, *, split: str,
                threshold: float | None) -> dict[str, Any]:
    """Risk metrics at ``threshold`` (default: the model's), a reliability diagram, a ROC
    curve and a report, in ``folder``."""
    import pandas as pd

    from pmtoolkit.core.plots import roc_plot
    from pmtoolkit.core.report import Report
    from pmtoolkit.ehr.evaluate import plot_reliability, risk_metrics

    y = np.array([s.label for s in samples])
    p = model.predict_proba(samples)
    t = threshold if threshold is not None else (model.threshold or 0.5)
    res = risk_metrics(y, p, t)
    plot_reliability(y, p, folder / "calibration.png")
    both = 0 < y.sum() < len(y)
    roc_plot(folder / "roc.png", [("outcome", y, p)] if both else [],
             point=(y, p, t) if both else None)
    report = Report("EHR risk model evaluation",
                    subtitle=f"{res['n']} {split} samples, {res['positives']} with the outcome")
    keys = ["auroc", "auprc", "brier", "ece", "threshold", "sensitivity", "specificity",
            "ppv", "npv"]
    report.section("Metrics").table(pd.DataFrame({"metric": keys,
                                                  "value": [float(res[k]) for k in keys]}),
                                    floatfmt="{:.4f}")
    report.section("Pictures").figure("roc.png", "ROC curve").figure(
        "calibration.png", "Calibration of the predicted probabilities")
    report.write(folder / "report.html")
    return res


def _write_next_visit(model, samples: list[Sample], folder: Path, *,
                      split: str) -> dict[str, Any]:
    """Next-visit codes: recall@k, micro/macro AUROC and AUPRC; per-code table; a picture of
    recall@k against k beside two baselines a model must beat: the patient's own past codes
    (most often coded first) and the codes most common in the evaluated samples; all in
    ``folder``."""
    import pandas as pd

    from pmtoolkit.core.io import write_table
    from pmtoolkit.core.metrics import pr_auc, roc_auc
    from pmtoolkit.core.plots import figure
    from pmtoolkit.core.report import Report
    from pmtoolkit.ehr.models import next_visit_metrics

    y = model.target_matrix(samples)
    p = model.predict_proba(samples)
    ks = (1, 2, 3, 5, 10, 15, 20, 30)
    res = next_visit_metrics(y, p, ks)
    freq = np.broadcast_to(y.mean(0), y.shape)
    base = next_visit_metrics(y, freq, ks)
    hist = next_visit_metrics(y, history_scores(model.targets, samples, y.mean(0)), ks)
    res["baseline_most_frequent"] = {k: v for k, v in base.items() if k.startswith("recall")}
    res["baseline_patient_history"] = {k: v for k, v in hist.items()
                                       if k.startswith("recall")}
    per_code = pd.DataFrame({
        "code": model.targets, "visits_with_code": y.sum(0).astype(int),
        "auroc": [roc_auc(y[:, j], p[:, j]) if 0 < y[:, j].sum() < len(y) else np.nan
                  for j in range(y.shape[1])],
        "auprc": [pr_auc(y[:, j], p[:, j]) if y[:, j].sum() else np.nan
                  for j in range(y.shape[1])]}).sort_values("visits_with_code",
                                                            ascending=False)
    res["n"] = len(samples)
    write_table(per_code, folder / "per_code.csv")
    with figure(folder / "recall_at_k.png", size=(4.6, 3.6)) as (_, ax):
        ax.plot(ks, [res[f"recall@{k}"] for k in ks], "o-", label="model")
        ax.plot(ks, [hist[f"recall@{k}"] for k in ks], "^--", color="#d97706",
                label="the patient's past codes")
        ax.plot(ks, [base[f"recall@{k}"] for k in ks], "s--", color="#888",
                label="most frequent codes")
        ax.set_xlabel("k (codes predicted)")
        ax.set_ylabel("recall@k")
        ax.set_ylim(0, 1)
        ax.legend(frameon=False)
    report = Report("Next-visit code prediction",
                    subtitle=f"{len(samples)} {split} samples, {y.shape[1]} codes")
    keys = [f"recall@{k}" for k in (5, 10, 20)] + ["micro_auprc", "micro_auroc",
                                                    "macro_auroc"]
    report.section("Metrics").table(pd.DataFrame({
        "metric": keys, "model": [float(res[k]) for k in keys],
        "the patient's past codes": [float(hist[k]) for k in keys],
        "most frequent codes": [float(base[k]) for k in keys]}), floatfmt="{:.4f}")
    report.section("Pictures").figure("recall_at_k.png", "recall@k against k")
    report.section("Codes").table(per_code, max_rows=30)
    report.write(folder / "report.html")
    return res


def history_scores(targets: list[str], samples: list[Sample], prior: np.ndarray) -> np.ndarray:
    """The patient's-past-codes baseline: each target code scored by how many past visits of
    the sample hold it, ties broken by ``prior`` (a frequency, below 1)."""
    index = {t: i for i, t in enumerate(targets)}
    out = np.tile(np.asarray(prior, dtype=float), (len(samples), 1))
    for i, s in enumerate(samples):
        for visit in s.visits:
            for c in set(visit):
                j = index.get(c)
                if j is not None:
                    out[i, j] += 1.0
    return out


def explain(model, dataset: str | os.PathLike, outdir: str | os.PathLike, *,
            patients: list[str] | None = None, top: int = 5, split: str | None = "test",
            target: str | None = None, overwrite: bool = False,
            on_invalid: OnInvalid = "error") -> dict[str, Any]:
    """Per-visit and per-code contributions (``contributions.csv``, ``visits.csv``) of the
    chosen patients' samples (default: the ``top`` patients of ``split`` with the highest
    risk, at the visit of their highest risk), and a timeline picture of each. Next visit:
    the contributions to ``target``'s logit, by default each sample's most probable code."""
    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_table
    from pmtoolkit.ehr.evaluate import plot_timeline

    check_output_dir(outdir, overwrite=overwrite)
    data = _dataset(dataset, None if patients else split, on_invalid)
    header, samples = data.header, data.samples
    if patients:
        wanted = set(patients)
        chosen = [s for s in samples if s.patient_id in wanted]
        missing = wanted - {s.patient_id for s in chosen}
        if missing:
            raise BadInputError(f"no samples of patient(s) {sorted(missing)[:3]} in '{dataset}'")
    elif not samples:
        raise BadInputError(f"the dataset has no {split!r} samples")
    else:
        p = model.predict_proba(samples)
        if model.multilabel:
            p = p.max(1) if target is None else p[:, _target_index(model, target)]
        chosen, seen = [], set()
        for i in np.argsort(-p, kind="stable"):  # the highest risk of each patient, in turn
            if samples[i].patient_id not in seen:
                seen.add(samples[i].patient_id)
                chosen.append(samples[i])
            if len(chosen) == top:
                break
    contrib = model.contributions(chosen, target=target)
    names = header.get("descriptions") or {}
    contrib.insert(contrib.columns.get_loc("code") + 1, "description",
                   [names.get(c, "") for c in contrib["code"]])
    probs = model.predict_proba(chosen)
    if model.multilabel:  # the probability of the code explained
        which = [model.targets.index(t) for t in
                 contrib.groupby("sample")["target"].first().reindex(range(len(chosen)))]
        probs = probs[np.arange(len(chosen)), which]
    contrib["probability"] = probs[contrib["sample"].to_numpy()]
    visits = (contrib.groupby(["sample", "patient_id", "visit", "days_before"])["contribution"]
              .sum().reset_index())
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        if data.rejects:
            data.rejects.apply("skip", tmp, final=outdir)
        write_table(contrib, tmp / "contributions.csv")
        write_table(visits, tmp / "visits.csv")
        for i, s in enumerate(chosen):
            if model.multilabel:
                code = model.targets[which[i]]
                seen_next = "in" if code in (s.targets or ()) else "not in"
                title = (f"patient {_short(s.patient_id)} at {s.index_time.date()}: "
                         f"{names.get(code, code)[:40]} {probs[i]:.2f} ({seen_next} the next "
                         "visit)")
            else:
                title = (f"patient {_short(s.patient_id)} at {s.index_time.date()}: "
                         f"risk {probs[i]:.2f}, outcome {s.label}")
            plot_timeline(contrib[contrib["sample"] == i],
                          tmp / f"timeline_{i}_{_file_part(s.patient_id)}.png", title=title)
    return {"samples": len(chosen), "rows": len(contrib)}
