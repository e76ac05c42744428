"""Evaluation metrics for every domain, in NumPy, one definition each.

Conventions, the same for every function:
- inputs are array-likes; pairs whose true value is NaN (a missing label, as in multi-task
  Tox21) or whose prediction is NaN (an input the model could not score) are dropped;
- a metric that is undefined on the data (ROC-AUC with one class, Pearson of a constant)
  is NaN, so a multi-task mean can skip it with ``nanmean``;
- classification scores are probabilities (or any score for the ranking metrics); the
  thresholded metrics cut at ``threshold`` (0.5 by default).

Each function is checked against scikit-learn, SciPy or a brute-force count in the tests.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "accuracy",
    "brier",
    "calibration_bins",
    "classification_metrics",
    "concordance_index",
    "dice",
    "expected_calibration_error",
    "f1",
    "iou",
    "mae",
    "mcc",
    "mse",
    "npv",
    "pearson",
    "pr_auc",
    "precision",
    "r2",
    "regression_metrics",
    "rmse",
    "roc_auc",
    "roc_curve",
    "sensitivity",
    "spearman",
    "specificity",
    "youden_threshold",
]


def _pairs(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    keep = ~(np.isnan(t) | np.isnan(p))
    return t[keep], p[keep]


def _labels(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    t, s = _pairs(y_true, y_score)
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("binary metrics need labels 0 and 1")
    return t.astype(bool), s


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy's ``method='average'``)."""
    n = x.size
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    edges = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1], True])
    avg = (edges[:-1] + edges[1:] + 1) / 2.0
    ranks = np.empty(n)
    ranks[order] = np.repeat(avg, np.diff(edges))
    return ranks


# ----------------------------------------------------------------------------- regression

def mse(y_true, y_pred) -> float:
    t, p = _pairs(y_true, y_pred)
    return float(np.mean((t - p) ** 2)) if t.size else float("nan")


def rmse(y_true, y_pred) -> float:
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true, y_pred) -> float:
    t, p = _pairs(y_true, y_pred)
    return float(np.mean(np.abs(t - p))) if t.size else float("nan")


def r2(y_true, y_pred) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (can be negative)."""
    t, p = _pairs(y_true, y_pred)
    ss_tot = np.sum((t - t.mean()) ** 2) if t.size else 0.0
    if ss_tot == 0:
        return float("nan")
    return float(1.0 - np.sum((t - p) ** 2) / ss_tot)


def _constant(v: np.ndarray) -> bool:
    """Constant up to rounding: a mean repeated over many items is not always the same
    float, and must not come out as a correlation of 0 or +-1."""
    return bool(np.ptp(v) <= 1e-9 * (1.0 + np.abs(v).max()))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r; NaN for fewer than two pairs or a side that is constant (up to rounding)."""
    if a.size < 2 or _constant(a) or _constant(b):
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt(np.sum(da * da) * np.sum(db * db))
    return float(np.clip(np.sum(da * db) / denom, -1.0, 1.0)) if denom > 0 else float("nan")


def pearson(y_true, y_pred) -> float:
    return _pearson(*_pairs(y_true, y_pred))


def spearman(y_true, y_pred) -> float:
    t, p = _pairs(y_true, y_pred)
    return _pearson(_rankdata(t), _rankdata(p))


# ------------------------------------------------------------------------- classification

def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (Mann-Whitney U; tied scores count one half)."""
    t, s = _labels(y_true, y_score)
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _rankdata(s)
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def pr_auc(y_true, y_score) -> float:
    """Average precision: sum over thresholds of (R_k - R_{k-1}) * P_k, no interpolation."""
    t, s = _labels(y_true, y_score)
    if not t.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each distinct score
    tps = np.cumsum(t)[last]
    prec = tps / (last + 1.0)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * prec))


def _confusion(y_true, y_score, threshold: float) -> tuple[int, int, int, int]:
    t, s = _labels(y_true, y_score)
    pred = s >= threshold
    tp = int(np.sum(pred & t))
    tn = int(np.sum(~pred & ~t))
    fp = int(np.sum(pred & ~t))
    fn = int(np.sum(~pred & t))
    return tp, tn, fp, fn


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def accuracy(y_true, y_score, threshold: float = 0.5) -> float:
    tp, tn, fp, fn = _confusion(y_true, y_score, threshold)
    return _ratio(tp + tn, tp + tn + fp + fn)


def sensitivity(y_true, y_score, threshold: float = 0.5) -> float:
    """True-positive rate (recall)."""
    tp, _, _, fn = _confusion(y_true, y_score, threshold)
    return _ratio(tp, tp + fn)


def specificity(y_true, y_score, threshold: float = 0.5) -> float:
    """True-negative rate."""
    _, tn, fp, _ = _confusion(y_true, y_score, threshold)
    return _ratio(tn, tn + fp)


def precision(y_true, y_score, threshold: float = 0.5) -> float:
    tp, _, fp, _ = _confusion(y_true, y_score, threshold)
    return _ratio(tp, tp + fp)


def npv(y_true, y_score, threshold: float = 0.5) -> float:
    """Negative predictive value: true negatives among the predicted negatives."""
    _, tn, _, fn = _confusion(y_true, y_score, threshold)
    return _ratio(tn, tn + fn)


def f1(y_true, y_score, threshold: float = 0.5) -> float:
    """F1 score; 0 when there are no positives predicted or true (scikit-learn's convention)."""
    tp, _, fp, fn = _confusion(y_true, y_score, threshold)
    den = 2 * tp + fp + fn
    return float(2 * tp / den) if den else 0.0


def mcc(y_true, y_score, threshold: float = 0.5) -> float:
    """Matthews correlation coefficient; 0 when a margin of the confusion matrix is empty."""
    tp, tn, fp, fn = _confusion(y_true, y_score, threshold)
    den = np.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / den) if den else 0.0


