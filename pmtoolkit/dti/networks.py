"""Pair networks: a drug graph encoder, a protein encoder, and a head on the pair.

Every distinct drug and protein of a batch is encoded once; the head's first layer is split
into a drug half and a protein half applied to those distinct vectors, so the per-pair work is
a gather, an add and the remaining layers.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pmtoolkit.dti.data import AMINO_ACIDS

#: protein token ids: 0 is padding, amino acids from 1
PROTEIN_VOCAB = {aa: i + 1 for i, aa in enumerate(AMINO_ACIDS)}
STANDARD = "ACDEFGHIKLMNPQRSTVWY"

# byte -> token id (0 for padding) and byte -> standard residue index (-1 otherwise); sequences
# reaching the encoders passed check_sequence, so every byte is an accepted letter
_TOKEN_LUT = np.zeros(128, dtype=np.int64)
_TOKEN_LUT[[ord(aa) for aa in PROTEIN_VOCAB]] = list(PROTEIN_VOCAB.values())
_STANDARD_LUT = np.full(128, -1, dtype=np.int64)
_STANDARD_LUT[[ord(aa) for aa in STANDARD]] = np.arange(len(STANDARD))


def encode_proteins(sequences, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, lengths)``: each sequence cut to ``max_length`` residues as token ids, padded
    with 0 to the longest of them."""
    lengths = np.array([min(len(s), max_length) for s in sequences], dtype=np.int64)
    ids = np.zeros((len(sequences), int(lengths.max()) if len(lengths) else 0), dtype=np.int64)
    for r, s in enumerate(sequences):
        ids[r, :lengths[r]] = _TOKEN_LUT[np.frombuffer(s[:max_length].encode("ascii"),
                                                       dtype=np.uint8)]
    return ids, lengths


KMER_DIM = sum(20 ** k for k in (1, 2, 3))


def kmer_composition(sequences) -> np.ndarray:
    """Frequencies of the 20 + 400 + 8000 standard 1-, 2- and 3-mers of each sequence (k-mers
    with a non-standard letter are skipped), each block summing to 1."""
    out = np.zeros((len(sequences), KMER_DIM), dtype=np.float32)
    for r, s in enumerate(sequences):
        code = _STANDARD_LUT[np.frombuffer(s.encode("ascii"), dtype=np.uint8)]
        offset = 0
        for k in (1, 2, 3):
            if len(code) >= k:
                windows = np.lib.stride_tricks.sliding_window_view(code, k)
                ok = (windows >= 0).all(axis=1)
                idx = (windows[ok] * (20 ** np.arange(k - 1, -1, -1))).sum(axis=1)
                counts = np.bincount(idx, minlength=20 ** k).astype(np.float32)
                if counts.sum() > 0:
                    out[r, offset:offset + 20 ** k] = counts / counts.sum()
            offset += 20 ** k
    return out


class ProteinCNN(nn.Module):
    """DeepDTA's protein branch: embedding, three 1D convolutions with ReLU, global max pool.
    Positions past a sequence's end are zeroed after every layer and excluded from the pool,
    so a protein's vector does not depend on how much padding its batch has."""

    def __init__(self, embedding: int = 64, filters=(32, 64, 96), kernel: int = 8,
                 pool: int = 1):
        super().__init__()
        self.embed = nn.Embedding(len(PROTEIN_VOCAB) + 1, embedding, padding_idx=0)
        chans = [embedding, *filters]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel, padding="same")
                                   for a, b in zip(chans[:-1], chans[1:]))
        self.pool = pool
        self.out_dim = chans[-1]

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids).transpose(1, 2)  # (P, E, L)
        for k, conv in enumerate(self.convs):
            if k and self.pool > 1:
                # max-pool between convolutions: later layers run on 1/pool of the positions
                h = torch.nn.functional.max_pool1d(h, self.pool, ceil_mode=True)
                lengths = torch.div(lengths + self.pool - 1, self.pool, rounding_mode="floor")
            mask = (torch.arange(h.shape[2], device=h.device)[None, :]
                    < lengths[:, None]).unsqueeze(1)  # (P, 1, L)
            h = torch.relu(conv(h)) * mask
        # ReLU outputs are >= 0 and padding is 0, so the max over all positions is the max
        # over the sequence (and pooling windows never mix padding into a residue's value)
        return h.amax(dim=2)


class ProteinKmer(nn.Module):
    """k-mer composition (precomputed) through one feed-forward layer."""

    def __init__(self, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(KMER_DIM, hidden), nn.ReLU())
        self.out_dim = hidden

    def forward(self, kmers: torch.Tensor) -> torch.Tensor:
        return self.net(kmers * 100.0)  # frequencies are ~1e-3 for 3-mers


class DrugGraph(nn.Module):
    """A pmtoolkit graph encoder (``dmpnn`` or ``gine``) with mean pooling over atoms."""

    def __init__(self, encoder: str, hidden: int, depth: int):
        super().__init__()
        from pmtoolkit.chem.encoders import ENCODERS
        from pmtoolkit.chem.featurizer import ATOM_DIM, BOND_DIM

        self.encoder = ENCODERS.get(encoder)(ATOM_DIM, BOND_DIM, hidden, depth, 0.0)
        self.out_dim = self.encoder.out_dim

    def forward(self, g) -> torch.Tensor:
        from pmtoolkit.chem.encoders import scatter_sum

        h = self.encoder(g.x, g.edge_index, g.edge_attr)
        z = scatter_sum(h, g.batch, g.num_graphs)
        counts = torch.bincount(g.batch, minlength=g.num_graphs).clamp(min=1)
        return z / counts.unsqueeze(1).to(z.dtype)


class PairNetwork(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.drug = DrugGraph(config.drug_encoder, config.drug_hidden, config.drug_depth)
        if config.protein_encoder == "cnn":
            self.protein = ProteinCNN(config.protein_embedding, config.protein_filters,
                                      config.protein_kernel, config.protein_pool)
        else:
            self.protein = ProteinKmer()
        sizes = list(config.head)
        first = sizes[0]
        # the head's first layer, split into the part seen by the drug and by the protein
        self.first_drug = nn.Linear(self.drug.out_dim, first)
        self.first_protein = nn.Linear(self.protein.out_dim, first, bias=False)
        # normalising the pair vector lets training start at once: the encoders' outputs
        # are small and of very different scales (drug graph means, k-mer frequencies)
        layers: list[nn.Module] = [nn.LayerNorm(first), nn.ReLU(), nn.Dropout(config.dropout)]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(config.dropout)]
        layers.append(nn.Linear(sizes[-1], 1))
        self.rest = nn.Sequential(*layers)

    def encode_drugs(self, g) -> torch.Tensor:
        return self.first_drug(self.drug(g))

    def encode_proteins(self, *protein_inputs) -> torch.Tensor:
        return self.first_protein(self.protein(*protein_inputs))

    def pairs(self, drug_h: torch.Tensor, protein_h: torch.Tensor, drug_pos: torch.Tensor,
              protein_pos: torch.Tensor) -> torch.Tensor:
        """Outputs for pairs given as positions into the encoded drugs and proteins."""
        z = drug_h.index_select(0, drug_pos) + protein_h.index_select(0, protein_pos)
        return self.rest(z).squeeze(1)
