"""File-level workflows behind ``pmt ehr``: build a labelled dataset from events, train,
predict, evaluate and explain.

A dataset file is JSON lines (``.jsonl`` or ``.jsonl.gz``): a header line with the task
settings, the build summary (samples, positives, exclusions with counts) and the split
fractions, then one sample per line with its patient-level ``split`` (train / valid / test).
"""
from __future__ import annotations

import gzip
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.ehr.config import TaskConfig
from pmtoolkit.ehr.tasks import Sample

log = logging.getLogger(__name__)

FORMAT = "pmtoolkit-ehr-dataset/1"
#: Shipped risk models users name with ``--model`` (data/MANIFEST).
SHIPPED_MODELS = ("synthea-mortality",)


def read_events(source: str | os.PathLike, *, patients: str | None = None,
                columns: dict[str, str] | None = None, system: str | None = None):
    """A Synthea export folder, or an event table file."""
    from pmtoolkit.ehr.events import read_event_table, read_synthea

    p = Path(source)
    if not p.exists():
        raise MissingInputError(f"events '{p}' do not exist")
    if p.is_dir():
        return read_synthea(p)
    return read_event_table(p, patients=patients, columns=columns, system=system)


def build(source: str | os.PathLike, output: str | os.PathLike, config: TaskConfig, *,
          fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), split_seed: int = 0,
          patients: str | None = None, columns: dict[str, str] | None = None,
          system: str | None = None) -> dict[str, Any]:
    """Events + task -> a dataset file; returns the build summary."""
    from pmtoolkit.core.config import to_dict
    from pmtoolkit.core.io import atomic_write
    from pmtoolkit.ehr.tasks import build_samples, patient_split

    table = read_events(source, patients=patients, columns=columns, system=system)
    samples = build_samples(table, config)
    if not len(samples):
        raise BadInputError("the task selects no samples",
                            hint="excluded: " + ", ".join(f"{n} {r}" for r, n in
                                                          samples.excluded.most_common()))
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
    descriptions = {f"{sy}:{co}": str(d) for sy, co, d in
                    zip(ev["system"], ev["code"], ev["description"]) if f"{sy}:{co}" in used}
    header = {"format": FORMAT, "task": to_dict(config), "source": str(source),
              "fractions": list(fractions), "split_seed": split_seed, "summary": summary,
              "descriptions": descriptions}
    with atomic_write(output) as fh:  # gzip-compressed when the name ends in .gz
        fh.write(json.dumps(header) + "\n")
        for s, part in zip(samples.samples, side):
            fh.write(json.dumps({**s.to_dict(), "split": part}) + "\n")
    return summary


