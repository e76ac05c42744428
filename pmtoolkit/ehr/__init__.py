"""Electronic health records: one event table from a MIMIC-III, MIMIC-IV, eICU or OMOP export,
Synthea or plain CSV/Parquet, prediction tasks built without look-ahead (PyHealth's admission
tasks among them), patient-level splits, and recurrent / attention risk models.

``load("synthea-mortality")`` is the shipped mortality model (or a saved file); its
``predict(samples)`` takes the samples of a dataset (``load_dataset(path).samples``)."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "TaskConfig": "config", "RiskModelConfig": "config",
    "RiskModel": "models", "fit_risk_model": "models",
    "read_events": "run", "build": "run", "load_dataset": "run", "read_dataset": "run",
    "load": "run", "train_file": "run", "predict_file": "run", "evaluate_file": "run",
    "explain": "run",
    "read_mimic3": "importers", "read_mimic4": "importers", "read_eicu": "importers",
    "read_omop": "importers", "detect_layout": "importers",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
