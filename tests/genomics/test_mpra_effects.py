"""Effect models for saturation-mutagenesis MPRA: the local network's exact locality, normal
scores, motif-initialised first layers, and fit_effects stopped on per-element Spearman."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.genomics.data import encode_sequences
from pmtoolkit.genomics.model import EffectData, fit_effects, one_hot_codes
from pmtoolkit.genomics.motifs import MotifModel
from pmtoolkit.genomics.mpra import local_config, motif_filters, normal_scores
from pmtoolkit.genomics.networks import LocalNet


def test_local_net_difference_sees_only_what_the_variant_reaches():
    """REF/ALT windows of 2R - 1 bases give the same difference as any longer context: every
    contribution the variant cannot reach cancels exactly."""
    torch.manual_seed(0)
    cfg = local_config()
    net = LocalNet(cfg, 1).eval()
    r = net.receptive_field
    assert r == 21 and cfg.window == 2 * r - 1
    rng = np.random.default_rng(0)
    long = rng.integers(0, 4, (6, 201)).astype(np.uint8)
    alt = long.copy()
    alt[:, 100] = (alt[:, 100] + 1) % 4
    with torch.no_grad():
        full = net(one_hot_codes(alt)) - net(one_hot_codes(long))
        cut = slice(100 - (r - 1), 100 + r)
        local = net(one_hot_codes(alt[:, cut])) - net(one_hot_codes(long[:, cut]))
    torch.testing.assert_close(full, local, atol=1e-4, rtol=1e-5)
    assert float(full.abs().max()) > 0
    with pytest.raises(ValueError, match="shorter than the receptive field"):
        LocalNet(local_config(window=20), 1)
    assert net.flops(41) > 0


def test_normal_scores_rank_within_each_group():
    from scipy.stats import norm

    y = np.array([5.0, -1.0, 2.0, 2.0, 100.0, 0.0, 0.1])
    g = np.array(["a", "a", "a", "a", "b", "b", "b"])
    z = normal_scores(y, g)
    a = z[:4]
    assert a[1] < a[2] == a[3] < a[0]  # order kept, ties share a score
    assert abs(a.sum()) < 1e-9 and a[0] == pytest.approx(norm.ppf(3.5 / 4))
    assert z[4] == pytest.approx(norm.ppf(2.5 / 3))  # 100: just the largest of its group
    assert z[4] > z[6] > z[5]


def test_motif_filters_start_from_the_heaviest_motifs():
    rng = np.random.default_rng(1)
    lengths = np.array([3, 5, 4])
    filters = np.zeros((3, 4, 5), np.float32)
    for i, k in enumerate(lengths):
        filters[i, :, :k] = rng.normal(size=(4, k))
    base = MotifModel(matrices=(["m0", "m1", "m2"], ["AAA", "CCCCC", "GGGG"], lengths,
                                filters, np.array([1.0, 2.0, 1.5], np.float32)))
    strengths = rng.normal(size=(50, 3))
    w, b = motif_filters(base, np.array([0.1, -5.0, 1.0]), strengths, n=2, kernel=4, scale=0.5)
    assert w.shape == (2, 4, 4) and b.shape == (2,)
    np.testing.assert_allclose(w[0], 0.5 * filters[1, :, :4][:, 0:4])  # m1 cut to 4 of 5
    np.testing.assert_allclose(w[1], 0.5 * filters[2, :, :4])  # m2, exactly 4 wide
    assert b[0] == pytest.approx(-0.5 * 2.0 * 4 / 5) and b[1] == pytest.approx(-0.75)


def _site_effects(n: int, window: int, seed: int) -> EffectData:
    """Substitutions that break a planted TGACTCA lower the effect by 1; others do nothing."""
    rng = np.random.default_rng(seed)
    motif, refs, alts, y = "TGACTCA", [], [], []
    for i in range(n):
        s = list(rng.choice(list("ACGT"), window))
        p = window // 2
        if i % 2 == 0:
            at = p - int(rng.integers(0, len(motif)))
            s[at:at + len(motif)] = list(motif)
        a = s.copy()
        a[p] = "ACGT"[("ACGT".index(s[p]) + int(rng.integers(1, 4))) % 4]
        refs.append("".join(s))
        alts.append("".join(a))
        y.append(-1.0 if motif in "".join(s) and motif not in "".join(a) else 0.0)
    r, _ = encode_sequences(refs, window)
    a, _ = encode_sequences(alts, window)
    return EffectData(r, a, np.asarray(y) + rng.normal(0, 0.1, n), np.arange(n) % 3)


def test_local_effect_model_learns_and_stops_on_per_element_spearman():
    from pmtoolkit.core.metrics import roc_auc

    data = _site_effects(1300, 41, 3)
    cfg = local_config(filters=(16, 8), epochs=12, patience=4, seed=0)
    model = fit_effects(data.subset(range(1000)), data.subset(range(1000, 1150)), cfg)
    assert "val_spearman" in model.metadata["history"][0]
    test = data.subset(range(1150, 1300))
    pred = model.predict_codes(test.alt)[:, 0] - model.predict_codes(test.ref)[:, 0]
    assert roc_auc((test.y < -0.5).astype(float), -pred) > 0.9
    bad = (np.zeros((16, 4, 7), np.float32), np.zeros(16, np.float32))
    with pytest.raises(BadInputError, match="do not fit the first convolution"):
        fit_effects(data.subset(range(100)), None, cfg, first_filters=bad)
    w = np.random.default_rng(0).normal(size=(16, 4, 15)).astype(np.float32)
    started = fit_effects(data.subset(range(100)), None, local_config(
        filters=(16, 8), epochs=1, lr=1e-12, seed=0), first_filters=(w, np.zeros(16)))
    np.testing.assert_allclose(started.network.convs[0].weight.detach().numpy(), w, atol=1e-6)
