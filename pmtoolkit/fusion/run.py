"""What ``pmt fusion`` does: simulate a cohort, run the fused-vs-single experiment on a cohort
folder and report it, and train / apply a fusion model on embedding tables a user brings.

Embedding tables (CSV, TSV or Parquet; one per modality): a ``patient_id`` column and numeric
feature columns, one row per patient who has that modality — the output of any encoder
(pmtoolkit's or another). Outcomes: ``patient_id`` and ``outcome`` (0/1, or a number with
``task = "regression"``). A patient absent from a modality's table lacks that modality.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.workflow import Parts
from pmtoolkit.fusion.config import FusionConfig
from pmtoolkit.fusion.data import read_embeddings, read_outcomes

log = logging.getLogger(__name__)


def load(name_or_path: str | os.PathLike):
    """A saved fusion model (pmtoolkit ships none, so a name is an error listing that)."""
    from pmtoolkit.core.model import load_named
    from pmtoolkit.fusion.model import FusionModel

    return load_named(name_or_path, shipped_names=(), model_class=FusionModel,
                      what="fusion model")


@dataclass
class _Cohort:
    """Patients with their embeddings (modality -> rows), which modalities each has, and
    their outcomes."""

    ids: list[str]
    data: dict[str, np.ndarray]
    mask: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, sel: np.ndarray) -> _Cohort:
        return _Cohort([p for p, k in zip(self.ids, sel) if k],
                       {m: x[sel] for m, x in self.data.items()}, self.mask[sel], self.y[sel])

    def arrays(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """What :func:`~pmtoolkit.fusion.model.fit_fusion` takes: ``(data, mask, y)``."""
        return self.data, self.mask, self.y


@dataclass
class FusionTask:
    """Fusion's :class:`~pmtoolkit.core.workflow.SupervisedTask`: embedding tables (one per
    modality) and an outcomes table, a stratified validation part that stops training early
    and is reported, no test part (the experiment, :func:`experiment`, has one). Its run
    writes one model file rather than a folder, so :func:`train_file` drives the task itself
    (:func:`pmtoolkit.core.workflow.read_checked`, then split, fit, evaluate)."""

    tables: dict[str, str | os.PathLike]
    outcomes: str | os.PathLike
    config: FusionConfig
    valid_fraction: float = 0.2
    noun: str = "patients"
    min_records: int = 10

    def settings(self) -> dict[str, Any]:
        from pmtoolkit.core.config import to_dict

        return {"model": to_dict(self.config), "data": {
            "modalities": {m: str(t) for m, t in self.tables.items()},
            "outcomes": str(self.outcomes), "valid-fraction": self.valid_fraction}}

    def read(self):
        from pmtoolkit.core.io import Rejects

        truth = read_outcomes(self.outcomes, self.config.task)
        ids, data, mask = read_embeddings(self.tables)
        keep = np.array([p in truth for p in ids])
        if keep.sum() < self.min_records:
            example = f" (e.g. {ids[0]!r} vs {next(iter(truth))!r})" if ids and truth else ""
            named = ", ".join(str(t) for t in self.tables.values())
            raise BadInputError(f"only {int(keep.sum())} patient(s) of the embedding tables "
                                f"({named}) have an outcome in {self.outcomes}{example}; need "
                                f"at least {self.min_records}",
                                hint="do the tables name patients the same way?")
        kept = [p for p, k in zip(ids, keep) if k]
        cohort = _Cohort(kept, {m: x[keep] for m, x in data.items()}, mask[keep],
                         np.array([truth[p] for p in kept]))
        return cohort, Rejects(str(self.outcomes), "patient")

    def split(self, data: _Cohort) -> Parts:
        from pmtoolkit.core.devices import resolve_device
        from pmtoolkit.fusion.model import check_training

        rng = np.random.default_rng(self.config.seed)
        is_valid = np.zeros(len(data), bool)
        groups = [np.flatnonzero(data.y == c) for c in np.unique(data.y)] \
            if self.config.task == "binary" else [np.arange(len(data))]
        for g in groups:
            is_valid[rng.permutation(g)[:round(self.valid_fraction * len(g))]] = True
        train = data.subset(~is_valid)
        # everything that can refuse the run does so before the resume folder exists
        check_training(train.arrays(), self.config, list(self.tables))
        resolve_device(self.config.device)
        return Parts(train, data.subset(is_valid), None,
                     method="stratified" if self.config.task == "binary" else "random",
                     save=None)

    def fit(self, train, valid, *, workdir, checkpoints, resume):
        from pmtoolkit.fusion.model import fit_fusion

        return fit_fusion(train.arrays(), valid.arrays() if valid else None, self.config,
                          modalities=list(self.tables), checkpoints=checkpoints,
                          resume=resume)

    def evaluate(self, model, data: _Cohort) -> dict[str, Any]:
        from pmtoolkit.core.metrics import roc_auc

        pred = model.predict(data.data, data.mask)
        if self.config.task == "binary":
            return {"auroc": roc_auc(data.y, pred)}
        return {"rmse": float(np.sqrt(np.mean((pred - data.y) ** 2)))}

    def write_test(self, model, test, folder: Path) -> None:
        """Nothing: a fusion training run has no test part."""


def train_file(tables: dict[str, str | os.PathLike], outcomes: str | os.PathLike,
               output: str | os.PathLike, *, config: FusionConfig, valid_fraction: float = 0.2,
               overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Fit a fusion model on embedding tables and an outcomes table (a :class:`FusionTask`);
    a stratified ``valid_fraction`` of the patients stops training early and is reported.
    Writes one ``.safetensors`` file; an interrupted run keeps its checkpoint in
    ``OUTPUT.work`` beside it and continues from it with ``resume``
    (:func:`pmtoolkit.core.io.work_beside`)."""
    from pmtoolkit.core.io import work_beside
    from pmtoolkit.core.workflow import read_checked

    out = Path(output)
    if out.suffix != ".safetensors":
        raise BadInputError(f"{out}: the model file must end in .safetensors")
    if out.exists() and not overwrite:
        raise BadInputError(f"{out} exists", hint="--overwrite to replace it")
    if not 0 <= valid_fraction <= 0.9:
        raise BadInputError(f"valid fraction {valid_fraction} is not in [0, 0.9]")
    task = FusionTask(tables, outcomes, config, valid_fraction)
    data, _ = read_checked(task, "error", outcomes)
    parts = task.split(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    with work_beside(out, task.settings(), overwrite=overwrite, resume=resume) as work:
        valid = parts.valid if len(parts.valid) else None
        model = task.fit(parts.train, valid, workdir=None, checkpoints=work, resume=resume)
        metrics = dict(model.metadata["metrics"])
        if valid is not None:
            metrics["valid_patients"] = len(valid)
            metrics.update({f"valid_{k}": v for k, v in task.evaluate(model, valid).items()})
        metrics["patients_by_modality"] = {m: int(data.mask[:, j].sum()) for j, m in
                                           enumerate(model.modalities)}
        model.save(out, metrics=metrics)
    return metrics


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return Path(a).exists() and Path(b).exists() and os.path.samefile(a, b)
    except OSError:
        return False


def predict_file(model, tables: dict[str, str | os.PathLike], output: str | os.PathLike
                 ) -> int:
    """Score every patient in the embedding tables: ``patient_id``, ``prediction``, which
    modalities were present, and each present modality's contribution (occlusion; for gated /
    attention fusion also its weight). Returns the number of patients."""
    import pandas as pd

    from pmtoolkit.core.io import is_stdio, write_table

    unknown = sorted(set(tables) - set(model.modalities))
    if unknown:
        raise BadInputError(f"the model has no modality {unknown[0]!r}",
                            hint="its modalities: " + ", ".join(model.modalities))
    for m, table in tables.items():  # the input a written output would destroy
        if not is_stdio(output) and _same_file(output, table):
            raise BadInputError(f"output '{output}' is also the {m} table",
                                hint="write the predictions elsewhere")
    given = [m for m in model.modalities if m in tables]
    ids, read, mask = read_embeddings({m: tables[m] for m in given})
    for m in given:
        d = model.dims[model.modalities.index(m)]
        if read[m].shape[1] != d:
            raise BadInputError(f"{tables[m]}: {read[m].shape[1]} feature columns, the model's "
                                f"{m} embeddings have {d}",
                                hint="use the embeddings of the encoder the model was "
                                     "trained on")
    # in the model's order; a modality not given is absent for everyone
    data = {m: read[m] if m in read else np.zeros((len(ids), d), np.float32)
            for m, d in zip(model.modalities, model.dims)}
    full_mask = np.zeros((len(ids), len(model.modalities)), bool)
    for j, m in enumerate(model.modalities):
        if m in given:
            full_mask[:, j] = mask[:, given.index(m)]
    pred = model.predict(data, full_mask)
    contrib = model.modality_contributions(data, full_mask)
    frame = pd.DataFrame({"patient_id": ids, "prediction": pred,
                          "modalities": [",".join(m for m, h in zip(model.modalities, row) if h)
                                         for row in full_mask]})
    for m in model.modalities:
        c = contrib[contrib["modality"] == m].set_index("patient")
        frame[f"contribution_{m}"] = c["occlusion"].reindex(range(len(ids))).to_numpy()
        if model.config.fusion != "concat":
            frame[f"weight_{m}"] = c["weight"].reindex(range(len(ids))).to_numpy()
    write_table(frame, output)
    return len(frame)


# ---------------------------------------------------------------------------------------------
# the experiment on a cohort folder


def _write_embeddings(folder: Path, enc: dict[str, Any]) -> None:
    import pandas as pd

    from pmtoolkit.core.io import write_table

    folder.mkdir(parents=True, exist_ok=True)
    ids = np.array(enc["ids"])
    side = np.empty(len(ids), dtype=object)
    for k, v in enc["split"].items():
        side[v] = k
    for m, v in enc["modalities"].items():
        have = v["present"]
        frame = pd.DataFrame(v["embedding"][have], columns=[f"e{j}" for j in
                                                            range(v["embedding"].shape[1])])
        frame.insert(0, "patient_id", ids[have])
        write_table(frame, folder / f"{m}.csv")
    write_table(pd.DataFrame({"patient_id": ids, "outcome": enc["y"], "split": side}),
                folder / "outcomes.csv")


def _figures(res: dict[str, Any], out: Path) -> list[tuple[str, str]]:
    from pmtoolkit.core.plots import figure

    figs = []
    names = list(res["single"])
    fusions = list(res["fused"])
    rows = [(f"{m} alone", res["single"][m]["auroc"], "#9aa5b1") for m in names]
    if res.get("late") is not None:
        rows.append(("late fusion (LR on encoder outputs)", res["late"], "#6c8ebf"))
    rows += [(f"{f} fusion", res["fused"][f], "#d6604d") for f in fusions]
    with figure(out / "auroc.png", size=(6.2, 0.38 * len(rows) + 1.2)) as (_fig, ax):
        ax.barh(range(len(rows)), [r[1] for r in rows], color=[r[2] for r in rows])
        ax.set_yticks(range(len(rows)), [r[0] for r in rows])
        ax.invert_yaxis()
        for i, r in enumerate(rows):
            ax.text(r[1] + 0.003, i, f"{r[1]:.3f}", va="center", fontsize=8)
        lo = min(r[1] for r in rows)
        if res.get("oracle") is not None:
            ax.axvline(res["oracle"], color="k", ls="--", lw=1)
            ax.text(res["oracle"], -0.6, "planted factors (ceiling) ", fontsize=7,
                    va="top", ha="right")
        ax.set_xlim(max(0.45, lo - 0.05), max(r[1] for r in rows + [("", res.get("oracle")
                                                                    or 0, "")]) + 0.05)
        ax.set_xlabel("test AUROC")
    figs.append(("auroc.png", "Test AUROC of each modality alone and of the fused models"))
    with figure(out / "masking.png", size=(6.2, 3.4)) as (_fig, ax):
        width = 0.8 / (len(names) + 1)
        for k, f in enumerate(fusions):
            vals = [res["fused"][f]] + [res["without"][f][m] for m in names]
            for j, v in enumerate(vals):
                ax.bar(k + (j - len(names) / 2) * width, v, width,
                       color=["#d6604d", "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1",
                              "#76b7b2"][j % 6], label=None if k else
                       ("all modalities" if j == 0 else f"without {names[j - 1]}"))
        best = max(res["single"][m]["auroc"] for m in names)
        ax.axhline(best, color="k", ls=":", lw=1, label="best single modality")
        ax.set_xticks(range(len(fusions)), fusions)
        ax.set_ylim(0.5, max(max(res["fused"].values()), best) + 0.05)
        ax.set_ylabel("test AUROC")
        ax.legend(fontsize=7, ncol=2, frameon=False)
    figs.append(("masking.png", ("Each fused model with one modality hidden from every test "
                                 "patient")))
    if res.get("planted_weights"):
        with figure(out / "attribution.png", size=(6.2, 3.2)) as (_fig, ax):
            width = 0.8 / (len(fusions) + 1)
            w = np.array([res["planted_weights"][m] for m in names])
            ax.bar(np.arange(len(names)) - 0.4 + width / 2, w / max(w.sum(), 1e-9), width,
                   color="k", label="planted weight (share)")
            for k, f in enumerate(fusions):
                a = np.array([res["attribution"][f].get(m, 0.0) for m in names])
                ax.bar(np.arange(len(names)) - 0.4 + width * (k + 1.5), a / max(a.sum(), 1e-9),
                       width, label=f"{f}: mean |occlusion| (share)")
            ax.set_xticks(range(len(names)), names)
            ax.set_ylabel("share")
            ax.legend(fontsize=7, frameon=False)
        figs.append(("attribution.png", ("Which modality drove the predictions: each "
                                         "fusion's mean |occlusion| beside the planted "
                                         "weights")))
    return figs


def summary_table(res: dict[str, Any]):
    """One row per model: test AUROC and the patients it was scored on; beside each single
    modality, each fused model on the same patients (those who have that modality)."""
    import pandas as pd

    rows = [{"model": f"{m} alone", "auroc": v["auroc"], "patients": v["patients"],
             **{f"{f} on these patients": res["fused_on"][f][m] for f in res["fused_on"]}}
            for m, v in res["single"].items()]
    if res.get("late") is not None:
        rows.append({"model": "late fusion (LR on encoder outputs)", "auroc": res["late"],
                     "patients": res["test_patients"]})
    rows += [{"model": f"{f} fusion", "auroc": v, "patients": res["test_patients"]}
             for f, v in res["fused"].items()]
    if res.get("oracle") is not None:
        rows.append({"model": "planted factors (ceiling)", "auroc": res["oracle"],
                     "patients": res["test_patients"]})
    return pd.DataFrame(rows)


def experiment(cohort: str | os.PathLike, outdir: str | os.PathLike, *, seed: int = 0,
               epochs: int = 20, fusions: tuple[str, ...] = ("concat", "attention", "gated"),
               hidden_dim: int = 8, weight_decay: float = 1e-2,
               overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Train every modality's encoder and every fusion on a cohort folder (the simulator's
    layout), and write ``results.json``, ``summary.tsv``, pictures, ``report.html``, the
    fused models (``models/<fusion>.safetensors``) and every patient's embeddings
    (``embeddings/<modality>.csv`` + ``outcomes.csv``, the input of ``pmt fusion train``).
    An interrupted run keeps every network's checkpoint in ``outdir/work`` and continues from
    them with ``resume``."""
    import pandas as pd

    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.core.io import atomic_dir, check_output_dir, work_dir, write_json, write_table
    from pmtoolkit.core.report import Report
    from pmtoolkit.fusion.encoders import encode_cohort
    from pmtoolkit.fusion.experiment import run_experiment

    check_ranges(FusionConfig(hidden_dim=hidden_dim, weight_decay=weight_decay, epochs=epochs,
                              seed=seed), source="fusion settings")
    root = Path(cohort)
    for need in ("outcomes.csv",):
        if not (root / need).is_file():
            raise BadInputError(f"{root}: no {need}", hint="a cohort folder as written by pmt "
                                "fusion simulate")
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    read_outcomes(root / "outcomes.csv", "binary")  # refused before the work folder exists
    settings = {"cohort": str(cohort), "seed": seed, "epochs": epochs,
                "fusions": list(fusions), "hidden-dim": hidden_dim,
                "weight-decay": weight_decay}
    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        checkpoints = work_dir(outdir, settings)
        enc = encode_cohort(root, seed=seed, epochs=epochs, checkpoints=checkpoints,
                            resume=resume)
        res = run_experiment(root, seed=seed, encoded=enc, fusions=fusions,
                             hidden_dim=hidden_dim, weight_decay=weight_decay,
                             save_dir=tmp / "models", checkpoints=checkpoints, resume=resume)
        _write_embeddings(tmp / "embeddings", enc)
        write_json(tmp / "results.json", res)
        table = summary_table(res)
        write_table(table, tmp / "summary.tsv")
        figs = _figures(res, tmp)
        rep = Report("Multimodal fusion", subtitle=f"cohort {root} · {res['patients']} "
                     f"patients, {res['test_patients']} in the test part · seed {seed}")
        s = rep.section("Fused against single modalities")
        s.text("Each modality's encoder (pmtoolkit's own model of that kind) trained on 40% of "
               "the patients; the fusion heads on the embeddings of another 30% (patients "
               "their encoders never trained on); 10% stop both early; all numbers are on the "
               "remaining 20%. A single modality is scored on the test patients who have it, and "
               "beside it each fused model on those same patients.")
        s.table(table, floatfmt="{:.3f}")
        s.figure("auroc.png", figs[0][1])
        s = rep.section("Missing modalities")
        s.text("Every test patient with one modality hidden (the masked model, not retrained); "
               "graceful degradation means staying near the full model and above the best "
               "single modality left.")
        s.table(pd.DataFrame(res["without"]).rename_axis("hidden").reset_index(),
                floatfmt="{:.3f}")
        s.figure("masking.png", figs[1][1])
        s = rep.section("Which modality drove the prediction")
        att = pd.DataFrame(res["attribution"]).rename_axis("modality").reset_index()
        if res.get("planted_weights"):
            att.insert(1, "planted weight", att["modality"].map(res["planted_weights"]))
        if res.get("encoder_recovery"):
            att["encoder r with its factor"] = att["modality"].map(res["encoder_recovery"])
        s.text("Mean |occlusion| (change of a test patient's logit when the modality is "
               "hidden) per fusion; for a simulated cohort beside the weight the simulator "
               "planted and the correlation of the modality's encoder with its planted "
               "factor.")
        s.table(att, floatfmt="{:.3f}")
        if len(figs) > 2:
            s.figure("attribution.png", figs[2][1])
        rep.write(tmp / "report.html")
    return res
