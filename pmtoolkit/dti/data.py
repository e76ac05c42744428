"""Drug–target pairs: the DAVIS and KIBA benchmark files as DeepDTA ships them, and plain
tables of pairs (``smiles``, ``sequence`` and, for training, a value).

Pairs are stored as indices into de-duplicated drug and protein lists, so a model can encode
each distinct drug and protein of a batch once (DAVIS: 68 drugs x 442 kinases = 30k pairs).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Rejects

#: one-letter amino-acid codes accepted in sequences: the 20 standard ones, selenocysteine
#: (U), pyrrolysine (O) and the ambiguity codes B, Z, J, X
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWYUOBZJX"
_AA_SET = frozenset(AMINO_ACIDS)


def check_sequence(seq: Any) -> tuple[str | None, str]:
    """``(sequence, "")`` for a valid protein sequence (upper-cased, a final ``*`` stripped),
    ``(None, reason)`` otherwise."""
    if seq is None or (isinstance(seq, float) and math.isnan(seq)):
        return None, "missing protein sequence"
    s = "".join(str(seq).split()).upper().rstrip("*")
    if not s:
        return None, "empty protein sequence"
    bad = sorted(set(s) - _AA_SET)
    if bad:
        pos = next(i for i, ch in enumerate(s) if ch not in _AA_SET)
        return None, (f"protein sequence has non-amino-acid letter(s) "
                      f"{''.join(bad)!r} (first at position {pos + 1})")
    return s, ""


@dataclass
class PairData:
    """Distinct drugs and proteins, and the pairs between them (with values when known)."""

    drugs: list[str]                 # SMILES
    proteins: list[str]              # amino-acid sequences
    drug_index: np.ndarray           # (n_pairs,) into drugs
    protein_index: np.ndarray        # (n_pairs,) into proteins
    y: np.ndarray | None = None      # (n_pairs,) float, None when unlabelled
    drug_ids: list[str] = field(default_factory=list)
    protein_ids: list[str] = field(default_factory=list)
    lines: list[int] | None = None   # input line of each pair (tables)
    _drug_mols: list | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.drug_index)

    def subset(self, index: Sequence[int]) -> PairData:
        idx = np.asarray(index, dtype=np.int64)
        return PairData(self.drugs, self.proteins, self.drug_index[idx],
                        self.protein_index[idx], None if self.y is None else self.y[idx],
                        self.drug_ids, self.protein_ids,
                        None if self.lines is None else [self.lines[i] for i in idx],
                        self._drug_mols)

    def drug_mols(self) -> list:
        """RDKit molecules of the drugs (parsed once)."""
        if self._drug_mols is None:
            from pmtoolkit.chem.molecules import parse_smiles

            self._drug_mols = [parse_smiles(s)[0] for s in self.drugs]
        return self._drug_mols

    def fingerprint(self) -> str:
        from pmtoolkit.core.io import sha256_rows

        ys = self.y if self.y is not None else np.full(len(self), np.nan)
        return sha256_rows(f"{self.drugs[d]}\t{self.proteins[p]}\t{v:.6g}"
                           for d, p, v in zip(self.drug_index, self.protein_index, ys))


@dataclass
class Benchmark:
    """A DeepDTA-format benchmark: all measured pairs, and the setting-1 folds as pair
    indices (``train_folds``: five lists; ``test``: one)."""

    name: str
    data: PairData
    train_folds: list[np.ndarray]
    test: np.ndarray

    @property
    def train(self) -> np.ndarray:
        return np.sort(np.concatenate(self.train_folds))


def load_benchmark(path: str | os.PathLike, *, name: str | None = None,
                   isomeric: bool = False) -> Benchmark:
    """Read ``davis`` or ``kiba`` from a DeepDTA data folder. DAVIS Kd (nM) become
    pKd = -log10(Kd / 1e9), as DeepDTA; KIBA scores are used as they are."""
    root = Path(path)
    name = name or root.name.lower()
    if name not in ("davis", "kiba"):
        raise BadInputError(f"unknown benchmark folder '{root}'", hint="davis or kiba")
    ligands = json.loads((root / ("ligands_iso.txt" if isomeric else "ligands_can.txt"))
                         .read_text())
    proteins = json.loads((root / "proteins.txt").read_text())
    if name == "davis":
        y = np.loadtxt(root / "drug-target_interaction_affinities_Kd__Davis_et_al.2011v1.txt")
        y = -np.log10(y / 1e9)
    else:
        import gzip

        with gzip.open(root / "kiba_binding_affinity_v2.txt.gz", "rt") as fh:
            rows = [[float(v) for v in line.rstrip("\n").rstrip("\t").split("\t")]
                    for line in fh if line.strip()]
        y = np.array(rows)
    if y.shape != (len(ligands), len(proteins)):
        raise BadInputError(f"{name}: affinity matrix {y.shape} does not match "
                            f"{len(ligands)} ligands x {len(proteins)} proteins")
    rows, cols = np.where(~np.isnan(y))  # row-major: the order the fold indices refer to
    data = PairData(list(ligands.values()), list(proteins.values()),
                    rows.astype(np.int64), cols.astype(np.int64),
                    y[rows, cols].astype(np.float32), list(ligands), list(proteins))
    folds = root / "folds"
    train = json.loads((folds / "train_fold_setting1.txt").read_text())
    test = json.loads((folds / "test_fold_setting1.txt").read_text())
    return Benchmark(name, data, [np.asarray(f, dtype=np.int64) for f in train],
                     np.asarray(test, dtype=np.int64))


def read_pairs(path: str | os.PathLike, *, smiles_column: str = "smiles",
               sequence_column: str = "sequence", value_column: str | None = None,
               fmt: str | None = None) -> tuple[PairData, Rejects]:
    """A table of pairs. Invalid SMILES, invalid sequences and non-numeric values are
    rejects with their input line; distinct drugs and proteins are stored once."""
    from pmtoolkit.core.io import read_table

    columns = [smiles_column, sequence_column] + ([value_column] if value_column else [])
    table = read_table(path, columns=columns, fmt=fmt)
    return pairs_from_frame(table, smiles_column=smiles_column,
                            sequence_column=sequence_column, value_column=value_column,
                            source=str(path))


def pairs_from_frame(table, *, smiles_column: str = "smiles", sequence_column: str = "sequence",
                     value_column: str | None = None, source: str = ""
                     ) -> tuple[PairData, Rejects]:
    """:func:`read_pairs` on a DataFrame already read (indexed by input line number)."""
    from pmtoolkit.chem.molecules import parse_smiles

    rejects = Rejects(source=source, item_name="pair")
    drugs: dict[str, int] = {}
    prots: dict[str, int] = {}
    mols: list = []
    d_idx, p_idx, ys, lines = [], [], [], []
    values = None
    if value_column:
        import pandas as pd

        values = pd.to_numeric(table[value_column], errors="coerce").to_numpy(dtype=float)
    for k, (line, smi, seq) in enumerate(zip(table.index, table[smiles_column],
                                             table[sequence_column])):
        text = "" if smi is None or (isinstance(smi, float) and math.isnan(smi)) \
            else str(smi).strip()
        if text not in drugs:
            mol, reason = parse_smiles(text)
            if mol is None:
                rejects.add(text, int(line), reason)
                continue
        s, reason = check_sequence(seq)
        if s is None:
            rejects.add(text, int(line), reason)
            continue
        if values is not None and not np.isfinite(values[k]):
            rejects.add(text, int(line), f"no numeric value in {value_column!r}")
            continue
        if text not in drugs:
            drugs[text] = len(drugs)
            mols.append(mol)
        if s not in prots:
            prots[s] = len(prots)
        d_idx.append(drugs[text])
        p_idx.append(prots[s])
        lines.append(int(line))
        if values is not None:
            ys.append(values[k])
    data = PairData(list(drugs), list(prots), np.asarray(d_idx, dtype=np.int64),
                    np.asarray(p_idx, dtype=np.int64),
                    np.asarray(ys, dtype=np.float32) if values is not None else None,
                    lines=lines, _drug_mols=mols)
    return data, rejects


def read_fasta(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(id, sequence)`` records of a FASTA file (``.gz`` too); an empty file or an invalid
    sequence is a one-line error naming the record."""
    from pmtoolkit.core.io import open_text, require_file

    require_file(path, "FASTA file")
    records: list[tuple[str, str]] = []
    name, chunks, start = None, [], 0
    with open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    records.append(_fasta_record(path, name, chunks, start))
                name, chunks, start = line[1:].split()[0] if line[1:].split() else "", [], n
            elif line:
                if name is None:
                    raise BadInputError(f"{path}: line {n}: sequence before the first '>' "
                                        "header; not FASTA")
                chunks.append(line)
    if name is not None:
        records.append(_fasta_record(path, name, chunks, start))
    if not records:
        raise BadInputError(f"{path}: no FASTA records")
    return records


def _fasta_record(path, name: str, chunks: list[str], line: int) -> tuple[str, str]:
    seq, reason = check_sequence("".join(chunks))
    if seq is None:
        raise BadInputError(f"{path}: line {line}: record {name or '(unnamed)'!r}: {reason}")
    return name, seq