def brier(y_true, y_prob) -> float:
    """Mean squared difference between predicted probability and outcome."""
    t, p = _labels(y_true, y_prob)
    return float(np.mean((p - t) ** 2)) if t.size else float("nan")


def roc_curve(y_true, y_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: one point per distinct score, from the highest (the
    curve starts at (0, 0), threshold +inf)."""
    t, s = _labels(y_true, y_score)
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.zeros(0, int)
    tps = np.cumsum(t)[last]
    fps = last + 1 - tps
    return (np.r_[0.0, fps / max(1, int((~t).sum()))], np.r_[0.0, tps / max(1, int(t.sum()))],
            np.r_[np.inf, s[last]])


def youden_threshold(y_true, y_score) -> float:
    """The score cut maximising sensitivity + specificity - 1 (Youden's J; the lowest such
    cut when several tie), half-way between it and the next lower score; 0.5 when one class
    is missing."""
    t, s = _labels(y_true, y_score)
    if t.all() or not t.any():
        return 0.5
    fpr, tpr, cuts = roc_curve(t, s)
    j = tpr - fpr
    k = int(np.flatnonzero(j >= j.max() - 1e-12)[-1])  # cuts run from high to low
    best = float(cuts[k])
    below = s[s < best]
    return float((best + below.max()) / 2) if below.size else best


def calibration_bins(outcome, confidence, bins: int = 10, *, strategy: str = "uniform"
                     ) -> list[tuple[float, float, int]]:
    """``(mean confidence, outcome frequency, count)`` of each non-empty bin of ``confidence``
    in [0, 1] (a predicted probability against a 0/1 outcome, or a top-class probability
    against being right). ``uniform``: equal-width bins; ``quantile``: bins of equal counts
    (for rare outcomes, where almost every prediction falls in the first uniform bin)."""
    y = np.asarray(outcome, dtype=float).ravel()
    c = np.asarray(confidence, dtype=float).ravel()
    if strategy == "quantile":
        edges = np.unique(np.quantile(c, np.linspace(0.0, 1.0, bins + 1))) if c.size else \
            np.array([0.0, 1.0])
        bins = max(1, len(edges) - 1)
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    else:
        raise ValueError(f"strategy must be uniform or quantile, not {strategy!r}")
    idx = np.clip(np.digitize(c, edges[1:-1], right=True), 0, bins - 1)
    return [(float(c[idx == b].mean()), float(y[idx == b].mean()), int((idx == b).sum()))
            for b in range(bins) if (idx == b).any()]


def expected_calibration_error(outcome, confidence, bins: int = 10) -> float:
    """Mean |outcome frequency - mean confidence| over :func:`calibration_bins`, weighted by
    each bin's share."""
    cal = calibration_bins(outcome, confidence, bins)
    n = sum(k for _, _, k in cal)
    return float(sum(k * abs(o - m) for m, o, k in cal) / n) if n else float("nan")


# ------------------------------------------------------------------------------ ranking

def _count_lower_before(ranks: np.ndarray, weight: np.ndarray) -> float:
    """sum_i weight_i * #{j < i : ranks_j < ranks_i}, by a bottom-up merge sort in NumPy
    (O(n log^2 n)): at each level, every right block is counted against its sorted left block
    with one global ``searchsorted`` on keys offset by block pair."""
    n = ranks.size
    s, w = ranks.astype(np.int64), weight.astype(float)
    total = 0.0
    idx = np.arange(n)
    width = 1
    while width < n:
        block = idx // width
        pair = block // 2
        left = block % 2 == 0
        left_keys = pair[left] * n + s[left]
        right_pair = pair[~left]
        below = np.searchsorted(left_keys, right_pair * n + s[~left], side="left")
        start = np.searchsorted(left_keys, right_pair * n, side="left")
        total += float(np.sum((below - start) * w[~left]))
        order = np.argsort(pair * n + s, kind="stable")
        s, w = s[order], w[order]
        width *= 2
    return total


def concordance_index(y_true, y_pred, event=None) -> float:
    """Harrell's concordance index: of the comparable pairs, the fraction the predictions
    order like the truth, prediction ties counting one half.

    Without ``event`` every pair with different true values is comparable (the CI of
    DeepDTA and GraphDTA). With ``event`` (1 = observed, 0 = censored; ``y_true`` are times,
    ``y_pred`` scores that grow with the time, as in lifelines), a pair is comparable when
    the shorter time is an observed event. Pairs with equal times are not comparable.
    O(n log^2 n), so it runs on every pair of a 100k-row test set.
    """
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    e = np.ones_like(t) if event is None else np.asarray(event, dtype=float).ravel()
    if not (t.shape == p.shape == e.shape):
        raise ValueError("y_true, y_pred and event differ in length")
    keep = ~(np.isnan(t) | np.isnan(p) | np.isnan(e))
    t, p, e = t[keep], p[keep], e[keep] != 0
    if t.size < 2:
        return float("nan")
    # Order by time descending, prediction ascending within equal times: then "j before i"
    # means t_j >= t_i, and a tie in time never counts as concordant (p_j <= p_i there).
    order = np.lexsort((p, -t))
    t, p, e = t[order], p[order], e[order]
    p_rank_desc = np.unique(-p, return_inverse=True)[1]  # lower rank = higher prediction
    concordant = _count_lower_before(p_rank_desc, e)
    t_rank = np.unique(t, return_inverse=True)[1]
    p_rank = np.unique(p, return_inverse=True)[1]
    # comparable pairs: for each event i, #{j : t_j > t_i}
    t_sorted = np.sort(t_rank)
    comparable = float(np.sum(t.size - np.searchsorted(t_sorted, t_rank[e], side="right")))
    # prediction ties among comparable pairs: for each event i, #{j : p_j = p_i, t_j > t_i}
    m = t_rank.max() + 1
    keys = np.sort(p_rank * m + t_rank)
    group_end = np.searchsorted(keys, (p_rank[e] + 1) * m, side="left")
    above = np.searchsorted(keys, p_rank[e] * m + t_rank[e], side="right")
    ties = float(np.sum(group_end - above))
    if comparable == 0:
        return float("nan")
    return (concordant + 0.5 * ties) / comparable


# -------------------------------------------------------------------------------- masks

def _masks(y_true, y_pred, label):
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: {t.shape} vs {p.shape}")
    if label is None:
        return t.astype(bool), p.astype(bool)
    return t == label, p == label


def dice(y_true, y_pred, label=None) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two masks (nonzero = inside, or ``== label``
    for label maps); 1.0 when both masks are empty."""
    a, b = _masks(y_true, y_pred, label)
    den = a.sum() + b.sum()
    return float(2.0 * np.sum(a & b) / den) if den else 1.0


def iou(y_true, y_pred, label=None) -> float:
    """Intersection over union (Jaccard) of two masks; 1.0 when both are empty."""
    a, b = _masks(y_true, y_pred, label)
    union = np.sum(a | b)
    return float(np.sum(a & b) / union) if union else 1.0


# ------------------------------------------------------------------------------ bundles

REGRESSION: dict[str, Callable[..., float]] = {
    "rmse": rmse, "mae": mae, "r2": r2, "pearson": pearson, "spearman": spearman,
}
CLASSIFICATION: dict[str, Callable[..., float]] = {
    "roc_auc": roc_auc, "pr_auc": pr_auc, "accuracy": accuracy, "sensitivity": sensitivity,
    "specificity": specificity, "f1": f1, "mcc": mcc, "brier": brier,
}


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    return {name: fn(y_true, y_pred) for name, fn in REGRESSION.items()}


def classification_metrics(y_true, y_score, threshold: float = 0.5) -> dict[str, float]:
    out = {}
    for name, fn in CLASSIFICATION.items():
        if name in ("roc_auc", "pr_auc", "brier"):
            out[name] = fn(y_true, y_score)
        else:
            out[name] = fn(y_true, y_score, threshold)
    return out
