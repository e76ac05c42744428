"""Drug-response file workflows: train (with the baselines on the same split), predict and
evaluate, from the panel's files to an output folder or table."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid
from pmtoolkit.response.baselines import BASELINES, fit_baseline
from pmtoolkit.response.config import DEFAULT_BASELINES, SPLITS, ResponseConfig
from pmtoolkit.response.data import (
    Columns,
    ResponseData,
    _no_overlap,
    _text,
    apply_rejects,
    load_panel,
    pairs_for,
    read_drugs,
    read_features,
)
from pmtoolkit.response.metrics import MIN_PER_ENTITY, per_drug_pearson, response_metrics
from pmtoolkit.response.model import ResponseModel, check_config, check_training, fit
from pmtoolkit.response.splits import response_split

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def train_file(responses: str | os.PathLike, drugs: str | os.PathLike,
               features: str | os.PathLike, outdir: str | os.PathLike, *,
               config: ResponseConfig, columns: Columns | None = None, split: str = "random",
               sizes: tuple[float, float, float] = (0.8, 0.1, 0.1), split_seed: int = 0,
               baselines: Sequence[str] = DEFAULT_BASELINES, on_invalid: OnInvalid = "error",
               overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Read a panel, split it, train, and evaluate the model and every baseline on the test
    pairs. Writes ``outdir``: ``model.safetensors``, ``config.json``, ``split.json``,
    ``metrics.json`` (test metrics of the model and the baselines), ``test_predictions.csv``,
    and ``rejected.csv`` / ``rejected_drugs.csv`` when records were skipped. An interrupted
    run keeps its checkpoint in ``outdir/work`` and continues from it with ``resume``."""
    from pmtoolkit.core.config import check_ranges, to_dict, write_resolved
    from pmtoolkit.core.devices import resolve_device
    from pmtoolkit.core.io import atomic_dir, check_output_dir, work_dir, write_json, write_table

    columns = columns or Columns()
    check_ranges(config, source="drug-response model config")
    check_config(config)
    for name in baselines:
        if name not in BASELINES:
            from pmtoolkit.core.errors import unknown_name

            raise unknown_name("baseline", name, BASELINES)
    if split not in SPLITS:
        raise BadInputError(f"unknown split {split!r}", hint="choose from " + ", ".join(SPLITS))
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    data, drug_rejects, rejects = load_panel(responses, drugs, features, columns=columns)
    apply_rejects(drug_rejects, rejects, on_invalid)
    if len(data) < 10:
        raise BadInputError(f"only {len(data)} usable response rows; need at least 10")
    s = response_split(data, split, sizes, split_seed)
    idx = s.indices()
    train, valid, test = (data.subset(idx[k]) for k in ("train", "val", "test"))
    log.info("%d pairs (%d samples x %d drugs): %d train, %d validation, %d test (%s split)",
             len(data), len(data.samples.ids), len(data.drugs.ids), len(train), len(valid),
             len(test), split)
    # everything that can refuse the run does so before the work folder exists
    check_training(train, config)
    resolve_device(config.device)
    settings = {"model": to_dict(config), "data": {
        "responses": str(responses), "drugs": str(drugs), "features": str(features),
        "sample-column": columns.sample, "drug-column": columns.drug,
        "response-column": columns.response, "smiles-column": columns.smiles,
        "split": split, "sizes": list(sizes), "split-seed": split_seed,
        "baselines": list(baselines), "on-invalid": on_invalid}}
    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        if drug_rejects:
            drug_rejects.write(tmp / "rejected_drugs.csv")
        if rejects:
            rejects.write(tmp / "rejected.csv")
        t0 = time.perf_counter()
        model = fit(train, valid if len(valid) else None, config, workdir=tmp / "training",
                    checkpoints=work_dir(outdir, settings), resume=resume)
        seconds = time.perf_counter() - t0
        pred = model.predict(test)
        metrics: dict[str, Any] = {
            "split": split, "split_seed": split_seed, "train_seconds": seconds,
            "n_train": len(train), "n_valid": len(valid), "n_test": len(test),
            "epochs_run": model.metadata["metrics"]["epochs_run"],
            "test": response_metrics(test.y, pred, test.drug_index, test.sample_index),
            "baselines": {}}
        frame = test.frame()
        frame["prediction"] = pred
        for name in baselines:
            b = fit_baseline(name, train, valid if len(valid) else None, config)
            bp = b.predict(test)
            metrics["baselines"][name] = response_metrics(test.y, bp, test.drug_index,
                                                          test.sample_index)
            frame[name] = bp
        model.save(tmp / "model.safetensors", metrics=metrics,
                   training_data_sha256=train.fingerprint())
        s.save(tmp / "split.json")
        write_resolved(tmp / "config.json", **settings)
        write_json(tmp / "metrics.json", metrics)
        write_table(frame, tmp / "test_predictions.csv")
    return metrics


