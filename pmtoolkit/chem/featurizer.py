"""Molecular graphs for GNNs: atoms as nodes, bonds as pairs of directed edges.

Features are at least as rich as chemprop v2's: atomic number, degree, formal charge,
chirality, hydrogen count, hybridisation, aromaticity, mass (chemprop's set), plus ring
membership and the sizes (3-8) of the rings an atom is in. Bonds: type, conjugation, ring,
stereo.

Fast by construction: RDKit is asked for each atom's properties once, as small integers
("codes", a few bytes per atom); one-hot expansion happens for a whole batch at a time in NumPy.
Codes are what is cached, keyed by SMILES, so a molecule seen in an earlier epoch, ensemble
member or command is never featurised again.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pmtoolkit.chem.molecules import MAX_ATOMS

FEATURIZER_VERSION = "pmt-graph-1"

# ---- vocabularies (the last slot of every one-hot block is "other") -------------------------
ATOMIC_NUMS = tuple(range(1, 37)) + (53,)
DEGREES = (0, 1, 2, 3, 4, 5)
CHARGES = (-2, -1, 0, 1, 2)
CHIRAL_TAGS = (0, 1, 2, 3)  # unspecified, CW, CCW, other
NUM_HS = (0, 1, 2, 3, 4)
HYBRIDIZATIONS = (1, 2, 3, 5, 4, 6, 7)  # S, SP, SP2, SP2D, SP3, SP3D, SP3D2 (RDKit enum values)
RING_SIZES = (3, 4, 5, 6, 7, 8)
BOND_TYPES = (1, 2, 3, 12)  # single, double, triple, aromatic (RDKit enum values)
BOND_STEREO = (0, 1, 2, 3, 4, 5)  # none, any, Z, E, cis, trans

# atom code columns
_Z, _DEG, _CHG, _CHI, _HS, _HYB, _AROM, _RINGBITS = range(8)
_ATOM_BLOCKS = ((_Z, ATOMIC_NUMS), (_DEG, DEGREES), (_CHG, CHARGES), (_CHI, CHIRAL_TAGS),
                (_HS, NUM_HS), (_HYB, HYBRIDIZATIONS))
_BOND_BLOCKS = ((0, BOND_TYPES), (3, BOND_STEREO))


def _lut(values: Sequence[int], shift: int, size: int) -> np.ndarray:
    """Lookup table from (raw value + shift) to slot; unknown values map to the last slot."""
    table = np.full(size, len(values), dtype=np.int64)
    for slot, v in enumerate(values):
        table[v + shift] = slot
    return table


_SHIFT = 16  # formal charges can be negative
_LUT_SIZE = 256
_ATOM_LUTS = [(col, _lut(vals, _SHIFT, _LUT_SIZE), len(vals) + 1) for col, vals in _ATOM_BLOCKS]
_BOND_LUTS = [(col, _lut(vals, _SHIFT, _LUT_SIZE), len(vals) + 1) for col, vals in _BOND_BLOCKS]

ATOM_DIM = sum(n for _, _, n in _ATOM_LUTS) + 1 + 1 + len(RING_SIZES) + 1  # +arom, ring, sizes, mass
BOND_DIM = sum(n for _, _, n in _BOND_LUTS) + 2  # + conjugated, in ring


@dataclass
class GraphCodes:
    """One molecule as integer codes: ``atoms`` (n_atoms, 8) int16, ``mass`` (n_atoms,),
    ``bonds`` (n_bonds, 4) int16 [type, conjugated, in ring, stereo], ``pairs`` (n_bonds, 2)."""

    atoms: np.ndarray
    mass: np.ndarray
    bonds: np.ndarray
    pairs: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.atoms.shape[0])

    @property
    def n_bonds(self) -> int:
        return int(self.bonds.shape[0])


def _accessors():
    from rdkit import Chem

    a, b = Chem.Atom, Chem.Bond
    return ((a.GetAtomicNum, a.GetTotalDegree, a.GetFormalCharge, a.GetChiralTag,
             a.GetTotalNumHs, a.GetHybridization, a.GetIsAromatic), a.GetMass,
            (b.GetBeginAtomIdx, b.GetEndAtomIdx, b.GetBondType, b.GetIsConjugated, b.IsInRing,
             b.GetStereo))


_ACCESSORS = None


def mol_codes(mol: Any) -> GraphCodes:
    """The integer codes of one RDKit molecule.

    Each property is read for all atoms with ``map`` over RDKit's unbound accessors: the
    Python-to-C++ call is the cost here, and this form pays nothing else per atom.
    """
    global _ACCESSORS
    if _ACCESSORS is None:
        _ACCESSORS = _accessors()
    atom_fns, mass_fn, bond_fns = _ACCESSORS
    atoms_list = list(mol.GetAtoms())
    atoms = np.zeros((len(atoms_list), 8), dtype=np.int16)
    atoms[:, :7] = np.array([list(map(f, atoms_list)) for f in atom_fns],
                            dtype=np.int16).reshape(7, -1).T
    for ring in mol.GetRingInfo().AtomRings():
        size = len(ring)
        # bit 0: in any ring; bits 1..6: in a ring of size 3..8
        atoms[list(ring), _RINGBITS] |= 1 | ((1 << (size - 2)) if 3 <= size <= 8 else 0)
    bonds_list = list(mol.GetBonds())
    b = np.array([list(map(f, bonds_list)) for f in bond_fns], dtype=np.int64).reshape(6, -1).T
    return GraphCodes(atoms=atoms, mass=np.array(list(map(mass_fn, atoms_list)), np.float32),
                      bonds=b[:, 2:].astype(np.int16), pairs=b[:, :2].astype(np.int32))


def _one_hot(codes: np.ndarray, luts, out: np.ndarray) -> int:
    """Write the one-hot blocks of ``codes`` into ``out``; return the next free column."""
    rows = np.arange(codes.shape[0])
    offset = 0
    for col, lut, width in luts:
        idx = np.clip(codes[:, col].astype(np.int64) + _SHIFT, 0, _LUT_SIZE - 1)
        out[rows, offset + lut[idx]] = 1.0
        offset += width
    return offset


def atom_features(atoms: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """One-hot expansion of stacked atom codes: (n, 8) -> (n, ATOM_DIM) float32."""
    x = np.zeros((atoms.shape[0], ATOM_DIM), dtype=np.float32)
    offset = _one_hot(atoms, _ATOM_LUTS, x)
    x[:, offset] = atoms[:, _AROM]
    bits = atoms[:, _RINGBITS].astype(np.int64)
    x[:, offset + 1] = bits & 1
    for k in range(len(RING_SIZES)):
        x[:, offset + 2 + k] = (bits >> (k + 1)) & 1
    x[:, offset + 2 + len(RING_SIZES)] = mass * 0.01
    return x


def bond_features(bonds: np.ndarray) -> np.ndarray:
    """One-hot expansion of stacked bond codes: (m, 4) -> (m, BOND_DIM) float32."""
    e = np.zeros((bonds.shape[0], BOND_DIM), dtype=np.float32)
    offset = _one_hot(bonds, _BOND_LUTS, e)
    e[:, offset] = bonds[:, 1]
    e[:, offset + 1] = bonds[:, 2]
    return e


@dataclass
class GraphBatch:
    """Several molecules as one disconnected graph, ready for a GNN.

    ``x`` (atoms, ATOM_DIM); ``edge_index`` (2, 2*bonds) with each bond as two directed edges
    at positions 2k (u->v) and 2k+1 (v->u), so the reverse of edge e is e ^ 1; ``edge_attr``
    (2*bonds, BOND_DIM); ``batch`` (atoms,) the molecule of each atom; ``num_graphs``.
    """

    x: Any
    edge_index: Any
    edge_attr: Any
    batch: Any
    num_graphs: int

    def to(self, device) -> GraphBatch:
        return GraphBatch(self.x.to(device), self.edge_index.to(device),
                          self.edge_attr.to(device), self.batch.to(device), self.num_graphs)


def collate(codes: Sequence[GraphCodes]) -> GraphBatch:
    """Stack molecules' codes into one :class:`GraphBatch` of torch tensors."""
    import torch

    n_atoms = np.fromiter((c.n_atoms for c in codes), dtype=np.int64, count=len(codes))
    n_bonds = np.fromiter((c.n_bonds for c in codes), dtype=np.int64, count=len(codes))
    atom_off = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    atoms = np.concatenate([c.atoms for c in codes]) if codes else np.zeros((0, 8), np.int16)
    mass = np.concatenate([c.mass for c in codes]) if codes else np.zeros(0, np.float32)
    bonds = np.concatenate([c.bonds for c in codes]) if codes else np.zeros((0, 4), np.int16)
    pairs = (np.concatenate([c.pairs for c in codes]).astype(np.int64)
             if codes else np.zeros((0, 2), np.int64))
    pairs = pairs + np.repeat(atom_off, n_bonds)[:, None]
    directed = np.empty((2, 2 * len(pairs)), dtype=np.int64)
    directed[0, 0::2], directed[1, 0::2] = pairs[:, 0], pairs[:, 1]
    directed[0, 1::2], directed[1, 1::2] = pairs[:, 1], pairs[:, 0]
    e = np.repeat(bond_features(bonds), 2, axis=0)
    batch = np.repeat(np.arange(len(codes), dtype=np.int64), n_atoms)
    return GraphBatch(torch.from_numpy(atom_features(atoms, mass)), torch.from_numpy(directed),
                      torch.from_numpy(e), torch.from_numpy(batch), len(codes))


