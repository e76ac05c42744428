"""pmtoolkit: a toolkit for precision medicine.

``import pmtoolkit as pmt`` is cheap: subpackages (``pmt.core``, and the domain packages as
they land) load on first attribute access, so heavy libraries such as torch or rdkit are
imported only by the code that needs them.
"""
from __future__ import annotations

import importlib
import os

from pmtoolkit._version import __version__

# OpenMP threads that spin while waiting make torch 10-50x slower whenever another process
# shares the cores (measured: 86 s instead of 2.5 s for a small training run on 2 busy cores).
# Sleeping waiters cost little when the machine is idle. Must be set before torch loads;
# a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_SUBPACKAGES = ("core", "chem", "property", "demo")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
