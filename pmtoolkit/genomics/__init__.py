"""Genomics: DNA encoding, reference FASTA and VCF/BCF access, sequence CNNs, variant-effect
scoring and in-silico mutagenesis."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "one_hot": "sequence", "one_hot_batch": "sequence", "reverse_complement": "sequence",
    "reverse_complement_array": "sequence",
    "Reference": "reference",
    "Variant": "variants", "iter_vcf": "variants", "read_vcf": "variants",
    "allele_windows": "variants",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