def read_dataset(path: str | os.PathLike, *, split: str | None = None
                 ) -> tuple[dict[str, Any], list[Sample], list[str]]:
    """``(header, samples, splits)`` of a dataset file; ``split`` keeps one part."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"dataset '{p}' does not exist")
    opener = gzip.open if p.name.endswith(".gz") else open
    samples, parts = [], []
    try:
        with opener(p, "rt", encoding="utf-8") as fh:
            header = json.loads(fh.readline())
            if header.get("format") != FORMAT:
                raise BadInputError(f"'{p}' is not a pmtoolkit EHR dataset",
                                    hint="make one with pmt ehr build")
            for line_no, line in enumerate(fh, start=2):
                if not line.strip():
                    continue
                d = json.loads(line)
                if split is not None and d.get("split") != split:
                    continue
                samples.append(Sample(d["patient_id"], pd.Timestamp(d["index_time"]),
                                      int(d["label"]), d["visits"], d["days_before"],
                                      d.get("age"), d.get("sex")))
                parts.append(d.get("split", ""))
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError, OSError) as exc:
        raise BadInputError(f"cannot read dataset '{p}': {exc}") from None
    return header, samples, parts


def _short(pid: str) -> str:
    return pid if len(pid) <= 12 else pid[:8] + "…"


def load_model(path: str | os.PathLike):
    from pmtoolkit.core.model import load_named
    from pmtoolkit.ehr.models import RiskModel

    return load_named(path, shipped_names=SHIPPED_MODELS, model_class=RiskModel,
                      what="EHR risk model")


def train(dataset: str | os.PathLike, outdir: str | os.PathLike, config, *,
          overwrite: bool = False) -> dict[str, Any]:
    """Train on the dataset's train part (valid part: early stopping, calibration,
    threshold), score its test part, and write ``outdir``: ``model.safetensors``,
    ``metrics.json``, ``config.json``."""
    from pmtoolkit.core.config import write_resolved
    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_json
    from pmtoolkit.ehr.evaluate import risk_metrics
    from pmtoolkit.ehr.models import fit_risk_model

    check_output_dir(outdir, overwrite=overwrite)
    header, samples, parts = read_dataset(dataset)
    by = {name: [s for s, p in zip(samples, parts) if p == name]
          for name in ("train", "valid", "test")}
    model = fit_risk_model(by["train"], by["valid"], config, task=header["task"])
    metrics = dict(model.metadata["metrics"])
    if by["test"]:
        y = np.array([s.label for s in by["test"]])
        metrics["test"] = risk_metrics(y, model.predict_proba(by["test"]),
                                       model.threshold if model.threshold is not None else 0.5)
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        model.save(tmp / "model.safetensors", metrics=metrics)
        write_json(tmp / "metrics.json", metrics)
        write_resolved(tmp / "config.json", model=config, data={"dataset": str(dataset),
                                                                "task": header["task"]})
    return metrics


def _is_dataset(path: str | os.PathLike) -> bool:
    name = Path(path).name.lower()
    return Path(path).is_file() and name.endswith((".jsonl", ".jsonl.gz"))


def predict(model, source: str | os.PathLike, output: str | os.PathLike, *,
            split: str | None = None, patients: str | None = None,
            columns: dict[str, str] | None = None, system: str | None = None) -> int:
    """Risks of a dataset's samples, or — for events (a Synthea folder or an event table) —
    of every living patient as of their last visit, with the history built as the model's
    training task built it."""
    from pmtoolkit.core.config import from_mapping
    from pmtoolkit.core.io import write_table
    from pmtoolkit.ehr.tasks import current_samples

    if _is_dataset(source):
        _, samples, parts = read_dataset(source, split=split)
        table = model.predict(samples)
        table.insert(2, "split", parts)
        table.insert(3, "label", [s.label for s in samples])
    else:
        config = from_mapping(TaskConfig, model.task or {}, source="the model's task")
        events = read_events(source, patients=patients, columns=columns, system=system)
        samples = current_samples(events, config).samples
        if not samples:
            raise BadInputError(f"no living patient with enough visits in '{source}'")
        table = model.predict(samples)
    write_table(table, output)
    return len(table)


def evaluate(model, dataset: str | os.PathLike, outdir: str | os.PathLike, *,
             split: str = "test", threshold: float | None = None,
             overwrite: bool = False) -> dict[str, Any]:
    """Metrics of one part of a dataset, a reliability diagram and a report."""
    import pandas as pd

    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_json
    from pmtoolkit.core.plots import roc_plot
    from pmtoolkit.core.report import Report
    from pmtoolkit.ehr.evaluate import plot_reliability, risk_metrics

    check_output_dir(outdir, overwrite=overwrite)
    _, samples, _ = read_dataset(dataset, split=split)
    if not samples:
        raise BadInputError(f"the dataset has no {split!r} samples")
    y = np.array([s.label for s in samples])
    p = model.predict_proba(samples)
    t = threshold if threshold is not None else (model.threshold or 0.5)
    res = risk_metrics(y, p, t)
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        write_json(tmp / "metrics.json", res)
        plot_reliability(y, p, tmp / "calibration.png")
        both = 0 < y.sum() < len(y)
        roc_plot(tmp / "roc.png", [("outcome", y, p)] if both else [],
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
        report.write(tmp / "report.html")
    return res


def explain(model, dataset: str | os.PathLike, outdir: str | os.PathLike, *,
            patients: list[str] | None = None, top: int = 5, split: str | None = "test",
            overwrite: bool = False) -> dict[str, Any]:
    """Per-visit and per-code contributions (``contributions.csv``, ``visits.csv``) of the
    chosen patients' samples (default: the ``top`` patients of ``split`` with the highest
    risk, at the visit of their highest risk), and a timeline picture of each."""
    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_table
    from pmtoolkit.ehr.evaluate import plot_timeline

    check_output_dir(outdir, overwrite=overwrite)
    header, samples, _ = read_dataset(dataset, split=None if patients else split)
    if patients:
        wanted = set(patients)
        chosen = [s for s in samples if s.patient_id in wanted]
        missing = wanted - {s.patient_id for s in chosen}
        if missing:
            raise BadInputError(f"no samples of patient(s) {sorted(missing)[:3]} in '{dataset}'")
    else:
        p = model.predict_proba(samples)
        chosen, seen = [], set()
        for i in np.argsort(-p, kind="stable"):  # the highest risk of each patient, in turn
            if samples[i].patient_id not in seen:
                seen.add(samples[i].patient_id)
                chosen.append(samples[i])
            if len(chosen) == top:
                break
    contrib = model.contributions(chosen)
    names = header.get("descriptions") or {}
    contrib.insert(contrib.columns.get_loc("code") + 1, "description",
                   [names.get(c, "") for c in contrib["code"]])
    probs = model.predict_proba(chosen)
    contrib["probability"] = probs[contrib["sample"].to_numpy()]
    visits = (contrib.groupby(["sample", "patient_id", "visit", "days_before"])["contribution"]
              .sum().reset_index())
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        write_table(contrib, tmp / "contributions.csv")
        write_table(visits, tmp / "visits.csv")
        for i, s in enumerate(chosen):
            plot_timeline(contrib[contrib["sample"] == i], tmp / f"timeline_{i}_{s.patient_id}.png",
                          title=f"patient {_short(s.patient_id)} at {s.index_time.date()}: "
                                f"risk {probs[i]:.2f}, outcome {s.label}")
    return {"samples": len(chosen), "rows": len(contrib)}
