"""Drug–target interaction: pair data (DAVIS, KIBA, tables of pairs), protein encoders, pair
models in the DeepDTA and GraphDTA families, cold splits and virtual screening.

``load("davis")`` is the shipped pair model (or a saved file)."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "PairData": "data", "Benchmark": "data", "load_benchmark": "data", "read_pairs": "data",
    "read_fasta": "data", "check_sequence": "data",
    "DTIConfig": "config", "DTIModel": "model", "fit": "model", "evaluate": "model",
    "pair_split": "splits", "setting1_split": "splits",
    "load": "run", "train_file": "run", "predict_file": "run", "evaluate_file": "run",
    "screen_file": "run",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
