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
