"""Drug-response file workflows: train (with the baselines on the same split), predict and
evaluate, from the panel's files to an output folder or table; training and evaluation are a
:class:`ResponseTask` run through :mod:`pmtoolkit.core.workflow`."""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core import workflow
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid
from pmtoolkit.core.workflow import Parts
from pmtoolkit.response.baselines import BASELINES, fit_baseline
from pmtoolkit.response.config import DEFAULT_BASELINES, SPLITS, ResponseConfig
from pmtoolkit.response.data import (
    Columns,
    ResponseData,
    _no_overlap,
    _text,
    load_panel,
    pairs_for,
    read_drugs,
    read_feature_tables,
)
from pmtoolkit.response.metrics import (
    MIN_PER_ENTITY,
    evaluate,
    per_drug_pearson,
    response_metrics,
)
from pmtoolkit.response.model import ResponseModel, check_config, check_training, fit
from pmtoolkit.response.splits import response_split

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class ResponseTask:
    """The drug-response domain's :class:`~pmtoolkit.core.workflow.SupervisedTask`: a panel
    (responses, drugs, sample features), a random / cold-drug / cold-sample / cold-pair split,
    the two-tower model, and beside it the baselines fitted on the same split
    (``metrics.json``'s ``baselines``, one column each in ``test_predictions.csv``). Invalid
    drugs follow the same bad-input policy as response rows and are listed in
    ``rejected_drugs.csv``."""

    responses: str | os.PathLike
    drugs: str | os.PathLike
    features: str | os.PathLike | Sequence[str | os.PathLike]
    config: ResponseConfig
    columns: Columns = field(default_factory=Columns)
    split_method: str = "random"
    sizes: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    baselines: Sequence[str] = DEFAULT_BASELINES
    on_invalid: OnInvalid = "error"
    noun: str = "response rows"
    min_records: int = 10

    def __post_init__(self):
        from pmtoolkit.chem.splits import split_method
        from pmtoolkit.core.io import check_choice

        check_choice("on_invalid", self.on_invalid, ("error", "skip"))
        for name in self.baselines:
            if name not in BASELINES:
                from pmtoolkit.core.errors import unknown_name

                raise unknown_name("baseline", name, BASELINES)
        self.split_method = split_method(self.split_method)
        if self.split_method not in SPLITS:
            raise BadInputError(f"unknown split {self.split_method!r}",
                                hint="choose from " + ", ".join(SPLITS))
        self._drug_rejects = self._rejects = None
        self._baseline_predictions: dict[str, np.ndarray] = {}

    def settings(self) -> dict[str, Any]:
        from pmtoolkit.core.config import to_dict

        c = self.columns
        return {"model": to_dict(self.config), "data": {
            "responses": str(self.responses), "drugs": str(self.drugs),
            "features": _paths(self.features), "sample-column": c.sample,
            "drug-column": c.drug, "response-column": c.response, "smiles-column": c.smiles,
            "feature-id-column": c.feature_id,
            "split": self.split_method, "sizes": list(self.sizes),
            "split-seed": self.split_seed, "baselines": list(self.baselines),
            "on-invalid": self.on_invalid}}

    def read(self):
        data, self._drug_rejects, self._rejects = load_panel(
            self.responses, self.drugs, self.features, columns=self.columns)
        if self._drug_rejects and self.on_invalid == "error":
            self._drug_rejects.raise_first()
        if self._drug_rejects:
            r = self._drug_rejects
            log.warning("%d invalid record(s) skipped in %s; first: %s", len(r), r.source,
                        r.items[0].describe())
        return data, self._rejects

    def split(self, data) -> Parts:
        from pmtoolkit.core.devices import resolve_device

        s = response_split(data, self.split_method, self.sizes, self.split_seed)
        parts = Parts.of(data, s, method=self.split_method)
        log.info("%d pairs of %d samples x %d drugs", len(data), len(data.samples.ids),
                 len(data.drugs.ids))
        # everything that can refuse the run does so before the work folder exists
        check_training(parts.train, self.config)
        resolve_device(self.config.device)
        return parts

    def fit(self, train, valid, *, workdir, checkpoints, resume):
        model = fit(train, valid, self.config, workdir=workdir, checkpoints=checkpoints,
                    resume=resume)
        model.columns = dataclasses.asdict(self.columns)
        return model

    def summary(self, model) -> dict[str, Any]:
        return {"split_seed": self.split_seed,
                "epochs_run": model.metadata["metrics"]["epochs_run"]}

    def evaluate(self, model, data):
        return evaluate(model, data)

    def extras(self, model, parts: Parts, folder: Path) -> dict[str, Any]:
        """The baselines fitted on the same train / validation pairs and scored on the test
        pairs; the invalid drugs skipped."""
        if self._drug_rejects:
            self._drug_rejects.write(folder / "rejected_drugs.csv")
        valid = parts.valid if len(parts.valid) else None
        scores: dict[str, Any] = {}
        self._baseline_predictions = {}
        for name in self.baselines:
            b = fit_baseline(name, parts.train, valid, self.config)
            if len(parts.test):
                self._baseline_predictions[name] = bp = b.predict(parts.test)
                scores[name] = response_metrics(parts.test.y, bp, parts.test.drug_index,
                                                parts.test.sample_index)
        return {"baselines": scores}

    def write_test(self, model, test, folder: Path) -> None:
        from pmtoolkit.core.io import write_table

        frame = test.frame()
        frame["prediction"] = model.predict(test)
        for name, bp in self._baseline_predictions.items():
            frame[name] = bp
        write_table(frame, folder / "test_predictions.csv")

    def write_evaluation(self, model, data, folder: Path) -> dict[str, Any]:
        """``evaluate_file``'s folder: predictions, the within-drug Pearson of every drug,
        a scatter and a per-drug figure, and a report."""
        from pmtoolkit.core.io import write_table

        pred = model.predict(data)
        metrics = response_metrics(data.y, pred, data.drug_index, data.sample_index)
        metrics["rejected_rows"] = len(self._rejects or ())
        metrics["rejected_drugs"] = len(self._drug_rejects or ())
        per_drug = per_drug_pearson(data, pred)
        frame = data.frame()
        frame["prediction"] = pred
        write_table(frame, folder / "predictions.csv")
        write_table(per_drug, folder / "per_drug.csv")
        if self._drug_rejects:
            self._drug_rejects.write(folder / "rejected_drugs.csv")
        _report(folder, data, pred, metrics, per_drug, str(self.responses))
        return metrics


