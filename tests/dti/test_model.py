"""DTI models: padding-invariant protein encoders, block batches, cold splits, training that
learns, save/load, screening."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pmtoolkit.core.model import load_model
from pmtoolkit.dti.config import DTIConfig
from pmtoolkit.dti.data import read_pairs
from pmtoolkit.dti.model import _BlockSampler, block_shape, evaluate, fit, rm2
from pmtoolkit.dti.networks import KMER_DIM, ProteinCNN, encode_proteins, kmer_composition
from pmtoolkit.dti.splits import pair_split

SMALL = dict(drug_hidden=32, protein_embedding=16, protein_filters=(16, 16, 16),
             protein_kernel=5, head=(64, 32), pairs_per_batch=40, device="cpu")


@pytest.fixture(scope="module")
def tiny():
    from pathlib import Path

    data, rejects = read_pairs(Path(__file__).parents[1] / "data" / "dti_tiny.csv",
                               value_column="value")
    assert not rejects
    return data


@pytest.mark.parametrize("pool", [1, 2])
def test_protein_cnn_does_not_depend_on_padding(pool):
    torch.manual_seed(0)
    cnn = ProteinCNN(16, (8, 8, 8), 5, pool=pool).eval()
    short, long = "MKVLAAGIVGLPNVGKS", "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEK"
    ids, lengths = encode_proteins([short, long], 1000)
    alone_ids, alone_len = encode_proteins([short], 1000)
    together = cnn(torch.from_numpy(ids), torch.from_numpy(lengths))
    alone = cnn(torch.from_numpy(alone_ids), torch.from_numpy(alone_len))
    torch.testing.assert_close(together[0], alone[0])
    # max_length keeps the N-terminus
    cut, n = encode_proteins([long], 10)
    assert n.tolist() == [10] and cut.shape == (1, 10)


def test_kmer_composition_blocks_sum_to_one():
    k = kmer_composition(["MKVLAAX", "AC"])
    assert k.shape == (2, KMER_DIM)
    assert k[0, :20].sum() == pytest.approx(1.0) and k[0, 20:420].sum() == pytest.approx(1.0)
    assert k[1, 420:].sum() == 0  # no 3-mer in a 2-residue sequence


def test_blocks_cover_every_pair_once_and_encode_few_entities():
    rng = np.random.default_rng(0)
    d, p = np.divmod(rng.choice(40 * 30, size=700, replace=False), 30)
    g_d, g_p = block_shape(40, 30, 700, 64, cost_ratio=20.0)
    assert g_d * g_p * 700 / 1200 == pytest.approx(64, rel=0.35)
    assert g_d > g_p  # proteins cost more: fewer of them per block
    sampler = _BlockSampler(d, p, 40, 30, g_d, g_p, seed=1)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        blocks = list(sampler)
        assert sorted(np.concatenate(blocks).tolist()) == list(range(700))
        assert max(len(np.unique(p[b])) for b in blocks) <= g_p
        assert max(len(np.unique(d[b])) for b in blocks) <= g_d


def test_cold_splits_hold_out_whole_entities(tiny):
    for method, index in (("cold_drug", tiny.drug_index), ("cold_target", tiny.protein_index)):
        s = pair_split(tiny, method, seed=0)
        assert not set(index[s.train]) & set(index[s.test])
    s = pair_split(tiny, "cold_pair", seed=0)
    assert not set(tiny.drug_index[s.train]) & set(tiny.drug_index[s.test])
    assert not set(tiny.protein_index[s.train]) & set(tiny.protein_index[s.test])
    assert s.info["dropped_pairs"] > 0


def test_rm2_is_r2_for_a_perfect_fit():
    y = np.array([5.0, 6.0, 7.5, 9.0])
    assert rm2(y, y) == pytest.approx(1.0)
    assert rm2(y, y[::-1]) < 0.5


@pytest.mark.parametrize("protein_encoder", ["cnn", "kmer"])
def test_training_learns_and_round_trips(tiny, tmp_path, protein_encoder):
    cfg = DTIConfig(protein_encoder=protein_encoder, epochs=60, lr=3e-3, dropout=0.0, **SMALL)
    model = fit(tiny, tiny, cfg)
    hist = model.metadata["history"]
    assert hist[-1]["train_loss"] < 0.7 * hist[0]["train_loss"]
    scores = evaluate(model, tiny)
    assert scores["ci"] > 0.75 and scores["n"] == len(tiny)  # chance is 0.5
    model.save(tmp_path / "m.safetensors")
    back = load_model(tmp_path / "m.safetensors")
    np.testing.assert_allclose(back.predict(tiny), model.predict(tiny), rtol=1e-5)
    # screening scores equal pair predictions
    targets = back.encode_targets(tiny.proteins[:2])
    mols = tiny.drug_mols()[:3]
    grid = back.score_molecules(mols, targets)
    from pmtoolkit.dti.data import PairData

    pairs = PairData(tiny.drugs[:3], tiny.proteins[:2], np.repeat(np.arange(3), 2),
                     np.tile(np.arange(2), 3))
    np.testing.assert_allclose(grid.ravel(), back.predict(pairs), rtol=1e-5)


def test_ensemble_members_differ_and_average(tiny, tmp_path):
    cfg = DTIConfig(epochs=3, ensemble_size=2, **SMALL)
    model = fit(tiny, None, cfg)
    members = model.predict_members(tiny)
    assert members.shape == (2, len(tiny)) and not np.allclose(members[0], members[1])
    np.testing.assert_allclose(model.predict(tiny), members.mean(axis=0))
    assert len(model.metadata["member_histories"]) == 2
    model.save(tmp_path / "e.safetensors")
    back = load_model(tmp_path / "e.safetensors")
    np.testing.assert_allclose(back.predict_members(tiny), members, rtol=1e-5)