def to_data(c: GraphCodes):
    """One molecule as a ``torch_geometric.data.Data`` (x, edge_index, edge_attr)."""
    from torch_geometric.data import Data

    g = collate([c])
    return Data(x=g.x, edge_index=g.edge_index, edge_attr=g.edge_attr)


class GraphFeaturizer:
    """SMILES -> graph codes, with an LRU cache keyed by SMILES.

    ``featurize(smiles)`` returns codes aligned with the input (None where the SMILES is
    invalid) and the rejects; ``collate`` turns codes into a batch for a model.
    """

    version = FEATURIZER_VERSION
    atom_dim = ATOM_DIM
    bond_dim = BOND_DIM

    def __init__(self, cache_size: int = 500_000, *, max_atoms: int | None = MAX_ATOMS):
        self.cache_size = cache_size
        #: molecules with more heavy atoms are rejects (None: no limit; see ``MAX_ATOMS``)
        self.max_atoms = max_atoms
        self._cache: OrderedDict[str, GraphCodes] = OrderedDict()

    #: below this many molecules, worker processes cost more than they save
    PARALLEL_MIN = 4000

    def featurize(self, smiles: Sequence[Any], *, start_line: int = 1, source: str = "",
                  n_jobs: int = 0):
        """Codes aligned with ``smiles`` (None where invalid) and a Rejects list.

        ``n_jobs``: worker processes for large inputs (0: one per CPU core; 1: this process
        only). RDKit holds the GIL, so processes, not threads, are what scale."""
        workers = (os.cpu_count() or 1) if n_jobs == 0 else n_jobs
        if workers > 1 and len(smiles) >= self.PARALLEL_MIN:
            return self._featurize_parallel(list(smiles), start_line, source, workers)
        return self._featurize_serial(smiles, start_line, source)

    def _featurize_parallel(self, smiles, start_line, source, workers):
        import multiprocessing as mp

        from pmtoolkit.core.io import Rejects

        size = max(500, -(-len(smiles) // (workers * 4)))
        chunks = [(smiles[i:i + size], start_line + i, self.max_atoms)
                  for i in range(0, len(smiles), size)]
        out: list[GraphCodes | None] = []
        rejects = Rejects(source=source, item_name="smiles")
        # A Pool, not a ProcessPoolExecutor: on Ctrl-C (or any error) leaving the block
        # terminates the workers at once, where the executor's shutdown would wait for every
        # chunk already queued. Workers ignore SIGINT; this process handles it.
        with mp.get_context("fork").Pool(workers, initializer=_ignore_sigint) as pool:
            for codes, chunk_rejects in pool.imap(_featurize_chunk, chunks):
                out.extend(codes)
                rejects.extend(chunk_rejects)
        if self.cache_size:
            for smi, c in zip(smiles, out):
                if c is not None and isinstance(smi, str):
                    self._cache[smi.strip()] = c
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out, rejects

    def _featurize_serial(self, smiles: Sequence[Any], start_line: int, source: str):
        from rdkit import Chem

        from pmtoolkit.chem._rdkit import quiet
        from pmtoolkit.chem.molecules import parse_smiles, reject_item
        from pmtoolkit.core.io import Rejects

        rejects = Rejects(source=source, item_name="smiles")
        out: list[GraphCodes | None] = []
        cache = self._cache
        limit = self.max_atoms
        with quiet():  # once per batch: RDKit's log blocker is costly per molecule
            for i, smi in enumerate(smiles):
                key = smi.strip() if isinstance(smi, str) else None
                hit = cache.get(key) if key else None
                if hit is not None:
                    cache.move_to_end(key)
                    out.append(hit)
                    continue
                if key and (limit is None or len(key) <= limit):
                    mol = Chem.MolFromSmiles(key)  # too short to exceed the atom limit
                else:  # checks the limits before RDKit sanitises a huge molecule
                    mol = parse_smiles(key, max_atoms=limit)[0] if key else None
                if mol is None or mol.GetNumAtoms() == 0:
                    rejects.add(reject_item(smi), start_line + i,
                                parse_smiles(smi, max_atoms=limit)[1])
                    out.append(None)
                    continue
                c = mol_codes(mol)
                if self.cache_size:
                    cache[key] = c
                    if len(cache) > self.cache_size:
                        cache.popitem(last=False)
                out.append(c)
        return out, rejects

    def featurize_mols(self, mols: Sequence[Any]) -> list[GraphCodes]:
        """Codes of already-parsed RDKit molecules (not cached: they have no key)."""
        return [mol_codes(m) for m in mols]

    collate = staticmethod(collate)


def _featurize_chunk(args):
    """Worker-process entry point: one chunk of SMILES, featurised without a cache."""
    smiles, start_line, max_atoms = args
    return GraphFeaturizer(cache_size=0, max_atoms=max_atoms)._featurize_serial(
        smiles, start_line, "")


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PackedGraphs:
    """A whole dataset's graphs, one-hot expanded once and stored contiguously, so a training
    batch is a gather of index ranges (no per-molecule Python work in the training loop)."""

    def __init__(self, codes: Sequence[GraphCodes]):
        import torch

        g = collate(codes)
        n_atoms = np.array([c.n_atoms for c in codes], dtype=np.int64)
        n_edges = 2 * np.array([c.n_bonds for c in codes], dtype=np.int64)
        self.atom_ptr = np.concatenate([[0], np.cumsum(n_atoms)])
        self.edge_ptr = np.concatenate([[0], np.cumsum(n_edges)])
        self.x = g.x
        self.edge_attr = g.edge_attr
        # directed edges with endpoints relative to their molecule's first atom
        local = g.edge_index.numpy() - np.repeat(self.atom_ptr[:-1], n_edges)[None, :]
        self.local_edges = torch.from_numpy(np.ascontiguousarray(local))
        self.n_atoms, self.n_edges = n_atoms, n_edges

    def __len__(self) -> int:
        return len(self.n_atoms)

    @staticmethod
    def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Concatenated aranges [s, s + c) for each (s, c), vectorised."""
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        return np.arange(total, dtype=np.int64) + offsets

    def batch(self, index: Sequence[int]) -> GraphBatch:
        import torch

        idx = np.asarray(index, dtype=np.int64)
        na, ne = self.n_atoms[idx], self.n_edges[idx]
        atoms = torch.from_numpy(self._ranges(self.atom_ptr[idx], na))
        edges = torch.from_numpy(self._ranges(self.edge_ptr[idx], ne))
        shift = torch.from_numpy(np.repeat(np.concatenate([[0], np.cumsum(na)[:-1]]), ne))
        edge_index = self.local_edges[:, edges] + shift
        batch = torch.from_numpy(np.repeat(np.arange(len(idx), dtype=np.int64), na))
        return GraphBatch(self.x[atoms], edge_index, self.edge_attr[edges], batch, len(idx))
