"""Dealing a dataset to simulated sites, non-IID on purpose.

Everything works on **units**: the things that must stay together (a patient's samples in
EHR; each molecule is its own unit). A unit's class is the highest of its items' (a patient
with any positive sample counts as positive); a continuous label (regression) is cut into
quantile bins first, so label skew means "this site holds mostly soluble molecules".

- ``iid``: units in random order, dealt in equal parts;
- ``dirichlet``: for each class, the site shares are drawn from Dirichlet(alpha) (Hsu et al.
  2019); redrawn (up to 1,000 times) until every site holds ``min_size`` items;
- ``group``: whole groups (scaffolds, age bands) go to one site each, largest first, each to
  the site with the fewest items so far: sites of similar size with different chemistry or
  populations.

The same seed gives the same split; every item is in exactly one site.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pmtoolkit.core.errors import BadInputError

N_BINS = 5  # quantile bins of a continuous label


@dataclass
class Plan:
    """Who holds what: item indices of the server's test set and of each site's train and
    valid parts."""

    test: np.ndarray
    train: list[np.ndarray]
    valid: list[np.ndarray]

    @property
    def sites(self) -> int:
        return len(self.train)

    def site_of(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per item: its site (-1: the test set) and its part (``train``/``valid``/``test``)."""
        site = np.full(n, -1, dtype=np.int64)
        part = np.full(n, "test", dtype=object)
        for s, (tr, va) in enumerate(zip(self.train, self.valid)):
            site[tr], part[tr] = s, "train"
            site[va], part[va] = s, "valid"
        return site, part


def discretise(labels: np.ndarray, bins: int = N_BINS) -> np.ndarray:
    """Class labels as they are; a continuous label as its quantile bin (0..bins-1)."""
    y = np.asarray(labels, dtype=np.float64)
    values = np.unique(y[~np.isnan(y)])
    if len(values) <= 2 and np.isin(values, (0.0, 1.0)).all():
        return np.nan_to_num(y, nan=0.0).astype(np.int64)
    edges = np.nanquantile(y, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, np.nan_to_num(y, nan=float(np.nanmedian(y))), side="right")


