"""DeepChem interoperability: datasets both ways, featurizers by name, quiet import."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pmtoolkit.chem import deepchem_bridge as bridge
from pmtoolkit.core.errors import MissingResourceError


def test_round_trip_keeps_missing_labels():
    y = np.array([[1.0, np.nan], [0.0, 1.0], [np.nan, 0.0]])
    ds = bridge.to_deepchem(["CCO", "c1ccccc1", "CC(=O)O"], y)
    assert ds.w.tolist() == [[1, 0], [1, 1], [0, 1]]
    smiles, back = bridge.from_deepchem(ds)
    assert smiles == ["CCO", "c1ccccc1", "CC(=O)O"]
    assert np.array_equal(np.isnan(back), np.isnan(y)) and np.nansum(back) == np.nansum(y)


def test_featurizers_by_name_drop_invalid_molecules_visibly():
    ds = bridge.to_deepchem(["CCO", "not a smiles", "c1ccccc1"], [1.0, 2.0, 3.0],
                            featurizer_name="ecfp")
    assert ds.X.shape == (2, 2048) and list(ds.ids) == ["CCO", "c1ccccc1"]
    assert ds.y[:, 0].tolist() == [1.0, 3.0]
    graphs, valid = bridge.featurize(["CCO", "C1CC(("], "molgraphconv")
    assert valid.tolist() == [True, False] and graphs[0].num_nodes == 3
    with pytest.raises(MissingResourceError, match="unknown deepchem featurizer 'ecpf'"):
        bridge.featurizer("ecpf")


def test_deepchem_import_is_silent():
    code = "from pmtoolkit.chem.deepchem_bridge import deepchem; deepchem()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stderr
