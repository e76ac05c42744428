"""Graph neural networks for molecular properties: message passing, then aggregation, then
a feed-forward predictor — each a block, as in chemprop. The message-passing encoders
(``dmpnn``, ``gine``, ``attentivefp``) live in :mod:`pmtoolkit.chem.encoders`, shared with
drug-target models.
"""
from __future__ import annotations

import torch
from torch import nn

from pmtoolkit.chem.encoders import ENCODERS, scatter_sum

__all__ = ["AGGREGATIONS", "ENCODERS", "PropertyNetwork"]

AGGREGATIONS = ("mean", "sum", "norm")


class PropertyNetwork(nn.Module):
    """Encoder -> aggregation over atoms -> [extra molecule features] -> feed-forward head."""

    def __init__(self, *, architecture: str, atom_dim: int, bond_dim: int, n_tasks: int,
                 hidden: int, depth: int, dropout: float, aggregation: str, ffn_hidden: int,
                 ffn_layers: int, n_extra: int = 0):
        super().__init__()
        self.encoder = ENCODERS.get(architecture)(atom_dim, bond_dim, hidden, depth, dropout)
        self.graph_level = getattr(self.encoder, "graph_level", False)
        self.aggregation = aggregation
        layers: list[nn.Module] = []
        width = self.encoder.out_dim + n_extra
        for _ in range(ffn_layers):
            layers += [nn.Dropout(dropout), nn.Linear(width, ffn_hidden), nn.ReLU()]
            width = ffn_hidden
        layers += [nn.Dropout(dropout), nn.Linear(width, n_tasks)]
        self.head = nn.Sequential(*layers)

    def embed(self, g, extra: torch.Tensor | None = None) -> torch.Tensor:
        """The molecule vectors fed to the head (useful as learned fingerprints)."""
        if self.graph_level:
            z = self.encoder(g.x, g.edge_index, g.edge_attr, g.batch, g.num_graphs)
        else:
            h = self.encoder(g.x, g.edge_index, g.edge_attr)
            z = scatter_sum(h, g.batch, g.num_graphs)
            if self.aggregation == "mean":
                counts = torch.bincount(g.batch, minlength=g.num_graphs).clamp(min=1)
                z = z / counts.unsqueeze(1).to(z.dtype)
            elif self.aggregation == "norm":
                z = z / 100.0  # chemprop's "norm": a sum scaled to a typical molecule size
        if extra is not None:
            z = torch.cat([z, extra], dim=1)
        return z

    def forward(self, g, extra: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(g, extra))
