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
    used |= {c for s in samples.samples for c in (s.targets or ())}
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
                                      d.get("age"), d.get("sex"), d.get("targets")))
                parts.append(d.get("split", ""))
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError, OSError) as exc:
        raise BadInputError(f"cannot read dataset '{p}': {exc}") from None
    return header, samples, parts


def _target_index(model, code: str) -> int:
    if code not in (model.targets or []):
        raise BadInputError(f"the model does not predict {code!r}",
                            hint="codes are SYSTEM:CODE, e.g. SNOMED-CT:444814009")
    return model.targets.index(code)


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
    from pmtoolkit.ehr.models import fit_risk_model

    check_output_dir(outdir, overwrite=overwrite)
    header, samples, parts = read_dataset(dataset)
    by = {name: [s for s, p in zip(samples, parts) if p == name]
          for name in ("train", "valid", "test")}
    model = fit_risk_model(by["train"], by["valid"], config, task=header["task"])
    metrics = dict(model.metadata["metrics"])
    if by["test"]:
        metrics["test"] = _metrics(model, by["test"])
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        model.save(tmp / "model.safetensors", metrics=metrics)
        write_json(tmp / "metrics.json", metrics)
        write_resolved(tmp / "config.json", model=config, data={"dataset": str(dataset),
                                                                "task": header["task"]})
    return metrics


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
    if model.multilabel:
        return _evaluate_next_visit(model, samples, outdir, split=split, overwrite=overwrite)
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


def _evaluate_next_visit(model, samples: list[Sample], outdir, *, split: str,
                         overwrite: bool) -> dict[str, Any]:
    """Next-visit codes: recall@k, micro/macro AUROC and AUPRC; per-code table; a picture of
    recall@k against k beside two baselines a model must beat: the patient's own past codes
    (most often coded first) and the codes most common in the evaluated samples."""
    import pandas as pd

    from pmtoolkit.core.io import atomic_dir, write_json, write_table
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
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        write_json(tmp / "metrics.json", res)
        write_table(per_code, tmp / "per_code.csv")
        with figure(tmp / "recall_at_k.png", size=(4.6, 3.6)) as (_, ax):
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
        report.write(tmp / "report.html")
    res["n"] = len(samples)
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
            target: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Per-visit and per-code contributions (``contributions.csv``, ``visits.csv``) of the
    chosen patients' samples (default: the ``top`` patients of ``split`` with the highest
    risk, at the visit of their highest risk), and a timeline picture of each. Next visit:
    the contributions to ``target``'s logit, by default each sample's most probable code."""
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
                          tmp / f"timeline_{i}_{s.patient_id}.png", title=title)
    return {"samples": len(chosen), "rows": len(contrib)}
