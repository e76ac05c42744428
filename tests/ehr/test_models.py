"""EHR risk models: each learns a planted signal; persistence; calibration; explanations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pmtoolkit.ehr.config import RiskModelConfig
from pmtoolkit.ehr.tasks import Sample


def planted(n: int, seed: int = 0) -> list[Sample]:
    """Histories of 2-6 visits of noise codes; a sample is positive (mostly) when RISK:1 was
    coded in one of its last two visits."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        n_vis = int(rng.integers(2, 7))
        visits = [[f"X:{rng.integers(30)}" for _ in range(rng.integers(1, 4))]
                  for _ in range(n_vis)]
        risky = rng.random() < 0.3
        if risky:
            visits[n_vis - 1 - int(rng.integers(2))].append("RISK:1")
        label = int(risky if rng.random() > 0.05 else not risky)
        days = sorted((float(d) for d in rng.uniform(0, 900, n_vis)), reverse=True)
        days[-1] = 0.0
        out.append(Sample(f"p{i}", pd.Timestamp("2020-01-01"), label, visits, days))
    return out


@pytest.fixture(scope="module")
def data():
    return planted(600), planted(150, seed=1), planted(200, seed=2)


@pytest.mark.parametrize("arch", ["logistic", "gru", "lstm", "retain", "transformer"])
def test_each_model_learns_the_planted_code(arch, data, tmp_path):
    from pmtoolkit.core.metrics import roc_auc
    from pmtoolkit.ehr.models import RiskModel, fit_risk_model

    train, valid, test = data
    config = RiskModelConfig(arch=arch, epochs=12, embedding_dim=16, hidden_dim=16,
                             heads=2, lr=2e-2 if arch == "logistic" else 5e-3, device="cpu",
                             patience=0)
    model = fit_risk_model(train, valid, config)
    y = np.array([s.label for s in test])
    p = model.predict_proba(test)
    assert roc_auc(y, p) > 0.85, arch
    assert model.calibration["method"] == "platt" and 0 < model.threshold < 1
    model.save(tmp_path / "m.safetensors")
    again = RiskModel.load(tmp_path / "m.safetensors")
    np.testing.assert_allclose(again.predict_proba(test), p, atol=1e-5)
    # the planted code carries the largest mean contribution
    contrib = model.contributions(test[:60])
    top = contrib.groupby("code")["contribution"].mean().idxmax()
    assert top == "RISK:1", arch


def test_retain_contributions_are_exact_and_ig_is_complete(data):
    from pmtoolkit.ehr.models import fit_risk_model

    train, valid, test = data
    for arch in ("retain", "gru"):
        config = RiskModelConfig(arch=arch, epochs=2, embedding_dim=8, hidden_dim=8,
                                 device="cpu", patience=0, time_encoding=False)
        model = fit_risk_model(train, valid, config)
        z = model.logits(test[:20])
        c = model.contributions(test[:20], steps=64).groupby("sample")["contribution"].sum()
        codes, days, mask = model._tensors(test[:20])
        with torch.no_grad():
            base = model.network(codes, days, mask, torch.zeros(codes.shape + (1,))).numpy()
        if arch == "retain":  # logit = sum of contributions + bias, exactly
            bias = float(model.network.out.bias.detach())
            np.testing.assert_allclose(c.to_numpy() + bias, z, atol=1e-4)
        else:  # completeness of integrated gradients
            np.testing.assert_allclose(c.to_numpy(), z - base, atol=0.05)


def test_isotonic_calibration_and_unknown_codes(data):
    from pmtoolkit.ehr.models import fit_risk_model

    train, valid, test = data
    model = fit_risk_model(train, valid, RiskModelConfig(arch="logistic", epochs=5,
                                                         calibration="isotonic", device="cpu"))
    p = model.predict_proba(test)
    assert model.calibration["method"] == "isotonic" and p.min() >= 0 and p.max() <= 1
    odd = [Sample("q", pd.Timestamp("2020-01-01"), 0, [["NEW:9", "X:1"]], [0.0])]
    assert np.isfinite(model.predict_proba(odd)).all()
    table = model.predict(test[:3])
    assert list(table.columns) == ["patient_id", "index_time", "probability", "predicted"]


def test_platt_scaling_undoes_the_positive_weighting(data):
    """Trained with positives weighted up, raw probabilities overestimate the outcome; a
    temperature cannot move the intercept, Platt scaling brings the mean prediction back to
    the base rate (on held-out samples)."""
    from pmtoolkit.ehr.models import fit_platt, fit_risk_model

    rng = np.random.default_rng(0)
    z = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(2.0 * z - 1.0)))).astype(float)
    a, b = fit_platt(z, y)
    assert abs(a - 2.0) < 0.2 and abs(b + 1.0) < 0.15  # recovers the generating line
    train, valid, test = data
    rare = [s for s in train if s.label == 0] + [s for s in train if s.label][:15]
    valid_rare = [s for s in valid if s.label == 0] + [s for s in valid if s.label][:6]
    test_rare = [s for s in test if s.label == 0] + [s for s in test if s.label][:8]
    y = np.array([s.label for s in test_rare])
    means = {}
    for method in ("none", "temperature", "platt"):
        model = fit_risk_model(rare, valid_rare, RiskModelConfig(
            arch="logistic", epochs=8, lr=2e-2, calibration=method, device="cpu", patience=0))
        means[method] = float(model.predict_proba(test_rare).mean())
    assert means["none"] > 2 * y.mean() and means["temperature"] > 1.5 * y.mean()
    assert abs(means["platt"] - y.mean()) < 0.5 * y.mean()


