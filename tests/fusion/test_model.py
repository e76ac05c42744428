"""Fusion of per-modality embeddings: beats each modality alone, degrades gracefully when a
modality is missing, and names the modality that carries the signal."""
from __future__ import annotations

import numpy as np
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.fusion.config import FusionConfig


def cohort(n, seed, missing=0.3):
    """Two informative modalities (a: strong, b: weaker) and a noise one; the outcome is
    logistic in a's and b's latent factors; b is missing for a share of patients."""
    rng = np.random.default_rng(seed)
    load = np.random.default_rng(123)  # how each latent shows in its features: one cohort
    wa, wb = load.normal(size=8), load.normal(size=6)
    sa, sb = rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.5 * sa + 1.5 * sb)))).astype(np.float32)
    data = {"a": np.outer(sa, wa) + 0.5 * rng.normal(size=(n, 8)),
            "b": np.outer(sb, wb) + 0.5 * rng.normal(size=(n, 6)),
            "noise": rng.normal(size=(n, 5))}
    mask = np.ones((n, 3), bool)
    mask[:, 1] = rng.random(n) >= missing
    return data, mask, y


@pytest.fixture(scope="module")
def splits():
    return cohort(900, 0), cohort(200, 1), cohort(600, 2)


def _auc(y, p):
    from pmtoolkit.core.metrics import roc_auc

    return roc_auc(y, p)


# concat in the default run; the other two fusions train the same way (~10 s each): slow
@pytest.mark.parametrize("fusion", ["concat", pytest.param("attention", marks=pytest.mark.slow),
                                    pytest.param("gated", marks=pytest.mark.slow)])
def test_fusion_beats_each_modality_and_names_the_planted_one(fusion, splits, tmp_path):
    from pmtoolkit.fusion.model import FusionModel, fit_fusion

    train, valid, test = splits
    cfg = FusionConfig(fusion=fusion, epochs=40, hidden_dim=16, device="cpu", lr=3e-3)
    model = fit_fusion(train, valid, cfg)
    data, mask, y = test
    fused = _auc(y, model.predict(data, mask))
    singles = {}
    for j, name in enumerate(model.modalities):
        only = np.zeros_like(mask)
        only[:, j] = True
        keep = mask[:, j]
        singles[name] = _auc(y[keep], fit_fusion(
            ({name: train[0][name]}, train[1][:, [j]] | True, train[2]),
            ({name: valid[0][name]}, valid[1][:, [j]] | True, valid[2]),
            cfg).predict({name: data[name][keep]}, only[keep][:, [j]]))
    assert fused > max(singles.values()) + 0.01, (fused, singles)
    # graceful: without modality b everyone is scored, a little worse than with it
    no_b = mask.copy()
    no_b[:, 1] = False
    degraded = _auc(y, model.predict(data, no_b))
    assert singles["a"] - 0.03 < degraded < fused
    # attributions: the strong modality moves the output most, the noise one least
    contrib = model.modality_contributions(data, mask)
    size = contrib.assign(occ=contrib["occlusion"].abs()).groupby("modality")["occ"].mean()
    assert size.idxmax() == "a" and size.idxmin() == "noise", size
    assert set(contrib.loc[contrib["modality"] == "b", "patient"]) == set(np.flatnonzero(
        mask[:, 1]))  # a missing modality gets no attribution
    if fusion != "concat":
        w = contrib.groupby("modality")["weight"].mean()
        assert w["noise"] < w["a"], w
    model.save(tmp_path / "f.safetensors")
    again = FusionModel.load(tmp_path / "f.safetensors")
    np.testing.assert_allclose(again.predict(data, mask), model.predict(data, mask), atol=1e-5)


def test_bad_inputs_are_named(splits):
    from pmtoolkit.fusion.model import fit_fusion

    train, valid, _ = splits
    data, mask, y = train
    with pytest.raises(BadInputError, match="no modality at all"):
        fit_fusion((data, np.zeros_like(mask), y), None, FusionConfig(epochs=1, device="cpu"))
    with pytest.raises(BadInputError, match="disagree"):
        fit_fusion((data, mask[:10], y), None, FusionConfig(epochs=1, device="cpu"))
    with pytest.raises(BadInputError, match="one class"):
        fit_fusion((data, mask, np.zeros_like(y)), None, FusionConfig(epochs=1, device="cpu"))
    model = fit_fusion(train, valid, FusionConfig(epochs=1, device="cpu"))
    with pytest.raises(BadInputError, match="no embeddings of modality 'noise'"):
        model.predict({"a": data["a"], "b": data["b"]}, mask)
    with pytest.raises(BadInputError, match="has 3 features"):
        model.predict({**data, "a": data["a"][:, :3]}, mask)


def test_penultimate_is_what_the_output_layer_reads():
    import torch

    from pmtoolkit.fusion.encoders import penultimate

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    x = torch.randn(10, 4)
    out = []
    emb = penultimate(net, lambda: out.append(net(x[:6])) or out.append(net(x[6:])))
    np.testing.assert_allclose(emb, torch.relu(net[0](x)).detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(net[2](torch.from_numpy(emb)).detach().numpy().ravel(),
                               torch.cat(out).detach().numpy().ravel(), atol=1e-6)
