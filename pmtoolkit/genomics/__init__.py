"""Genomics: DNA encoding, reference FASTA and VCF/BCF access, sequence CNNs, variant-effect
scoring and in-silico mutagenesis.

``load("splice")`` / ``load("mpra")`` are the shipped models (``jaspar`` the motif scorer);
:mod:`pmtoolkit.variants` is the short way to score a VCF."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "one_hot": "sequence", "one_hot_batch": "sequence", "reverse_complement": "sequence",
    "reverse_complement_array": "sequence",
    "Reference": "reference",
    "Variant": "variants", "iter_vcf": "variants", "read_vcf": "variants",
    "allele_windows": "variants",
    "SequenceModelConfig": "config", "SequenceModel": "model", "fit": "model",
    "evaluate": "model", "MotifModel": "motifs",
    "VariantScorer": "score", "score_vcf": "score", "score_frame": "score",
    "load": "run", "train_file": "run", "score_file": "run", "ism_file": "run",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
