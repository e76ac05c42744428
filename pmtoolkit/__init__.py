"""pmtoolkit: a toolkit for precision medicine.

``import pmtoolkit as pmt`` is cheap: subpackages (``pmt.core``, and the domain packages as
they land) load on first attribute access, so heavy libraries such as torch or rdkit are
imported only by the code that needs them.
"""
from __future__ import annotations

import importlib
import os

from pmtoolkit._version import __version__

# How long torch's OpenMP threads spin at a barrier before sleeping. libgomp's default (300k
# spins) makes torch 5-10x slower whenever another process shares the cores; sleeping at once
# (OMP_WAIT_POLICY=PASSIVE) costs 25% (large ops) to 2x (small ops) on an idle machine.
# 1000 spins keeps an idle machine within a few % of full speed and a shared one within 1.5x
# of PASSIVE (measured on 2 cores, benchmarks/threads.py). Must be set before torch loads;
# a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

_SUBPACKAGES = ("core", "chem", "property", "dti", "design", "genomics", "expression", "demo")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
