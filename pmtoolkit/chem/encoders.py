"""Molecular graph encoders shared by the domains that embed molecules (property prediction,
drug-target pairs): message passing over a :class:`pmtoolkit.chem.featurizer` graph, one
vector per atom; the caller aggregates over atoms.

- ``dmpnn``: directed message passing on bonds (Yang et al. 2019, chemprop's D-MPNN);
- ``gine``: GIN with edge features (Hu et al. 2020) from torch-geometric;
- ``attentivefp``: AttentiveFP (Xiong et al. 2020) from torch-geometric (it produces a
  molecule vector itself: ``graph_level``).

Attribute names are the keys of the saved weights of every model built on them: renaming one
breaks the shipped models.
"""
from __future__ import annotations

import torch
from torch import nn

from pmtoolkit.core.registry import Registry

ENCODERS: Registry = Registry("architecture")


def scatter_sum(src: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of the rows of ``src`` into ``size`` rows by ``index`` (atoms into molecules, bond
    messages into atoms)."""
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