def _units(units: Sequence | None, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(first item of each unit, the items of each unit), units in order of first item."""
    if units is None:
        return np.arange(n), [np.array([i]) for i in range(n)]
    codes = {}
    members: list[list[int]] = []
    for i, u in enumerate(units):
        k = codes.setdefault(u, len(codes))
        if k == len(members):
            members.append([])
        members[k].append(i)
    return np.array([m[0] for m in members]), [np.array(m) for m in members]


def _items(members: list[np.ndarray], chosen: np.ndarray) -> np.ndarray:
    if len(chosen) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate([members[u] for u in chosen])).astype(np.int64)


def _holdout(classes: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices (into ``classes``) of a stratified random share ``fraction``."""
    if fraction <= 0:
        return np.zeros(0, dtype=np.int64)
    out = []
    for c in np.unique(classes):
        idx = rng.permutation(np.flatnonzero(classes == c))
        out.append(idx[:int(round(fraction * len(idx)))])
    return np.sort(np.concatenate(out)).astype(np.int64)


def deal(classes: np.ndarray, sizes: np.ndarray, sites: int, method: str, *,
         alpha: float = 0.5, groups: np.ndarray | None = None, min_size: int = 1,
         seed: int = 0) -> np.ndarray:
    """The site of each unit. ``classes``: each unit's class (or label bin); ``sizes``: items
    per unit (for balance and ``min_size``); ``groups``: each unit's group (``group``)."""
    rng = np.random.default_rng(seed)
    n = len(classes)
    if n < sites:
        raise BadInputError(f"{n} units cannot be dealt to {sites} sites")
    if method == "iid":
        site = np.empty(n, dtype=np.int64)
        for s, part in enumerate(np.array_split(rng.permutation(n), sites)):
            site[part] = s
        return _checked(site, sizes, sites, min_size, method)
    if method == "dirichlet":
        for _ in range(1000):
            site = np.empty(n, dtype=np.int64)
            for c in np.unique(classes):
                idx = rng.permutation(np.flatnonzero(classes == c))
                share = rng.dirichlet(np.full(sites, alpha))
                cuts = (np.cumsum(share)[:-1] * len(idx)).astype(np.int64)
                for s, part in enumerate(np.split(idx, cuts)):
                    site[part] = s
            totals = np.bincount(site, weights=sizes, minlength=sites)
            if totals.min() >= min_size:
                return site
        raise BadInputError(f"a Dirichlet(alpha={alpha}) split of {int(sizes.sum())} samples "
                            f"leaves a site with fewer than {min_size} in 1,000 draws",
                            hint="raise alpha, or lower sites or min_site_size")
    if method == "group":
        if groups is None:
            raise BadInputError("split = 'group' needs group values")
        keys = np.asarray(groups, dtype=object)
        names = list(dict.fromkeys(keys.tolist()))
        if len(names) < sites:
            raise BadInputError(f"{len(names)} groups cannot be dealt to {sites} sites",
                                hint="use fewer sites or another split")
        weight = {g: 0.0 for g in names}
        for g, w in zip(keys.tolist(), sizes):
            weight[g] += float(w)
        order = [names[i] for i in rng.permutation(len(names))]
        order.sort(key=lambda g: -weight[g])  # stable: ties keep the seeded order
        totals = np.zeros(sites)
        to_site = {}
        for g in order:
            s = int(np.argmin(totals))
            to_site[g] = s
            totals[s] += weight[g]
        site = np.array([to_site[g] for g in keys.tolist()], dtype=np.int64)
        return _checked(site, sizes, sites, min_size, method)
    raise BadInputError(f"unknown split {method!r}", hint="iid, dirichlet or group")


def _checked(site, sizes, sites, min_size, method) -> np.ndarray:
    totals = np.bincount(site, weights=sizes, minlength=sites)
    if totals.min() < min_size:
        raise BadInputError(f"the {method} split leaves a site with {int(totals.min())} "
                            f"samples, fewer than min_site_size = {min_size}",
                            hint="use fewer sites")
    return site


def plan(labels: np.ndarray, *, sites: int, method: str, alpha: float = 0.5,
         units: Sequence | None = None, groups: Sequence | None = None,
         test_fraction: float = 0.2, valid_fraction: float = 0.1, min_size: int = 1,
         seed: int = 0) -> Plan:
    """Hold out a stratified test set (units kept whole), deal the rest to ``sites`` by
    ``method``, then keep ``valid_fraction`` of each site's units for its own evaluation.
    ``labels``, ``units`` and ``groups`` are per item."""
    labels = np.asarray(labels)
    n = len(labels)
    first, members = _units(units, n)
    item_classes = discretise(labels)
    classes = np.array([item_classes[m].max() for m in members], dtype=np.int64)
    sizes = np.array([len(m) for m in members], dtype=np.float64)
    rng = np.random.default_rng(seed)
    test_units = _holdout(classes, test_fraction, rng)
    rest = np.setdiff1d(np.arange(len(first)), test_units)
    g = None if groups is None else np.asarray(groups, dtype=object)[first][rest]
    # the site deal gets the train + valid size it must reach
    site = deal(classes[rest], sizes[rest], sites, method, alpha=alpha, groups=g,
                min_size=int(np.ceil(min_size / max(1e-9, 1 - valid_fraction))),
                seed=int(rng.integers(2**31)))
    train, valid = [], []
    for s in range(sites):
        mine = rest[site == s]
        order = rng.permutation(len(mine))
        k = int(round(valid_fraction * len(mine))) if len(mine) > 1 else 0
        valid.append(_items(members, np.sort(mine[order[:k]])))
        train.append(_items(members, np.sort(mine[order[k:]])))
    return Plan(_items(members, test_units), train, valid)


def describe(plan_: Plan, labels: np.ndarray, classification: bool) -> list[dict]:
    """One row per site (and the test set): sizes and the label mix (class shares, or the
    label's mean and sd)."""
    labels = np.asarray(labels, dtype=np.float64)
    rows = []
    parts = [(f"site {s}", np.concatenate([plan_.train[s], plan_.valid[s]]), s)
             for s in range(plan_.sites)] + [("test (server)", plan_.test, -1)]
    for name, idx, s in parts:
        row: dict = {"site": name, "samples": len(idx),
                     "train": len(plan_.train[s]) if s >= 0 else 0,
                     "valid": len(plan_.valid[s]) if s >= 0 else 0}
        y = labels[idx]
        y = y[~np.isnan(y)]
        if classification:
            row["positive_share"] = float(y.mean()) if len(y) else float("nan")
        else:
            row["label_mean"] = float(y.mean()) if len(y) else float("nan")
            row["label_sd"] = float(y.std()) if len(y) else float("nan")
        rows.append(row)
    return rows
