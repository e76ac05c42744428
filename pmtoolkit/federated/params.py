"""A network's weights as Flower exchanges them, and the FedProx term.

Weights travel as a list of NumPy arrays in ``state_dict`` order (parameters and buffers, such
as batch-norm statistics), so a round trip is exact and the server never needs the network's
code. FedProx (Li et al. 2020) adds ``mu / 2 * ||w - w_global||^2`` over the trainable
parameters to each site's loss, which keeps a site from drifting far from the global model on
its skewed data; :func:`proximal_objective` adds it to any domain's training objective.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError

if TYPE_CHECKING:
    import torch


def get_weights(network: torch.nn.Module) -> list[np.ndarray]:
    """The network's state as arrays (copies), in ``state_dict`` order."""
    return [v.detach().cpu().numpy().copy() for v in network.state_dict().values()]


def set_weights(network: torch.nn.Module, arrays: list[np.ndarray]) -> None:
    """Load ``arrays`` (from :func:`get_weights` or an aggregate of them) into ``network``;
    each array takes its tensor's dtype (an averaged integer counter is rounded down)."""
    import torch

    state = network.state_dict()
    if len(arrays) != len(state):
        raise BadInputError(f"{len(arrays)} weight arrays for a network with {len(state)} "
                            "tensors")
    new = {}
    for (name, old), arr in zip(state.items(), arrays):
        arr = np.asarray(arr)
        if tuple(arr.shape) != tuple(old.shape):
            raise BadInputError(f"weights of {name!r} have shape {tuple(arr.shape)}, the "
                                f"network expects {tuple(old.shape)}")
        new[name] = torch.from_numpy(np.ascontiguousarray(arr)).to(dtype=old.dtype,
                                                                     device=old.device)
    network.load_state_dict(new, strict=True)


def anchor_of(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the trainable parameters: the global weights FedProx pulls to."""
    return {k: p.detach().clone() for k, p in network.named_parameters() if p.requires_grad}


def proximal_term(network: torch.nn.Module, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """``||w - w_anchor||^2`` summed over the trainable parameters (differentiable in w)."""
    total = None
    for name, p in network.named_parameters():
        if name in anchor:
            d = ((p - anchor[name].to(p.device)) ** 2).sum()
            total = d if total is None else total + d
    if total is None:
        import torch

        return torch.zeros(())
    return total


def proximal_objective(objective: Any, network: torch.nn.Module, *, mu: float = 0.0) -> Any:
    """A site's training objective: the domain's ``objective`` (a
    :class:`~pmtoolkit.core.task.Objective`) plus ``mu / 2 * ||w - w_global||^2`` in training
    when ``mu > 0`` (w_global: the weights ``network`` holds now, kept as buffers so they move
    to the training device once), logged as ``train_proximal``."""
    from pmtoolkit.core.task import Objective

    names = list(anchor_of(network)) if mu > 0 else []

    class ProximalObjective(Objective):
        validation_loss = objective.validation_loss
        keep_outputs = objective.keep_outputs

        def __init__(self):
            super().__init__()
            self.base = objective
            self.names = names
            for i, (name, value) in enumerate(anchor_of(network).items() if mu > 0 else ()):
                self.register_buffer(f"anchor{i}", value, persistent=False)
            self._prox = None

        def anchor(self) -> dict[str, torch.Tensor]:
            return {n: getattr(self, f"anchor{i}") for i, n in enumerate(self.names)}

        def outputs(self, net, batch):
            return self.base.outputs(net, batch)

        def training_outputs(self, net, batch, step):
            return self.base.training_outputs(net, batch, step)

        def validation_outputs(self, net, batch):
            return self.base.validation_outputs(net, batch)

        def loss(self, out, target, step=None):
            loss = self.base.loss(out, target, step)
            if step is None or mu <= 0:
                return loss
            self._prox = 0.5 * mu * proximal_term(network, self.anchor())
            return loss + self._prox

        def training_logs(self):
            logs = dict(self.base.training_logs())
            if self._prox is not None:
                logs["train_proximal"] = self._prox
            return logs

        def size(self, target):
            return self.base.size(target)

        def metrics(self, out, target):
            return self.base.metrics(out, target)

    return ProximalObjective()
