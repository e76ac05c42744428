"""Shared machinery of every domain: errors, files, configs, seeds and devices, checkpoints,
the model contract, training, metrics, plots and reports, and the registry of shipped data.

Importing ``pmtoolkit.core`` is cheap; its submodules import torch, pandas or Lightning only
inside the functions that need them.
"""
from pmtoolkit.core.errors import (
    BadInputError,
    ConfigError,
    InternalError,
    MissingInputError,
    MissingResourceError,
    PmtError,
    UnsafeFileError,
)

__all__ = [
    "BadInputError", "ConfigError", "InternalError", "MissingInputError",
    "MissingResourceError", "PmtError", "UnsafeFileError",
]


def __getattr__(name: str):
    """A submodule on first use (``pmt.core.shipped.path("esol")``), like the domains."""
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
