"""Graph featurizer: a hand-checked small molecule, alignment, rejects, batching, speed path."""
from __future__ import annotations

import numpy as np
import torch

from pmtoolkit.chem import featurizer as F


def test_acetic_acid_by_hand():
    codes, rejects = F.GraphFeaturizer().featurize(["CC(=O)O"])
    g = F.collate(codes)
    assert not rejects
    assert g.x.shape == (4, F.ATOM_DIM) and g.edge_attr.shape == (6, F.BOND_DIM)
    # atomic numbers C, C, O, O: one-hot slots 5, 5, 7, 7 of the first block
    assert g.x[:, :len(F.ATOMIC_NUMS) + 1].argmax(1).tolist() == [5, 5, 7, 7]
    # hydrogens: CH3, C, =O, OH -> 3, 0, 0, 1
    off = sum(len(v) + 1 for v in (F.ATOMIC_NUMS, F.DEGREES, F.CHARGES, F.CHIRAL_TAGS))
    assert g.x[:, off:off + len(F.NUM_HS) + 1].argmax(1).tolist() == [3, 0, 0, 1]
    # mass feature (last column): 12.011 * 0.01 for carbon
    assert torch.allclose(g.x[0, -1], torch.tensor(0.12011), atol=1e-4)
    # bonds come as (u->v, v->u) pairs: the reverse of edge e is e ^ 1
    src, dst = g.edge_index
    for e in range(6):
        assert (src[e], dst[e]) == (dst[e ^ 1], src[e ^ 1])
    # the C=O bond is a double bond (slot 1 of the bond-type block)
    double = [e for e in range(6) if {int(src[e]), int(dst[e])} == {1, 2}]
    assert all(g.edge_attr[e, 1] == 1 for e in double)
    assert g.batch.tolist() == [0, 0, 0, 0]


def test_ring_features():
    codes, _ = F.GraphFeaturizer().featurize(["C1CC1c1ccccc1"])
    x = F.collate(codes).x.numpy()
    ring_start = F.ATOM_DIM - 1 - len(F.RING_SIZES) - 1  # in-ring flag, then sizes 3..8
    in_ring = x[:, ring_start]
    sizes = x[:, ring_start + 1:ring_start + 1 + len(F.RING_SIZES)]
    assert in_ring.tolist() == [1] * 9
    assert sizes[:3, 0].tolist() == [1, 1, 1] and sizes[3:, 3].tolist() == [1] * 6


def test_invalid_inputs_are_aligned_rejects():
    codes, rejects = F.GraphFeaturizer().featurize(["CCO", "C1CC((", None, "[Na+]"],
                                                   start_line=2)
    assert [c is None for c in codes] == [False, True, True, False]
    assert [(r.line, r.reason) for r in rejects] == [(3, "cannot parse SMILES"),
                                                    (4, "missing SMILES")]
    assert F.collate([codes[3]]).edge_index.shape == (2, 0)  # one atom, no bonds


def test_cache_and_packed_batches_agree():
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C", "O=C=O"]
    f = F.GraphFeaturizer()
    codes, _ = f.featurize(smiles)
    again, _ = f.featurize(smiles)
    assert all(a is b for a, b in zip(codes, again))  # second pass served from the cache
    packed = F.PackedGraphs(codes)
    for idx in ([0, 1, 2, 3, 4], [4, 2], [3]):
        a, b = packed.batch(idx), F.collate([codes[i] for i in idx])
        for k in ("x", "edge_index", "edge_attr", "batch"):
            assert torch.equal(getattr(a, k), getattr(b, k))


def test_to_pyg_data():
    codes, _ = F.GraphFeaturizer().featurize(["c1ccccc1"])
    d = F.to_data(codes[0])
    assert d.num_nodes == 6 and d.edge_index.shape == (2, 12)
    assert np.allclose(d.x.sum(1).numpy()[0], d.x[0].sum().item())


def test_parallel_featurization_matches_serial(monkeypatch):
    smiles = ["CCO", "c1ccccc1O", "C1CC((", "CC(=O)Nc1ccc(O)cc1"] * 30
    monkeypatch.setattr(F.GraphFeaturizer, "PARALLEL_MIN", 10)
    par, par_rej = F.GraphFeaturizer(cache_size=0).featurize(smiles, n_jobs=2)
    ser, ser_rej = F.GraphFeaturizer(cache_size=0).featurize(smiles, n_jobs=1)
    assert [r.line for r in par_rej] == [r.line for r in ser_rej] == list(range(3, 121, 4))
    a, b = F.collate([c for c in par if c]), F.collate([c for c in ser if c])
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)


def test_featurizer_applies_the_atom_limit(monkeypatch):
    smiles = ["CCO", "C" * 1001, "c1ccccc1"]
    codes, rejects = F.GraphFeaturizer(cache_size=0).featurize(smiles, start_line=2)
    assert [c is None for c in codes] == [False, True, False]
    assert [(r.line, r.reason) for r in rejects] == [
        (3, "1,001 heavy atoms, over the limit of 1,000 (--max-atoms)")]
    codes, rejects = F.GraphFeaturizer(cache_size=0, max_atoms=2).featurize(smiles * 5, n_jobs=1)
    assert sum(c is not None for c in codes) == 0 and len(rejects) == 15
    monkeypatch.setattr(F.GraphFeaturizer, "PARALLEL_MIN", 10)  # workers get the limit too
    codes, _ = F.GraphFeaturizer(cache_size=0, max_atoms=None).featurize(smiles * 5, n_jobs=2)
    assert codes[1].n_atoms == 1001
