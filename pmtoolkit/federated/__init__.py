"""Federated training with Flower: any pmtoolkit model trained across simulated sites with
FedAvg or FedProx, a real Flower server and one Flower client process per site on loopback."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "FederatedConfig": "config", "FederatedRunConfig": "config", "load_run_config": "config",
    "FederatedTask": "tasks", "TASKS": "tasks", "make_task": "tasks",
    "plan": "split", "Plan": "split", "prepare": "run", "preview": "run",
    "get_weights": "params", "set_weights": "params", "proximal_term": "params",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
