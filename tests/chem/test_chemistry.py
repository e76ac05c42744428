"""Standardisation, descriptors, fingerprints, filters and scaffolds against known values."""
from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from pmtoolkit.chem import descriptors as D
from pmtoolkit.chem.filters import alerts, filter_table
from pmtoolkit.chem.fingerprints import FingerprintConfig, fingerprints, morgan, tanimoto
from pmtoolkit.chem.scaffolds import murcko_scaffold
from pmtoolkit.chem.standardize import StandardizeConfig, Standardizer, canonical_smiles
from pmtoolkit.core.errors import BadInputError, ConfigError, MissingResourceError

ASPIRIN = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O")


@pytest.mark.parametrize("raw,expected", [
    ("CC(=O)[O-].[Na+]", "CC(=O)O"),                 # salt stripped, neutralised
    ("OCC.c1ccccc1C(=O)O", "O=C(O)c1ccccc1"),         # largest fragment kept
    ("C[N+](C)(C)C.[Cl-]", "C[N+](C)(C)C"),            # a quaternary ammonium stays charged
])
def test_standardize(raw, expected):
    mol, reason = Standardizer()(Chem.MolFromSmiles(raw))
    assert reason == "" and canonical_smiles(mol) == expected


def test_canonical_tautomer_option():
    a = Standardizer(StandardizeConfig(tautomer=True))(Chem.MolFromSmiles("Oc1ccccn1"))[0]
    b = Standardizer(StandardizeConfig(tautomer=True))(Chem.MolFromSmiles("O=c1cccc[nH]1"))[0]
    assert canonical_smiles(a) == canonical_smiles(b)


def test_descriptors_qed_sa_rules():
    X = D.rdkit_descriptors([ASPIRIN, None])
    assert X.shape == (2, len(D.descriptor_names())) and np.isnan(X[1]).all()
    assert X[0, D.descriptor_names().index("MolWt")] == pytest.approx(180.159, abs=1e-2)
    assert D.qed(ASPIRIN) == pytest.approx(0.550, abs=1e-3)
    assert 1.0 < D.sa_score(ASPIRIN) < 2.5  # an easy molecule to make
    lip = D.lipinski(ASPIRIN)
    assert (lip["hbd"], lip["hba"], lip["lipinski_violations"]) == (1, 3, 0)
    assert D.veber(ASPIRIN)["veber_pass"]
    with pytest.raises(MissingResourceError, match="unknown RDKit descriptor 'MolWT'.*did you "
                                                   "mean 'MolWt'.*valid: AvgIpc"):
        D.rdkit_descriptors([ASPIRIN], ["MolWT"])


def test_costly_descriptors_are_nan_above_their_size(monkeypatch):
    names = ["Ipc", "AvgIpc", "BCUT2D_MWHI", "BertzCT", "MolWt"]
    mid, large = (Chem.MolFromSmiles("C" * n) for n in (201, 501))
    X = D.rdkit_descriptors([mid, large], names)
    assert np.isnan(X[0, :2]).all() and np.isfinite(X[0, 2:]).all()
    assert np.isnan(X[1, :3]).all() and np.isfinite(X[1, 3:]).all()
    assert set(D.COSTLY_DESCRIPTORS) <= set(D.descriptor_names())
    # at and below its size a descriptor is computed (200 atoms take seconds on a busy machine)
    monkeypatch.setitem(D.COSTLY_DESCRIPTORS, "Ipc", 10)
    X = D.rdkit_descriptors([Chem.MolFromSmiles("C" * n) for n in (10, 11)], ["Ipc"])
    assert X[0, 0] > 0 and np.isnan(X[1, 0])


def test_descriptor_names_are_checked_and_deduplicated():
    assert D.check_descriptor_names(["MolWt", "TPSA", "MolWt"]) == ["MolWt", "TPSA"]
    with pytest.raises(MissingResourceError, match="did you mean 'TPSA'"):
        D.check_descriptor_names(["tpsa"])
    with pytest.raises(MissingResourceError, match="did you mean 'MolWt'.*valid: AvgIpc"):
        D.check_descriptor_names(["MolWeight"])


