"""File-to-file workflows behind ``pmt property train|predict|evaluate`` (and pipelines).

``train_file`` reads a table, applies the bad-input policy, splits, trains, evaluates on the
held-out test set and writes an output folder: ``model.safetensors``, ``config.json`` (resolved),
``split.json``, ``metrics.json``, ``test_predictions.csv``, a parity plot or ROC curve, and
``rejected.csv`` when records were skipped.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core import workflow
from pmtoolkit.core.distributed import Cluster
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid
from pmtoolkit.core.workflow import Parts
from pmtoolkit.property.config import PropertyConfig, SplitConfig
from pmtoolkit.property.model import PropertyModel, evaluate, fit

log = logging.getLogger(__name__)

#: shipped models by the name users type; each is a ``model`` entry in data/MANIFEST
SHIPPED_MODELS = ("solubility", "lipophilicity", "bbbp", "tox21")


def load(name_or_path: str | os.PathLike) -> PropertyModel:
    """A saved model file, or a shipped model by name (``solubility``, ...)."""
    from pmtoolkit.core.model import load_named

    return load_named(name_or_path, shipped_names=SHIPPED_MODELS, model_class=PropertyModel,
                      what="property model")


@dataclass
class PropertyTask:
    """The property domain's :class:`~pmtoolkit.core.workflow.SupervisedTask`: a molecule
    table with label columns, a scaffold/random/stratified split (or a saved one), a GNN or
    tree ensemble, parity plot or ROC curve of the test set."""

    input: str | os.PathLike
    smiles_column: str
    target_columns: Sequence[str]
    config: PropertyConfig
    split_options: SplitConfig = field(default_factory=SplitConfig)
    split_file: str | os.PathLike | None = None
    on_invalid: OnInvalid = "error"
    noun: str = "molecules"
    min_records: int = 10

    def settings(self) -> dict[str, Any]:
        from pmtoolkit.core.config import to_dict

        return {"model": to_dict(self.config), "split": to_dict(self.split_options), "data": {
            "input": str(self.input), "smiles-column": self.smiles_column,
            "target-columns": list(self.target_columns), "on-invalid": self.on_invalid,
            "split-file": None if self.split_file is None else str(self.split_file)}}

    def read(self):
        from pmtoolkit.property.data import read_property_data

        if not self.target_columns:
            raise BadInputError("name the target column(s) with --label-column")
        return read_property_data(self.input, smiles_column=self.smiles_column,
                                  target_columns=self.target_columns, task=self.config.task)

    def split(self, data) -> Parts:
        from pmtoolkit.chem.splits import load_split, make_split

        if self.split_file:
            s = load_split(self.split_file)
            s.check(data.smiles)
        else:
            o = self.split_options
            s = make_split(o.split, mols=data.mols(), y=data.y[:, 0], n=len(data),
                           sizes=o.sizes, seed=o.split_seed, smiles=data.smiles)
        return Parts.of(data, s)

    def fit(self, train, valid, *, workdir, checkpoints, resume):
        return fit(train, valid, self.config, workdir=workdir, checkpoints=checkpoints,
                   resume=resume)

    def evaluate(self, model, data):
        return evaluate(model, data)

    def write_test(self, model, test, folder: Path) -> None:
        from pmtoolkit.core.io import write_table

        pred = model.predict(test.smiles).frame
        pred.insert(0, "line", test.lines)
        for j, name in enumerate(test.target_names):
            pred.insert(2 + j, name, test.y[:, j])
        write_table(pred, folder / "test_predictions.csv")
        _plot_test(pred, model, folder / "test_plot.png")


def train_file(input: str | os.PathLike, outdir: str | os.PathLike, *, smiles_column: str,
               target_columns: Sequence[str], config: PropertyConfig,
               split: SplitConfig | None = None, split_file: str | os.PathLike | None = None,
               on_invalid: OnInvalid = "error", overwrite: bool = False,
               resume: bool = False) -> dict[str, Any]:
    """Train on ``input`` and write the model, split, metrics and test predictions to
    ``outdir`` (:func:`pmtoolkit.core.workflow.train_file`); an interrupted run keeps its
    checkpoints in ``outdir/work`` and continues from them with ``resume``."""
    task = PropertyTask(input, smiles_column, target_columns, config,
                        split or SplitConfig(), split_file, on_invalid)
    return workflow.train_file(task, outdir, source=input, on_invalid=on_invalid,
                               overwrite=overwrite, resume=resume)


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


@dataclass
class MoleculePredictTask:
    """The property domain's :class:`~pmtoolkit.core.workflow.PredictTask`: a molecule file
    (table, .smi or SDF) streamed in chunks; one model, or several (``{name: model}``) that
    each add their ``<target>_pred`` [``_uncertainty``] columns, ``<name>_``-prefixed where
    two of them predict a target of the same name."""

    input: str | os.PathLike
    smiles_column: str = "smiles"
    fmt: str | None = None
    chunksize: int = 10_000
    noun: str = "molecules"
    item_name: str = "smiles"

    @property
    def source(self) -> str:
        return str(self.input)

    def chunks(self):
        from pmtoolkit.chem.molecules import iter_molecules

        for chunk in iter_molecules(self.input, smiles_column=self.smiles_column,
                                    fmt=self.fmt, chunksize=self.chunksize):
            yield self._records(chunk)

    def rows(self):
        from pmtoolkit.chem.molecules import iter_molecule_rows

        return iter_molecule_rows(self.input, smiles_column=self.smiles_column, fmt=self.fmt,
                                  chunksize=self.chunksize)

    def parse(self, rows):
        from pmtoolkit.chem.molecules import molecule_format, parse_molecule_rows

        return self._records(parse_molecule_rows(
            rows, fmt=molecule_format(self.input, self.fmt), smiles_column=self.smiles_column,
            source=self.source))

    def _records(self, chunk):
        from pmtoolkit.core.io import Rejects
        from pmtoolkit.core.workflow import InputChunk
        from pmtoolkit.property.data import from_arrays

        # the models' own reading of the SMILES (the reader's molecules reused), so a row's
        # error is the one a model would give it
        data, rejects = from_arrays(chunk.frame[chunk.smiles_column].tolist(),
                                    mols=[None if m is None else m.mol for m in chunk.molecules])
        lines = chunk.frame.index
        by_line = Rejects(source=self.source, item_name=self.item_name)
        for r in rejects:
            by_line.add(r.item, int(lines[r.line - 1]), r.reason)
        return InputChunk(chunk.frame, data, by_line)

    def predict(self, model, records):
        import pandas as pd

        return pd.concat([m.predict(records.smiles, mols=records.mols()).frame
                          .drop(columns=["smiles", "error"]).add_prefix(prefix)
                          for prefix, m in _column_prefixes(model)], axis=1)


def predict_file(model: PropertyModel | Mapping[str, PropertyModel] | str | os.PathLike
                 | Sequence[str], input: str | os.PathLike, output: str | os.PathLike, *,
                 smiles_column: str = "smiles", fmt: str | None = None,
                 on_invalid: OnInvalid = "skip", chunksize: int = 10_000,
                 cluster: Cluster | None = None) -> int:
    """Stream ``input`` through ``model`` into ``output``
    (:func:`pmtoolkit.core.workflow.predict_file`): every input row gets an output row (NaN
    and an ``error`` reason where the SMILES is invalid). Returns the number of rows.

    ``model`` may be several models by name: each adds its ``<target>_pred`` columns, named
    ``<name>_<target>_pred`` where two of the models predict a target of the same name. It
    may also be a name or path, or a list of them (what a ``cluster`` running on Dask needs:
    each worker loads them once; the output is the same as a single-process run's)."""
    from pmtoolkit.core.distributed import WorkerModel

    if isinstance(model, (str, os.PathLike)):
        model = [model]
    if isinstance(model, Sequence):
        model = WorkerModel.named(load_models, *model)
    task = MoleculePredictTask(input, smiles_column, fmt, chunksize)
    if cluster is not None:
        from pmtoolkit.chem.molecules import ROW_FORMATS, molecule_format
        from pmtoolkit.core.distributed import shard_list, shards_format

        shards = shard_list(input)
        if shards_format(shards, lambda s: molecule_format(s, fmt)) not in ROW_FORMATS:
            raise BadInputError(f"a partitioned prediction reads {', '.join(ROW_FORMATS)} "
                                f"files; '{shards[0]}' is SDF", hint="convert it, e.g. pmt "
                                "mol standardize -o molecules.csv")
    return workflow.predict_file(task, model, output, on_invalid=on_invalid, cluster=cluster)


def load_models(*names: str | os.PathLike) -> PropertyModel | dict[str, PropertyModel]:
    """One model, or several by the names given (:func:`predict_file`'s ``model``)."""
    if len(names) == 1:
        return load(names[0])
    return {str(name): load(name) for name in names}


def _column_prefixes(models: PropertyModel | Mapping[str, PropertyModel]
                     ) -> list[tuple[str, PropertyModel]]:
    """(column prefix, model) pairs: no prefix unless two models share a target name, then
    ``<name>_`` for each of those models."""
    if not isinstance(models, Mapping):
        return [("", models)]
    counts = Counter(t for m in models.values() for t in m.target_names)
    return [(f"{name}_" if any(counts[t] > 1 for t in m.target_names) else "", m)
            for name, m in models.items()]


def evaluate_file(model: PropertyModel, input: str | os.PathLike, *, smiles_column: str,
                  target_columns: Sequence[str] | None = None,
                  on_invalid: OnInvalid = "error") -> dict[str, Any]:
    targets = list(target_columns or model.target_names)
    if len(targets) != model.n_tasks:
        raise BadInputError(f"the model predicts {model.n_tasks} target(s) "
                            f"({', '.join(model.target_names)}); {len(targets)} column(s) given")

    class Named(PropertyTask):
        def read(self):
            data, rejects = super().read()
            data.target_names = list(model.target_names)  # the model's names for its columns
            return data, rejects

    task = Named(input, smiles_column, targets, model.config, on_invalid=on_invalid)
    return workflow.evaluate_file(task, model, source=input, on_invalid=on_invalid)

