"""Dataset splits for molecules: random, scaffold, balanced scaffold, stratified and k-fold.

A split is a record of row indices (0-based positions in the dataset's valid rows), the method,
its sizes and seed, and a fingerprint of the SMILES it was made for. It is saved as JSON beside
every training run and reloads exactly, so a result can be reproduced or compared with another
tool on the very same molecules (``to_chemprop`` writes chemprop's ``--splits-file`` form).
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import require_file, sha256_rows, write_json

SPLIT_METHODS = ("random", "scaffold", "balanced_scaffold", "stratified")


@dataclass
class Split:
    method: str
    seed: int
    sizes: tuple[float, float, float]
    train: list[int]
    val: list[int]
    test: list[int]
    n: int
    smiles_sha256: str | None = None
    fold: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def indices(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(getattr(self, k), dtype=np.int64) for k in ("train", "val", "test")}

    def save(self, path: str | os.PathLike) -> None:
        write_json(path, asdict(self), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Split:
        p = require_file(path, "split file")
        try:
            data = json.loads(p.read_text())
            data["sizes"] = tuple(data["sizes"])
            data["method"] = split_method(data["method"])
            split = cls(**data)
        except (ValueError, TypeError, KeyError) as exc:
            raise BadInputError(f"'{p}' is not a pmtoolkit split file: {exc}") from None
        split.check()
        return split

    def check(self, smiles: Sequence[str] | None = None) -> None:
        """Indices are in range and disjoint; with ``smiles``, the split was made for them."""
        parts = [set(self.train), set(self.val), set(self.test)]
        if parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]:
            raise BadInputError("split sets overlap")
        everything = parts[0] | parts[1] | parts[2]
        if everything and (min(everything) < 0 or max(everything) >= self.n):
            raise BadInputError(f"split indices out of range for {self.n} molecules")
        if smiles is not None:
            if len(smiles) != self.n:
                raise BadInputError(f"split was made for {self.n} molecules, data has "
                                    f"{len(smiles)}")
            if self.smiles_sha256 and sha256_rows(smiles) != self.smiles_sha256:
                raise BadInputError("split was made for different molecules (SMILES sha256 "
                                    "differs)")

    def to_chemprop(self) -> list[dict[str, list[int]]]:
        """chemprop v2's ``--splits-file`` JSON form."""
        return [{"train": list(self.train), "val": list(self.val), "test": list(self.test)}]


#: split names of older pmtoolkit versions -> today's (drug response's ``both-cold``)
_OLD_SPLIT_NAMES = {"both-cold": "cold-pair"}


def split_method(method: str) -> str:
    """The one spelling of a split method's name: the cold splits are ``cold-drug``,
    ``cold-target``, ``cold-sample``, ``cold-pair``; ``cold_drug`` (pipeline TOML, run files
    and split.json files of older runs) reads as ``cold-drug``, and drug response's old
    ``both-cold`` as ``cold-pair``."""
    method = method.replace("_", "-") if method.startswith("cold_") else method
    return _OLD_SPLIT_NAMES.get(method, method)


def check_sizes(sizes: Sequence[float]) -> tuple[float, float, float]:
    """``sizes`` as three floats (train, validation, test) if they are non-negative fractions
    summing to 1; otherwise a one-line error."""
    try:
        values = tuple(float(s) for s in sizes)
    except (TypeError, ValueError):
        values = ()
    # written so that NaN fails every comparison and is refused
    if len(values) != 3 or not all(0 <= s <= 1 for s in values) or \
            not abs(sum(values) - 1.0) <= 1e-6:
        raise BadInputError(f"split sizes must be three non-negative fractions summing to 1, "
                            f"got {tuple(sizes)}")
    return values  # type: ignore[return-value]


