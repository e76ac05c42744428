"""Scoring components, transforms, aggregation and config errors; the policy update."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from pmtoolkit.core.errors import ConfigError
from pmtoolkit.design.scoring import ScoringFunction, Transform

CELECOXIB = "Cc1ccc(-c2cc(C(F)(F)F)nn2-c2ccc(S(N)(=O)=O)cc2)cc1"


def test_transforms():
    x = np.array([0.0, 0.5, 1.0, np.nan])
    s = Transform("sigmoid", low=0.0, high=1.0)(x)
    assert s[0] < 0.01 and s[1] == pytest.approx(0.5) and s[2] > 0.99 and np.isnan(s[3])
    r = Transform("reverse_sigmoid", low=0.0, high=1.0)(x)
    np.testing.assert_allclose(r[:3], 1 - s[:3])
    step = Transform("step", low=0.2, high=0.8)(x)
    assert step[:3].tolist() == [0.0, 1.0, 0.0] and np.isnan(step[3])
    rng = Transform("range", low=200, high=400, softness=20)(np.array([100.0, 300.0, 500.0]))
    assert rng[0] < 0.01 and rng[1] > 0.98 and rng[2] < 0.01
    with pytest.raises(ConfigError):
        Transform("sigmoid", low=1.0, high=0.0)


def test_components_stay_aligned_and_nan_where_invalid():
    fn = ScoringFunction.from_mapping({"aggregation": "arithmetic", "component": [
        {"type": "similarity", "smiles": [CELECOXIB]},
        {"type": "qed", "weight": 2},
        {"type": "descriptor", "descriptor": "NumHDonors",
         "transform": {"kind": "step", "low": 0, "high": 1}},
        {"type": "required", "smarts": ["S(=O)(=O)N"]},
        {"type": "forbidden", "smarts": ["[N+](=O)[O-]"]},
    ]})
    s = fn([CELECOXIB, "not smiles", "", "CCO", "O=[N+]([O-])c1ccccc1S(N)(=O)=O"])
    assert s.total.shape == (5,) and np.isnan(s.total[1:3]).all()
    assert s.components["similarity"][0] == pytest.approx(1.0)
    assert s.components["required"].tolist()[3:] == [0.0, 1.0]
    assert s.total[4] == 0.0                                   # the forbidden nitro group
    expected = (1.0 + 2 * s.components["qed"][0] + s.components["NumHDonors"][0] + 1.0) / 5
    assert s.total[0] == pytest.approx(expected)


def test_geometric_mean_is_zero_when_a_component_is_zero():
    fn = ScoringFunction.from_mapping({"component": [
        {"type": "qed"}, {"type": "required", "smarts": ["[Cl]"]}]})
    s = fn(["CCO", "CCCl"])
    assert s.total[0] == pytest.approx(0.0, abs=1e-6) and s.total[1] > 0.1


def test_property_model_component_uses_a_shipped_model():
    fn = ScoringFunction.from_mapping({"component": [
        {"type": "model", "model": "solubility",
         "transform": {"kind": "sigmoid", "low": -6, "high": 0}}]})
    s = fn(["CCO", "c1ccc2cc3ccccc3cc2c1", "bad"])
    assert s.raw["solubility:logS"][0] > s.raw["solubility:logS"][1]   # ethanol dissolves
    assert np.isnan(s.raw["solubility:logS"][2])


@pytest.mark.parametrize("table, message", [
    ({"component": []}, "no components"),
    ({"component": [{"type": "qedd"}]}, "did you mean 'qed'"),
    ({"component": [{"type": "qed", "wieght": 2}]}, "did you mean 'weight'"),
    ({"component": [{"type": "qed", "smiles": ["C"]}]}, "does not take 'smiles'"),
    ({"component": [{"type": "similarity"}]}, "needs reference 'smiles'"),
    ({"component": [{"type": "similarity", "smiles": ["C1CC"]}]}, "similarity reference"),
    ({"component": [{"type": "required", "smarts": ["[C"]}]}, "invalid SMARTS"),
    ({"component": [{"type": "descriptor", "descriptor": "MolWT"}]}, "did you mean MolWt"),
    ({"component": [{"type": "model", "model": "solubility", "target": "x"}]}, "no target"),
    ({"aggregation": "max", "component": [{"type": "qed"}]}, "choose from"),
])
def test_bad_scoring_tables_name_the_problem(table, message):
    with pytest.raises(ConfigError, match=message):
        ScoringFunction.from_mapping(table)


def test_agent_update_raises_the_likelihood_of_rewarded_sequences():
    import torch

    from pmtoolkit.design.config import GeneratorConfig
    from pmtoolkit.design.generator import SmilesGenerator
    from pmtoolkit.design.optimize import agent_update
    from pmtoolkit.design.tokenizer import Vocabulary

    torch.manual_seed(0)
    vocab = Vocabulary.build(["CCO", "c1ccccc1", "CCN"])
    prior = SmilesGenerator(GeneratorConfig(hidden_size=16, layers=1, embedding_size=8), vocab)
    agent = copy.deepcopy(prior.network)
    seqs = torch.tensor([vocab.encode("CCO"), vocab.encode("CCN")])
    before = agent.sequence_log_likelihood(seqs).detach()
    opt = torch.optim.Adam(agent.parameters(), lr=1e-2)
    for _ in range(5):
        agent_update(agent, prior.network, seqs, np.array([1.0, 0.0]), 20.0, opt)
    after = agent.sequence_log_likelihood(seqs).detach()
    assert after[0] - before[0] > 0.5           # the rewarded SMILES became likelier
    assert after[0] - before[0] > after[1] - before[1]
