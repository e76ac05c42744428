"""Multimodal patient models over the domains' encoders, and a simulator of linked cohorts
with planted signal. Names load lazily."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "FusionConfig": "config", "FusionModel": "model", "fit_fusion": "model",
    "CohortConfig": "simulate", "simulate_cohort": "simulate",
    "read_embeddings": "data", "read_outcomes": "data", "load": "run", "train_file": "run",
    "predict_file": "run", "FusionTask": "run",
    "experiment": "run",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
