"""De novo design: a SMILES tokenizer, recurrent SMILES generators (sampling, training,
transfer learning), and the pieces of goal-directed optimisation.

``load("prior").sample(1000)`` samples the shipped generator (or a saved file). Goal-directed
optimisation itself is :func:`pmtoolkit.design.optimize.optimize` (not re-exported: the name
is its module's)."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "Vocabulary": "tokenizer", "tokenize": "tokenizer", "TokenError": "tokenizer",
    "GeneratorConfig": "config", "SmilesGenerator": "generator", "Samples": "generator",
    "fit": "generator", "finetune": "generator", "encode_smiles": "generator",
    "load": "run", "sample_file": "run", "train_file": "run", "finetune_file": "run",
    "optimize_file": "run", "evaluate_file": "run", "sample_summary": "run",
    "OptimizeRunConfig": "optimize", "load_run_file": "optimize",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
