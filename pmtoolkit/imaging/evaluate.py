"""Evaluation of image models, with the pictures a reader wants.

Classification: ROC-AUC (macro one-vs-rest beyond two classes), accuracy of the most probable
class (MedMNIST's definition), and for two classes sensitivity, specificity, PPV, NPV and
accuracy at a decision threshold (the model's own, chosen on validation images; a number; or
``youden``, chosen on the evaluated images themselves, which is optimistic and labelled so),
the confusion matrix, the Brier score and the expected calibration error (10 equal-width
bins of the top-class probability). Segmentation: Dice, IoU and the Hausdorff distance (its
95th percentile and maximum, in the image's physical units, by MONAI) per foreground class.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core import metrics as M

log = logging.getLogger(__name__)


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width bins of the top-class probability,
    weighted by the bin's share of images."""
    return M.expected_calibration_error(probs.argmax(axis=1) == y, probs.max(axis=1), bins)


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm


def classification_report(y: np.ndarray, probs: np.ndarray, classes: list[str], *,
                          threshold: float | str | None = None,
                          model_threshold: float | None = None) -> dict[str, Any]:
    """Metrics of class probabilities ``probs`` (N, K) against integer labels ``y``."""
    from pmtoolkit.imaging.classifier import _auc

    y = np.asarray(y, dtype=np.int64)
    out: dict[str, Any] = {"n": len(y), "classes": list(classes),
                           "auc": _auc(y, probs),
                           "accuracy": float((probs.argmax(1) == y).mean()) if len(y) else math.nan,
                           "ece": expected_calibration_error(y, probs) if len(y) else math.nan,
                           "counts": {c: int((y == k).sum()) for k, c in enumerate(classes)}}
    if len(classes) == 2:
        p = probs[:, 1]
        if threshold == "youden":
            t, source = M.youden_threshold(y == 1, p), "youden on these images (optimistic)"
        elif threshold is not None:
            t, source = float(threshold), "given"
        elif model_threshold is not None:
            t, source = float(model_threshold), "model (Youden on its validation images)"
        else:
            t, source = 0.5, "0.5"
        pred = (p >= t).astype(np.int64)
        out.update({"threshold": t, "threshold_source": source,
                    "accuracy_at_threshold": M.accuracy(y, p, t),
                    "sensitivity": M.sensitivity(y, p, t), "specificity": M.specificity(y, p, t),
                    "ppv": M.precision(y, p, t), "npv": M.npv(y, p, t), "brier": M.brier(y, p), "pr_auc": M.pr_auc(y, p)})
    else:
        pred = probs.argmax(1)
    out["confusion"] = confusion_matrix(y, pred, len(classes)).tolist()
    return out


def evaluate_classifier(model, images, labels, *, threshold: float | str | None = None
                        ) -> dict[str, Any]:
    """Predict ``images`` with ``model`` and score against ``labels`` (class names or the
    model's integer codes)."""
    from pmtoolkit.imaging.classifier import encode_labels

    y, _ = encode_labels(labels, model.classes)
    probs = model.predict_proba(images)
    report = classification_report(y, probs, model.classes, threshold=threshold,
                                   model_threshold=model.threshold)
    report["_probs"] = probs
    report["_y"] = y
    return report


# ----------------------------------------------------------------------------- pictures

def plot_roc(y: np.ndarray, probs: np.ndarray, classes: list[str], path: str | Path, *,
             threshold: float | None = None) -> None:
    """ROC curve(s) with the AUC; the operating point at ``threshold`` for two classes."""
    from pmtoolkit.core.plots import roc_plot

    targets = [1] if len(classes) == 2 else range(len(classes))
    curves = [(classes[k], y == k, probs[:, k]) for k in targets
              if (y == k).any() and not (y == k).all()]
    point = (y == 1, probs[:, 1], threshold) if len(classes) == 2 and threshold is not None \
        and (y == 1).any() and (y == 0).any() else None
    roc_plot(path, curves, point=point)


def plot_calibration(y: np.ndarray, probs: np.ndarray, path: str | Path, bins: int = 10) -> None:
    """Reliability diagram: accuracy against confidence of the top class, with the share of
    images in each bin."""
    from pmtoolkit.core.plots import reliability_plot

    reliability_plot(path, probs.argmax(axis=1) == y, probs.max(axis=1),
                     xlabel="confidence (top-class probability)", ylabel="accuracy",
                     title=f"Calibration (ECE {expected_calibration_error(y, probs, bins):.3f})",
                     annotate="share", bins=bins)


def plot_confusion(cm: np.ndarray, classes: list[str], path: str | Path) -> None:
    from pmtoolkit.core.plots import figure

    cm = np.asarray(cm)
    with figure(path, size=(1.6 + 0.9 * len(classes), 1.4 + 0.8 * len(classes))) as (_fig, ax):
        ax.imshow(cm, cmap="Blues")
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")


# ------------------------------------------------------------------------- segmentation

def segmentation_metrics(pred: np.ndarray, truth: np.ndarray, classes: list[str], *,
                         spacing: tuple[float, ...] | None = None) -> dict[str, dict[str, float]]:
    """Dice, IoU, Hausdorff 95 % and maximum (MONAI, in units of ``spacing``) of each
    foreground class (index 1...) between two label maps of one image. A class absent from
    both maps is skipped; absent from one of them: Dice 0 and Hausdorff NaN."""
    import warnings

    import torch
    from monai.metrics import compute_hausdorff_distance

    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        from pmtoolkit.core.errors import BadInputError

        raise BadInputError(f"predicted mask has shape {pred.shape}, the true mask {truth.shape}")
    out: dict[str, dict[str, float]] = {}
    for k, name in enumerate(classes):
        if k == 0:
            continue
        p, t = pred == k, truth == k
        if not p.any() and not t.any():
            continue
        row = {"dice": M.dice(t, p), "iou": M.iou(t, p), "hausdorff95": math.nan,
               "hausdorff": math.nan, "voxels_true": int(t.sum()), "voxels_pred": int(p.sum())}
        if p.any() and t.any():
            warnings.filterwarnings("ignore", message=r".*always_return_as_numpy.*")
            yp = torch.from_numpy(p[None, None].astype(np.float32))
            yt = torch.from_numpy(t[None, None].astype(np.float32))
            sp = list(spacing) if spacing is not None else None
            row["hausdorff95"] = float(compute_hausdorff_distance(
                yp, yt, include_background=True, percentile=95, spacing=sp)[0, 0])
            row["hausdorff"] = float(compute_hausdorff_distance(
                yp, yt, include_background=True, spacing=sp)[0, 0])
        out[name] = row
    return out
