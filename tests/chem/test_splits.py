from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.chem.molecules import parse_smiles
from pmtoolkit.chem.scaffolds import murcko_scaffold
from pmtoolkit.chem.splits import (
    Split,
    kfold,
    load_split,
    make_split,
    random_split,
    scaffold_split,
    stratified_split,
)
from pmtoolkit.core.errors import BadInputError


@pytest.fixture
def esol(shared_data):
    df = pd.read_csv(shared_data / "molecules" / "delaney-processed.csv")
    smiles = df["smiles"].str.strip().tolist()
    return smiles, [parse_smiles(s)[0] for s in smiles]


def _disjoint_cover(s: Split):
    parts = [set(s.train), set(s.val), set(s.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] == set(range(s.n))


def test_random_split_sizes_and_seed():
    a, b, c = random_split(100, seed=1), random_split(100, seed=1), random_split(100, seed=2)
    _disjoint_cover(a)
    assert (len(a.train), len(a.val), len(a.test)) == (80, 10, 10)
    assert a.train == b.train and a.train != c.train


@pytest.mark.parametrize("balanced", [False, True])
def test_scaffold_split_keeps_scaffolds_apart(esol, balanced):
    smiles, mols = esol
    s = scaffold_split(mols, seed=0, balanced=balanced, smiles=smiles)
    _disjoint_cover(s)
    scaf = [murcko_scaffold(m) for m in mols]
    train_scaf = {scaf[i] for i in s.train}
    assert not train_scaf & {scaf[i] for i in s.test}
    assert not train_scaf & {scaf[i] for i in s.val}
    assert abs(len(s.train) / s.n - 0.8) < 0.02


def test_balanced_scaffold_seeds_differ_and_are_repeatable(esol):
    smiles, mols = esol
    a = scaffold_split(mols, seed=0)
    assert a.test == scaffold_split(mols, seed=0).test
    assert a.test != scaffold_split(mols, seed=1).test


def test_stratified_keeps_class_balance():
    y = np.array([0] * 90 + [1] * 10)
    s = stratified_split(y, seed=0)
    assert y[s.test].sum() == 1 and y[s.val].sum() == 1 and y[s.train].sum() == 8
    with pytest.raises(BadInputError, match="label for every molecule"):
        stratified_split([0, np.nan, 1])


def test_kfold_partitions_the_test_sets(esol):
    smiles, mols = esol
    folds = kfold(len(mols), 5, seed=0, groups=[murcko_scaffold(m) for m in mols])
    tests = [set(f.test) for f in folds]
    assert set().union(*tests) == set(range(len(mols)))
    assert sum(len(t) for t in tests) == len(mols)
    for f in folds:
        _disjoint_cover(f)


def test_split_saves_and_reloads_exactly(tmp_path, esol):
    smiles, mols = esol
    s = make_split("balanced_scaffold", mols=mols, seed=3, smiles=smiles)
    s.save(tmp_path / "split.json")
    back = load_split(tmp_path / "split.json")
    assert back == s
    back.check(smiles)
    with pytest.raises(BadInputError, match="different molecules"):
        back.check(list(reversed(smiles)))
    assert back.to_chemprop()[0]["test"] == s.test


def test_bad_split_requests():
    with pytest.raises(BadInputError, match="sum"):
        random_split(10, sizes=(0.5, 0.5, 0.5))
    with pytest.raises(BadInputError, match="invalid split"):
        make_split("cluster", n=10)
    with pytest.raises(BadInputError, match="k-fold needs"):
        kfold(3, 5)
    for k in (0, 1, -1, 2.5):
        with pytest.raises(BadInputError, match="k-fold needs"):
            kfold(10, k)
    for sizes in ((float("nan"), 0.5, 0.5), (-0.1, 0.6, 0.5), (0.8, 0.1), (0.8, 0.1, "x"),
                  (float("inf"), 0, 0)):
        with pytest.raises(BadInputError, match="three non-negative fractions summing to 1"):
            random_split(10, sizes=sizes)
