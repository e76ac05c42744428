"""Integrated gradients of the response model: the attributions of a pair add up to its
prediction minus the baseline pair's, a feature the model ignores gets none, and a drug's
bit attributions land on its atoms."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from pmtoolkit import response as R
    from pmtoolkit.response.config import PanelConfig, ResponseConfig
    from pmtoolkit.response.simulate import simulate_panel

    out = tmp_path_factory.mktemp("explain") / "panel"
    simulate_panel(out, PanelConfig(samples=30, drugs=8, genes=40, module_size=5, seed=3))
    data, _, _ = R.load_panel(out / "responses.csv", out / "drugs.csv", out / "expression.h5ad")
    config = ResponseConfig(epochs=3, top_genes=0, sample_hidden=(16, 8), drug_hidden=(16, 8),
                            head=(8,), fingerprint_bits=256, batch_size=64, device="cpu")
    return R.fit(data, None, config), data


def test_attributions_add_up_to_the_prediction_minus_the_baseline(trained):
    from pmtoolkit.response.explain import attribute

    model, data = trained
    pairs = data.subset(np.arange(12))
    attr = attribute(model, pairs, steps=64)
    np.testing.assert_allclose(attr.prediction, model.predict(pairs), atol=1e-4)
    gap = np.abs(attr.total - (attr.prediction - attr.baseline))
    assert gap.max() <= 0.02 * np.abs(attr.prediction - attr.baseline).max() + 1e-4
    # a bit the drug does not set carries nothing (the path is scaled by the input)
    fp_zero = attr.bits == 0
    assert fp_zero.any() and np.all(attr.bits[fp_zero] == 0)


def test_a_bits_attribution_is_shared_among_its_atoms():
    from pmtoolkit.response.explain import atom_weights
    from pmtoolkit.response.features import drug_fingerprints

    smiles = "CC(=O)Oc1ccccc1C(=O)O"
    fp = drug_fingerprints([smiles], 2, 256)[0]
    bits = np.where(fp > 0, 1.0, 0.0)
    mol, w = atom_weights(smiles, bits, radius=2, n_bits=256)
    assert len(w) == mol.GetNumAtoms() == 13
    assert w.sum() == pytest.approx(bits.sum())  # every bit's share lands on some atoms
    one = np.zeros(256)
    one[np.flatnonzero(fp)[0]] = -2.0
    _, w1 = atom_weights(smiles, one, radius=2, n_bits=256)
    assert w1.sum() == pytest.approx(-2.0) and (w1 <= 0).all()


def test_feature_labels_name_the_gene_and_the_table():
    from pmtoolkit.response.explain import feature_label

    assert feature_label("cell_mutation:entrez_673", {"entrez_673": "BRAF"}) == "BRAF mutation"
    assert feature_label("cell_copynumber:entrez_1", None) == "entrez_1 copy number"
    assert feature_label("gene_7", None) == "gene_7"
