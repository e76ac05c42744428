"""Splits of drug–target pairs: random, cold-drug, cold-target, cold-pair and DeepDTA's
setting-1 folds.

A random split tests what DeepDTA's setting 1 tests: every test drug and protein was seen in
training with other partners. The cold splits test what a user needs for new chemistry or new
targets: cold-drug holds out whole drugs (every pair of a test drug is in the test set),
cold-target whole proteins, cold-pair both (a test pair has a drug and a protein that no
training pair has; pairs crossing the two groups are left out of every set).

Splits are :class:`pmtoolkit.chem.splits.Split` records (saved as JSON and reloadable) over
pair indices; their fingerprint is over the (drug, protein) pairs.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pmtoolkit.chem.splits import (
    Split,
    check_sizes,
    entity_groups,
    random_split,
    split_method,
)
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.dti.data import Benchmark, PairData

PAIR_SPLITS = ("random", "cold-drug", "cold-target", "cold-pair")


def pair_keys(data: PairData) -> list[str]:
    """One text key per pair (drug SMILES and protein sequence), for split fingerprints."""
    return [f"{data.drugs[d]}\t{data.proteins[p]}"
            for d, p in zip(data.drug_index, data.protein_index)]


def pair_split(data: PairData, method: str = "random",
               sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """A seeded split of ``data``'s pairs by ``method`` (see the module docstring)."""
    sizes = check_sizes(sizes)
    method = split_method(method)
    rng = np.random.default_rng(seed)
    n = len(data)
    if method == "random":  # the molecules' random split, over pairs
        s = random_split(n, sizes, seed)
        parts = (s.train, s.val, s.test)
    elif method in ("cold-drug", "cold-target"):
        index = data.drug_index if method == "cold-drug" else data.protein_index
        n_ent = len(data.drugs) if method == "cold-drug" else len(data.proteins)
        group = entity_groups(n_ent, sizes, rng, np.bincount(index, minlength=n_ent))
        g = group[index]
        parts = tuple(np.flatnonzero(g == k) for k in range(3))
    elif method == "cold-pair":
        # each side split on its own with the square root of the fractions, so the pairs
        # inside the test-drug x test-protein block are about sizes[2] of the kept pairs
        # before the cross blocks are dropped
        root = np.sqrt(np.asarray(sizes))
        root = tuple(root / root.sum())
        gd = entity_groups(len(data.drugs), root, rng,
                            np.bincount(data.drug_index, minlength=len(data.drugs)))
        gp = entity_groups(len(data.proteins), root, rng,
                            np.bincount(data.protein_index, minlength=len(data.proteins)))
        a, b = gd[data.drug_index], gp[data.protein_index]
        parts = tuple(np.flatnonzero((a == k) & (b == k)) for k in range(3))
    else:
        raise BadInputError(f"unknown pair split {method!r}", hint=", ".join(PAIR_SPLITS))
    from pmtoolkit.core.io import sha256_rows

    split = Split(method=method, seed=seed, sizes=sizes,
                  train=sorted(int(i) for i in parts[0]), val=sorted(int(i) for i in parts[1]),
                  test=sorted(int(i) for i in parts[2]), n=n,
                  smiles_sha256=sha256_rows(pair_keys(data)))
    split.info = {"train_drugs": int(len(np.unique(data.drug_index[split.train]))),
                  "train_proteins": int(len(np.unique(data.protein_index[split.train]))),
                  "dropped_pairs": int(n - len(split.train) - len(split.val) - len(split.test))}
    if not split.train or not split.test:
        raise BadInputError(f"{method} split of {n} pairs left an empty training or test set")
    return split


def setting1_split(bench: Benchmark, fold: int = 0) -> Split:
    """DeepDTA's setting 1: train on four of the five training folds, validate on fold
    ``fold``, test on the held-out test fold (the published protocol trains on all five and
    reports the test fold; use ``fold=-1`` for that: no validation set)."""
    from pmtoolkit.core.io import sha256_rows

    if fold >= len(bench.train_folds):
        raise BadInputError(f"{bench.name} has {len(bench.train_folds)} training folds")
    if fold < 0:
        train, val = bench.train, np.zeros(0, dtype=np.int64)
    else:
        train = np.sort(np.concatenate([f for k, f in enumerate(bench.train_folds)
                                        if k != fold]))
        val = np.sort(bench.train_folds[fold])
    n = len(bench.data)
    sizes = (len(train) / n, len(val) / n, len(bench.test) / n)
    return Split(method="setting1", seed=0, sizes=sizes, train=train.tolist(),
                 val=val.tolist(), test=np.sort(bench.test).tolist(), n=n,
                 smiles_sha256=sha256_rows(pair_keys(bench.data)), fold=fold,
                 info={"benchmark": bench.name})
