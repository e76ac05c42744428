"""The Task contract: what a domain declares to train a network, and the one LightningModule
that trains every pmtoolkit model.

A domain writes an :class:`Objective` (how a batch becomes outputs and targets, the loss, the
validation metrics) and chooses an :class:`Optimizer`; :func:`train_network` does the rest through
:func:`pmtoolkit.core.training.fit`: seeding, early stopping on a validation metric, the best
epoch's weights restored, a resume checkpoint in the work folder, the device from ``--device``.
Nothing else in pmtoolkit subclasses ``LightningModule``.

An objective is a ``torch.nn.Module`` so that what it owns (class weights, a positive-class
weight) moves to the training device with the network; it has no trainable weights of its own.
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from pmtoolkit.core.training import FitResult, TrainConfig, fit


class Objective(nn.Module):
    """How a network learns from batches; subclass it and write :meth:`outputs` and :meth:`loss`.

    Validation logs ``val_loss`` as the batch-size-weighted mean of the batches' losses
    (``validation_loss = "batch"``), as the loss of the whole epoch's outputs at once
    (``"epoch"``: for losses that are not means over samples, such as class-weighted
    cross-entropy), or not at all (``None``). With ``keep_outputs``, every validation batch's
    outputs and targets are kept (on the CPU) and :meth:`metrics` turns the epoch's into named
    values, logged as they are returned (``val_auc``, ...) for ``TrainConfig.monitor``.
    """

    validation_loss: Literal["batch", "epoch"] | None = "batch"
    keep_outputs: bool = False

    def outputs(self, net: nn.Module, batch: Any) -> tuple[Any, Any]:
        """The network's outputs for ``batch`` and the targets they are scored against."""
        raise NotImplementedError

    def training_outputs(self, net: nn.Module, batch: Any, step: int) -> tuple[Any, Any]:
        """:meth:`outputs` in training, where augmentation belongs (``step``: the global step)."""
        return self.outputs(net, batch)

    def validation_outputs(self, net: nn.Module, batch: Any) -> tuple[Any, Any]:
        """:meth:`outputs` in validation (a model may validate otherwise than it trains)."""
        return self.outputs(net, batch)

    def loss(self, out: Any, target: Any, step: int | None = None) -> torch.Tensor:
        """The scalar loss of ``out`` against ``target`` (``step``: the global step in
        training, ``None`` in validation)."""
        raise NotImplementedError

    def training_logs(self) -> dict[str, torch.Tensor]:
        """Extra values to log after each training step's :meth:`loss` (e.g. a penalty term)."""
        return {}

    def validation_logs(self) -> dict[str, torch.Tensor]:
        """Extra values to log after each validation batch's :meth:`loss`, averaged over the
        epoch like ``val_loss`` (e.g. one term of a composite loss)."""
        return {}

    def size(self, target: Any) -> int:
        """How many samples ``target`` holds (the weight of a batch's loss in the epoch mean)."""
        return len(target[0] if isinstance(target, (tuple, list)) else target)

    def metrics(self, out: Any, target: Any) -> dict[str, float]:
        """Validation metrics of one epoch's outputs and targets (concatenated over batches,
        as numpy arrays or tuples of them)."""
        return {}


@dataclass(frozen=True)
class Optimizer:
    """The optimiser and learning-rate schedule of a training run.

    ``schedule``: ``none``; ``cosine`` (per step, down to ``floor`` times the rate over
    ``total_steps``, default the whole run); ``warmup-exp`` (chemprop's: from ``floor`` times
    the rate up to it over ``warmup_epochs``, then exponentially down to ``floor`` times it)."""

    name: Literal["adam", "adamw"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    eps: float = 1e-8
    schedule: Literal["none", "cosine", "warmup-exp"] = "none"
    floor: float = 0.1
    warmup_epochs: float = 0.0
    total_steps: int | None = None

    def build(self, parameters: Iterable[nn.Parameter], total_steps: int, epochs: int):
        """Lightning's ``configure_optimizers`` answer (``total_steps``, ``epochs``: the run's)."""
        cls = torch.optim.Adam if self.name == "adam" else torch.optim.AdamW
        opt = cls(parameters, lr=self.lr, weight_decay=self.weight_decay, eps=self.eps)
        if self.schedule == "none":
            return opt
        total = max(1, int(self.total_steps if self.total_steps is not None else total_steps))
        floor = self.floor
        if self.schedule == "cosine":
            def factor(step: int) -> float:
                frac = min(1.0, step / total)
                return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))
        else:
            per_epoch = max(1, total // max(1, epochs))
            warm = max(1, int(self.warmup_epochs * per_epoch))

            def factor(step: int) -> float:
                if step < warm:
                    return floor + (1.0 - floor) * step / warm
                frac = min(1.0, (step - warm) / max(1, total - warm))
                return math.exp(math.log(floor) * frac)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _cat(parts: list) -> Any:
    """Concatenate a list of batch outputs: tensors, or tuples of tensors element-wise."""
    first = parts[0]
    if isinstance(first, (tuple, list)):
        return tuple(_cat([p[i] for p in parts]) for i in range(len(first)))
    return torch.cat(parts)


def _to(value: Any, device) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_to(v, device) for v in value)
    return value.to(device)


