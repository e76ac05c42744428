"""File-level workflows behind ``pmt expr annotate`` and ``pmt expr classify``: load or train
a classifier, train one from files with cross-validation and attributions."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.expression.config import ClassifierConfig

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
                             config: ClassifierConfig | None = None,
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


def train_classifier_file(input: str | os.PathLike, outdir: str | os.PathLike, *,
                          label_key: str, labels: str | os.PathLike | None = None,
                          config: ClassifierConfig | None = None, folds: int = 5,
                          orientation: str = "auto", make_unique: bool = False,
                          overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Cross-validate (``folds``), fit on every profile, and write ``outdir``: the model,
    ``cv.csv``, ``attributions.csv`` (mean |integrated gradient| of each gene for the
    profiles of each class, top genes first) and ``config.json``. An interrupted run keeps
    its checkpoints (one per fold, and the final fit's) in ``outdir/work`` and continues
    from them with ``resume``."""
    import pandas as pd

    from pmtoolkit.core.config import check_ranges, to_dict, write_resolved
    from pmtoolkit.core.io import atomic_dir, check_output_dir, work_dir, write_table
    from pmtoolkit.expression.classifier import (
        check_trainable,
        cross_validate,
        fit_classifier,
        labels_of,
    )
    from pmtoolkit.expression.io import read

    config = config or ClassifierConfig()
    check_ranges(config, source="expression classifier config")
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    adata = read(input, orientation=orientation, make_unique=make_unique)
    if labels is not None:
        _attach_labels(adata, labels, label_key)
    check_trainable(adata, label_key, folds=folds)  # before the output folder is started
    y = labels_of(adata, label_key)
    info: dict[str, Any] = {"n_profiles": int(adata.n_obs)}
    settings = {"model": to_dict(config), "data": {
        "input": str(input), "labels": str(labels) if labels else None,
        "label_key": label_key, "folds": folds, "orientation": orientation,
        "make-unique": make_unique}}
    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        checkpoints = work_dir(outdir, settings)
        cv = cross_validate(adata, label_key, config, folds=folds, seed=config.seed,
                            workdir=tmp / "training", checkpoints=checkpoints,
                            resume=resume) if folds >= 2 else None
        model = fit_classifier(adata, label_key, config, workdir=tmp / "training" / "final",
                               checkpoints=checkpoints / "final", resume=resume)
        info["classes"] = model.classes
        rows = []
        for cls in model.classes:
            sel = adata[y == cls].copy()
            attr = model.attributions(sel, target=cls).abs().mean(axis=0)
            top = attr.sort_values(ascending=False)
            rows.append(pd.DataFrame({"class": cls, "rank": range(1, len(top) + 1),
                                      "gene": top.index,
                                      "mean_abs_attribution": top.to_numpy()}))
        attributions = pd.concat(rows, ignore_index=True)
        metrics = dict(model.metadata["metrics"])
        if cv is not None:
            info["cv"] = {k: float(cv[k].mean()) for k in ("accuracy", "balanced_accuracy",
                                                           "macro_f1")}
            metrics["cv"] = info["cv"]
        model.save(tmp / "model.safetensors", metrics=metrics)
        if cv is not None:
            write_table(cv, tmp / "cv.csv")
        write_table(attributions, tmp / "attributions.csv")
        write_resolved(tmp / "config.json", **settings)
    info["outdir"] = str(Path(outdir))
    return info
