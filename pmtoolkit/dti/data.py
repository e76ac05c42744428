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
#: letters of nucleic acids that are also amino-acid letters; a sequence of at least
#: ``NUCLEOTIDE_MIN_LENGTH`` residues made of them for ``NUCLEOTIDE_FRACTION`` or more is DNA
#: or RNA (in proteins these five make up about a quarter of the residues)
_NUCLEOTIDES = frozenset("ACGTUN")
NUCLEOTIDE_MIN_LENGTH = 20
NUCLEOTIDE_FRACTION = 0.9


def check_sequence(seq: Any) -> tuple[str | None, str]:
    """``(sequence, "")`` for a valid protein sequence (upper-cased, a final ``*`` stripped),
    ``(None, reason)`` otherwise: a letter that is not an amino acid, or a nucleotide
    sequence (DNA or RNA given where a protein is expected)."""
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
    if len(s) >= NUCLEOTIDE_MIN_LENGTH:
        share = sum(ch in _NUCLEOTIDES for ch in s) / len(s)
        if share >= NUCLEOTIDE_FRACTION:
            return None, (f"looks like DNA or RNA, not a protein ({share:.0%} of its "
                          f"{len(s)} letters are A, C, G, T, U or N); give the amino-acid "
                          "sequence")
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
    pKd = -log10(Kd / 1e9), as DeepDTA; KIBA scores are used as they are. A missing,
    truncated or malformed file of the folder is a one-line error naming it."""
    root = Path(path)
    name = name or root.name.lower()
    if name not in ("davis", "kiba"):
        raise BadInputError(f"unknown benchmark folder '{root}'", hint="davis or kiba")
    ligands = _json_file(root / ("ligands_iso.txt" if isomeric else "ligands_can.txt"), dict)
    proteins = _json_file(root / "proteins.txt", dict)
    if name == "davis":
        y = _affinity_matrix(root / "drug-target_interaction_affinities_Kd__Davis_et_al.2011v1.txt")
        if (y[~np.isnan(y)] <= 0).any():
            raise BadInputError(f"'{root}': a Kd of zero or less in the DAVIS affinities")
        y = -np.log10(y / 1e9)
    else:
        y = _affinity_matrix(root / "kiba_binding_affinity_v2.txt.gz")
    if y.shape != (len(ligands), len(proteins)):
        raise BadInputError(f"{name}: affinity matrix {y.shape} does not match "
                            f"{len(ligands)} ligands x {len(proteins)} proteins")
    sequences = []
    for pid, seq in proteins.items():
        checked, reason = check_sequence(seq)
        if checked is None:
            raise BadInputError(f"{root / 'proteins.txt'}: protein {pid!r}: {reason}")
        sequences.append(checked)
    rows, cols = np.where(~np.isnan(y))  # row-major: the order the fold indices refer to
    data = PairData([str(v) for v in ligands.values()], sequences,
                    rows.astype(np.int64), cols.astype(np.int64),
                    y[rows, cols].astype(np.float32), list(ligands), list(proteins))
    folds = root / "folds"
    train = [_fold(f, folds / "train_fold_setting1.txt", len(data))
             for f in _json_file(folds / "train_fold_setting1.txt", list)]
    test = _fold(_json_file(folds / "test_fold_setting1.txt", list),
                 folds / "test_fold_setting1.txt", len(data))
    return Benchmark(name, data, train, test)


def _json_file(path: Path, kind: type):
    """The JSON value of a benchmark file (a ``kind``), or a one-line error naming it."""
    from pmtoolkit.core.io import reading, require_file

    require_file(path, "benchmark file")
    with reading(path):
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BadInputError(f"'{path}' is not valid JSON ({exc.msg}, line {exc.lineno})"
                                ) from None
    if not isinstance(value, kind):
        raise BadInputError(f"'{path}' holds a JSON {type(value).__name__}, expected a "
                            f"{'mapping of names to values' if kind is dict else 'list'}")
    return value


def _affinity_matrix(path: Path) -> np.ndarray:
    """A whitespace-separated matrix of numbers (``nan`` for unmeasured), plain or gzip."""
    from pmtoolkit.core.io import open_text, require_file

    require_file(path, "benchmark file")
    rows = []
    with open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append([float(v) for v in line.split()])
            except ValueError:
                raise BadInputError(f"'{path}': line {n}: not a row of numbers") from None
            if len(rows[-1]) != len(rows[0]):
                raise BadInputError(f"'{path}': line {n} has {len(rows[-1])} values, the "
                                    f"first row {len(rows[0])}")
    if not rows:
        raise BadInputError(f"'{path}' holds no affinities")
    y = np.array(rows, dtype=np.float64)
    if np.isinf(y).any():
        raise BadInputError(f"'{path}': an infinite affinity")
    return y


def _fold(values, path: Path, n_pairs: int) -> np.ndarray:
    """Pair indices of one fold, each checked to be a measured pair."""
    try:
        index = np.asarray(values, dtype=np.int64)
    except (TypeError, ValueError):
        raise BadInputError(f"'{path}': a fold is not a list of pair indices") from None
    if index.ndim != 1 or (len(index) and (index.min() < 0 or index.max() >= n_pairs)):
        raise BadInputError(f"'{path}': a fold has indices outside the {n_pairs} measured "
                            "pairs")
    return index


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
    """``(name, sequence)`` records of a protein FASTA file (``.gz`` too); a record without a
    name is called ``target<N>`` (its place in the file). An empty file, a sequence that is
    not a protein, or two records of one name is a one-line error naming the record."""
    from pmtoolkit.core.io import open_text, require_file

    require_file(path, "FASTA file")
    records: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    name, chunks, start = None, [], 0

    def finish() -> None:
        record = name or f"target{len(records) + 1}"
        if record in seen:
            raise BadInputError(f"{path}: line {start}: record name {record!r} is used twice "
                                f"(first at line {seen[record]}); the hits of the two could "
                                "not be told apart", hint="give each record its own name")
        seen[record] = start
        records.append(_fasta_record(path, record, chunks, start))

    with open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    finish()
                name, chunks, start = line[1:].split()[0] if line[1:].split() else "", [], n
            elif line:
                if name is None:
                    raise BadInputError(f"{path}: line {n}: sequence before the first '>' "
                                        "header; not FASTA")
                chunks.append(line)
    if name is not None:
        finish()
    if not records:
        raise BadInputError(f"{path}: no FASTA records")
    return records


def _fasta_record(path, name: str, chunks: list[str], line: int) -> tuple[str, str]:
    seq, reason = check_sequence("".join(chunks))
    if seq is None:
        raise BadInputError(f"{path}: line {line}: record {name!r}: {reason}")
    return name, seq