def _paths(features: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    return [str(features)] if isinstance(features, (str, os.PathLike)) else \
        [str(f) for f in features]


def train_file(responses: str | os.PathLike, drugs: str | os.PathLike,
               features: str | os.PathLike | Sequence[str | os.PathLike],
               outdir: str | os.PathLike, *,
               config: ResponseConfig, columns: Columns | None = None, split: str = "random",
               sizes: tuple[float, float, float] = (0.8, 0.1, 0.1), split_seed: int = 0,
               baselines: Sequence[str] = DEFAULT_BASELINES, on_invalid: OnInvalid = "error",
               overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Read a panel, split it, train, and evaluate the model and every baseline on the test
    pairs (a :class:`ResponseTask` run through :func:`pmtoolkit.core.workflow.train_file`).
    Writes ``outdir``: ``model.safetensors``, ``config.json``, ``split.json``,
    ``metrics.json`` (validation and test metrics of the model, test metrics of the
    baselines), ``test_predictions.csv``, and ``rejected.csv`` / ``rejected_drugs.csv`` when
    records were skipped. An interrupted run keeps its checkpoint in ``outdir/work`` and
    continues from it with ``resume``."""
    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.core.io import check_output_dir

    check_ranges(config, source="drug-response model config")
    check_config(config)
    task = ResponseTask(responses, drugs, features, config, columns or Columns(), split,
                        sizes, split_seed, baselines, on_invalid)
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    return workflow.train_file(task, outdir, source=responses, on_invalid=on_invalid,
                               overwrite=overwrite, resume=resume)


def predict_file(model: ResponseModel, drugs: str | os.PathLike,
                 features: str | os.PathLike | Sequence[str | os.PathLike],
                 output: str | os.PathLike, *, pairs: str | os.PathLike | None = None,
                 columns: Columns | None = None) -> dict[str, int]:
    """Predict pairs of samples (feature tables) and drugs (a drugs table): every sample
    with every drug, or the rows of a ``pairs`` table (sample and drug columns; its other
    columns are kept, rows stay aligned, a row that cannot be predicted gets an empty
    prediction and a reason in ``error``). The prediction column is ``<response>_pred``
    after the response the model was trained on (``ln_IC50_pred`` for ``gdsc``), or
    ``prediction`` for a model that does not name it. Invalid drugs are skipped and listed in
    the log and ``<stem>.rejected.csv`` beside the output."""
    import pandas as pd

    from pmtoolkit.core.io import is_stdio, read_table, rejects_path, write_table

    c = columns or Columns()
    drug_set, drug_rejects = read_drugs(drugs, id_column=c.drug, smiles_column=c.smiles)
    samples = read_feature_tables(features, id_column=c.feature_id)
    if not drug_set.ids:
        drug_rejects.raise_first()
        raise BadInputError(f"no drugs in '{drugs}'")
    table = None
    if pairs is not None:
        table = read_table(pairs, columns=[c.sample, c.drug], dtype={c.sample: str,
                                                                    c.drug: str})
        ids = [_text(v) for v in table[c.sample]]
        if not any(samples.position(s) is not None for s in ids):
            _no_overlap("sample", ids, samples.ids, str(pairs), samples.source)
    data, rejects = pairs_for(samples, drug_set, table, columns=c, source=str(pairs or ""))
    pred = model.predict(data)
    column = prediction_column(model)
    if table is None:
        out = pd.DataFrame({c.sample: data.pair_sample_ids, c.drug: data.pair_drug_ids,
                            column: pred})
    else:
        out = table.copy()
        values = np.full(len(table), np.nan)
        pos = {line: i for i, line in enumerate(table.index)}
        values[[pos[line] for line in data.lines]] = pred
        out[column] = values
        reasons = {r.line: r.reason for r in rejects}
        out["error"] = [reasons.get(int(line), "") for line in table.index]
        out = out.reset_index(drop=True)
    write_table(out, output)
    if drug_rejects:
        log.warning("%d drug(s) with an invalid SMILES skipped; first: %s", len(drug_rejects),
                    drug_rejects.items[0].describe())
        if not is_stdio(output):
            drug_rejects.write(rejects_path(output))
    return {"rows": len(out), "predicted": int(np.isfinite(out[column]).sum()),
            "rejected_drugs": len(drug_rejects), "column": column}


def prediction_column(model: ResponseModel) -> str:
    """The predictions' column: ``<response>_pred`` (``ln_IC50_pred``), else ``prediction``."""
    return f"{model.response}_pred" if getattr(model, "response", None) else "prediction"


def evaluate_file(model: ResponseModel, responses: str | os.PathLike, drugs: str | os.PathLike,
                  features: str | os.PathLike | Sequence[str | os.PathLike],
               outdir: str | os.PathLike, *,
                  columns: Columns | None = None, on_invalid: OnInvalid = "error",
                  overwrite: bool = False) -> dict[str, Any]:
    """Evaluate ``model`` on a measured panel (:func:`pmtoolkit.core.workflow.evaluate_file`);
    writes ``outdir``: ``metrics.json``, ``predictions.csv``, ``per_drug.csv``,
    ``scatter.png`` (predicted vs observed), ``per_drug.png`` (the within-drug Pearson of
    every drug) and ``report.html``, and ``rejected.csv`` / ``rejected_drugs.csv`` when
    records were skipped."""
    task = ResponseTask(responses, drugs, features, model.config, columns or Columns(),
                        on_invalid=on_invalid, baselines=())
    return workflow.evaluate_file(task, model, source=responses, on_invalid=on_invalid,
                                  outdir=outdir, overwrite=overwrite)


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


def explain_file(model: ResponseModel, drugs: str | os.PathLike,
                 features: str | os.PathLike | Sequence[str | os.PathLike],
                 pairs: str | os.PathLike, outdir: str | os.PathLike, *,
                 columns: Columns | None = None, top: int = 10, pictures: int = 12,
                 overwrite: bool = False) -> dict[str, Any]:
    """Per-prediction attributions (:mod:`pmtoolkit.response.explain`) of the rows of
    ``pairs``, written to ``outdir``: ``attributions.csv`` (each pair's prediction, the
    baseline pair's, the drug's share and its ``top`` cell features), and for the first
    ``pictures`` pairs a bar chart of the features and the drug drawn with its atoms' shares,
    gathered in ``report.html``. A row that cannot be predicted is listed in ``rejected.csv``."""
    import pandas as pd

    from pmtoolkit.core.io import atomic_dir, check_output_dir, read_table, write_table
    from pmtoolkit.core.report import Report
    from pmtoolkit.response import explain as E

    if not 1 <= top <= 1000:
        raise BadInputError(f"--top must be 1 to 1000, got {top}")
    if not 0 <= pictures <= 200:
        raise BadInputError(f"--pictures must be 0 to 200, got {pictures}")
    check_output_dir(outdir, overwrite=overwrite)
    c = columns or Columns()
    drug_set, drug_rejects = read_drugs(drugs, id_column=c.drug, smiles_column=c.smiles)
    samples = read_feature_tables(features, id_column=c.feature_id)
    table = read_table(pairs, columns=[c.sample, c.drug], dtype={c.sample: str, c.drug: str})
    data, rejects = pairs_for(samples, drug_set, table, columns=c, source=str(pairs))
    if not len(data):
        first = (rejects or drug_rejects).items[:1]
        raise BadInputError(f"no pair of '{pairs}' can be explained"
                            + (f"; first: {first[0].describe()}" if first else ""))
    attr = E.attribute(model, data)
    column = prediction_column(model)
    tops = [E.top_features(attr, model.prep.names, model.labels, i, top)
            for i in range(len(data))]
    rows = []
    for i, t in enumerate(tops):
        sample, drug = data.pair_sample_ids[i], data.pair_drug_ids[i]
        head = {"pair": i + 1, c.sample: sample, c.drug: drug, column: attr.prediction[i],
                "baseline": attr.baseline[i], "drug_share": float(attr.bits[i].sum()),
                "cell_share": float(attr.features[i].sum())}
        for rank, r in enumerate(t.itertuples(index=False), 1):
            rows.append({**head, "rank": rank, "feature": r.feature, "label": r.label,
                         "attribution": float(r.attribution)})
    frame = pd.DataFrame(rows)
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        write_table(frame, tmp / "attributions.csv")
        if rejects:
            rejects.write(tmp / "rejected.csv")
        rep = Report("Why the model predicts these responses",
                     subtitle=f"{len(data)} pair(s); integrated gradients from the average "
                              "training cell and the empty fingerprint")
        sec = rep.section("How to read this")
        sec.text("Each pair's attributions add up (within about 1%) to its predicted ln IC50 "
                 "minus the prediction for a baseline pair: the average training cell "
                 "line (every standardised feature at its training mean) with a drug of no "
                 "substructure. Negative (blue) lowers the predicted IC50: the cell is "
                 "predicted more sensitive; positive (red) raises it. An attribution is what "
                 "the model learnt to lean on from associations in its training panel, not a "
                 "mechanism; correlated features share the credit.")
        for i in range(min(pictures, len(data))):
            sample, drug, t = data.pair_sample_ids[i], data.pair_drug_ids[i], tops[i]
            E.plot_features(t, tmp / f"features_{i + 1}.png",
                            title=f"{sample} × {drug}: top {len(t)} cell features")
            mol, w = E.atom_weights(data.drugs.smiles[data.drug_index[i]], attr.bits[i],
                                    radius=model.config.fingerprint_radius,
                                    n_bits=model.config.fingerprint_bits)
            E.draw_atom_weights(mol, w, tmp / f"drug_{i + 1}.png", legend=str(drug))
            s = rep.section(f"{i + 1}. {sample} × {drug}")
            s.text(f"Predicted {column} {attr.prediction[i]:.2f} (baseline pair "
                   f"{attr.baseline[i]:.2f}); the cell's features contribute "
                   f"{attr.features[i].sum():+.2f}, the drug's substructures "
                   f"{attr.bits[i].sum():+.2f}.")
            s.figure(f"features_{i + 1}.png", "the cell features the prediction leans on most")
            s.figure(f"drug_{i + 1}.png", "the drug's atoms, shaded by their share (blue: "
                                          "more sensitive)")
        rep.write(tmp / "report.html")
    return {"pairs": len(data), "rejected": len(rejects), "pictures": min(pictures, len(data)),
            "max_relative_gap": float(np.max(np.abs(attr.total - (attr.prediction
                                                                  - attr.baseline)))
                                      / max(1e-9, float(np.max(np.abs(attr.prediction
                                                                      - attr.baseline)))))}
