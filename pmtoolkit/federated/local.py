"""Training on one site's data (a Flower client's ``fit``), and the pooled reference.

Both go through the project's one LightningModule (:func:`pmtoolkit.core.task.task_module`)
and training helper (:func:`pmtoolkit.core.training.fit`) with the domain's own objective,
wrapped by :func:`~pmtoolkit.federated.params.proximal_objective` (the FedProx term), and the
domain's optimizer without its learning-rate schedule (a schedule would restart every round).
"""
from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Callable
from typing import Any

from pmtoolkit.federated.params import proximal_objective
from pmtoolkit.federated.tasks import FederatedTask


def local_optimizer(optimizer):
    """The domain's :class:`~pmtoolkit.core.task.Optimizer` without its learning-rate
    schedule (a schedule would restart every round)."""
    return dataclasses.replace(optimizer, schedule="none")


def _train(task: FederatedTask, model: Any, data: Any, setup: dict[str, Any], *, epochs: int,
           seed: int, mu: float = 0.0, callbacks: list | None = None) -> dict[str, float]:
    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.task import task_module
    from pmtoolkit.core.training import build_trainer, fit, train_config

    seed_everything(seed)
    network = task.network(model)
    network.train()
    objective = proximal_objective(task.objective(model, setup), network, mu=mu)
    module = task_module(network, objective, local_optimizer(task.optimizer()))
    loader = task.loader(model, data, shuffle=True, seed=seed)
    config = train_config(task.config, epochs=epochs, seed=seed, validating=False,
                          checkpoint_every=max(1, epochs))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pmt-fed-") as tmp:
        if callbacks:  # fit() takes no callbacks of ours: the same trainer, built here
            trainer = build_trainer(config, tmp, has_validation=False, callbacks=callbacks)
            trainer.fit(module, loader, weights_only=True)
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        else:
            result = fit(module, loader, None, config=config, workdir=tmp)
            metrics = result.history[-1] if result.history else {}
    network.cpu().eval()
    out = {"seconds": time.perf_counter() - start}
    for key in ("train_loss", "train_proximal"):
        if key in metrics and math.isfinite(float(metrics[key])):
            out[key] = float(metrics[key])
    return out


def train_local(task: FederatedTask, model: Any, data: Any, setup: dict[str, Any], *,
                epochs: int, seed: int, mu: float = 0.0) -> dict[str, float]:
    """``epochs`` epochs of the domain's training step on ``data`` (FedProx when ``mu``
    > 0, anchored at the weights the model holds now); returns the last epoch's loss."""
    return _train(task, model, data, setup, epochs=epochs, seed=seed, mu=mu)


def train_pooled(task: FederatedTask, model: Any, data: Any, setup: dict[str, Any], *,
                 epochs: int, every: int, seed: int,
                 on_checkpoint: Callable[[int, Any], None]) -> dict[str, float]:
    """The centralised reference: one optimizer over all of ``data`` for ``epochs`` epochs;
    ``on_checkpoint(epoch, model)`` after every ``every``-th epoch (to test the model as
    often as the federated run tests its global model)."""
    from lightning.pytorch.callbacks import Callback

    class Checkpoints(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            epoch = trainer.current_epoch + 1
            if epoch % every == 0 or epoch == epochs:
                task.network(model).eval()
                on_checkpoint(epoch, model)
                pl_module.train()

    return _train(task, model, data, setup, epochs=epochs, seed=seed, callbacks=[Checkpoints()])
