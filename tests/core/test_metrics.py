"""Every metric against a reference implementation (scikit-learn, SciPy, or a brute-force
count), on random data with ties, plus the edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from pmtoolkit.core import metrics as M

RNG = np.random.default_rng(42)


def _regression(n=200):
    y = RNG.normal(size=n)
    return y, y + RNG.normal(scale=0.7, size=n)


def _classification(n=300):
    y = RNG.integers(0, 2, size=n)
    # rounded scores: many ties, which is where rank metrics usually go wrong
    s = np.round(np.clip(0.5 * y + RNG.normal(0.25, 0.3, size=n), 0, 1), 1)
    return y, s


@pytest.mark.parametrize("seed", range(5))
def test_regression_against_sklearn_and_scipy(seed):
    global RNG
    RNG = np.random.default_rng(seed)
    y, p = _regression()
    assert M.mse(y, p) == pytest.approx(skm.mean_squared_error(y, p))
    assert M.rmse(y, p) == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)))
    assert M.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert M.r2(y, p) == pytest.approx(skm.r2_score(y, p))
    assert M.pearson(y, p) == pytest.approx(scipy.stats.pearsonr(y, p)[0])
    q = np.round(p, 1)  # ties
    assert M.spearman(y, q) == pytest.approx(scipy.stats.spearmanr(y, q)[0])


@pytest.mark.parametrize("seed", range(5))
def test_classification_against_sklearn(seed):
    global RNG
    RNG = np.random.default_rng(seed)
    y, s = _classification()
    pred = (s >= 0.5).astype(int)
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    assert M.pr_auc(y, s) == pytest.approx(skm.average_precision_score(y, s))
    assert M.accuracy(y, s) == pytest.approx(skm.accuracy_score(y, pred))
    assert M.sensitivity(y, s) == pytest.approx(skm.recall_score(y, pred))
    assert M.specificity(y, s) == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert M.precision(y, s) == pytest.approx(skm.precision_score(y, pred))
    assert M.f1(y, s) == pytest.approx(skm.f1_score(y, pred))
    assert M.mcc(y, s) == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert M.brier(y, s) == pytest.approx(skm.brier_score_loss(y, s))
    assert M.accuracy(y, s, threshold=0.3) == pytest.approx(
        skm.accuracy_score(y, (s >= 0.3).astype(int)))


def test_dice_and_iou_against_sklearn():
    a = RNG.integers(0, 2, size=(16, 16, 4))
    b = RNG.integers(0, 2, size=(16, 16, 4))
    assert M.dice(a, b) == pytest.approx(skm.f1_score(a.ravel(), b.ravel()))
    assert M.iou(a, b) == pytest.approx(skm.jaccard_score(a.ravel(), b.ravel()))
    labels_a, labels_b = RNG.integers(0, 3, size=100), RNG.integers(0, 3, size=100)
    assert M.dice(labels_a, labels_b, label=2) == pytest.approx(
        skm.f1_score(labels_a, labels_b, labels=[2], average=None)[0])
    empty = np.zeros((4, 4))
    assert M.dice(empty, empty) == 1.0 and M.iou(empty, empty) == 1.0
    assert M.dice(empty, np.ones((4, 4))) == 0.0


def _brute_ci(t, p, e=None):
    e = np.ones(len(t)) if e is None else e
    num = den = 0.0
    for i in range(len(t)):
        if not e[i]:
            continue
        for j in range(len(t)):
            if t[j] > t[i]:
                den += 1
                num += 1.0 if p[j] > p[i] else 0.5 if p[j] == p[i] else 0.0
    return num / den if den else float("nan")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4), st.booleans()),
                min_size=0, max_size=40))
def test_concordance_index_equals_brute_force_count(rows):
    t = np.array([r[0] for r in rows], dtype=float)
    p = np.array([r[1] for r in rows], dtype=float)
    e = np.array([r[2] for r in rows])
    for event in (None, e):
        got = M.concordance_index(t, p, event)
        want = _brute_ci(t, p, event)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-12)


def test_concordance_index_large_continuous():
    t = RNG.normal(size=600)
    p = t + RNG.normal(size=600)
    assert M.concordance_index(t, p) == pytest.approx(_brute_ci(t, p))
    # for continuous data without censoring the CI is (Kendall's tau + 1) / 2
    assert M.concordance_index(t, p) == pytest.approx((scipy.stats.kendalltau(t, p)[0] + 1) / 2)


def test_missing_values_are_dropped_pairwise():
    y = np.array([1.0, np.nan, 0.0, 1.0, 0.0])
    s = np.array([0.9, 0.1, 0.2, np.nan, 0.4])
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score([1, 0, 0], [0.9, 0.2, 0.4]))
    assert M.rmse([1, np.nan, 3], [1, 2, 5]) == pytest.approx(math.sqrt(2))


def test_undefined_metrics_are_nan():
    assert math.isnan(M.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))
    assert math.isnan(M.pr_auc([0, 0], [0.1, 0.2]))
    assert math.isnan(M.pearson([1, 1, 1], [1, 2, 3]))
    assert math.isnan(M.r2([2, 2], [1, 3]))
    assert math.isnan(M.concordance_index([1, 1], [0, 1]))
    assert math.isnan(M.rmse([], []))


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        M.rmse([1, 2], [1])
    with pytest.raises(ValueError, match="labels 0 and 1"):
        M.roc_auc([0, 2], [0.1, 0.2])


def test_bundles():
    y, p = _regression()
    assert set(M.regression_metrics(y, p)) == {"rmse", "mae", "r2", "pearson", "spearman"}
    y, s = _classification()
    out = M.classification_metrics(y, s)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert set(out) == set(M.CLASSIFICATION)


def test_roc_curve_npv_and_calibration():
    y, s = _classification()
    fpr, tpr, cuts = M.roc_curve(y, s)
    f2, t2, c2 = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    np.testing.assert_allclose(cuts[1:], c2[1:])
    tn, fp, fn, tp = skm.confusion_matrix(y, s >= 0.4).ravel()
    assert M.npv(y, s, 0.4) == pytest.approx(tn / (tn + fn))
    # one bin holding a right and a wrong answer at confidence 0.95; a perfect pair
    assert M.expected_calibration_error([1, 0], [0.95, 0.95]) == pytest.approx(0.45)
    assert M.expected_calibration_error([1, 0], [1.0, 0.0]) == 0
    assert M.calibration_bins([1, 0, 1], [0.05, 0.1, 0.95]) == [
        (pytest.approx(0.075), 0.5, 2), (0.95, 1.0, 1)]
    # quantile bins hold equal counts, even when every confidence is below 0.1
    c = np.linspace(0.001, 0.05, 100)
    y = (np.arange(100) >= 90).astype(float)
    q = M.calibration_bins(y, c, 10, strategy="quantile")
    assert [n for _, _, n in q] == [10] * 10 and q[-1][1] == 1.0 and q[0][1] == 0.0
    assert len(M.calibration_bins(y, c, 10)) == 1  # uniform: all in the first bin
    with pytest.raises(ValueError, match="uniform or quantile"):
        M.calibration_bins(y, c, strategy="equal")
