"""The shipped property models: they load offline, predict what they predicted when they were
trained (pinned values), and give sensible chemistry."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pmtoolkit.core import shipped
from pmtoolkit.property.run import SHIPPED_MODELS, load

PINS = json.loads((__import__("pathlib").Path(__file__).parents[1] / "data" /
                   "shipped_property_predictions.json").read_text())


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_model_is_in_the_manifest_and_pinned(name):
    entry = shipped.entry(name, "model")
    assert entry.bytes < 8 * 1024 * 1024  # a few MB each
    frame = load(name).predict(PINS["smiles"]).frame
    for column, values in PINS["predictions"][name].items():
        assert np.allclose(frame[column].to_numpy(), values, atol=1e-4), column


def test_shipped_models_know_some_chemistry():
    sol = load("solubility").predict(["CCO", "c1ccc2cc3ccccc3cc2c1"]).frame
    assert sol["logS_pred"][0] > sol["logS_pred"][1]  # ethanol dissolves, anthracene does not
    assert (sol["logS_uncertainty"] > 0).all()
    lipo = load("lipophilicity").predict(["OCC(O)CO", "CCCCCCCCc1ccccc1"]).frame
    assert lipo["logD_pred"][0] < lipo["logD_pred"][1]  # glycerol is not lipophilic
