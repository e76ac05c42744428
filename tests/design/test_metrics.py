"""MOSES generation metrics on hand-checkable inputs."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.design import metrics as M


def test_validity_uniqueness_novelty():
    samples = ["CCO", "OCC", "", "C1CC", "c1ccccc1", "CCN"]
    out = M.generation_metrics(samples, train={"CCO"}, ks=(3, 10))
    assert out["valid"] == pytest.approx(4 / 6)          # '' and an unclosed ring are invalid
    assert out["unique@3"] == pytest.approx(2 / 3)       # CCO and OCC are one molecule
    assert out["unique@10"] == pytest.approx(3 / 4)
    assert out["novelty"] == pytest.approx(2 / 3)        # CCO is in the training set


def test_internal_diversity_and_nearest_neighbour_by_hand():
    a = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=np.uint8)  # Tanimoto 1/3
    t = 1 / 3
    assert M.internal_diversity(a, 1) == pytest.approx(1 - (1 + t) / 2)
    assert M.internal_diversity(a, 2) == pytest.approx(1 - np.sqrt((1 + t * t) / 2))
    ref = np.array([[1, 1, 0, 0], [0, 0, 0, 1]], dtype=np.uint8)
    assert M.nearest_similarity(a, ref) == pytest.approx((1 + t) / 2)


def test_cosine_similarity_of_counts():
    assert M.cosine_similarity(Counter(a=1, b=1), Counter(a=2, b=2)) == pytest.approx(1.0)
    assert M.cosine_similarity(Counter(a=1), Counter(b=1)) == pytest.approx(0.0)


def test_filters_follow_moses_rules():
    mols = M.parse(["CCO", "CC[O-]", "C1CCCCCCC1", "CC[Si](C)C", "CCOO", "c1ccccc1O"])
    assert [M.passes_filters(m) for m in mols] == [True, False, False, False, True, True]
    # MCF: an aldehyde ([#6&!H0]=[#8]) is filtered out
    assert not M.passes_filters(M.parse(["CC=O"])[0])


def test_scaffolds_need_two_rings_and_fragments_count():
    mols = M.parse(["c1ccccc1CCc1ccccc1", "c1ccccc1C", "C1CCCCC1c1ccncc1"])
    sc = M.scaffolds(mols)
    assert sum(sc.values()) == 2 and "c1ccc(CCc2ccccc2)cc1" in sc
    assert M.fragments(mols)


def test_reference_round_trip(tmp_path):
    smiles = ["c1ccccc1CCc1ccccc1", "CCOc1ccccc1", "CC(=O)Nc1ccc(O)cc1"]
    ref = M.Reference.compute(smiles, fcd=False)
    ref.save(tmp_path / "ref.npz")
    back = M.Reference.load(tmp_path / "ref.npz")
    assert (back.fps == ref.fps).all() and back.frag == ref.frag and back.scaf == ref.scaf
    out = M.generation_metrics(smiles, reference=back, fcd=False)
    assert out["SNN"] == pytest.approx(1.0) and out["Frag"] == pytest.approx(1.0)


def test_fcd_runs_offline_and_is_zero_for_identical_sets():
    pytest.importorskip("fcd_torch")
    smiles = ["CCO", "CCN", "c1ccccc1", "CC(=O)O", "CCOC", "c1ccncc1", "CCCl", "OCCO"]
    ref = M.Reference.compute(smiles)
    out = M.generation_metrics(smiles, reference=ref)
    assert out["FCD"] == pytest.approx(0.0, abs=1e-3)
    assert ref.fcd_mu.shape == (512,) and ref.fcd_sigma.shape == (512, 512)  # what load checks


def test_a_damaged_or_foreign_reference_cache_is_an_input_error(tmp_path):
    smiles = ["c1ccccc1CCc1ccccc1", "CCOc1ccccc1", "CC(=O)Nc1ccc(O)cc1"]
    M.Reference.compute(smiles, fcd=False).save(tmp_path / "ref.npz")
    whole = (tmp_path / "ref.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "noise.npz").write_bytes(bytes(range(256)) * 20)
    np.savez(tmp_path / "other.npz", fps=np.zeros((3, 5)), n=np.array(3),
             counts=np.frombuffer(b'{"frag": {}, "scaf": {}}', dtype=np.uint8))
    np.savez(tmp_path / "pickle.npz", fps=np.array([{"a": 1}], dtype=object))
    with open(tmp_path / "huge.npz", "wb") as fh:  # a header declaring 8 TB, no data
        import zipfile

        with zipfile.ZipFile(fh, "w") as zf, zf.open("fps.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, {
                "descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    for name, message in [("cut", "is not a reference cache"), ("noise", "is not a reference"),
                          ("other", "wrong shape"), ("pickle", "is not a reference cache"),
                          ("huge", "declares 7,450.6 GiB of arrays")]:
        with pytest.raises(BadInputError, match=message):
            M.Reference.load(tmp_path / f"{name}.npz")
