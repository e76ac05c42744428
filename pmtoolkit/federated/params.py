"""A network's weights as Flower exchanges them, and the FedProx term.

Weights travel as a list of NumPy arrays in ``state_dict`` order (parameters and buffers, such
as batch-norm statistics), so a round trip is exact and the server never needs the network's
code. FedProx (Li et al. 2020) adds ``mu / 2 * ||w - w_global||^2`` over the trainable
parameters to each site's loss, which keeps a site from drifting far from the global model on
its skewed data; :func:`federated_module` adds it to any domain's Lightning module.
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


def federated_module(module: Any, network: torch.nn.Module, *, mu: float = 0.0) -> Any:
    """``module`` (a domain's LightningModule that trains ``network``) turned into a site's
    local trainer: the same ``training_step`` (the domain's loss), plus ``mu / 2 * ||w -
    w_global||^2`` when ``mu > 0`` (w_global: the weights ``network`` holds now); the
    domain's optimizer without its learning-rate schedule (a schedule would restart every
    round). Changes the instance's class in place and returns it."""
    base = type(module)
    anchor = anchor_of(network) if mu > 0 else {}

    class FederatedModule(base):  # type: ignore[misc, valid-type]
        def on_train_start(self):
            for k in anchor:  # once on the training device, not in every step
                anchor[k] = anchor[k].to(self.device)
            parent = getattr(base, "on_train_start", None)
            if parent is not None:
                parent(self)

        def training_step(self, batch, batch_idx):
            out = base.training_step(self, batch, batch_idx)
            if mu <= 0:
                return out
            prox = 0.5 * mu * proximal_term(network, anchor)
            self.log("train_proximal", prox, on_step=False, on_epoch=True, batch_size=1)
            if isinstance(out, dict):
                return {**out, "loss": out["loss"] + prox}
            return out + prox

        def configure_optimizers(self):
            opt = base.configure_optimizers(self)
            if isinstance(opt, dict):
                return opt["optimizer"]
            if isinstance(opt, (tuple, list)) and len(opt) == 2 and isinstance(opt[0], list):
                return opt[0]  # ([optimizers], [schedulers])
            return opt

    FederatedModule.__name__ = FederatedModule.__qualname__ = f"Federated{base.__name__}"
    module.__class__ = FederatedModule
    return module
