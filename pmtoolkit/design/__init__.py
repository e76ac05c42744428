"""De novo design: a SMILES tokenizer, recurrent SMILES generators (sampling, training,
transfer learning), and the pieces of goal-directed optimisation."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "Vocabulary": "tokenizer", "tokenize": "tokenizer", "TokenError": "tokenizer",
    "GeneratorConfig": "config", "SmilesGenerator": "generator", "Samples": "generator",
    "fit": "generator", "finetune": "generator", "encode_smiles": "generator",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
