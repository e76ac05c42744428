"""A site of a federated run: ``python -m pmtoolkit.federated.client WORKDIR SITE ADDRESS``.

The site reads only its own folder (its share of the data, in the domain's file format),
builds the network every site builds (from the shared set-up), and connects to the Flower
server as a Flower ``NumPyClient``: ``fit`` trains the global weights on the site's data with
the domain's loss (plus the FedProx term when the server sends ``proximal_mu``) and returns
them; ``evaluate`` scores the global weights on the site's validation share.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"


def site_client(task, model, setup: dict[str, Any], train, valid, *, site: int, seed: int,
                local_epochs: int):
    """A Flower ``NumPyClient`` for one site."""
    from flwr.client import NumPyClient

    from pmtoolkit.federated.local import train_local
    from pmtoolkit.federated.params import get_weights, set_weights
    from pmtoolkit.federated.tasks import site_seed

    network = task.network(model)

    class SiteClient(NumPyClient):
        def get_parameters(self, config):
            return get_weights(network)

        def fit(self, parameters, config):
            set_weights(network, parameters)
            server_round = int(config.get("server_round", 0))
            info = train_local(task, model, train, setup, epochs=local_epochs,
                               seed=site_seed(seed, site, server_round),
                               mu=float(config.get("proximal_mu", 0.0)))
            return get_weights(network), task.size(train), {"site": site, **info}

        def evaluate(self, parameters, config):
            set_weights(network, parameters)
            data = valid if valid is not None and task.size(valid) else train
            loss, metrics = task.evaluate(model, data)
            return float(loss), task.size(data), {"site": site, **metrics}

    return SiteClient()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m pmtoolkit.federated.client WORKDIR SITE ADDRESS",
              file=sys.stderr)
        return 2
    from pmtoolkit.federated.server import _log_to_stderr, exit_with_parent

    exit_with_parent()
    _log_to_stderr()
    workdir, site, address = Path(argv[0]), int(argv[1]), argv[2]
    spec = json.loads((workdir / "spec.json").read_text(encoding="utf-8"))

    from flwr.client import start_client

    from pmtoolkit.federated.tasks import make_task

    task = make_task(spec["task"], spec["model"], spec["data"])
    folder = workdir / f"site{site}"
    train = task.read(folder / "train" / task.site_file)
    valid_file = folder / "valid" / task.site_file
    valid = task.read(valid_file) if valid_file.exists() else None
    model = task.new_model(spec["setup"], spec["seed"])
    client = site_client(task, model, spec["setup"], train, valid, site=site,
                         seed=spec["seed"], local_epochs=spec["local_epochs"])
    # a server that is gone for good ends the site (after the run's own stall timeout)
    start_client(server_address=address, client=client.to_client(), insecure=True,
                 max_wait_time=float(spec["federated"]["timeout"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
