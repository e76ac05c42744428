"""Molecular property prediction: D-MPNN and torch-geometric GNNs, a fingerprint forest,
ensembles with uncertainty, multi-task with missing labels."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "PropertyConfig": "config", "SplitOptions": "config", "PropertyModel": "model", "Prediction": "model", "fit": "model",
    "evaluate": "model", "PropertyData": "data", "read_property_data": "data",
    "from_arrays": "data", "ENCODERS": "networks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
