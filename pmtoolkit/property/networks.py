"""Graph neural networks for molecular properties: message passing, then aggregation, then
a feed-forward predictor — each a block, as in chemprop.

- ``dmpnn``: directed message passing on bonds (Yang et al. 2019, chemprop's D-MPNN);
- ``gine``: GIN with edge features (Hu et al. 2020) from torch-geometric;
- ``attentivefp``: AttentiveFP (Xiong et al. 2020) from torch-geometric.
"""
from __future__ import annotations

import torch
from torch import nn

from pmtoolkit.core.registry import Registry

ENCODERS: Registry = Registry("architecture")
AGGREGATIONS = ("mean", "sum", "norm")


def scatter_sum(src: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    out = src.new_zeros((size, *src.shape[1:]))
    return out.index_add_(0, index, src)


@ENCODERS.register("dmpnn", help="directed message passing on bonds (chemprop's D-MPNN)")
class DMPNNEncoder(nn.Module):
    """Bond-centred message passing: each directed bond u->v carries a hidden state updated
    from the bonds entering u, except the one coming back from v."""

    def __init__(self, atom_dim: int, bond_dim: int, hidden: int = 300, depth: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        self.depth = depth
        # W_i acts on [atom features of the source, bond features]; split in two so the atom
        # half runs once per atom instead of once per directed bond
        self.W_i_atom = nn.Linear(atom_dim, hidden, bias=False)
        self.W_i_bond = nn.Linear(bond_dim, hidden, bias=False)
        self.W_h = nn.Linear(hidden, hidden, bias=False)
        self.W_o = nn.Linear(atom_dim + hidden, hidden)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.out_dim = hidden

    def forward(self, x, edge_index, edge_attr) -> torch.Tensor:
        src, dst = edge_index
        n = x.shape[0]
        h0 = self.W_i_atom(x).index_select(0, src) + self.W_i_bond(edge_attr)
        h = self.act(h0)
        for _ in range(self.depth - 1):
            incoming = scatter_sum(h, dst, n)  # sum of the bonds entering each atom
            m = incoming.index_select(0, src) - _reverse(h)
            # h0 + W_h(m) in one BLAS call (beta=1): saves a pass over the edge states
            h = self.dropout(self.act(torch.addmm(h0, m, self.W_h.weight.t())))
        atom_msg = scatter_sum(h, dst, n)
        return self.dropout(self.act(self.W_o(torch.cat([x, atom_msg], dim=1))))


def _reverse(h: torch.Tensor) -> torch.Tensor:
    """The state of each edge's reverse. Edges come in pairs (2k: u->v, 2k+1: v->u), so this
    is a swap within pairs: a reshape, much cheaper than a gather (whose backward scatters)."""
    return h.view(-1, 2, h.shape[1]).flip(1).reshape(-1, h.shape[1])


@ENCODERS.register("gine", help="GIN with edge features (torch-geometric GINEConv)")
class GINEEncoder(nn.Module):
    def __init__(self, atom_dim: int, bond_dim: int, hidden: int = 300, depth: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        from torch_geometric.nn import GINEConv

        self.embed = nn.Linear(atom_dim, hidden)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(depth):
            mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.convs.append(GINEConv(mlp, train_eps=True, edge_dim=bond_dim))
            self.norms.append(nn.BatchNorm1d(hidden))
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.out_dim = hidden

    def forward(self, x, edge_index, edge_attr) -> torch.Tensor:
        h = self.embed(x)
        for conv, norm in zip(self.convs, self.norms):
            h = h + self.dropout(self.act(norm(conv(h, edge_index, edge_attr))))
        return h


@ENCODERS.register("attentivefp", help="AttentiveFP graph attention (torch-geometric)")
class AttentiveFPEncoder(nn.Module):
    """torch-geometric's AttentiveFP produces a molecule vector itself (attention readout),
    so its aggregation step is the identity."""

    graph_level = True

    def __init__(self, atom_dim: int, bond_dim: int, hidden: int = 300, depth: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        from torch_geometric.nn.models import AttentiveFP

        self.net = AttentiveFP(atom_dim, hidden, hidden, bond_dim, num_layers=depth,
                               num_timesteps=2, dropout=dropout)
        self.out_dim = hidden

    def forward(self, x, edge_index, edge_attr, batch, num_graphs) -> torch.Tensor:
        return self.net(x, edge_index, edge_attr, batch)


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
