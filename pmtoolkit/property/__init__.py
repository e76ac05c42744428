"""Molecular property prediction: D-MPNN and torch-geometric GNNs, a fingerprint forest,
ensembles with uncertainty, multi-task with missing labels.

``load("solubility").predict(smiles)`` predicts with a shipped model (or a saved file)."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "PropertyConfig": "config", "SplitConfig": "config", "PropertyModel": "model",
    "Prediction": "model", "fit": "model", "evaluate": "model", "PropertyData": "data",
    "read_property_data": "data", "from_arrays": "data", "ENCODERS": "networks",
    "load": "run", "train_file": "run", "predict_file": "run", "evaluate_file": "run",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
