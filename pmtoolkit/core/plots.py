"""Figures saved as PNG, headless (Agg), with one look across the toolkit."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from pmtoolkit.core.io import atomic_write


@contextlib.contextmanager
def figure(path: str | os.PathLike, *, size: tuple[float, float] = (5.0, 3.6),
           dpi: int = 120, nrows: int = 1, ncols: int = 1, **subplots: Any) -> Iterator:
    """Yield a matplotlib ``(fig, ax)`` (``ax`` an array of axes for several panels;
    ``subplots`` go to ``plt.subplots``); on exit save it to ``path`` as PNG, atomically."""
    import warnings

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    with plt.style.context("default"):
        fig, ax = plt.subplots(nrows, ncols, figsize=size, dpi=dpi, **subplots)
        try:
            yield fig, ax
            for a in np.atleast_1d(ax).ravel():
                for side in ("top", "right"):
                    a.spines[side].set_visible(False)
            with warnings.catch_warnings():  # colour bars and tight layout do not always agree
                warnings.simplefilter("ignore", UserWarning)
                fig.tight_layout()
            with atomic_write(path, "wb") as fh:
                fig.savefig(fh, format="png")
        finally:
            plt.close(fig)


def parity(ax, observed, predicted, *, xlabel: str, ylabel: str, title: str,
           size: float = 6.0, alpha: float = 0.35) -> None:
    """Predicted against observed values on ``ax``, with the identity line."""
    lo = float(min(observed.min(), predicted.min()))
    hi = float(max(observed.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="#999999", lw=1)
    ax.scatter(observed, predicted, s=size, alpha=alpha, color="#3867d6", linewidths=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def roc_plot(path: str | os.PathLike, curves: list[tuple[str, Any, Any]], *,
             point: tuple[Any, Any, float] | None = None) -> None:
    """ROC curves, one per ``(name, y_true, y_score)`` (with its AUC), and optionally the
    operating point of ``(y_true, y_score, threshold)``."""
    from pmtoolkit.core import metrics as M

    with figure(path, size=(4.2, 4.0)) as (_fig, ax):
        for name, y, s in curves:
            fpr, tpr, _ = M.roc_curve(y, s)
            ax.plot(fpr, tpr, lw=1.6, label=f"{name}: AUC {M.roc_auc(y, s):.3f}")
        if point is not None:
            y, s, t = point
            ax.plot(1 - M.specificity(y, s, t), M.sensitivity(y, s, t), "o", color="#b42318",
                    label=f"threshold {t:.3f}")
        ax.plot([0, 1], [0, 1], ls=":", color="#888")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_title("ROC")
        ax.legend(loc="lower right", fontsize=8, frameon=False)


def reliability_plot(path: str | os.PathLike, outcome, confidence, *, xlabel: str,
                     ylabel: str, title: str = "Calibration", annotate: str = "count",
                     bins: int = 10, strategy: str = "uniform") -> None:
    """Reliability diagram: outcome frequency against mean confidence per bin
    (:func:`pmtoolkit.core.metrics.calibration_bins`, ``uniform`` or ``quantile`` bins), each
    point annotated with its bin's ``count`` or ``share`` of the data. Quantile bins zoom the
    axes to the range the points cover."""
    from pmtoolkit.core.metrics import calibration_bins

    cal = calibration_bins(outcome, confidence, bins, strategy=strategy)
    total = sum(n for _, _, n in cal) or 1
    with figure(path, size=(4.2, 4.0)) as (_fig, ax):
        ax.plot([0, 1], [0, 1], ls=":", color="#888", label="perfect")
        ax.plot([c[0] for c in cal], [c[1] for c in cal], "o-", color="#2563eb", label="model")
        for m, o, n in cal:
            text = f"{100 * n / total:.0f}%" if annotate == "share" else str(n)
            ax.annotate(text, (m, o), textcoords="offset points", xytext=(0, 6), fontsize=7,
                        ha="center", color="#5b6578")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        top = 1.0
        if strategy == "quantile" and cal:
            top = min(1.0, 1.15 * max(max(m, o) for m, o, _ in cal)) or 1.0
        ax.set_xlim(0, top * 1.06)
        ax.set_ylim(0, top * 1.08)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
