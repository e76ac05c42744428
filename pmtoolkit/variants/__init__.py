"""Variant-effect scoring, the short way: ``pmt.variants.score(vcf, fasta, model="mpra")``
returns a pandas DataFrame of the numbers ``pmt variants score`` writes.

A thin public namespace over :mod:`pmtoolkit.genomics` (which holds the sequence models, the
reference and VCF readers, and the scorer); names load lazily.
"""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_G, _S, _R = "pmtoolkit.genomics.run", "pmtoolkit.genomics.score", "pmtoolkit.genomics.variants"
_EXPORTS = {
    "score": _G, "score_file": _G, "load": _G, "ism_file": _G,
    "score_frame": _S, "score_vcf": _S, "VariantScorer": _S,
    "Variant": _R, "read_vcf": _R, "iter_vcf": _R, "Reference": "pmtoolkit.genomics.reference",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