def entity_groups(n: int, sizes: tuple[float, float, float], rng: np.random.Generator,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """Assign ``n`` entities (drugs, proteins, samples) to groups 0/1/2 (train/val/test) so
    that the *pairs* they carry (``weights``: pairs per entity) come out near the requested
    fractions: the building block of cold splits of pair data."""
    order = rng.permutation(n)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    total = w.sum()
    group = np.zeros(n, dtype=np.int64)
    # walk the shuffled entities, filling test first, then validation (small sets first, so
    # rounding error lands in training)
    k = 0
    for g, frac in ((2, sizes[2]), (1, sizes[1])):
        target = frac * total
        filled = 0.0
        while k < n and filled + w[order[k]] / 2 < target:
            group[order[k]] = g
            filled += w[order[k]]
            k += 1
    return group


def _check_folds(k: int, n: int | None = None) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2 or \
            (n is not None and k > n):
        have = f", n={n}" if n is not None else ""
        raise BadInputError(f"k-fold needs 2 <= k <= n molecules, got k={k}{have}")
    return int(k)


def _counts(n: int, sizes: tuple[float, float, float]) -> tuple[int, int]:
    n_train = int(round(sizes[0] * n))
    n_val = int(round(sizes[1] * n))
    return n_train, min(n_val, n - n_train)


def _make(method, seed, sizes, parts, n, smiles, **info) -> Split:
    return Split(method=method, seed=seed, sizes=sizes,
                 train=sorted(int(i) for i in parts[0]), val=sorted(int(i) for i in parts[1]),
                 test=sorted(int(i) for i in parts[2]), n=n,
                 smiles_sha256=sha256_rows(smiles) if smiles is not None else None, info=info)


def random_split(n: int, sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, *,
                 smiles: Sequence[str] | None = None) -> Split:
    sizes = check_sizes(sizes)
    perm = np.random.default_rng(seed).permutation(n)
    n_train, n_val = _counts(n, sizes)
    return _make("random", seed, sizes, (perm[:n_train], perm[n_train:n_train + n_val],
                                         perm[n_train + n_val:]), n, smiles)


def scaffold_sets(mols: Sequence[Any]) -> dict[str, list[int]]:
    """Row indices grouped by Bemis–Murcko scaffold (acyclic molecules share '')."""
    from pmtoolkit.chem.scaffolds import murcko_scaffold

    groups: dict[str, list[int]] = defaultdict(list)
    for i, mol in enumerate(mols):
        groups[murcko_scaffold(mol)].append(i)
    return dict(groups)


def scaffold_split(mols: Sequence[Any], sizes: Sequence[float] = (0.8, 0.1, 0.1),
                   seed: int = 0, *, balanced: bool = True,
                   smiles: Sequence[str] | None = None) -> Split:
    """Whole scaffold sets go to one side, so test molecules have scaffolds unseen in training.

    ``balanced=False``: sets in order of decreasing size fill train, then val, then test
    (deterministic; the seed is unused). ``balanced=True`` (chemprop's ``scaffold_balanced``):
    sets too big for half of val or test go to train first, the rest in random order, so
    repeated seeds give different, comparably sized splits.
    """
    sizes = check_sizes(sizes)
    n = len(mols)
    n_train, n_val = _counts(n, sizes)
    n_test = n - n_train - n_val
    sets = list(scaffold_sets(mols).values())
    if balanced:
        rng = np.random.default_rng(seed)
        big = [s for s in sets if len(s) > n_val / 2 or len(s) > n_test / 2]
        small = [s for s in sets if not (len(s) > n_val / 2 or len(s) > n_test / 2)]
        rng.shuffle(big)
        rng.shuffle(small)
        ordered = big + small
    else:
        ordered = sorted(sets, key=lambda s: (-len(s), s[0]))
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    for group in ordered:
        if len(train) + len(group) <= n_train:
            train += group
        elif len(val) + len(group) <= n_val:
            val += group
        else:
            test += group
    method = "balanced_scaffold" if balanced else "scaffold"
    return _make(method, seed, sizes, (train, val, test), n, smiles, n_scaffolds=len(sets))


def stratified_split(y: Sequence[float], sizes: Sequence[float] = (0.8, 0.1, 0.1),
                     seed: int = 0, *, bins: int = 10,
                     smiles: Sequence[str] | None = None) -> Split:
    """Each class (or, for a continuous target, each quantile bin) is split in proportion."""
    sizes = check_sizes(sizes)
    y = np.asarray(y, dtype=float)
    if np.isnan(y).any():
        raise BadInputError("a stratified split needs a label for every molecule")
    values = np.unique(y)
    if len(values) > max(bins, 20):
        edges = np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1])
        strata = np.digitize(y, edges)
    else:
        strata = np.searchsorted(values, y)
    rng = np.random.default_rng(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        rng.shuffle(idx)
        n_train, n_val = _counts(len(idx), sizes)
        parts[0].extend(idx[:n_train])
        parts[1].extend(idx[n_train:n_train + n_val])
        parts[2].extend(idx[n_train + n_val:])
    return _make("stratified", seed, sizes, parts, len(y), smiles, bins=bins)


def kfold(n: int, k: int = 5, seed: int = 0, *, val_fraction: float = 0.1,
          groups: Sequence[str] | None = None,
          smiles: Sequence[str] | None = None) -> list[Split]:
    """k splits whose test sets partition the data; validation is drawn from the rest.
    With ``groups`` (e.g. scaffolds) whole groups stay together in a test fold."""
    k = _check_folds(k, n)
    rng = np.random.default_rng(seed)
    if groups is None:
        fold_of = np.empty(n, dtype=np.int64)
        fold_of[rng.permutation(n)] = np.arange(n) % k
    else:
        by_group: dict[str, list[int]] = defaultdict(list)
        for i, g in enumerate(groups):
            by_group[g].append(i)
        fold_of = np.empty(n, dtype=np.int64)
        load = np.zeros(k, dtype=np.int64)
        keys = list(by_group)
        rng.shuffle(keys)
        for key in sorted(keys, key=lambda g: -len(by_group[g])):  # largest first, to balance
            f = int(np.argmin(load))
            fold_of[by_group[key]] = f
            load[f] += len(by_group[key])
    splits = []
    for f in range(k):
        test = np.flatnonzero(fold_of == f)
        rest = rng.permutation(np.flatnonzero(fold_of != f))
        n_val = int(round(val_fraction * n))
        s = _make("kfold" if groups is None else "group_kfold", seed,
                  (1 - val_fraction - len(test) / n, val_fraction, len(test) / n),
                  (rest[n_val:], rest[:n_val], test), n, smiles, k=k)
        s.fold = f
        splits.append(s)
    return splits


def make_split(method: str, *, mols: Sequence[Any] | None = None,
               y: Sequence[float] | None = None, n: int | None = None,
               sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
               smiles: Sequence[str] | None = None) -> Split:
    """A split by name (one of :data:`SPLIT_METHODS`)."""
    from pmtoolkit.core.io import check_choice

    check_choice("split", method, SPLIT_METHODS)
    if method == "random":
        return random_split(n if n is not None else len(mols), sizes, seed, smiles=smiles)
    if method in ("scaffold", "balanced_scaffold"):
        return scaffold_split(mols, sizes, seed, balanced=method == "balanced_scaffold",
                              smiles=smiles)
    if y is None:
        raise BadInputError("a stratified split needs target values")
    return stratified_split(y, sizes, seed, smiles=smiles)


def load_split(path: str | os.PathLike) -> Split:
    return Split.load(Path(path))
