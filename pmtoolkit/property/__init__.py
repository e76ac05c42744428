"""Molecular property prediction: D-MPNN and torch-geometric GNNs, a fingerprint forest,
ensembles with uncertainty, multi-task with missing labels."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "PropertyConfig": "config", "SplitOptions": "config", "PropertyModel": "model",
    "Prediction": "model", "fit": "model", "evaluate": "model", "PropertyData": "data",
    "read_property_data": "data", "from_arrays": "data", "ENCODERS": "networks",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
