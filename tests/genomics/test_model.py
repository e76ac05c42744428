"""Sequence models: training on a planted motif, persistence, strand symmetry, ISM."""
from __future__ import annotations

import numpy as np
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import load_model
from pmtoolkit.genomics.config import SequenceModelConfig
from pmtoolkit.genomics.data import SequenceData, encode_sequences, fit_window
from pmtoolkit.genomics.ism import gradient_x_input, ism
from pmtoolkit.genomics.model import SequenceModel, evaluate, fit
from pmtoolkit.genomics.sequence import reverse_complement

MOTIF = "TGACTCA"  # AP-1; a palindrome-like site, planted on either strand


def _planted(n: int, window: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    seqs, y = [], np.zeros((n, 1), dtype=np.float32)
    for i in range(n):
        s = "".join(rng.choice(list("ACGT"), window))
        if i % 2:
            at = int(rng.integers(0, window - len(MOTIF)))
            m = MOTIF if rng.random() < 0.5 else reverse_complement(MOTIF)
            s = s[:at] + m + s[at + len(MOTIF):]
            y[i] = 1
        seqs.append(s)
    return seqs, y


def _data(n: int, window: int, seed: int) -> SequenceData:
    seqs, y = _planted(n, window, seed)
    codes, keep = encode_sequences(seqs, window)
    return SequenceData(codes, y[keep], ["ap1"], "binary")


SMALL = dict(window=64, filters=(16, 16), kernels=(7, 3), pools=(2, 2), hidden=16,
             batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def trained():
    cfg = SequenceModelConfig(epochs=15, patience=0, lr=3e-3, **SMALL)
    return fit(_data(600, 64, 0), _data(100, 64, 1), cfg)  # test ROC-AUC 0.94-0.95 (seeds 0-2)


def test_learns_a_planted_motif(trained, tmp_path):
    m = evaluate(trained, _data(200, 64, 2))
    assert m["roc_auc"] > 0.9
    path = tmp_path / "m.safetensors"
    trained.save(path)
    again = load_model(path)
    assert isinstance(again, SequenceModel) and again.targets == ["ap1"]
    seqs, _ = _planted(20, 64, 3)
    np.testing.assert_allclose(again.predict(seqs), trained.predict(seqs), atol=1e-6)


def test_strand_averaged_output_is_strand_symmetric(trained):
    seqs, _ = _planted(16, 64, 4)
    fwd = trained.predict(seqs)
    rev = trained.predict([reverse_complement(s) for s in seqs])
    np.testing.assert_allclose(fwd, rev, atol=1e-6)
    one = trained.predict(seqs, strands="forward")
    assert one.shape == fwd.shape and not np.allclose(one, fwd)


@pytest.mark.parametrize("strands", ["both", "forward"])
def test_fast_ism_equals_full_ism_and_single_snvs(trained, strands):
    seq = _planted(2, 64, 5)[0][1]  # a positive
    fast = ism(trained, seq, strands=strands, method="fast")
    full = ism(trained, seq, strands=strands, method="full")
    np.testing.assert_allclose(fast.outputs, full.outputs, atol=1e-5)
    assert fast.outputs.shape == (64, 4, 1)
    # one position of ISM = scoring that substitution as a sequence
    p = 30
    b = (int(fast.reference_bases[p]) + 1) % 4
    mutated = seq[:p] + "ACGT"[b] + seq[p + 1:]
    np.testing.assert_allclose(fast.outputs[p, b], trained.predict([mutated], strands=strands)[0],
                               atol=1e-5)
    np.testing.assert_allclose(fast.outputs[p, fast.reference_bases[p]],
                               trained.predict([seq], strands=strands)[0], atol=1e-5)
    assert np.allclose(fast.effects()[np.arange(64), fast.reference_bases], 0)


def test_fast_ism_region_with_odd_shapes():
    # pools that do not divide the window, even kernels, an N in the sequence
    cfg = SequenceModelConfig(window=50, filters=(8, 6, 5), kernels=(6, 5, 4), pools=(3, 2, 1),
                              hidden=8, device="cpu", task="regression")
    model = SequenceModel(cfg, targets=["a", "b"])
    model.network.eval()
    for mod in model.network.modules():  # non-trivial batch-norm statistics
        if hasattr(mod, "running_mean") and mod.running_mean is not None:
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    seq = "ACGTTGCANNACGGTACCATGACTCAGGA" + "T" * 21
    fast = ism(model, seq, start=3, end=48, method="fast")
    full = ism(model, seq, start=3, end=48, method="full")
    np.testing.assert_allclose(fast.outputs, full.outputs, atol=1e-5)
    assert list(fast.positions) == list(range(3, 48))


def test_dilated_architecture_and_gradient_x_input():
    cfg = SequenceModelConfig(architecture="dilated", window=40, filters=(8, 12), kernels=(7, 3),
                              blocks=3, hidden=8, device="cpu", task="multiclass", epochs=2,
                              batch_size=16)
    seqs, _ = _planted(60, 40, 6)
    codes, _ = encode_sequences(seqs, 40)
    data = SequenceData(codes, np.arange(60) % 3, ["donor", "acceptor", "neither"], "multiclass")
    model = fit(data, None, cfg)
    p = model.predict(seqs[:5])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert model.flops_per_sequence() > 0
    attr = gradient_x_input(model, seqs[0], target="donor")
    assert attr.shape == (40,) and np.isfinite(attr).all()
    with pytest.raises(BadInputError, match="fast ISM needs a basset"):
        ism(model, seqs[0], method="fast")
    res = ism(model, seqs[0], start=10, end=12)  # auto: the full method
    assert res.outputs.shape == (2, 4, 3)


def test_bad_inputs(trained):
    with pytest.raises(BadInputError, match="non-nucleotide letter"):
        trained.predict(["ACGTXACGT"])
    with pytest.raises(BadInputError, match="outside the window"):
        ism(trained, "ACGT" * 16, start=60, end=70)
    data = _data(10, 48, 7)
    with pytest.raises(BadInputError, match="window is 64"):
        fit(data, None, SequenceModelConfig(**SMALL))
    with pytest.raises(BadInputError, match="labelled for a binary task"):
        fit(_data(10, 64, 7), None, SequenceModelConfig(**{**SMALL, "task": "regression"}))
    assert fit_window("ACGTAC", 4) == "CGTA" and fit_window("AC", 5) == "NACNN"


@pytest.mark.parametrize("loss", ["mse", "pearson"])
def test_fit_effects_learns_which_substitutions_break_a_site(loss):
    from pmtoolkit.core.metrics import roc_auc
    from pmtoolkit.genomics.model import EffectData, fit_effects

    rng = np.random.default_rng(8)
    window, refs, alts, y = 32, [], [], []
    for i in range(1200):
        s = list(rng.choice(list("ACGT"), window))
        p = int(rng.integers(0, window))
        if i % 2 == 0:  # a site, hit by the substitution half the time
            at = int(rng.integers(4, window - len(MOTIF) - 4))
            s[at:at + len(MOTIF)] = list(MOTIF)
            if rng.random() < 0.5:
                p = int(rng.integers(at, at + len(MOTIF)))
        a = s.copy()
        a[p] = "ACGT"[("ACGT".index(s[p]) + int(rng.integers(1, 4))) % 4]
        ref, alt = "".join(s), "".join(a)
        broke = MOTIF in ref and MOTIF not in alt and reverse_complement(MOTIF) not in alt
        refs.append(ref)
        alts.append(alt)
        y.append(-1.0 if broke else 0.0)
    r, _ = encode_sequences(refs, window)
    a, _ = encode_sequences(alts, window)
    data = EffectData(r, a, np.asarray(y, dtype=np.float64) + rng.normal(0, 0.1, len(y)),
                      groups=np.arange(len(y)) % 3)  # three "elements"
    cfg = SequenceModelConfig(task="regression", window=window, filters=(16,), kernels=(7,),
                              pools=(2,), hidden=32, epochs=20, patience=0, lr=3e-3,
                              batch_size=64, device="cpu", seed=0, effect_loss=loss)
    model = fit_effects(data.subset(range(1000)), data.subset(range(1000, 1100)), cfg)
    test = data.subset(range(1100, 1200))
    pred = model.predict_codes(test.alt)[:, 0] - model.predict_codes(test.ref)[:, 0]
    broken = (test.y < -0.5).astype(float)
    assert roc_auc(broken, -pred) > 0.75
    # in the effects' units (the correlation loss is rescaled after training)
    assert pred[broken == 1].mean() < -0.3 and abs(pred[broken == 0].mean()) < 0.3
    with pytest.raises(BadInputError, match="regression"):
        fit_effects(data, None, SequenceModelConfig(window=window))
