"""File-level workflows behind ``pmt expr annotate`` and ``pmt expr classify``: load or train
a classifier; train one from files (cross-validation, the final fit, attributions) and
evaluate one on labelled files, both through :mod:`pmtoolkit.core.workflow`."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmtoolkit.core import workflow
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Rejects
from pmtoolkit.core.workflow import Parts
from pmtoolkit.expression.config import ExpressionClassifierConfig

log = logging.getLogger(__name__)

#: the classifiers shipped in data/ (see data/MANIFEST)
SHIPPED_CLASSIFIERS = ("pbmc68k",)


def load(name_or_path: str | os.PathLike):
    """A saved expression classifier, or a shipped one by name."""
    from pmtoolkit.core.model import load_named
    from pmtoolkit.expression.classifier import ExpressionClassifier

    return load_named(name_or_path, shipped_names=SHIPPED_CLASSIFIERS,
                      model_class=ExpressionClassifier, what="expression classifier")


def load_or_train_classifier(reference: str | os.PathLike, *, label_key: str | None,
                             config: ExpressionClassifierConfig | None = None,
                             checkpoints: str | os.PathLike | None = None,
                             resume: bool = False):
    """A classifier trained on a labelled reference ``.h5ad`` (``label_key`` names its label
    column; the training's resume checkpoint goes to ``checkpoints``), or a saved or shipped
    classifier."""
    from pmtoolkit.expression.classifier import fit_classifier
    from pmtoolkit.expression.io import read

    if is_reference(reference):
        if not label_key:
            raise BadInputError("a reference .h5ad needs --label-column (its obs column of labels)")
        ref = read(reference)
        model = fit_classifier(ref, label_key, config, checkpoints=checkpoints, resume=resume)
        acc = model.metadata["metrics"].get("val_accuracy")
        log.info("classifier trained on %d reference cells (%d classes); held-out accuracy %s",
                 ref.n_obs, len(model.classes), f"{acc:.3f}" if acc is not None else "n/a")
        return model
    model = load(reference)
    if label_key and model.label_key and label_key != model.label_key:
        log.warning("--label-column %r ignored: the model predicts %r", label_key, model.label_key)
    return model


def is_reference(reference: str | os.PathLike) -> bool:
    """Whether ``reference`` names data to train a classifier on (an ``.h5ad``) rather than
    a saved or shipped classifier."""
    return str(reference).lower().endswith(".h5ad")


def _attach_labels(adata, labels: str | os.PathLike, label_key: str) -> None:
    from pmtoolkit.core.io import read_table

    table = read_table(labels)
    if label_key not in table.columns:
        raise BadInputError(f"'{labels}' has no column {label_key!r}",
                            hint="columns: " + ", ".join(map(str, table.columns)))
    table = table.set_index(table.columns[0])
    table.index = table.index.astype(str)
    missing = [s for s in adata.obs_names if s not in table.index]
    if missing:
        raise BadInputError(f"{len(missing)} profile(s) have no row in '{labels}', e.g. "
                            f"{missing[0]!r}", hint="its first column must hold the sample ids")
    adata.obs[label_key] = table.loc[list(adata.obs_names), label_key].to_numpy()


@dataclass
class Profiles:
    """Labelled expression profiles: an AnnData and the obs column of its labels."""

    adata: Any
    label_key: str

    def __len__(self) -> int:
        return int(self.adata.n_obs)

    def fingerprint(self) -> str:
        """sha256 of the expression matrix, the gene and profile names and the labels."""
        import hashlib

        import numpy as np
        import scipy.sparse as sp

        from pmtoolkit.expression.classifier import labels_of

        h = hashlib.sha256()
        X = self.adata.X
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            for part in (X.data, X.indices, X.indptr):
                h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(np.ascontiguousarray(X).tobytes())
        for names in (self.adata.var_names, self.adata.obs_names,
                      labels_of(self.adata, self.label_key)):
            h.update("\n".join(map(str, names)).encode() + b"\0")
        return h.hexdigest()


@dataclass
class ClassifierTask:
    """The expression classifier's :class:`~pmtoolkit.core.workflow.SupervisedTask`:
    profiles (bulk samples or cells) with a label column (or a ``labels`` table), stratified
    cross-validation in ``folds`` (``cv.csv``), then the model fitted on every profile (its
    fit holds out 10% of each class for early stopping from 50 profiles on) and the genes
    that drive each class (``attributions.csv``). With ``model`` it reads profiles to
    evaluate that model on."""

    input: str | os.PathLike
    label_key: str | None
    config: ExpressionClassifierConfig = field(default_factory=ExpressionClassifierConfig)
    labels: str | os.PathLike | None = None
    folds: int = 5
    orientation: str = "auto"
    make_unique: bool = False
    model: Any = None
    noun: str = "profiles"
    min_records: int = 2
    #: the cross-validation's table, from :meth:`fit`
    cv: Any = field(default=None, init=False)

    def settings(self) -> dict[str, Any]:
        from pmtoolkit.core.config import to_dict

        return {"model": to_dict(self.config), "data": {
            "input": str(self.input), "labels": str(self.labels) if self.labels else None,
            "label_key": self.label_key, "folds": self.folds, "orientation": self.orientation,
            "make-unique": self.make_unique}}

    def read(self) -> tuple[Profiles, Rejects]:
        from pmtoolkit.core.config import check_ranges
        from pmtoolkit.expression.classifier import check_trainable, labels_of
        from pmtoolkit.expression.io import read

        check_ranges(self.config, source="expression classifier config")
        if not self.label_key:
            raise BadInputError("name the label column with --label-column")
        adata = read(self.input, orientation=self.orientation, make_unique=self.make_unique)
        if self.labels is not None:
            _attach_labels(adata, self.labels, self.label_key)
        if self.model is None:
            check_trainable(adata, self.label_key, folds=self.folds)
        else:
            unknown = sorted(set(labels_of(adata, self.label_key)) - set(self.model.classes))
            if unknown:
                raise BadInputError(f"labels {unknown[:5]} are not classes of the model",
                                    hint="its classes: " + ", ".join(self.model.classes))
        return Profiles(adata, self.label_key), Rejects(str(self.input), "profile")

    def split(self, data: Profiles) -> Parts:
        """Every profile trains the final model; the cross-validation in :meth:`fit` draws
        its own folds."""
        return Parts(data, None, None, method="cross-validation" if self.folds >= 2 else "none",
                     save=None)

    def fit(self, train: Profiles, valid, *, workdir: Path, checkpoints: Path, resume: bool):
        from pmtoolkit.expression.classifier import cross_validate, fit_classifier

        if self.folds >= 2:
            self.cv = cross_validate(train.adata, self.label_key, self.config, folds=self.folds,
                                     seed=self.config.seed, workdir=workdir,
                                     checkpoints=checkpoints, resume=resume)
        return fit_classifier(train.adata, self.label_key, self.config,
                              workdir=workdir / "final", checkpoints=checkpoints / "final",
                              resume=resume)

    def summary(self, model) -> dict[str, Any]:
        """The final fit's numbers, the classes, and the mean of the cross-validation."""
        out = {**model.metadata["metrics"], "classes": list(model.classes)}
        if self.cv is not None:
            out["cv"] = {k: float(self.cv[k].mean())
                         for k in ("accuracy", "balanced_accuracy", "macro_f1")}
        return out

    def evaluate(self, model, data: Profiles) -> dict[str, Any]:
        """Accuracy, balanced accuracy and macro F1 of ``model`` on ``data``."""
        from sklearn.metrics import balanced_accuracy_score, f1_score

        from pmtoolkit.expression.classifier import labels_of

        y = labels_of(data.adata, data.label_key)
        pred = model.predict(data.adata)["label"].to_numpy().astype(str)
        return {"n": len(y), "accuracy": float((pred == y).mean()),
                "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
                "macro_f1": float(f1_score(y, pred, average="macro"))}

    def extras(self, model, parts: Parts, folder: Path) -> dict[str, Any]:
        """``cv.csv`` (one row per fold) and ``attributions.csv``: the mean |integrated
        gradient| of each gene over the profiles of each class, top genes first."""
        import pandas as pd

        from pmtoolkit.core.io import write_table
        from pmtoolkit.expression.classifier import labels_of

        adata = parts.train.adata
        y = labels_of(adata, self.label_key)
        rows = []
        for cls in model.classes:
            attr = model.attributions(adata[y == cls].copy(), target=cls).abs().mean(axis=0)
            top = attr.sort_values(ascending=False)
            rows.append(pd.DataFrame({"class": cls, "rank": range(1, len(top) + 1),
                                      "gene": top.index,
                                      "mean_abs_attribution": top.to_numpy()}))
        if self.cv is not None:
            write_table(self.cv, folder / "cv.csv")
        write_table(pd.concat(rows, ignore_index=True), folder / "attributions.csv")
        return {}


def train_file(input: str | os.PathLike, outdir: str | os.PathLike, *, label_key: str,
               labels: str | os.PathLike | None = None,
               config: ExpressionClassifierConfig | None = None,
               folds: int = 5, orientation: str = "auto", make_unique: bool = False,
               overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Cross-validate (``folds``), fit on every profile, and write ``outdir``
    (:func:`pmtoolkit.core.workflow.train_file`): the model, ``metrics.json`` (the fit's
    numbers, classes, the cross-validation's means), ``cv.csv``, ``attributions.csv`` (mean
    |integrated gradient| of each gene for the profiles of each class, top genes first) and
    ``config.json``; returns the metrics. An interrupted run keeps its checkpoints (one per
    fold, and the final fit's) in ``outdir/work`` and continues from them with ``resume``."""
    from pmtoolkit.core.io import check_output_dir

    task = ClassifierTask(input, label_key, config or ExpressionClassifierConfig(), labels, folds,
                          orientation, make_unique)
    check_output_dir(outdir, overwrite=overwrite, resume=resume)  # before reading the input
    return workflow.train_file(task, outdir, source=input, overwrite=overwrite, resume=resume)


def evaluate_file(model, input: str | os.PathLike, *, label_key: str | None = None,
                  labels: str | os.PathLike | None = None, orientation: str = "auto",
                  make_unique: bool = False) -> dict[str, Any]:
    """Accuracy, balanced accuracy and macro F1 of a classifier on labelled profiles
    (:func:`pmtoolkit.core.workflow.evaluate_file`); ``label_key`` defaults to the column
    the model was trained on."""
    task = ClassifierTask(input, label_key or model.label_key, model.config, labels,
                          orientation=orientation, make_unique=make_unique, model=model)
    return workflow.evaluate_file(task, model, source=input)
