"""File-level workflows behind ``pmt imaging``: train, predict, evaluate, segment, explain.

Inputs are the field's files (NIfTI, DICOM files or series folders, PNG/JPEG, NPY, MedMNIST
NPZ, a CSV of image paths and labels, a CSV of image and mask paths); outputs are tables,
NIfTI/PNG masks, PNG pictures and an HTML report, each written atomically. An image that
cannot be read never stops a batch: its row stays in the output (empty label, NaN
probabilities) and it is listed with its reason in ``*.rejected.csv`` / ``rejected.csv``.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Rejects, write_json

log = logging.getLogger(__name__)

#: models shipped in data/ (see data/MANIFEST)
SHIPPED_CLASSIFIERS = ("pneumonia",)
SHIPPED_SEGMENTERS = ("mni-tissue",)
TASKS = ("classify", "segment")


def load(name_or_path: str | os.PathLike, task: str | None = None):
    """A saved or shipped image model; with ``task``, it must be of that kind."""
    from pmtoolkit.core.model import load_named
    from pmtoolkit.imaging.classifier import ImageClassifier
    from pmtoolkit.imaging.segment import Segmenter

    model = load_named(name_or_path, shipped_names=SHIPPED_CLASSIFIERS + SHIPPED_SEGMENTERS,
                       model_class=(ImageClassifier, Segmenter), what="imaging model")
    kind = task_of(model)
    if task is not None and task != kind:
        raise BadInputError(f"'{name_or_path}' is a {'classifier' if kind == 'classify' else 'segmenter'}"
                            f", not a model for --task {task}")
    return model


def task_of(model) -> str:
    from pmtoolkit.imaging.classifier import ImageClassifier

    return "classify" if isinstance(model, ImageClassifier) else "segment"


def _names(paths: list[str], suffix: str) -> list[str]:
    """Output file names from input stems, made unique (``a.png`` twice: a, a-2)."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        name = Path(str(p).rstrip("/\\")).name
        for ext in (".nii.gz", ".nii", ".dcm", ".png", ".jpg", ".jpeg", ".npy", ".tif", ".tiff",
                    ".bmp", ".dicom"):
            if name.lower().endswith(ext):
                name = name[: -len(ext)]
                break
        n = seen.get(name, 0) + 1
        seen[name] = n
        out.append(f"{name}{'' if n == 1 else f'-{n}'}{suffix}")
    return out


# ------------------------------------------------------------------------------ data

def read_classification_data(*, table: str | None = None, npz: str | None = None,
                             split: str = "train", class_names: list[str] | None = None,
                             path_column: str = "path", label_column: str = "label",
                             rejects: Rejects | None = None,
                             check: Callable[[Any], None] | None = None):
    """``(images, labels, sources)`` from a label table (images read, unreadable ones in
    ``rejects``) or one split of a MedMNIST NPZ (integer labels named by ``class_names``).
    ``check`` (e.g. a model's ``check_input``) raises for an image the model cannot take;
    those go to ``rejects`` too."""
    from pmtoolkit.imaging.io import read_images, read_labelled_folder, read_npz

    if (table is None) == (npz is None):
        raise BadInputError("give the images as --data TABLE or --npz FILE (one of them)")
    rejects = rejects if rejects is not None else Rejects(source=str(table or npz),
                                                          item_name="path")
    if npz is not None:
        x, y = read_npz(npz, split)
        if y.ndim != 1:
            raise BadInputError(f"'{npz}' has multi-label {split} labels; pmtoolkit's "
                                "classifier takes one label per image")
        if class_names:
            if len(y) and y.max() >= len(class_names):
                raise BadInputError(f"labels run to {int(y.max())} but {len(class_names)} "
                                    "class names were given")
            labels = [class_names[i] for i in y]
        else:
            labels = [str(i) for i in y]
        images, sources = list(x), [f"{npz}:{split}[{i}]" for i in range(len(x))]
    else:
        paths, labels, rejects = read_labelled_folder(table, path_column=path_column,
                                                      label_column=label_column,
                                                      rejects=rejects)
        images, bad = read_images(paths)
        for r in bad:
            rejects.add(r.item, None, r.reason)
        labels, sources = [str(lab) for lab in labels], [str(p) for p in paths]
    keep = []
    for i, image in enumerate(images):
        if image is None:
            continue
        try:
            if check is not None:
                check(image)
        except BadInputError as exc:
            rejects.add(sources[i], None, exc.message)
            continue
        keep.append(i)
    return [images[i] for i in keep], [labels[i] for i in keep], [sources[i] for i in keep]


