"""Drug-response prediction: reading, splits, metrics, baselines, the model and the
simulator."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmtoolkit import response as R
from pmtoolkit.core.errors import BadInputError, MissingInputError, MissingResourceError
from pmtoolkit.response.config import PanelConfig, ResponseConfig

SMALL = {"sample_hidden": (64, 16), "drug_hidden": (64, 16), "head": (32,),
         "fingerprint_bits": 1024, "dropout": 0.0, "epochs": 60, "patience": 10,
         "batch_size": 128, "lr": 3e-3, "device": "cpu"}


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """A small simulated panel: strong interaction, little noise, every pair measured."""
    from pmtoolkit.response.simulate import simulate_panel

    out = tmp_path_factory.mktemp("response") / "panel"
    info = simulate_panel(out, PanelConfig(samples=80, drugs=40, genes=150, module_size=10,
                                         module_strength=0.8, w_sample=0.5,
                                         w_interaction=1.0, noise=0.3, coverage=1.0,
                                         seed=1))
    return out, info


@pytest.fixture(scope="module")
def data(panel):
    out, _ = panel
    d, drug_rejects, rejects = R.load_panel(out / "responses.csv", out / "drugs.csv",
                                            out / "expression.h5ad")
    assert not drug_rejects and not rejects
    return d


@pytest.fixture(scope="module")
def trained(data):
    split = R.response_split(data, "random", seed=0)
    idx = split.indices()
    train, valid, test = (data.subset(idx[k]) for k in ("train", "val", "test"))
    model = R.fit(train, valid, ResponseConfig(**SMALL))
    return model, train, valid, test


# ---------------------------------------------------------------------------- simulator

def test_simulated_panel_has_the_real_formats_and_its_truth_adds_up(panel, data):
    out, info = panel
    truth = pd.read_csv(out / "truth.csv")
    assert len(truth) == 80 * 40 == len(data) == info["pairs"]
    parts = truth["drug_effect"] + truth["sample_effect"] + truth["interaction"] + 2.0
    assert np.allclose(parts, truth["noiseless"])
    assert abs(np.std(truth["response"] - truth["noiseless"]) - 0.3) < 0.03
    # the ceiling is the correlation of the noiseless truth with what was observed
    assert info["noise_ceiling"]["pearson"] == pytest.approx(
        np.corrcoef(truth["noiseless"], truth["response"])[0, 1])
    assert 0.5 < info["noise_ceiling"]["per_drug_pearson"] < info["noise_ceiling"]["pearson"]
    drugs = pd.read_csv(out / "drugs.csv")
    assert drugs["smiles"].nunique() == 40 and data.samples.counts


def test_simulator_is_deterministic_and_checks_its_settings(tmp_path):
    from pmtoolkit.response.simulate import simulate_panel

    spec = PanelConfig(samples=6, drugs=5, genes=60, module_size=5, seed=3)
    a = simulate_panel(tmp_path / "a", spec)
    b = simulate_panel(tmp_path / "b", spec)
    assert a == b
    assert (tmp_path / "a" / "responses.csv").read_bytes() == \
        (tmp_path / "b" / "responses.csv").read_bytes()
    with pytest.raises(BadInputError, match="mechanisms"):
        simulate_panel(tmp_path / "c", PanelConfig(mechanisms=9))
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------------------- reading

def _write_panel(tmp_path, smiles=("CCO", "c1ccccc1O", "CC(=O)O"), samples=4):
    ids = [f"D{i}" for i in range(len(smiles))]
    pd.DataFrame({"drug_id": ids, "smiles": smiles}).to_csv(tmp_path / "drugs.csv",
                                                            index=False)
    rng = np.random.default_rng(0)
    feats = pd.DataFrame(rng.integers(0, 3, size=(samples, 5)).astype(float),
                         columns=[f"rs{j}" for j in range(5)])
    feats.insert(0, "sample_id", [f"S{i}" for i in range(samples)])
    feats.to_csv(tmp_path / "geno.csv", index=False)
    rows = [(f"S{i}", d, float(i + k)) for i in range(samples) for k, d in enumerate(ids)]
    pd.DataFrame(rows, columns=["sample_id", "drug_id", "response"]).to_csv(
        tmp_path / "responses.csv", index=False)
    return tmp_path / "responses.csv", tmp_path / "drugs.csv", tmp_path / "geno.csv"


def test_bad_smiles_are_counted_and_their_rows_rejected_with_lines(tmp_path):
    resp, drugs, geno = _write_panel(tmp_path, smiles=("CCO", "C1CC((", "CC(=O)[O-].[Na+]"))
    data, drug_rejects, rejects = R.load_panel(resp, drugs, geno)
    assert len(drug_rejects) == 1 and drug_rejects.items[0].line == 3
    assert "cannot parse SMILES" in drug_rejects.items[0].reason
    assert len(rejects) == 4 and all("invalid SMILES" in r.reason for r in rejects)
    assert [r.line for r in rejects] == [3, 6, 9, 12]
    assert len(data) == 8 and data.drugs.ids == ["D0", "D2"]
    assert data.drugs.smiles[1] == "CC(=O)O"  # standardised: salt stripped, neutralised
    with pytest.raises(BadInputError, match=r"drugs.csv: line 3: .*1 more|drugs.csv: line 3"):
        R.apply_rejects(drug_rejects, rejects, "error")
    R.apply_rejects(drug_rejects, rejects, "skip")  # only logs


def test_missing_column_no_overlap_and_non_numeric_features_are_one_line_errors(tmp_path):
    resp, drugs, geno = _write_panel(tmp_path)
    with pytest.raises(MissingInputError, match="column 'ic50' not found"):
        R.load_panel(resp, drugs, geno, columns=R.Columns(response="ic50"))
    other = pd.read_csv(geno)
    other["sample_id"] = "X" + other["sample_id"]
    other.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(BadInputError, match="no sample id of .* is in"):
        R.load_panel(resp, drugs, tmp_path / "other.csv")
    other["rs1"] = "AA"
    other.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(BadInputError, match="'rs1' .* not numeric"):
        R.read_features(tmp_path / "text.csv")


def test_feature_table_fills_missing_values_and_unknown_pairs_are_rejects(tmp_path):
    resp, drugs, geno = _write_panel(tmp_path)
    feats = pd.read_csv(geno)
    feats.loc[0, "rs0"] = np.nan
    feats = feats.drop(index=3)  # S3 has no features
    feats.to_csv(geno, index=False)
    samples = R.read_features(geno)
    assert np.isfinite(samples.X).all() and not samples.counts
    assert samples.X[0, 0] == pytest.approx(feats["rs0"].iloc[1:].mean())
    data, _, rejects = R.load_panel(resp, drugs, geno)
    assert len(data) == 9 and len(rejects) == 3
    assert rejects.items[0].reason == "sample 'S3' has no features"


# ---------------------------------------------------------------------------- splits

@pytest.mark.parametrize("method", R.SPLITS)
def test_splits_hold_out_what_they_say_and_are_deterministic(data, method):
    s = R.response_split(data, method, seed=5)
    assert s.method == method
    parts = s.indices()
    sets = {k: set(v.tolist()) for k, v in parts.items()}
    assert not (sets["train"] & sets["test"]) and not (sets["train"] & sets["val"])
    drugs = {k: set(data.drug_index[v].tolist()) for k, v in parts.items()}
    samples = {k: set(data.sample_index[v].tolist()) for k, v in parts.items()}
    if method in ("cold-drug", "cold-pair"):
        assert not drugs["train"] & (drugs["test"] | drugs["val"])
    if method in ("cold-sample", "cold-pair"):
        assert not samples["train"] & (samples["test"] | samples["val"])
    if method == "random":  # warm: the test drugs and samples were all seen
        assert drugs["test"] <= drugs["train"] and samples["test"] <= samples["train"]
    if method != "cold-pair":
        assert len(sets["train"]) + len(sets["val"]) + len(sets["test"]) == len(data)
        assert 0.7 < len(sets["train"]) / len(data) < 0.9
    assert R.response_split(data, method, seed=5).test == s.test
    assert R.response_split(data, method, seed=6).test != s.test


def test_unknown_split_is_an_error(data):
    with pytest.raises(BadInputError, match="unknown split 'cold'"):
        R.response_split(data, "cold")


# ---------------------------------------------------------------------------- metrics

def test_metrics_per_drug_and_per_sample():
    y = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    d = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0, 1, 2, 0, 1, 2])
    p = np.array([1.0, 2.0, 3.0, 3.0, 2.0, 1.0])  # drug 0 ranked right, drug 1 reversed
    m = R.response_metrics(y, p, d, s)
    assert m["per_drug_pearson"] == pytest.approx(0.0)
    assert m["drugs_scored"] == 2 and m["n"] == 6
    # a prediction constant within every drug ranks no sample: NaN, not 0
    m = R.response_metrics(y, np.array([5.0, 5, 5, 7, 7, 7]) + 1e-15, d, s)
    assert np.isnan(m["per_drug_pearson"]) and m["drugs_scored"] == 0
    # two pairs per sample are too few for a within-sample correlation
    assert np.isnan(m["per_sample_pearson"]) and m["samples_scored"] == 0


# ---------------------------------------------------------------------------- baselines

def test_additive_and_ridge_fit_an_additive_panel(data):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=len(data.drugs.ids)), rng.normal(size=len(data.samples.ids))
    y = 1.0 + a[data.drug_index] + b[data.sample_index]
    additive = R.ResponseData(data.samples, data.drugs, data.sample_index, data.drug_index, y)
    split = R.response_split(additive, "random", seed=0).indices()
    train, test = additive.subset(split["train"]), additive.subset(split["test"])
    pred = R.fit_baseline("additive", train).predict(test)
    assert np.sqrt(np.mean((pred - test.y) ** 2)) < 0.05
    assert R.evaluate(R.fit_baseline("ridge", train), test)["pearson"] > 0.99
    drug_mean = R.fit_baseline("drug-mean", train)
    assert np.isnan(R.evaluate(drug_mean, test)["per_drug_pearson"])
    with pytest.raises(MissingResourceError, match="unknown baseline 'lasso'"):
        R.fit_baseline("lasso", train)


# ---------------------------------------------------------------------------- model

def test_model_recovers_the_planted_interaction_beyond_the_additive_baseline(panel, trained):
    """Within a drug, the additive baseline can only rank samples by general sensitivity;
    the model must also follow the drug x sample interaction. Disconnect either tower and
    the within-drug correlation with the interaction falls to ~0."""
    from pmtoolkit.response.simulate import recovery

    out, _ = panel
    model, train, valid, test = trained
    truth = pd.read_csv(out / "truth.csv")

    def rec(pred):
        frame = test.frame()
        frame["prediction"] = pred
        return recovery(truth, frame)

    net = rec(model.predict(test))
    additive = rec(R.fit_baseline("additive", train, valid).predict(test))
    assert net["interaction_within_drug"] > 0.5, net
    assert abs(additive["interaction_within_drug"]) < 0.15, additive
    m_net, m_add = R.evaluate(model, test), R.evaluate(R.fit_baseline("additive", train), test)
    assert m_net["per_drug_pearson"] > m_add["per_drug_pearson"] + 0.15, (m_net, m_add)
    assert m_net["rmse"] < m_add["rmse"]


def test_both_towers_feed_the_prediction(trained):
    import torch

    model, _, _, test = trained
    base = model.predict(test)
    net = model.network
    for tower in (net.sample, net.drug):
        first = tower[0]
        saved = first.weight.detach().clone()
        with torch.no_grad():
            first.weight.zero_()
        try:
            flat = model.predict(test)
        finally:
            with torch.no_grad():
                first.weight.copy_(saved)
        assert not np.allclose(flat, base, atol=1e-3)
    assert np.array_equal(model.predict(test), base)


def test_save_load_round_trip_is_exact(trained, tmp_path):
    from pmtoolkit.core.model import load_model

    model, train, _, test = trained
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert isinstance(loaded, R.ResponseModel)
    assert np.array_equal(loaded.predict(test), model.predict(test))
    assert loaded.prep.names == model.prep.names and loaded.prep.normalize == "log-cpm"
    assert loaded.metadata["training_data_sha256"] == train.fingerprint()
    assert R.load(tmp_path / "m.safetensors").config == model.config
    with pytest.raises(BadInputError, match="does not exist"):
        R.load(tmp_path / "absent.safetensors")


def test_models_saved_before_response_left_fusion_still_load(trained, tmp_path):
    """Files written when the class was pmtoolkit.fusion.response:ResponseModel."""
    from pmtoolkit.core.checkpoint import save_checkpoint
    from pmtoolkit.core.config import to_dict

    model, _, _, test = trained
    save_checkpoint(tmp_path / "model.safetensors", model.state_tensors(),
                    model_class="pmtoolkit.fusion.response:ResponseModel",
                    config=to_dict(model.config), extra=model.extra_metadata())
    loaded = R.load(tmp_path)
    assert isinstance(loaded, R.ResponseModel)
    assert np.array_equal(loaded.predict(test), model.predict(test))


def test_features_missing_from_new_data_are_filled_or_refused(trained, data):
    model = trained[0]
    keep = [j for j, n in enumerate(data.samples.names) if n != model.prep.names[0]]
    fewer = R.SampleFeatures(data.samples.ids, data.samples.X[:, keep],
                             [data.samples.names[j] for j in keep], True, "fewer")
    assert len(model.prep.raw(fewer)) == len(data.samples.ids)
    few = R.SampleFeatures(data.samples.ids, data.samples.X[:, :5],
                           data.samples.names[:5], True, "few")
    with pytest.raises(BadInputError, match="features are missing from 'few'"):
        model.prep.raw(few)


@pytest.mark.parametrize("fusion", ["concat", "bilinear"])
def test_every_fusion_trains_and_predicts(data, fusion):
    split = R.response_split(data, "cold-drug", seed=0).indices()
    train, test = data.subset(split["train"]), data.subset(split["test"])
    config = ResponseConfig(**{**SMALL, "epochs": 2, "fusion": fusion, "top_genes": 50})
    model = R.fit(train, None, config)
    pred = model.predict(test)
    assert pred.shape == (len(test),) and np.isfinite(pred).all()
    assert len(model.prep.names) == 50


def test_bilinear_needs_equal_tower_outputs():
    with pytest.raises(BadInputError, match="last sample-hidden and drug-hidden"):
        R.check_config(ResponseConfig(fusion="bilinear", sample_hidden=(32,),
                                      drug_hidden=(16,)))
