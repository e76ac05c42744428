"""Drug response: (sample features, drug structure) -> response, under the one model
contract, with the field's baselines, splits and metrics, and a simulator of panels with
planted signal.

The stages, one module each: :mod:`~pmtoolkit.response.data` reads a panel (responses,
drugs, one or several sample feature tables; the ``gdsc`` layout among :data:`LAYOUTS`) into
pairs with rejects; :mod:`~pmtoolkit.response.splits` splits
them (``random``, ``cold-drug``, ``cold-sample``, ``cold-pair``);
:mod:`~pmtoolkit.response.features` turns samples and drugs into model inputs;
:mod:`~pmtoolkit.response.model` holds the two-tower :class:`ResponseModel` (``fit``,
``load``); :mod:`~pmtoolkit.response.baselines` the baselines;
:mod:`~pmtoolkit.response.metrics` the pooled and within-drug metrics;
:mod:`~pmtoolkit.response.run` the file workflows (``train_file``, ``predict_file``,
``evaluate_file``); :mod:`~pmtoolkit.response.simulate` the panel simulator. Names load
lazily: ``import pmtoolkit.response`` imports neither torch nor RDKit."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "ResponseConfig": "config", "PanelConfig": "config", "SPLITS": "config",
    "BASELINE_NAMES": "config", "DEFAULT_BASELINES": "config", "MECHANISMS": "config",
    "Columns": "data", "SampleFeatures": "data", "Drugs": "data", "ResponseData": "data",
    "read_drugs": "data", "read_features": "data", "read_feature_tables": "data",
    "load_panel": "data", "LAYOUTS": "data", "layout_columns": "data",
    "apply_rejects": "data", "pairs_for": "data",
    "response_split": "splits",
    "FeaturePrep": "features", "drug_fingerprints": "features", "log_cpm": "features",
    "ResponseModel": "model", "fit": "model", "load": "model", "check_training": "model",
    "check_config": "model",
    "response_metrics": "metrics", "per_drug_pearson": "metrics", "evaluate": "metrics",
    "MIN_PER_ENTITY": "metrics",
    "BASELINES": "baselines", "fit_baseline": "baselines",
    "train_file": "run", "predict_file": "run", "evaluate_file": "run",
    "simulate_panel": "simulate", "noise_ceiling": "simulate", "recovery": "simulate",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
