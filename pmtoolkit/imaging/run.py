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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core import workflow
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid, Rejects
from pmtoolkit.core.workflow import Parts

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
        what = "classifier" if kind == "classify" else "segmenter"
        raise BadInputError(f"'{name_or_path}' is a {what}, not a model for --task {task}")
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
        raise BadInputError("give the images as one input: a table of image paths and "
                            "labels, or a MedMNIST .npz (-i)")
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
                           mask_column: str = "mask", rejects: Rejects | None = None,
                           check: Callable[[Any], Any] | None = None):
    """``(images, masks, sources)`` from a table of image and mask paths (relative to the
    table's folder); pairs with a missing or unreadable file, or a mask whose shape differs
    from its image's, go to ``rejects``, and so do images ``check`` (e.g. a segmenter's
    ``prepare``) raises for."""
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
            if check is not None:
                check(image)
        except BadInputError as exc:
            rejects.add(ip, line, exc.message)
            continue
        images.append(image)
        masks.append(np.rint(mask.array[0]).astype(np.int64))
        sources.append(str(paths[0]))
    return images, masks, sources


# ------------------------------------------------------------------------------ task

@dataclass
class LabelledImages:
    """Images with their labels (class names, a classifier's) or label maps (a segmenter's),
    where each came from, and the part of a given split each is in (``train`` / ``val``).
    ``slices`` (per image, the slice indices to use) hold blocks of a volume's slices out of
    one part for the other."""

    images: list
    targets: list
    sources: list[str]
    parts: list[str]
    slices: list | None = None

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index) -> LabelledImages:
        index = list(index)
        return LabelledImages([self.images[i] for i in index], [self.targets[i] for i in index],
                              [self.sources[i] for i in index], [self.parts[i] for i in index],
                              None if self.slices is None else [self.slices[i] for i in index])

    def with_slices(self, slices: list) -> LabelledImages:
        return LabelledImages(self.images, self.targets, self.sources, self.parts, slices)

    def fingerprint(self) -> str:
        """sha256 of the pixels, the targets and the slices used."""
        import hashlib

        h = hashlib.sha256()
        for image, target in zip(self.images, self.targets):
            h.update(np.ascontiguousarray(getattr(image, "array", image)).tobytes())
            h.update(np.ascontiguousarray(target).tobytes() if isinstance(target, np.ndarray)
                     else f"{target}\n".encode())
        if self.slices is not None:
            h.update(repr([[int(i) for i in s] for s in self.slices]).encode())
        return h.hexdigest()