def _numpy(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_numpy(v) for v in value)
    return value.numpy()


def _detach(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_detach(v) for v in value)
    value = value.detach()
    if value.dtype in (torch.float16, torch.bfloat16):  # mixed precision: metrics in float32
        value = value.float()
    return value.cpu()


def task_module(net: nn.Module, objective: Objective, optimizer: Optimizer):
    """The LightningModule that trains ``net`` for ``objective`` with ``optimizer``: the only
    one in pmtoolkit. Its state is ``net.*`` plus the objective's buffers."""
    import lightning as L

    class TaskModule(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net
            self.objective = objective
            self._kept: list[tuple[Any, Any]] = []

        def training_step(self, batch, _):
            out, target = objective.training_outputs(self.net, batch, self.global_step)
            loss = objective.loss(out, target, self.global_step)
            # sync_dist: under DDP the epoch's figures are the means over every process
            self.log("train_loss", loss, on_step=False, on_epoch=True,
                     batch_size=objective.size(target), sync_dist=True)
            for name, value in objective.training_logs().items():
                self.log(name, value, on_step=False, on_epoch=True, batch_size=1,
                         sync_dist=True)
            return loss

        def validation_step(self, batch, _):
            out, target = objective.validation_outputs(self.net, batch)
            if objective.validation_loss == "batch":
                n = objective.size(target)
                self.log("val_loss", objective.loss(out, target), on_step=False, on_epoch=True,
                         batch_size=n, sync_dist=True)
                for name, value in objective.validation_logs().items():
                    self.log(name, value, on_step=False, on_epoch=True, batch_size=n,
                             sync_dist=True)
            if objective.keep_outputs or objective.validation_loss == "epoch":
                self._kept.append((_detach(out), _detach(target)))

        def on_validation_epoch_end(self):
            kept, self._kept = self._kept, []
            if (objective.keep_outputs or objective.validation_loss == "epoch") \
                    and self.trainer.world_size > 1:
                # DDP: every process's share of the validation set (each process takes part)
                import torch.distributed as dist

                shares: list = [None] * self.trainer.world_size
                dist.all_gather_object(shares, kept)
                kept = [pair for share in shares for pair in share]
            if not kept:
                return
            out = _cat([o for o, _ in kept])
            target = _cat([t for _, t in kept])
            if objective.validation_loss == "epoch":
                loss = objective.loss(_to(out, self.device), _to(target, self.device))
                self.log("val_loss", float(loss))
            if objective.keep_outputs:
                for name, value in objective.metrics(_numpy(out), _numpy(target)).items():
                    self.log(name, float(value))

        def configure_optimizers(self):
            return optimizer.build(self.parameters(), self.trainer.estimated_stepping_batches,
                                   self.trainer.max_epochs or 1)

    return TaskModule()


def train_network(net: nn.Module, objective: Objective, train_loader, val_loader=None, *,
          optimizer: Optimizer, config: TrainConfig | None = None,
          workdir: str | Path | None = None,
          checkpoint_dir: str | Path | None = None) -> FitResult:
    """Train ``net`` in place for ``objective``; afterwards it holds the weights of the best
    validation epoch (the last epoch without validation) and is in eval mode on the CPU.

    ``workdir`` holds the run's logs and ``history.csv`` (a temporary folder if not given);
    ``checkpoint_dir`` (default ``workdir/checkpoints``) the weights-only resume checkpoint
    that ``config.resume`` continues from: put it inside the output's work folder
    (:func:`pmtoolkit.core.io.work_dir`) so an interrupt does not delete it."""
    module = task_module(net, objective, optimizer)
    config = config or TrainConfig()
    if workdir is None:
        if config.resume and checkpoint_dir is None:
            raise ValueError("resume needs a checkpoint folder")
        with tempfile.TemporaryDirectory(prefix="pmt-train-") as tmp:
            result = fit(module, train_loader, val_loader, config=config, workdir=tmp,
                         checkpoint_dir=checkpoint_dir)
    else:
        result = fit(module, train_loader, val_loader, config=config, workdir=workdir,
                     checkpoint_dir=checkpoint_dir)
    net.cpu().eval()
    objective.cpu()
    return result


def masked_mean(per_sample: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``per_sample`` over the entries where ``mask`` is true (0 where none is)."""
    return (per_sample * mask).sum() / mask.sum().clamp(min=1)


def finite(value: float, default: float) -> float:
    """``value``, or ``default`` where it is NaN or infinite (a validation metric undefined on
    one epoch's data, e.g. an AUC with one class, must still be a number to monitor)."""
    return value if np.isfinite(value) else default
