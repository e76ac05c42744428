"""pmtoolkit: a toolkit for precision medicine.

``import pmtoolkit as pmt`` is cheap: every domain is ``pmt.<domain>`` (``pmt.chem``,
``pmt.property``, ``pmt.dti``, ``pmt.design``, ``pmt.genomics``, ``pmt.variants``,
``pmt.expression`` or ``pmt.expr``, ``pmt.imaging``, ``pmt.ehr``, ``pmt.fusion``,
``pmt.response``, ``pmt.federated``, ``pmt.pipeline``, and ``pmt.core``), loaded on first
attribute access, so heavy libraries such as torch or rdkit are imported only by the code that
needs them. A domain with models loads one with ``load(name_or_path)``: a shipped model's name
(``pmt info``) or a saved file, e.g. ``pmt.property.load("solubility").predict(smiles)``.
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

_SUBPACKAGES = ("core", "chem", "property", "dti", "design", "genomics", "variants",
                "expression", "imaging", "ehr", "fusion", "response", "federated", "pipeline",
                "demo")
_ALIASES = {"expr": "expression"}

__all__ = ["__version__", *_SUBPACKAGES, *_ALIASES]


def __getattr__(name: str):
    if name in _SUBPACKAGES or name in _ALIASES:
        module = importlib.import_module(f"{__name__}.{_ALIASES.get(name, name)}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