@dataclass
class ImageTask:
    """imaging's :class:`~pmtoolkit.core.workflow.SupervisedTask`: labelled images from a
    table or a MedMNIST NPZ (``classify``), or image and mask pairs (``segment``); a split
    given by the input (an NPZ's val part, a ``valid_table``) or held out of it (the last
    fifth of the pairs, or slice blocks of a few volumes; a classifier without one holds out
    10% itself); a ResNet / DenseNet or a U-Net, whose fit scores its validation part. With
    ``model`` it reads images to evaluate that model on (the ``part`` of an NPZ) and writes
    an evaluation report."""

    task: str
    config: Any = None
    table: str | None = None
    npz: str | None = None
    valid_table: str | None = None
    class_names: list[str] | None = None
    on_invalid: OnInvalid = "error"
    model: Any = None
    part: str = "test"
    threshold: float | str | None = None
    noun: str = "images"
    min_records: int = 1
    #: the fits score their validation part themselves (AUC and threshold; Dice)
    evaluate_valid: bool = False
    #: the class names, resolved by :meth:`split`
    classes: list[str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise BadInputError(f"unknown task {self.task!r}", hint="classify or segment")

    def settings(self) -> dict[str, Any]:
        from pmtoolkit.core.config import to_dict

        return {"model": to_dict(self.config), "data": {
            "task": self.task, "data": self.table, "npz": self.npz, "valid": self.valid_table,
            "classes": self.classes, "on-invalid": self.on_invalid}}

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> tuple[LabelledImages, Rejects]:
        evaluating = self.model is not None
        rejects = Rejects(source=str(self.table or self.npz),
                          item_name="image" if evaluating and self.task == "segment" else "path")
        read = self._read_classified if self.task == "classify" else self._read_segmented
        return read(rejects, evaluating), rejects

    def _read_classified(self, rejects: Rejects, evaluating: bool) -> LabelledImages:
        if evaluating:
            names = self.model.classes if self.npz is not None else None
            images, labels, sources = read_classification_data(
                table=self.table, npz=self.npz, split=self.part, class_names=names,
                rejects=rejects, check=self.model.check_input)
            if not images:
                _nothing_usable(rejects, "labelled images to evaluate")
            unknown = sorted(set(labels) - set(self.model.classes))
            if unknown:
                raise BadInputError(f"labels {unknown} are not classes of the model",
                                    hint="its classes: " + ", ".join(self.model.classes))
            return LabelledImages(images, labels, sources, ["test"] * len(images))
        from functools import partial

        from pmtoolkit.imaging.transforms import check_input

        check = partial(check_input, size=tuple(self.config.image_size),
                        in_channels=self.config.in_channels)
        images, labels, sources = read_classification_data(
            table=self.table, npz=self.npz, split="train", class_names=self.class_names,
            rejects=rejects, check=check)
        parts = ["train"] * len(images)
        if self.valid_table is not None:
            valid = read_classification_data(table=self.valid_table, rejects=rejects,
                                             check=check)
        elif self.npz is not None and _has_part(self.npz, "val"):
            valid = read_classification_data(npz=self.npz, split="val",
                                             class_names=self.class_names, rejects=rejects,
                                             check=check)
        else:
            valid = ([], [], [])
        if not images:
            _nothing_usable(rejects, "training images")
        return LabelledImages(images + valid[0], labels + valid[1], sources + valid[2],
                              parts + ["val"] * len(valid[0]))

    def _read_segmented(self, rejects: Rejects, evaluating: bool) -> LabelledImages:
        if self.table is None:
            raise BadInputError(f"{'evaluating a segmenter' if evaluating else '--task segment'}"
                                " needs a table of image and mask paths (-i TABLE), not an NPZ")
        if evaluating:
            images, masks, sources = read_segmentation_data(self.table, rejects=rejects,
                                                            check=self.model.prepare)
            if not images:
                _nothing_usable(rejects, "image and mask pairs to evaluate")
            return LabelledImages(images, masks, sources, ["test"] * len(images))
        images, masks, sources = read_segmentation_data(self.table, rejects=rejects)
        if not images:
            _nothing_usable(rejects, "image and mask pairs")
        parts = ["train"] * len(images)
        if self.valid_table is not None:
            vi, vm, vs = read_segmentation_data(self.valid_table, rejects=rejects)
            images, masks, sources = images + vi, masks + vm, sources + vs
            parts += ["val"] * len(vi)
        return LabelledImages(images, masks, sources, parts)

    # -- splitting and fitting ---------------------------------------------------------------
    def split(self, data: LabelledImages) -> Parts:
        train = data.subset(i for i, p in enumerate(data.parts) if p == "train")
        given = [i for i, p in enumerate(data.parts) if p == "val"]
        valid = data.subset(given) if given else None
        method = ("valid-table" if self.valid_table is not None else "npz-parts") if given \
            else "none"
        if self.task == "classify":
            from pmtoolkit.imaging.classifier import encode_labels

            self.classes = (list(self.class_names) if self.class_names and self.npz is not None
                            else encode_labels(train.targets)[1])
            if valid is None:
                method = "stratified-random"  # fit_classifier holds out 10% of each class
            return Parts(train, valid, None, method=method, save=None)
        n_classes = int(max(m.max() for m in train.targets)) + 1
        self.classes = list(self.class_names or
                            ["background"] + [f"class_{k}" for k in range(1, n_classes)])
        if len(self.classes) < n_classes:
            raise BadInputError(f"masks hold labels up to {n_classes - 1} but "
                                f"{len(self.classes)} class names were given")
        if valid is None and len(train) >= 5:
            n_val = max(1, len(train) // 5)
            valid = train.subset(range(len(train) - n_val, len(train)))
            train = train.subset(range(len(train) - n_val))
            method = "last-fifth"
        elif valid is None and self.config.spatial_dims == 2 and \
                all(im.ndim == 3 for im in train.images):
            from pmtoolkit.imaging.segment import block_split

            # few volumes: validate on blocks of slices held out of each (smaller blocks for
            # small volumes)
            def blocks(n: int) -> dict[str, list[int]]:
                return block_split(n, block=max(1, min(8, n // 15)),
                                   buffer=2 if n >= 40 else 0, test=False)

            cut = [blocks(im.spatial_shape[self.config.slice_axis]) for im in train.images]
            valid = train.with_slices([c["valid"] for c in cut])
            train = train.with_slices([c["train"] for c in cut])
            method = "slice-blocks"
        elif valid is None:
            log.warning("fewer than 5 images and no --valid table: training without "
                        "validation (the last epoch is kept)")
        return Parts(train, valid, None, method=method, save=None)

    def fit(self, train: LabelledImages, valid: LabelledImages | None, *, workdir,
            checkpoints, resume: bool):
        if self.task == "classify":
            from pmtoolkit.imaging.classifier import fit_classifier

            classes = self.class_names if self.class_names and self.npz is not None else None
            return fit_classifier(train.images, train.targets, self.config,
                                  valid=None if valid is None else (valid.images, valid.targets),
                                  classes=classes, workdir=workdir, checkpoints=checkpoints,
                                  resume=resume)
        from pmtoolkit.imaging.segment import fit_segmenter

        kwargs: dict[str, Any] = {"train_slices": train.slices}
        if valid is not None:
            kwargs.update(valid=(valid.images, valid.targets), valid_slices=valid.slices)
        return fit_segmenter(train.images, train.targets, self.config, classes=self.classes,
                             workdir=workdir, checkpoints=checkpoints, resume=resume, **kwargs)

    def summary(self, model) -> dict[str, Any]:
        """The fit's own numbers (epochs, validation AUC and threshold or Dice) and the
        classes."""
        return {**model.metadata["metrics"], "classes": list(model.classes)}

    # -- evaluating ----------------------------------------------------------------------------
    def evaluate(self, model, data: LabelledImages) -> dict[str, Any]:
        if task_of(model) == "segment":
            return _score_segmenter(model, data)[0]
        return _score_classifier(model, data, self.threshold)[0]

    def write_evaluation(self, model, data: LabelledImages, folder: Path) -> dict[str, Any]:
        """The metrics, the per-image table, pictures (ROC, calibration, confusion matrix; or
        mask overlays) and ``report.html`` in ``folder``."""
        if task_of(model) == "segment":
            return _write_segmenter_evaluation(model, data, folder)
        return _write_classifier_evaluation(model, data, self.threshold, folder)


def _has_part(npz: str, part: str) -> bool:
    with np.load(npz, allow_pickle=False) as data:
        return f"{part}_images" in data.files


def table_or_npz(path: str | os.PathLike) -> tuple[str | None, str | None]:
    """``(table, None)`` or ``(None, npz)``: an input ending in ``.npz`` is a MedMNIST-layout
    archive, anything else a table of image paths (and labels or masks)."""
    path = str(path)
    return (None, path) if path.lower().endswith(".npz") else (path, None)


def train_file(input: str | os.PathLike, outdir: str | os.PathLike, *,
               task: str = "classify", config, valid_table: str | None = None,
               class_names: list[str] | None = None, on_invalid: OnInvalid = "error",
               overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Train a classifier or segmenter on ``input`` (a table of images, or a MedMNIST
    ``.npz``) (:func:`pmtoolkit.core.workflow.train_file`) and write ``outdir``:
    ``model.safetensors``, ``metrics.json`` (the fit's numbers, classes, split sizes),
    ``config.json``, the training logs under ``training/`` (and
    ``rejected.csv`` with ``on_invalid='skip'``); returns the metrics. An interrupted run
    keeps its last checkpoint in ``outdir/work`` and continues from it with ``resume``."""
    from pmtoolkit.core.io import check_output_dir

    table, npz = table_or_npz(input)
    image_task = ImageTask(task, config, table, npz, valid_table, class_names, on_invalid)
    check_output_dir(outdir, overwrite=overwrite, resume=resume)  # before reading the images
    return workflow.train_file(image_task, outdir, source=table or npz, on_invalid=on_invalid,
                               overwrite=overwrite, resume=resume)


def _nothing_usable(rejects: Rejects, what: str, n: int | None = None) -> None:
    """Stop a run that has nothing left to work on, naming the first reject (exit 2)."""
    first = f"; first: {rejects.items[0].describe()}" if rejects else ""
    of = f" (all {n} rejected)" if n else ""
    raise BadInputError(f"no usable {what}{of}{first}")


# ---------------------------------------------------------------------------- predict

def predict_file(model, paths: list[str], output: str | os.PathLike, *,
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

def evaluate_file(model, input: str | os.PathLike, outdir: str | os.PathLike, *,
                  split: str = "test", threshold: float | str | None = None,
                  on_invalid: OnInvalid = "skip", overwrite: bool = False) -> dict[str, Any]:
    """Score a model on labelled images (a table, or ``split`` of a MedMNIST ``.npz``)
    (:func:`pmtoolkit.core.workflow.evaluate_file`) and write ``outdir``: ``metrics.json``,
    the per-image table, pictures (ROC, calibration, confusion matrix; or mask overlays),
    ``report.html`` and ``rejected.csv``; returns the metrics."""
    table, npz = table_or_npz(input)
    task = ImageTask(task_of(model), model.config, table, npz, on_invalid=on_invalid,
                     model=model, part=split, threshold=threshold)
    return workflow.evaluate_file(task, model, source=table or npz, on_invalid=on_invalid,
                                  outdir=outdir, overwrite=overwrite)


def _score_classifier(model, data: LabelledImages, threshold) -> tuple[dict[str, Any], Any, Any]:
    """The metrics of a classifier on ``data``, with its probabilities and true class codes."""
    from pmtoolkit.imaging.evaluate import evaluate_classifier

    res = evaluate_classifier(model, data.images, data.targets, threshold=threshold)
    probs, y = res.pop("_probs"), res.pop("_y")
    return res, probs, y


def _write_classifier_evaluation(model, data: LabelledImages, threshold,
                                 folder: Path) -> dict[str, Any]:
    import pandas as pd

    from pmtoolkit.core.io import write_table
    from pmtoolkit.core.report import Report
    from pmtoolkit.imaging.evaluate import plot_calibration, plot_confusion, plot_roc

    res, probs, y = _score_classifier(model, data, threshold)
    per = pd.DataFrame({"path": data.sources, "label": data.targets,
                        "predicted": model.labels_from(probs, res.get("threshold"))})
    for k, c in enumerate(model.classes):
        per[f"prob_{c}"] = probs[:, k]
    write_table(per, folder / "predictions.csv")
    plot_roc(y, probs, model.classes, folder / "roc.png", threshold=res.get("threshold"))
    plot_calibration(y, probs, folder / "calibration.png")
    plot_confusion(np.asarray(res["confusion"]), model.classes, folder / "confusion.png")
    counts = ", ".join(f"{c}: {n}" for c, n in res["counts"].items())
    report = Report("Image classifier evaluation", subtitle=f"{res['n']} images ({counts})")
    keys = [k for k in ("auc", "accuracy", "threshold", "accuracy_at_threshold",
                        "sensitivity", "specificity", "ppv", "npv", "pr_auc", "brier", "ece")
            if k in res]
    report.section("Metrics").table(pd.DataFrame(
        {"metric": keys, "value": [float(res[k]) for k in keys]}), floatfmt="{:.4f}") \
        .text("Threshold: " + str(res.get("threshold_source", "most probable class")))
    report.section("Pictures").figure("roc.png", "ROC curve with the operating point") \
        .figure("calibration.png", "Reliability of the predicted probabilities") \
        .figure("confusion.png", "Confusion matrix (rows: true class)")
    report.write(folder / "report.html")
    return res


def _score_segmenter(model, data: LabelledImages, folder: Path | None = None
                     ) -> tuple[dict[str, Any], Any, Any, list[str]]:
    """The metrics of a segmenter on ``data`` (mean per class, and per image and class), and
    with ``folder`` an overlay picture of each image there."""
    import pandas as pd

    from pmtoolkit.imaging.evaluate import segmentation_metrics
    from pmtoolkit.imaging.segment import overlay_mask

    rows = []
    names = _names(data.sources, "_overlay.png")
    for image, mask, source, name in zip(data.images, data.targets, data.sources, names):
        pred = model.segment(image)
        for cls, vals in segmentation_metrics(pred, mask, model.classes,
                                              spacing=image.spacing).items():
            rows.append({"image": source, "class": cls, **vals})
        if folder is not None:
            overlay_mask(image, pred, folder / name, truth=mask, classes=model.classes,
                         slice_axis=model.config.slice_axis, title=Path(source).name)
    per = pd.DataFrame(rows)
    summary = (per.groupby("class")[["dice", "iou", "hausdorff95", "hausdorff"]].mean()
               .reset_index() if len(per) else pd.DataFrame())
    res: dict[str, Any] = {
        "n": len(data),
        "classes": {r["class"]: {k: r[k] for k in ("dice", "iou", "hausdorff95", "hausdorff")}
                    for r in summary.to_dict("records")}}
    if len(summary):
        res["dice"] = float(summary["dice"].mean())
        res["iou"] = float(summary["iou"].mean())
    return res, per, summary, names


def _write_segmenter_evaluation(model, data: LabelledImages, folder: Path) -> dict[str, Any]:
    from pmtoolkit.core.io import write_table
    from pmtoolkit.core.report import Report

    res, per, summary, names = _score_segmenter(model, data, folder)
    write_table(per, folder / "per_image.csv")
    report = Report("Segmentation evaluation", subtitle=f"{len(data)} image(s)")
    report.section("Mean per class").table(summary, floatfmt="{:.3f}").text(
        "Hausdorff distances are in the images' physical units (mm for NIfTI and DICOM).")
    sec = report.section("Overlays (top: predicted, bottom: true)")
    for name in names:
        if (folder / name).exists():
            sec.figure(name, name.removesuffix("_overlay.png"))
    report.write(folder / "report.html")
    return res
