"""Site splits: every item in exactly one place, deterministic per seed, and as non-IID as
asked (label skew grows as alpha shrinks; groups and units stay whole)."""
from __future__ import annotations

import numpy as np
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.federated.split import deal, describe, discretise, plan


def _labels(n=2000, seed=0):
    return np.random.default_rng(seed).integers(0, 2, n).astype(float)


def _check_partition(p, n):
    parts = [p.test, *p.train, *p.valid]
    together = np.concatenate(parts)
    assert len(together) == n and len(np.unique(together)) == n  # each item exactly once
    assert set(together.tolist()) == set(range(n))


def _positive_shares(p, y):
    return np.array([y[np.concatenate([tr, va])].mean() for tr, va in zip(p.train, p.valid)])


@pytest.mark.parametrize("method", ["iid", "dirichlet"])
def test_partition_and_determinism(method):
    y = _labels()
    a = plan(y, sites=5, method=method, alpha=0.3, seed=3)
    b = plan(y, sites=5, method=method, alpha=0.3, seed=3)
    c = plan(y, sites=5, method=method, alpha=0.3, seed=4)
    _check_partition(a, len(y))
    for x, z in zip([a.test, *a.train, *a.valid], [b.test, *b.train, *b.valid]):
        assert np.array_equal(x, z)
    assert any(not np.array_equal(x, z) for x, z in zip(a.train, c.train))


def test_dirichlet_skews_labels_and_iid_does_not():
    y = _labels()
    skewed = _positive_shares(plan(y, sites=5, method="dirichlet", alpha=0.1, seed=0), y)
    mild = _positive_shares(plan(y, sites=5, method="dirichlet", alpha=100.0, seed=0), y)
    iid = _positive_shares(plan(y, sites=5, method="iid", seed=0), y)
    assert skewed.max() - skewed.min() > 0.5
    assert mild.max() - mild.min() < 0.15 and iid.max() - iid.min() < 0.15


def test_test_set_is_stratified_and_sized():
    y = _labels()
    p = plan(y, sites=4, method="dirichlet", alpha=0.5, test_fraction=0.2, seed=0)
    assert abs(len(p.test) - 0.2 * len(y)) <= 2
    assert abs(y[p.test].mean() - y.mean()) < 0.02


def test_units_stay_together():
    rng = np.random.default_rng(1)
    units = np.repeat(np.arange(300), 3)  # 3 samples per patient
    y = np.repeat(rng.integers(0, 2, 300), 3).astype(float)
    p = plan(y, sites=3, method="dirichlet", alpha=0.5, units=units, seed=0)
    _check_partition(p, len(y))
    site, part = p.site_of(len(y))
    for u in range(300):
        idx = np.flatnonzero(units == u)
        assert len(set(site[idx])) == 1 and len(set(part[idx])) == 1


def test_group_split_keeps_each_group_at_one_site():
    rng = np.random.default_rng(2)
    groups = [f"g{k}" for k in rng.integers(0, 40, 600)]
    y = rng.integers(0, 2, 600).astype(float)
    p = plan(y, sites=4, method="group", groups=groups, test_fraction=0.0, seed=0)
    site, _ = p.site_of(600)
    for g in set(groups):
        assert len({site[i] for i, h in enumerate(groups) if h == g}) == 1
    sizes = [len(tr) + len(va) for tr, va in zip(p.train, p.valid)]
    assert max(sizes) < 2 * min(sizes)  # greedy dealing keeps sites comparable


def test_continuous_labels_skew_by_quantile_bins():
    y = np.random.default_rng(3).normal(size=1500)
    assert set(np.unique(discretise(y))) == set(range(5))
    p = plan(y, sites=4, method="dirichlet", alpha=0.1, seed=0)
    means = [row["label_mean"] for row in describe(p, y, classification=False)[:4]]
    assert max(means) - min(means) > 0.8


def test_impossible_splits_are_one_line_errors():
    y = _labels(40)
    with pytest.raises(BadInputError, match="fewer than 30"):
        deal(np.zeros(40, int), np.ones(40), 4, "dirichlet", alpha=0.01, min_size=30)
    with pytest.raises(BadInputError, match="cannot be dealt"):
        plan(y, sites=50, method="iid", test_fraction=0.0)
    with pytest.raises(BadInputError, match="groups"):
        plan(y, sites=3, method="group", groups=["a"] * 20 + ["b"] * 20)


def test_sigterm_while_sites_run_unwinds_as_interrupted():
    """A scheduler's SIGTERM while the Flower processes run stops them and exits 143, as
    everywhere in pmt (it was turned into Ctrl-C's KeyboardInterrupt, exit 130)."""
    import os
    import signal

    from pmtoolkit.core.errors import Interrupted
    from pmtoolkit.federated.run import _sigterm_raises

    previous = _sigterm_raises()
    try:
        with pytest.raises(Interrupted) as stopped:
            os.kill(os.getpid(), signal.SIGTERM)
        assert stopped.value.exit_code == 143
    finally:
        signal.signal(signal.SIGTERM, previous)