def read_segmentation_data(table: str, *, image_column: str = "image",
                           mask_column: str = "mask", rejects: Rejects | None = None):
    """``(images, masks, sources)`` from a table of image and mask paths (relative to the
    table's folder); pairs with a missing or unreadable file, or a mask whose shape differs
    from its image's, go to ``rejects``."""
    from pmtoolkit.core.io import read_table
    from pmtoolkit.imaging.io import check_mask, read_image

    frame = read_table(table, columns=[image_column, mask_column])
    base = Path(table).parent
    rejects = rejects if rejects is not None else Rejects(source=str(table), item_name="image")
    images, masks, sources = [], [], []
    for line, (ip, mp) in enumerate(zip(frame[image_column], frame[mask_column]), start=2):
        try:
            paths = [Path(str(p)) if Path(str(p)).is_absolute() else base / str(p)
                     for p in (ip, mp)]
            image, mask = read_image(paths[0]), read_image(paths[1])
            check_mask(image, mask)
        except BadInputError as exc:
            rejects.add(ip, line, exc.message)
            continue
        images.append(image)
        masks.append(np.rint(mask.array[0]).astype(np.int64))
        sources.append(str(paths[0]))
    return images, masks, sources


# ------------------------------------------------------------------------------ train

def train(*, task: str, outdir: str | os.PathLike, config, table: str | None = None,
          npz: str | None = None, valid_table: str | None = None,
          class_names: list[str] | None = None, on_invalid: str = "error",
          overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Train a classifier or segmenter from files and write ``outdir``: ``model.safetensors``,
    ``metrics.json``, ``config.json``, the training logs under ``training/`` (and
    ``rejected.csv`` with ``on_invalid='skip'``). An interrupted run keeps its last checkpoint
    in ``outdir/work`` and continues from it with ``resume``."""
    from pmtoolkit.core.config import to_dict, write_resolved
    from pmtoolkit.core.io import atomic_dir, check_output_dir, work_dir

    if task not in TASKS:
        raise BadInputError(f"unknown task {task!r}", hint="classify or segment")
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    rejects = Rejects(source=str(table or npz), item_name="path")
    if task == "classify":
        fit_model = _classifier_inputs(config, table=table, npz=npz, valid_table=valid_table,
                                       class_names=class_names, rejects=rejects)
    else:
        fit_model = _segmenter_inputs(config, table=table, valid_table=valid_table,
                                      class_names=class_names, rejects=rejects)
    if on_invalid == "error":
        rejects.raise_first()
    data = {"task": task, "data": table, "npz": npz, "valid": valid_table,
            "classes": class_names, "on-invalid": on_invalid}
    settings = {"model": to_dict(config), "data": data}
    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        rejects.apply("skip", tmp, final=outdir)
        model = fit_model(workdir=tmp / "training", checkpoints=work_dir(outdir, settings),
                          resume=resume)
        metrics = dict(model.metadata["metrics"])
        model.save(tmp / "model.safetensors", metrics=metrics)
        write_json(tmp / "metrics.json", metrics)
        write_resolved(tmp / "config.json", model=config, data={**data, "classes": model.classes})
    return {"task": task, "classes": model.classes, "metrics": metrics,
            "rejected": len(rejects), "outdir": str(outdir)}


def _classifier_inputs(config, *, table, npz, valid_table, class_names, rejects):
    """Read a classifier's training (and validation) images; returns the training call."""
    from functools import partial

    from pmtoolkit.imaging.classifier import fit_classifier
    from pmtoolkit.imaging.transforms import check_input

    check = partial(check_input, size=tuple(config.image_size), in_channels=config.in_channels)
    images, labels, _ = read_classification_data(table=table, npz=npz, split="train",
                                                 class_names=class_names, rejects=rejects,
                                                 check=check)
    valid = None
    if valid_table is not None:
        vi, vl, _ = read_classification_data(table=valid_table, rejects=rejects, check=check)
        valid = (vi, vl)
    elif npz is not None:
        with np.load(npz, allow_pickle=False) as data:
            has_valid = "val_images" in data.files
        if has_valid:
            vi, vl, _ = read_classification_data(npz=npz, split="val", class_names=class_names,
                                                 rejects=rejects, check=check)
            valid = (vi, vl)
    if not images:
        _nothing_usable(rejects, "training images")
    classes = class_names if class_names and npz is not None else None
    return partial(fit_classifier, images, labels, config, valid=valid, classes=classes)


def _segmenter_inputs(config, *, table, valid_table, class_names, rejects):
    """Read a segmenter's training (and validation) pairs; returns the training call."""
    from functools import partial

    from pmtoolkit.imaging.segment import block_split, fit_segmenter

    if table is None:
        raise BadInputError("--task segment needs --data TABLE with image and mask columns")
    images, masks, _ = read_segmentation_data(table, rejects=rejects)
    if not images:
        _nothing_usable(rejects, "image and mask pairs")
    n_classes = int(max(m.max() for m in masks)) + 1
    classes = class_names or ["background"] + [f"class_{k}" for k in range(1, n_classes)]
    if len(classes) < n_classes:
        raise BadInputError(f"masks hold labels up to {n_classes - 1} but "
                            f"{len(classes)} class names were given")
    kwargs: dict[str, Any] = {}
    if valid_table is not None:
        vi, vm, _ = read_segmentation_data(valid_table, rejects=rejects)
        kwargs["valid"] = (vi, vm)
    elif len(images) >= 5:
        n_val = max(1, len(images) // 5)
        kwargs["valid"] = (images[-n_val:], masks[-n_val:])
        images, masks = images[:-n_val], masks[:-n_val]
    elif config.spatial_dims == 2 and all(im.ndim == 3 for im in images):
        # few volumes: validate on blocks of slices held out of each
        def split(n: int) -> dict[str, list[int]]:  # small volumes: smaller blocks
            return block_split(n, block=max(1, min(8, n // 15)), buffer=2 if n >= 40 else 0,
                               test=False)

        splits = [split(im.spatial_shape[config.slice_axis]) for im in images]
        kwargs.update(valid=(images, masks), train_slices=[s["train"] for s in splits],
                      valid_slices=[s["valid"] for s in splits])
    else:
        log.warning("fewer than 5 images and no --valid table: training without "
                    "validation (the last epoch is kept)")
    return partial(fit_segmenter, images, masks, config, classes=classes, **kwargs)


def _nothing_usable(rejects: Rejects, what: str, n: int | None = None) -> None:
    """Stop a run that has nothing left to work on, naming the first reject (exit 2)."""
    first = f"; first: {rejects.items[0].describe()}" if rejects else ""
    of = f" (all {n} rejected)" if n else ""
    raise BadInputError(f"no usable {what}{of}{first}")


# ---------------------------------------------------------------------------- predict

def predict(model, paths: list[str], output: str | os.PathLike, *,
            on_invalid: str = "skip") -> dict[str, Any]:
    """Class probabilities of each image: one row per input path (``path``, ``label``,
    ``prob_<class>``); an image that cannot be read, or that the model cannot take
    (:meth:`~pmtoolkit.imaging.classifier.ImageClassifier.check_input`), keeps its row with an
    empty label and is listed in ``<output>.rejected.csv``; with ``on_invalid='error'`` it
    stops the run. A run where no image could be classified is an error."""
    import pandas as pd

    from pmtoolkit.core.io import write_table
    from pmtoolkit.imaging.io import read_images

    images, rejects = read_images(paths, rejects=Rejects(source="images", item_name="path"))
    prepared, ok = [], []
    for i, image in enumerate(images):
        if image is None:
            continue
        try:
            prepared.append(model.prepare([image])[0])
        except BadInputError as exc:
            rejects.add(paths[i], i + 1, exc.message)
            continue
        ok.append(i)
    rejects.items.sort(key=lambda r: r.line)
    if on_invalid == "error":
        rejects.raise_first()
    if not ok:
        _nothing_usable(rejects, "images", len(paths))
    probs = np.full((len(paths), len(model.classes)), np.nan)
    probs[ok] = model.predict_proba(np.stack(prepared), prepared=True)
    labels: list[str] = [""] * len(paths)
    for i, lab in zip(ok, model.labels_from(probs[ok])):
        labels[i] = lab
    frame = pd.DataFrame({"path": [str(p) for p in paths], "label": labels})
    for k, c in enumerate(model.classes):
        frame[f"prob_{c}"] = probs[:, k]
    write_table(frame, output)
    rejects.apply("skip", output)
    return {"n": len(paths), "predicted": len(ok), "rejected": len(rejects)}


# ---------------------------------------------------------------------------- segment

def _write_mask(mask: np.ndarray, image, path: Path) -> None:
    """A mask as NIfTI (with the image's affine when it came from NIfTI; ``.nii.gz`` is
    compressed by :func:`~pmtoolkit.core.io.atomic_write`) or, for a ``.png`` path, a PNG of
    class indices."""
    from pmtoolkit.core.io import atomic_write

    if path.suffix == ".png":
        from PIL import Image as PILImage

        with atomic_write(path, "wb") as fh:
            PILImage.fromarray(mask.astype(np.uint8)).save(fh, format="PNG")
        return
    import nibabel as nib

    affine = image.meta.get("affine")
    if affine is None:
        affine = np.diag([*image.spacing, 1.0][:4] + [1.0] * (4 - len(image.spacing) - 1))
    with atomic_write(path, "wb") as fh:
        fh.write(nib.Nifti1Image(mask.astype(np.uint8), np.asarray(affine, float)).to_bytes())


def segment(model, paths: list[str], outdir: str | os.PathLike, *, overlays: bool = True,
            overwrite: bool = False, on_invalid: str = "skip") -> dict[str, Any]:
    """Segment each image into ``outdir``: ``<name>_mask.nii.gz`` (``.png`` for 2-D
    pictures), ``<name>_overlay.png``, and ``volumes.csv`` (voxels and mm³ / mm² of each
    class per image). Images that cannot be read or segmented are listed in
    ``rejected.csv`` (with ``on_invalid='error'`` the first stops the run); a run where none
    could be segmented is an error and writes nothing."""
    import pandas as pd

    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_table
    from pmtoolkit.core.progress import progress
    from pmtoolkit.imaging.io import read_image
    from pmtoolkit.imaging.segment import overlay_mask

    check_output_dir(outdir, overwrite=overwrite)
    rejects = Rejects(source="images", item_name="path")
    rows = []
    names = _names(paths, "")
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        for i, (path, name) in enumerate(progress(list(zip(paths, names)), desc="segmenting",
                                                  unit="image"), start=1):
            try:
                image = read_image(path)
                mask = model.segment(image)
            except BadInputError as exc:
                rejects.add(path, i, exc.message)
                if on_invalid == "error":
                    rejects.raise_first()
                continue
            is_picture = image.ndim == 2 and not str(path).lower().endswith((".nii", ".nii.gz"))
            out = tmp / f"{name}_mask{'.png' if is_picture else '.nii.gz'}"
            _write_mask(mask, image, out)
            if overlays:
                overlay_mask(image, mask, tmp / f"{name}_overlay.png", classes=model.classes,
                             slice_axis=model.config.slice_axis, title=Path(path).name)
            unit = float(np.prod(image.spacing))
            row: dict[str, Any] = {"image": str(path), "mask": out.name}
            for k, c in enumerate(model.classes):
                n = int((mask == k).sum())
                row[f"voxels_{c}"] = n
                row[f"{'mm2' if image.ndim == 2 else 'mm3'}_{c}"] = n * unit
            rows.append(row)
        if not rows:
            _nothing_usable(rejects, "images to segment", len(paths))
        write_table(pd.DataFrame(rows), tmp / "volumes.csv")
        rejects.apply("skip", tmp, final=outdir)
    return {"n": len(paths), "segmented": len(rows), "rejected": len(rejects)}


# ---------------------------------------------------------------------------- explain

def explain(model, paths: list[str], outdir: str | os.PathLike, *, target: str | None = None,
            layer: str | None = None, overwrite: bool = False,
            on_invalid: str = "skip") -> dict[str, Any]:
    """Grad-CAM pictures (``<name>_gradcam.png``) of a classifier's predictions, with
    ``explanations.csv`` (path, label, probabilities, explained class); a segmenter writes
    mask overlays instead. Images that cannot be read or explained are listed in
    ``rejected.csv`` (with ``on_invalid='error'`` the first stops the run)."""
    import pandas as pd

    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_table
    from pmtoolkit.imaging.explain import cam_target_layer, gradcam, save_gradcam, target_index
    from pmtoolkit.imaging.io import read_image

    if task_of(model) == "segment":
        return segment(model, paths, outdir, overwrite=overwrite, on_invalid=on_invalid)
    # an unknown class or layer is the user's mistake, not the images'
    target_index(model, target)
    cam_target_layer(model, layer)
    check_output_dir(outdir, overwrite=overwrite)
    rejects = Rejects(source="images", item_name="path")
    names = _names(paths, "_gradcam.png")
    rows = []
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        for i, (path, name) in enumerate(zip(paths, names), start=1):
            try:
                maps, probs, x = gradcam(model, [read_image(path)], target=target, layer=layer)
            except BadInputError as exc:
                rejects.add(path, i, exc.message)
                if on_invalid == "error":
                    rejects.raise_first()
                continue
            label = model.labels_from(probs)[0]
            explained = target if target is not None else label
            shown = ", ".join(f"{c} {p:.2f}" for c, p in zip(model.classes, probs[0]))
            save_gradcam(x[0], maps[0], tmp / name,
                         title=f"{Path(path).name}: {shown}; map for {explained}")
            rows.append({"path": str(path), "label": label, "explained_class": explained,
                         **{f"prob_{c}": float(p) for c, p in zip(model.classes, probs[0])},
                         "picture": name})
        if not rows:
            _nothing_usable(rejects, "images to explain", len(paths))
        write_table(pd.DataFrame(rows), tmp / "explanations.csv")
        rejects.apply("skip", tmp, final=outdir)
    return {"n": len(paths), "explained": len(rows), "rejected": len(rejects)}


# --------------------------------------------------------------------------- evaluate

def evaluate(model, outdir: str | os.PathLike, *, table: str | None = None,
             npz: str | None = None, split: str = "test", threshold: float | str | None = None,
             on_invalid: str = "skip", overwrite: bool = False) -> dict[str, Any]:
    """Score a model on labelled images and write ``outdir``: ``metrics.json``, the
    per-image table, pictures (ROC, calibration, confusion matrix; or mask overlays) and
    ``report.html``."""
    if task_of(model) == "segment":
        return _evaluate_segmenter(model, outdir, table=table, on_invalid=on_invalid,
                                   overwrite=overwrite)
    import pandas as pd

    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_table
    from pmtoolkit.core.report import Report
    from pmtoolkit.imaging.evaluate import (
        evaluate_classifier,
        plot_calibration,
        plot_confusion,
        plot_roc,
    )

    check_output_dir(outdir, overwrite=overwrite)
    rejects = Rejects(source=str(table or npz), item_name="path")
    names = model.classes if npz is not None else None
    images, labels, sources = read_classification_data(table=table, npz=npz, split=split,
                                                       class_names=names, rejects=rejects,
                                                       check=model.check_input)
    if on_invalid == "error":
        rejects.raise_first()
    if not images:
        _nothing_usable(rejects, "labelled images to evaluate")
    unknown = sorted(set(labels) - set(model.classes))
    if unknown:
        raise BadInputError(f"labels {unknown} are not classes of the model",
                            hint="its classes: " + ", ".join(model.classes))
    res = evaluate_classifier(model, images, labels, threshold=threshold)
    probs, y = res.pop("_probs"), res.pop("_y")
    per = pd.DataFrame({"path": sources, "label": labels,
                        "predicted": model.labels_from(probs, res.get("threshold"))})
    for k, c in enumerate(model.classes):
        per[f"prob_{c}"] = probs[:, k]
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        write_json(tmp / "metrics.json", res)
        write_table(per, tmp / "predictions.csv")
        plot_roc(y, probs, model.classes, tmp / "roc.png", threshold=res.get("threshold"))
        plot_calibration(y, probs, tmp / "calibration.png")
        plot_confusion(np.asarray(res["confusion"]), model.classes, tmp / "confusion.png")
        report = Report("Image classifier evaluation",
                        subtitle=f"{res['n']} images ({', '.join(f'{c}: {n}' for c, n in res['counts'].items())})")
        keys = [k for k in ("auc", "accuracy", "threshold", "accuracy_at_threshold",
                            "sensitivity", "specificity", "ppv", "npv", "pr_auc", "brier", "ece")
                if k in res]
        report.section("Metrics").table(pd.DataFrame(
            {"metric": keys, "value": [float(res[k]) for k in keys]}), floatfmt="{:.4f}") \
            .text("Threshold: " + str(res.get("threshold_source", "most probable class")))
        report.section("Pictures").figure("roc.png", "ROC curve with the operating point") \
            .figure("calibration.png", "Reliability of the predicted probabilities") \
            .figure("confusion.png", "Confusion matrix (rows: true class)")
        report.write(tmp / "report.html")
        rejects.apply("skip", tmp, final=outdir)
    res["rejected"] = len(rejects)
    return res


def _evaluate_segmenter(model, outdir, *, table, on_invalid, overwrite) -> dict[str, Any]:
    import pandas as pd

    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_table
    from pmtoolkit.core.report import Report
    from pmtoolkit.imaging.evaluate import segmentation_metrics
    from pmtoolkit.imaging.segment import overlay_mask

    if table is None:
        raise BadInputError("evaluating a segmenter needs --data TABLE of image and mask paths")
    check_output_dir(outdir, overwrite=overwrite)
    rejects = Rejects(source=str(table), item_name="image")
    images, masks, sources = read_segmentation_data(table, rejects=rejects)
    if on_invalid == "error":
        rejects.raise_first()
    if not images:
        _nothing_usable(rejects, "image and mask pairs to evaluate")
    rows = []
    names = _names(sources, "_overlay.png")
    n = 0
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        for image, mask, source, name in zip(images, masks, sources, names):
            try:
                pred = model.segment(image)
            except BadInputError as exc:
                rejects.add(source, None, exc.message)
                if on_invalid == "error":
                    rejects.raise_first()
                continue
            n += 1
            for cls, vals in segmentation_metrics(pred, mask, model.classes,
                                                  spacing=image.spacing).items():
                rows.append({"image": source, "class": cls, **vals})
            overlay_mask(image, pred, tmp / name, truth=mask, classes=model.classes,
                         slice_axis=model.config.slice_axis, title=Path(source).name)
        if not n:
            _nothing_usable(rejects, "image and mask pairs to evaluate")
        per = pd.DataFrame(rows)
        summary = (per.groupby("class")[["dice", "iou", "hausdorff95", "hausdorff"]].mean()
                   .reset_index() if len(per) else pd.DataFrame())
        res = {"n": n,
               "classes": {r["class"]: {k: r[k] for k in ("dice", "iou", "hausdorff95",
                                                           "hausdorff")}
                           for r in summary.to_dict("records")}}
        if len(summary):
            res["dice"] = float(summary["dice"].mean())
            res["iou"] = float(summary["iou"].mean())
        write_json(tmp / "metrics.json", res)
        write_table(per, tmp / "per_image.csv")
        report = Report("Segmentation evaluation", subtitle=f"{len(images)} image(s)")
        report.section("Mean per class").table(summary, floatfmt="{:.3f}").text(
            "Hausdorff distances are in the images' physical units (mm for NIfTI and DICOM).")
        sec = report.section("Overlays (top: predicted, bottom: true)")
        for name in names:
            if (tmp / name).exists():
                sec.figure(name, name.removesuffix("_overlay.png"))
        report.write(tmp / "report.html")
        rejects.apply("skip", tmp, final=outdir)
    res["rejected"] = len(rejects)
    return res
