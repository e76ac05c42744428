"""The Flower server of a federated run: ``python -m pmtoolkit.federated.server SPEC ADDRESS``.

Flower's own gRPC server (``flwr.server.start_server``) with Flower's ``FedAvg`` or
``FedProx`` strategy, subclassed only to measure: the bytes of the serialized weights each
round sends to and receives from the sites, the federated evaluation of each site, and the
global model's loss and metrics on the server's held-out test set (``evaluate_fn``). Each
finished round is appended to ``rounds.jsonl`` (the parent process shows it as progress); the
final global weights go to ``final.npz``.

Flower's telemetry is switched off before Flower is imported: nothing leaves the machine.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"


def weighted_mean(results: list[tuple[int, dict[str, Any]]]) -> dict[str, float]:
    """Example-weighted mean of each numeric metric over the sites that have it (finite)."""
    keys = sorted({k for _, m in results for k, v in m.items()
                   if k != "site" and isinstance(v, (int, float)) and not isinstance(v, bool)})
    out = {}
    for k in keys:
        pairs = [(n, float(m[k])) for n, m in results
                 if k in m and math.isfinite(float(m[k]))]
        total = sum(n for n, _ in pairs)
        if total:
            out[k] = sum(n * v for n, v in pairs) / total
    return out


def payload_bytes(parameters) -> int:
    """Bytes of Flower's serialized weights (each array in NumPy's .npy format)."""
    return int(sum(len(t) for t in parameters.tensors))


def make_strategy(name: str, *, sites: int, fraction_fit: float = 1.0,
                  fraction_evaluate: float = 1.0, proximal_mu: float = 0.0,
                  initial: list | None = None, evaluate_fn=None, on_round=None):
    """Flower's FedAvg or FedProx that waits for all ``sites``, refuses to average a round
    with a failed site, aggregates the sites in a fixed order (site id) so a run repeats
    exactly, and records every round (see the module docstring); ``on_round(record)`` is
    called when a round is complete."""
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.strategy import FedAvg, FedProx

    base = FedProx if name == "fedprox" else FedAvg
    kwargs: dict[str, Any] = {"proximal_mu": proximal_mu} if name == "fedprox" else {}

    class Measured(base):  # type: ignore[misc, valid-type]
        def __init__(self):
            super().__init__(
                fraction_fit=fraction_fit, fraction_evaluate=fraction_evaluate,
                # Flower sizes a sample from the sites connected when the round starts;
                # from all sites here, since every round waits for all of them to be there
                min_fit_clients=max(1, int(sites * fraction_fit)),
                min_evaluate_clients=max(1, int(sites * fraction_evaluate)),
                min_available_clients=sites,
                evaluate_fn=evaluate_fn, accept_failures=False,
                on_fit_config_fn=lambda r: {"server_round": r},
                on_evaluate_config_fn=lambda r: {"server_round": r},
                initial_parameters=None if initial is None else ndarrays_to_parameters(initial),
                fit_metrics_aggregation_fn=weighted_mean,
                evaluate_metrics_aggregation_fn=weighted_mean, **kwargs)
            self.records: dict[int, dict[str, Any]] = {}
            self.latest: list | None = None
            self._start = time.perf_counter()

        def _rec(self, server_round: int) -> dict[str, Any]:
            return self.records.setdefault(server_round, {
                "round": server_round, "bytes_down": 0, "bytes_up": 0, "fit_sites": [],
                "eval_sites": []})

        def configure_fit(self, server_round, parameters, client_manager):
            ins = super().configure_fit(server_round, parameters, client_manager)
            rec = self._rec(server_round)
            rec["bytes_down"] += payload_bytes(parameters) * len(ins)
            rec["clients_fit"] = len(ins)
            return ins

        def aggregate_fit(self, server_round, results, failures):
            if failures:
                first = failures[0]
                why = first if isinstance(first, BaseException) else first[1].status.message
                raise RuntimeError(f"round {server_round}: {len(failures)} site(s) failed to "
                                   f"train: {why!r}")
            results = sorted(results, key=lambda r: int(r[1].metrics.get("site", 0)))
            rec = self._rec(server_round)
            rec["bytes_up"] += sum(payload_bytes(res.parameters) for _, res in results)
            rec["fit_sites"] = [dict(res.metrics, n=res.num_examples) for _, res in results]
            params, metrics = super().aggregate_fit(server_round, results, failures)
            rec["fit"] = metrics
            return params, metrics

        def evaluate(self, server_round, parameters):
            self.latest = parameters_to_ndarrays(parameters)
            res = super().evaluate(server_round, parameters)
            if res is not None:
                loss, metrics = res
                self._rec(server_round)["test"] = {"loss": loss, **metrics}
            if server_round == 0:
                self._finish(0)
            return res

        def configure_evaluate(self, server_round, parameters, client_manager):
            ins = super().configure_evaluate(server_round, parameters, client_manager)
            self._rec(server_round)["bytes_down"] += payload_bytes(parameters) * len(ins)
            if not ins:
                self._finish(server_round)
            return ins

        def aggregate_evaluate(self, server_round, results, failures):
            if failures:
                raise RuntimeError(f"round {server_round}: {len(failures)} site(s) failed to "
                                   "evaluate")
            results = sorted(results, key=lambda r: int(r[1].metrics.get("site", 0)))
            loss, metrics = super().aggregate_evaluate(server_round, results, failures)
            rec = self._rec(server_round)
            rec["sites_valid"] = {"loss": loss, **metrics}
            rec["eval_sites"] = [dict(res.metrics, n=res.num_examples, loss=res.loss)
                                 for _, res in results]
            self._finish(server_round)
            return loss, metrics

        def _finish(self, server_round: int) -> None:
            rec = self._rec(server_round)
            rec["seconds"] = time.perf_counter() - self._start
            if on_round is not None:
                on_round(rec)

    return Measured()


def serve(spec: dict[str, Any], address: str, workdir: Path) -> None:
    """Run the Flower server of ``spec`` (written by :mod:`pmtoolkit.federated.run`) on
    ``address`` until every round is done."""
    import numpy as np
    from flwr.server import ServerConfig, start_server

    from pmtoolkit.federated.params import set_weights
    from pmtoolkit.federated.tasks import make_task

    task = make_task(spec["task"], spec["model"], spec["data"])
    setup = spec["setup"]
    with np.load(workdir / "initial.npz", allow_pickle=False) as z:
        initial = [z[f"arr_{i}"] for i in range(len(z.files))]
    model = task.new_model(setup, spec["seed"])
    test_path = workdir / "server" / task.site_file
    test = task.read(test_path) if test_path.exists() else None

    def evaluate_fn(server_round, arrays, config):
        if test is None:
            return None
        set_weights(task.network(model), arrays)
        return task.evaluate(model, test)

    progress = workdir / "rounds.jsonl"

    def on_round(record):
        from pmtoolkit.core.io import json_safe

        with open(progress, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(json_safe(record)) + "\n")

    strategy = make_strategy(spec["strategy"], sites=spec["sites"],
                             fraction_fit=spec["fraction_fit"],
                             fraction_evaluate=spec["fraction_evaluate"],
                             proximal_mu=spec["proximal_mu"], initial=initial,
                             evaluate_fn=evaluate_fn, on_round=on_round)
    start_server(server_address=address, config=ServerConfig(num_rounds=spec["rounds"]),
                 strategy=strategy)
    if strategy.latest is None:
        raise RuntimeError("the server finished without a global model")
    tmp = workdir / "final.tmp.npz"
    np.savez(tmp, *strategy.latest)
    tmp.replace(workdir / "final.npz")


def exit_with_parent() -> None:
    """End this process when the run that started it is gone (killed without the chance to
    stop its children), instead of waiting for sites or a server that will never come."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _log_to_stderr() -> None:
    """pmtoolkit's log lines on stderr (the run's log file); Flower logs there itself."""
    import logging

    logger = logging.getLogger("pmtoolkit")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m pmtoolkit.federated.server WORKDIR ADDRESS", file=sys.stderr)
        return 2
    exit_with_parent()
    _log_to_stderr()
    workdir = Path(argv[0])
    spec = json.loads((workdir / "spec.json").read_text(encoding="utf-8"))
    serve(spec, argv[1], workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