def test_one_class_training_set_is_refused(data):
    from pmtoolkit.core.errors import BadInputError
    from pmtoolkit.ehr.models import fit_risk_model

    negatives = [s for s in data[0] if s.label == 0]
    with pytest.raises(BadInputError, match="both outcomes"):
        fit_risk_model(negatives, None, RiskModelConfig(device="cpu"))


def _next_visit_data(n, seed):
    """A history holding A:k is followed by a visit diagnosed DX:k (k of 4), plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(4))
        visits = [[f"X:{rng.integers(20)}"] for _ in range(int(rng.integers(1, 4)))]
        visits[-1].append(f"A:{k}")
        targets = [f"DX:{k}"] + ([f"DX:{int(rng.integers(4, 8))}"] if rng.random() < 0.3 else [])
        out.append(Sample(f"q{i}", pd.Timestamp("2020-01-01"), 1, visits,
                          [float(30 * (len(visits) - 1 - j)) for j in range(len(visits))],
                          targets=sorted(set(targets))))
    return out


@pytest.mark.parametrize("arch", ["logistic", "gru", "retain"])
def test_next_visit_models_predict_the_planted_code(arch, tmp_path):
    from pmtoolkit.ehr.models import RiskModel, fit_risk_model, next_visit_metrics

    train, valid, test = (_next_visit_data(400, 0), _next_visit_data(100, 1),
                          _next_visit_data(100, 2))
    model = fit_risk_model(train, valid, RiskModelConfig(
        arch=arch, epochs=15, embedding_dim=16, hidden_dim=16, lr=2e-2, device="cpu",
        patience=0))
    assert model.multilabel and model.targets == [f"DX:{k}" for k in range(8)]
    p = model.predict_proba(test)
    assert p.shape == (100, 8)
    m = next_visit_metrics(model.target_matrix(test), p, ks=(1, 2))
    assert m["recall@2"] > 0.8  # the planted code is ranked first or second
    top = model.predict(test[:2], top=3)
    assert list(top.columns) == ["patient_id", "index_time", "rank", "code", "probability"]
    assert len(top) == 6 and list(top["rank"]) == [1, 2, 3, 1, 2, 3]
    assert list(top["patient_id"]) == [s.patient_id for s in test[:2] for _ in range(3)]
    for i in range(2):  # each patient's three most probable codes, most probable first
        rows = top.iloc[3 * i:3 * i + 3]
        assert rows["probability"].is_monotonic_decreasing
        np.testing.assert_allclose(rows["probability"], np.sort(p[i])[::-1][:3], rtol=1e-5)
    # the planted history code explains the predicted code
    c = model.contributions(test[:30])
    assert (c.groupby("sample")["target"].first().str.slice(3)
            == c.loc[c["code"].str.startswith("A:")].groupby("sample")["code"].first()
            .str.slice(2)).mean() > 0.8
    lead = c.loc[c.groupby("sample")["contribution"].idxmax(), "code"]
    assert lead.str.startswith("A:").mean() > 0.8, arch
    model.save(tmp_path / "nv.safetensors")
    np.testing.assert_allclose(RiskModel.load(tmp_path / "nv.safetensors").predict_proba(test),
                               p, atol=1e-5)


def test_retain_attention_of_a_short_history_ignores_padding():
    """Batched with a longer history, a one-visit sample gets the same attention and output
    as alone (padding must never reach its visit)."""
    from pmtoolkit.ehr.models import fit_risk_model

    train, valid, _ = _next_visit_data(60, 0), _next_visit_data(20, 1), None
    model = fit_risk_model(train, valid, RiskModelConfig(arch="retain", epochs=1,
                                                         embedding_dim=8, hidden_dim=8,
                                                         device="cpu", patience=0))
    short = Sample("s", pd.Timestamp("2020-01-01"), 1, [["A:1"]], [0.0], targets=["DX:1"])
    long = Sample("l", pd.Timestamp("2020-01-01"), 1, [["X:1"], ["X:2"], ["A:2"]],
                  [60.0, 30.0, 0.0], targets=["DX:2"])
    alone = model.logits([short])
    together = model.logits([short, long])
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)
    codes, days, mask = model._tensors([short, long])
    with torch.no_grad():
        _, a, _ = model.network.attention(codes, days, mask)
    assert float(a[0, 0]) == pytest.approx(1.0) and float(a[0, 1:].abs().sum()) == 0.0
