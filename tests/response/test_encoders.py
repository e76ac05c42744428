"""The response model's encoder options (issue 27 item 2): the drug tower over the molecular
graph (``drug_encoder = graph``, a D-MPNN) and the sample tower over features grouped by gene
(``sample_encoder = gene-groups``). Each learns a small simulated panel, saves and loads to
the same predictions, and refuses bad values; the defaults keep the network saved models
were trained with."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmtoolkit import response as R
from pmtoolkit.core.errors import BadInputError, ConfigError
from pmtoolkit.response.config import PanelConfig, ResponseConfig

SMALL = {"sample_hidden": (64, 16), "drug_hidden": (64, 16), "head": (32,),
         "fingerprint_bits": 1024, "dropout": 0.0, "epochs": 60, "patience": 10,
         "batch_size": 128, "lr": 3e-3, "device": "cpu"}


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    from pmtoolkit.response.simulate import simulate_panel

    out = tmp_path_factory.mktemp("encoders") / "panel"
    simulate_panel(out, PanelConfig(samples=80, drugs=40, genes=150, module_size=10,
                                    module_strength=0.8, w_sample=0.5, w_interaction=1.0,
                                    noise=0.3, coverage=1.0, seed=1))
    return out


def _parts(data, split="random"):
    idx = R.response_split(data, split, seed=0).indices()
    return tuple(data.subset(idx[k]) for k in ("train", "val", "test"))


@pytest.fixture(scope="module")
def data(panel):
    d, drug_rejects, rejects = R.load_panel(panel / "responses.csv", panel / "drugs.csv",
                                            panel / "expression.h5ad")
    assert not drug_rejects and not rejects
    return d


@pytest.fixture(scope="module")
def two_tables(panel, data, tmp_path_factory):
    """The panel's expression as two feature tables: ``expr`` (log-cpm of every gene) and
    ``cn`` (a noisy copy of the first 100 genes): a gene sits in one or both tables."""
    from pmtoolkit.response.features import log_cpm

    out = tmp_path_factory.mktemp("tables")
    s = data.samples
    X = log_cpm(s.X, s.ids)
    rng = np.random.default_rng(0)
    expr = pd.DataFrame(X, columns=s.names).assign(sample_id=s.ids)
    cn = pd.DataFrame(X[:, :100] + rng.normal(0, 0.3, (len(s.ids), 100)),
                      columns=s.names[:100]).assign(sample_id=s.ids)
    expr.to_csv(out / "expr.csv", index=False)
    cn.to_csv(out / "cn.csv", index=False)
    d, drug_rejects, rejects = R.load_panel(panel / "responses.csv", panel / "drugs.csv",
                                            [out / "expr.csv", out / "cn.csv"])
    assert not drug_rejects and not rejects and len(d.samples.names) == 250
    return d


def _per_drug(model, part):
    return R.evaluate(model, part)["per_drug_pearson"]


def _round_trip(model, test, tmp_path):
    from pmtoolkit.core.model import load_model

    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.config == model.config
    assert np.array_equal(loaded.predict(test), model.predict(test))
    return loaded


def test_defaults_are_the_network_saved_models_have():
    """New options default to the fingerprint and the plain MLP, with the same weight keys
    (the shipped gdsc model's test loads one such file)."""
    from pmtoolkit.response.model import _network

    c = ResponseConfig()
    assert (c.drug_encoder, c.sample_encoder) == ("fingerprint", "mlp")
    keys = set(_network(c, [f"g{i}" for i in range(30)]).state_dict())
    assert keys == {"sample.0.weight", "sample.0.bias", "sample.3.weight", "sample.3.bias",
                    "drug.0.weight", "drug.0.bias", "drug.3.weight", "drug.3.bias",
                    "head.2.0.weight", "head.2.0.bias", "head.2.3.weight", "head.2.3.bias"}


def test_graph_drug_encoder_learns_and_round_trips(data, tmp_path):
    train, valid, test = _parts(data)
    model = R.fit(train, valid, ResponseConfig(**SMALL, drug_encoder="graph",
                                               graph_hidden=32, graph_depth=3))
    assert "drug.encoder.W_h.weight" in model.network.state_dict()
    assert not any(k.startswith("drug.0.") for k in model.network.state_dict())
    additive = R.fit_baseline("additive", train, valid)
    net, add = _per_drug(model, test), _per_drug(additive, test)
    assert net > add + 0.15, (net, add)
    _round_trip(model, test, tmp_path)


def test_graph_drug_encoder_reaches_new_drugs_through_structure(data):
    """Cold drugs: what it predicts for an unseen drug comes from the graph, so the drugs'
    ranks must follow the observed ones better than chance."""
    from scipy.stats import spearmanr

    train, valid, test = _parts(data, "cold-drug")
    model = R.fit(train, valid, ResponseConfig(**SMALL, drug_encoder="graph", graph_hidden=32))
    frame = test.frame().assign(pred=model.predict(test))
    by_drug = frame.groupby("drug_id")[["response", "pred"]].mean()
    assert len(by_drug) >= 4
    assert spearmanr(by_drug["response"], by_drug["pred"])[0] > 0.3, by_drug


def test_gene_groups_pool_each_gene_across_tables():
    from pmtoolkit.response.model import gene_groups

    index, genes, tables = gene_groups(["expr:a", "expr:b", "cn:a", "mut:c", "plain"])
    assert genes == ["a", "b", "c", "plain"] and tables == ["expr", "cn", "mut", ""]
    assert index.tolist() == [[0, 2, -1, -1], [1, -1, -1, -1], [-1, -1, 3, -1],
                              [-1, -1, -1, 4]]


def test_gene_group_sample_encoder_learns_and_round_trips(two_tables, tmp_path):
    train, valid, test = _parts(two_tables)
    model = R.fit(train, valid, ResponseConfig(**SMALL, sample_encoder="gene-groups",
                                               gene_hidden=4))
    sample = model.network.sample
    assert tuple(sample.index.shape) == (150, 2)            # 150 genes x 2 tables
    assert float(sample.present.sum()) == 250               # 250 features
    additive = R.fit_baseline("additive", train, valid)
    net, add = _per_drug(model, test), _per_drug(additive, test)
    assert net > add + 0.15, (net, add)
    loaded = _round_trip(model, test, tmp_path)
    # the grouping is rebuilt from the saved feature names, not stored as weights
    assert "sample.index" not in loaded.network.state_dict()
    assert np.array_equal(loaded.network.sample.index.numpy(), sample.index.numpy())


def test_gene_groups_and_graph_together_predict(data):
    train, _, test = _parts(data)
    config = ResponseConfig(**{**SMALL, "epochs": 2}, drug_encoder="graph", graph_hidden=16,
                            sample_encoder="gene-groups", fusion="concat")
    pred = R.fit(train, None, config).predict(test)
    assert pred.shape == (len(test),) and np.isfinite(pred).all()


@pytest.mark.parametrize("bad", [{"drug_encoder": "smiles"}, {"sample_encoder": "pathways"},
                                 {"graph_depth": 0}, {"graph_hidden": 0},
                                 {"gene_hidden": 0}])
def test_bad_encoder_values_are_refused(data, bad):
    from pmtoolkit.core.config import from_mapping

    train, valid, _ = _parts(data)
    with pytest.raises(ConfigError):
        R.fit(train, valid, ResponseConfig(**{**SMALL, "epochs": 1}, **bad))
    key, value = next(iter(bad.items()))
    with pytest.raises(ConfigError):
        from_mapping(ResponseConfig, {key.replace("_", "-"): value})


def test_explanations_refuse_a_graph_model(data):
    from pmtoolkit.response.explain import attribute

    train, _, test = _parts(data)
    model = R.fit(train, None, ResponseConfig(**{**SMALL, "epochs": 1}, drug_encoder="graph",
                                              graph_hidden=8))
    with pytest.raises(BadInputError, match="fingerprint bits"):
        attribute(model, test.subset(np.arange(3)))
