"""Property models: networks on hand-built graphs, overfitting, multi-task with missing
labels, forests, ensembles, save/load."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pmtoolkit.chem.encoders import DMPNNEncoder
from pmtoolkit.chem.featurizer import ATOM_DIM, BOND_DIM, GraphFeaturizer, collate
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import load_model
from pmtoolkit.property.config import PropertyConfig
from pmtoolkit.property.data import from_arrays, read_property_data
from pmtoolkit.property.model import evaluate, fit
from pmtoolkit.property.networks import PropertyNetwork

FAST = dict(hidden_size=32, ffn_hidden_size=32, batch_size=8, device="cpu")


def test_dmpnn_is_invariant_to_atom_order():
    torch.manual_seed(0)
    net = PropertyNetwork(architecture="dmpnn", atom_dim=ATOM_DIM, bond_dim=BOND_DIM, n_tasks=2,
                          hidden=16, depth=3, dropout=0.0, aggregation="mean", ffn_hidden=8,
                          ffn_layers=1).eval()
    f = GraphFeaturizer()
    a, _ = f.featurize(["OC(=O)c1ccccc1N"])
    b, _ = f.featurize(["Nc1ccccc1C(O)=O"])  # same molecule, other atom order
    with torch.no_grad():
        assert torch.allclose(net(collate(a)), net(collate(b)), atol=1e-5)


def test_dmpnn_message_excludes_the_reverse_bond():
    """On a 2-atom molecule a bond's only neighbour is its own reverse, so after any depth
    the bond states stay at their input projection: depth 1 and 3 agree."""
    torch.manual_seed(0)
    enc1 = DMPNNEncoder(ATOM_DIM, BOND_DIM, hidden=8, depth=1)
    enc3 = DMPNNEncoder(ATOM_DIM, BOND_DIM, hidden=8, depth=3)
    enc3.load_state_dict(enc1.state_dict())
    g = collate(GraphFeaturizer().featurize(["CO"])[0])
    assert torch.allclose(enc1(g.x, g.edge_index, g.edge_attr),
                          enc3(g.x, g.edge_index, g.edge_attr))


@pytest.mark.parametrize("arch", ["dmpnn", "gine", "attentivefp"])
def test_networks_handle_single_atoms(arch):
    net = PropertyNetwork(architecture=arch, atom_dim=ATOM_DIM, bond_dim=BOND_DIM, n_tasks=1,
                          hidden=8, depth=2, dropout=0.0, aggregation="norm", ffn_hidden=8,
                          ffn_layers=1).eval()
    with torch.no_grad():
        out = net(collate(GraphFeaturizer().featurize(["C", "[Na+]", "CCO"])[0]))
    assert out.shape == (3, 1) and torch.isfinite(out).all()


def test_regression_overfits_a_small_set(test_data, tmp_path):
    data, rejects = read_property_data(test_data / "esol_tiny.csv", target_columns=["logS"])
    assert len(data) == 40 and not rejects
    model = fit(data, None, PropertyConfig(epochs=150, lr=3e-3, **FAST), workdir=tmp_path)
    scores = evaluate(model, data)["mean"]
    assert scores["r2"] > 0.8, scores  # a model that learns nothing would sit near 0


def test_multitask_classification_with_missing_labels(test_data, tmp_path):
    data, _ = read_property_data(test_data / "tox21_tiny.csv",
                                 target_columns=["NR-AR", "NR-AhR", "SR-p53"],
                                 task="classification")
    assert np.isnan(data.y).any()
    model = fit(data, None, PropertyConfig(task="classification", epochs=150, lr=3e-3, **FAST),
                workdir=tmp_path)
    pred = model.predict(data.smiles).frame
    probs = pred[["NR-AR_pred", "NR-AhR_pred", "SR-p53_pred"]].to_numpy()
    assert ((probs >= 0) & (probs <= 1)).all()
    assert evaluate(model, data)["mean"]["roc_auc"] > 0.8  # chance is 0.5


def test_forest_round_trip_and_ensemble_uncertainty(test_data, tmp_path):
    data, _ = read_property_data(test_data / "esol_tiny.csv", target_columns=["logS"])
    forest = fit(data, None, PropertyConfig(architecture="forest", n_estimators=20,
                                            ensemble_size=2))
    forest.save(tmp_path / "forest.safetensors")
    back = load_model(tmp_path / "forest.safetensors")
    smiles = data.smiles[:5] + ["not a smiles"]
    a, b = forest.predict(smiles).frame, back.predict(smiles).frame
    pd.testing.assert_frame_equal(a, b)
    assert "logS_uncertainty" in a and (a["logS_uncertainty"][:5] >= 0).all()
    assert np.isnan(a["logS_pred"].iloc[5]) and a["error"].iloc[5] == "cannot parse SMILES"
    # molecules a reader already parsed give the same table, invalid rows included
    from pmtoolkit.chem.molecules import parse_smiles

    c = forest.predict(smiles, mols=[parse_smiles(s)[0] for s in smiles]).frame
    pd.testing.assert_frame_equal(a, c)


def test_gnn_save_load_gives_identical_predictions(test_data, tmp_path):
    data, _ = read_property_data(test_data / "esol_tiny.csv", target_columns=["logS"])
    model = fit(data.subset(range(30)), data.subset(range(30, 40)),
                PropertyConfig(epochs=2, features="rdkit2d", ensemble_size=2, **FAST),
                workdir=tmp_path / "w")
    model.save(tmp_path / "m.safetensors")
    back = load_model(tmp_path / "m.safetensors")
    pd.testing.assert_frame_equal(model.predict(data.smiles).frame,
                                  back.predict(data.smiles).frame)
    assert back.metadata["metrics"]["valid"]["n"] == 10
    assert back.metadata["training_data_sha256"] == data.subset(range(30)).fingerprint()


def test_training_input_errors():
    data, rejects = from_arrays(["CCO", "CCC", "xx"], [0.0, 2.0, 1.0], task="classification")
    assert [(r.line, r.reason) for r in rejects] == [(2, "label 2 in 'task0' is not 0 or 1"),
                                                    (3, "cannot parse SMILES")]
    with pytest.raises(BadInputError, match="single class"):
        fit(data, None, PropertyConfig(task="classification", epochs=1, **FAST))