def predict_file(model: ResponseModel, drugs: str | os.PathLike, features: str | os.PathLike,
                 output: str | os.PathLike, *, pairs: str | os.PathLike | None = None,
                 columns: Columns | None = None) -> dict[str, int]:
    """Predict pairs of samples (a features file) and drugs (a drugs table): every sample
    with every drug, or the rows of a ``pairs`` table (sample and drug columns; its other
    columns are kept, rows stay aligned, a row that cannot be predicted gets an empty
    prediction and a reason in ``error``). Invalid drugs are skipped and listed in the log
    and ``<stem>.rejected.csv`` beside the output."""
    import pandas as pd

    from pmtoolkit.core.io import is_stdio, read_table, rejects_path, write_table

    c = columns or Columns()
    drug_set, drug_rejects = read_drugs(drugs, id_column=c.drug, smiles_column=c.smiles)
    samples = read_features(features, id_column=c.sample)
    if not drug_set.ids:
        drug_rejects.raise_first()
        raise BadInputError(f"no drugs in '{drugs}'")
    table = None
    if pairs is not None:
        table = read_table(pairs, columns=[c.sample, c.drug], dtype={c.sample: str,
                                                                    c.drug: str})
        ids = [_text(v) for v in table[c.sample]]
        if not any(samples.position(s) is not None for s in ids):
            _no_overlap("sample", ids, samples.ids, str(pairs), str(features))
    data, rejects = pairs_for(samples, drug_set, table, columns=c, source=str(pairs or ""))
    pred = model.predict(data)
    if table is None:
        out = pd.DataFrame({c.sample: data.pair_sample_ids, c.drug: data.pair_drug_ids,
                            "prediction": pred})
    else:
        out = table.copy()
        values = np.full(len(table), np.nan)
        pos = {line: i for i, line in enumerate(table.index)}
        values[[pos[line] for line in data.lines]] = pred
        out["prediction"] = values
        reasons = {r.line: r.reason for r in rejects}
        out["error"] = [reasons.get(int(line), "") for line in table.index]
        out = out.reset_index(drop=True)
    write_table(out, output)
    if drug_rejects:
        log.warning("%d drug(s) with an invalid SMILES skipped; first: %s", len(drug_rejects),
                    drug_rejects.items[0].describe())
        if not is_stdio(output):
            drug_rejects.write(rejects_path(output))
    return {"rows": len(out), "predicted": int(np.isfinite(out["prediction"]).sum()),
            "rejected_drugs": len(drug_rejects)}


def evaluate_file(model: ResponseModel, responses: str | os.PathLike, drugs: str | os.PathLike,
                  features: str | os.PathLike, outdir: str | os.PathLike, *,
                  columns: Columns | None = None, on_invalid: OnInvalid = "error",
                  overwrite: bool = False) -> dict[str, Any]:
    """Evaluate ``model`` on a measured panel; writes ``outdir``: ``metrics.json``,
    ``predictions.csv``, ``per_drug.csv``, ``scatter.png`` (predicted vs observed),
    ``per_drug.png`` (the within-drug Pearson of every drug) and ``report.html``."""
    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_json, write_table

    check_output_dir(outdir, overwrite=overwrite)
    data, drug_rejects, rejects = load_panel(responses, drugs, features, columns=columns)
    apply_rejects(drug_rejects, rejects, on_invalid)
    if not len(data):
        raise BadInputError(f"no usable response rows in '{responses}'")
    pred = model.predict(data)
    metrics = response_metrics(data.y, pred, data.drug_index, data.sample_index)
    metrics["rejected_rows"], metrics["rejected_drugs"] = len(rejects), len(drug_rejects)
    per_drug = per_drug_pearson(data, pred)
    frame = data.frame()
    frame["prediction"] = pred
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        write_json(tmp / "metrics.json", metrics)
        write_table(frame, tmp / "predictions.csv")
        write_table(per_drug, tmp / "per_drug.csv")
        if drug_rejects:
            drug_rejects.write(tmp / "rejected_drugs.csv")
        if rejects:
            rejects.write(tmp / "rejected.csv")
        _report(tmp, data, pred, metrics, per_drug, str(responses))
    return metrics


def _report(folder: Path, data: ResponseData, pred: np.ndarray, metrics: dict[str, Any],
            per_drug: pd.DataFrame, source: str) -> None:
    import pandas as pd

    from pmtoolkit.core.plots import figure, parity
    from pmtoolkit.core.report import Report

    y = np.asarray(data.y, float)
    with figure(folder / "scatter.png", size=(4.4, 4.2)) as (_, ax):
        parity(ax, y, pred, xlabel="observed response", ylabel="predicted response",
               title=f"Pearson {metrics['pearson']:.3f}, RMSE {metrics['rmse']:.3f}", size=5,
               alpha=0.3)
    scored = per_drug.dropna(subset=["pearson"]).sort_values("pearson")
    with figure(folder / "per_drug.png", size=(6.0, 3.6)) as (_, ax):
        if len(scored):
            ax.bar(np.arange(len(scored)), scored["pearson"], width=1.0, color="#20bf6b")
            ax.axhline(float(scored["pearson"].mean()), color="#b42318", lw=1,
                       label=f"mean {scored['pearson'].mean():.3f}")
            ax.legend(frameon=False, fontsize=8, loc="upper left")
        ax.axhline(0.0, color="#666666", lw=0.8)
        ax.set_xlabel(f"drugs, sorted ({len(scored)} with >= {MIN_PER_ENTITY} samples)")
        ax.set_ylabel("Pearson r within drug")
        ax.set_title("how well each drug's samples are ranked")
    rep = Report("Drug-response evaluation", subtitle=f"{source}: {metrics['n']} pairs, "
                 f"{metrics['n_samples']} samples x {metrics['n_drugs']} drugs")
    shown = {k: v for k, v in metrics.items() if isinstance(v, float)}
    rep.section("Metrics").table(pd.DataFrame({"metric": list(shown),
                                               "value": list(shown.values())})).text(
        "per_drug_pearson is the mean Pearson r between predicted and observed response "
        "within each drug: how well the model ranks the samples for one drug, the number a "
        "treatment choice depends on. Overall Pearson is dominated by differences between "
        "drugs (potency) and says little about that.")
    rep.section("Predicted vs observed").figure("scatter.png", "every pair")
    rep.section("Per-drug correlation").figure("per_drug.png", "Pearson r within each drug") \
        .table(per_drug.sort_values("pearson", ascending=False), max_rows=30)
    rep.write(folder / "report.html")