def test_tautomer_canonicalisation_is_refused_above_its_size():
    config = StandardizeConfig(tautomer=True)
    mol, reason = Standardizer(config)(Chem.MolFromSmiles("C" * 201))
    assert mol is None and reason == "201 heavy atoms, over the limit of 200 for --tautomer"
    assert Standardizer(config)(Chem.MolFromSmiles("C" * 200))[0] is not None
    # the limit applies to what reaches the tautomer step: a counter-ion is stripped first
    salt = "OC(=O)CCCCCCCCC(=O)O." + "C" * 190 + "[N+](C)(C)C"  # 206 heavy atoms in all
    assert Standardizer(config)(Chem.MolFromSmiles(salt))[0].GetNumHeavyAtoms() == 194


@pytest.mark.parametrize("kwargs, message", [
    ({"n_bits": 0}, "n-bits: 0 is out of range"), ({"n_bits": -5}, "n-bits: -5 is out of range"),
    ({"n_bits": 65_537}, "n-bits: 65537 is out of range"),
    ({"radius": -1}, "radius: -1 is out of range"), ({"radius": 9}, "radius: 9 is out"),
    ({"radius": 2.5}, "radius must be an integer"), ({"kind": "ecfp"}, "kind 'ecfp' is unknown"),
])
def test_fingerprint_config_refuses_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FingerprintConfig(**kwargs)


def test_standardize_config_takes_booleans_only():
    with pytest.raises(ConfigError, match="tautomer must be true or false, got 'no'"):
        StandardizeConfig(tautomer="no")


def test_morgan_matches_rdkit_generator():
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    ours = morgan([ASPIRIN, None], radius=2, n_bits=1024)
    assert np.array_equal(ours[0], gen.GetFingerprintAsNumPy(ASPIRIN))
    assert ours[1].sum() == 0
    counts = morgan([ASPIRIN], n_bits=1024, counts=True)
    assert counts.max() > 1 and np.array_equal(counts[0] > 0, ours[0] > 0)
    maccs = fingerprints([ASPIRIN], FingerprintConfig(kind="maccs"))
    assert maccs.shape == (1, 167)


def test_tanimoto():
    fps = morgan([ASPIRIN, Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)OC"),
                  Chem.MolFromSmiles("CCCCCC")])
    sim = tanimoto(fps, fps)
    assert np.allclose(np.diag(sim), 1.0)
    assert sim[0, 1] > 0.5 > sim[0, 2]
    a, b = fps[0].astype(bool), fps[1].astype(bool)
    assert sim[0, 1] == pytest.approx((a & b).sum() / (a | b).sum())


def test_alerts_and_filter_table():
    rhodanine = Chem.MolFromSmiles("O=C1NC(=S)SC1=Cc1ccccc1")  # a textbook PAINS
    assert any("ene_rhod" in a for a in alerts(rhodanine, ["PAINS"]))
    assert alerts(ASPIRIN, ["PAINS"]) == []
    assert alerts(ASPIRIN, ["BRENK"]) == ["phenol_ester"]  # Brenk flags aspirin's ester
    ibuprofen = Chem.MolFromSmiles("CC(C)Cc1ccc(cc1)C(C)C(=O)O")
    table = filter_table([ibuprofen, rhodanine, None])
    assert list(table["passes"][:2]) == [True, False]
    assert table.iloc[2].isna().all()
    with pytest.raises(BadInputError, match="unknown alert catalog"):
        alerts(ASPIRIN, ["NOPE"])


def test_scaffolds():
    ibuprofen = Chem.MolFromSmiles("CC(C)Cc1ccc(cc1)C(C)C(=O)O")
    assert murcko_scaffold(ibuprofen) == "c1ccccc1"
    assert murcko_scaffold(Chem.MolFromSmiles("CCCCO")) == ""
    assert murcko_scaffold(Chem.MolFromSmiles("c1ccccc1CCc1ccncc1"), generic=True) == \
        "C1CCC(CCC2CCCCC2)CC1"
