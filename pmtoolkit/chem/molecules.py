"""Molecule records and readers: SMILES strings, tables (CSV/TSV/Parquet), ``.smi`` and SDF,
gzip too. Every reader returns the valid molecules *and* a :class:`Rejects` list naming the
line and the reason for each invalid one; nothing is dropped silently, nothing is replaced by a
placeholder molecule.
"""
from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmtoolkit.chem._rdkit import quiet
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Rejects, is_stdio, iter_lines, iter_table, reading, require_file

MOLECULE_FORMATS = ("csv", "tsv", "parquet", "smi", "sdf")

#: Heavy atoms a molecule may have (``--max-atoms``). Descriptors, standardisation and
#: fingerprints cost up to O(n^3) in the atom count (RDKit's distance matrix is Floyd-Warshall,
#: run in C++ where Ctrl-C cannot stop it): a 10,000-atom polymer runs for hours and needs GBs,
#: a 1,000-atom one about 10 s. Drug-like molecules have < 100 heavy atoms, macrocycles and
#: cyclic peptides < 200, insulin ~400, antisense oligonucleotides ~450; nothing a model is
#: trained on comes near 1,000. A molecule over the limit is a reject with its reason.
MAX_ATOMS = 1000
#: The largest ``max_atoms`` a caller may ask for: beyond it one molecule costs minutes.
MAX_ATOMS_CEILING = 10_000
#: Characters a SMILES may have per allowed heavy atom: stereo brackets, isotopes, atom maps
#: and explicit hydrogens stay far below it, and a multi-megabyte line is refused before RDKit
#: parses it (about 2 s per million characters, in C++).
SMILES_CHARS_PER_ATOM = 50


def smiles_char_limit(max_atoms: int | None) -> int | None:
    """The longest SMILES accepted under ``max_atoms`` (None: no limit)."""
    return None if max_atoms is None else SMILES_CHARS_PER_ATOM * max_atoms


def too_many_atoms(n: int, max_atoms: int) -> str:
    """The reject reason of a molecule over the atom limit."""
    return f"{n:,} heavy atoms, over the limit of {max_atoms:,} (--max-atoms)"


def reject_item(smiles: Any) -> str:
    """A SMILES as a reject list shows it: whole, unless it is too long for one log line and
    one error message (its line number still finds it)."""
    text = "" if smiles is None else str(smiles)
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:100]}... ({len(text):,} characters)"


_SHOWN_CHARS = 1000


@dataclass
class Molecule:
    """One input molecule: the text it came from, where, and the parsed RDKit molecule."""

    smiles: str
    mol: Any  # rdkit.Chem.Mol
    line: int | None = None
    id: str | None = None
    props: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_smiles(cls, smiles: str, *, line: int | None = None, id: str | None = None,
                    max_atoms: int | None = MAX_ATOMS, **props: Any) -> Molecule:
        """Parse ``smiles``; an invalid one raises :class:`BadInputError` naming it and its line."""
        mol, reason = parse_smiles(smiles, max_atoms=max_atoms)
        if mol is None:
            where = f"line {line}: " if line is not None else ""
            raise BadInputError(f"{where}{reason}: {smiles!r}")
        return cls(smiles=str(smiles).strip(), mol=mol, line=line, id=id, props=props)


def parse_smiles(smiles: Any, *, max_atoms: int | None = MAX_ATOMS) -> tuple[Any, str]:
    """``(mol, "")`` for a valid SMILES, ``(None, reason)`` otherwise; RDKit stays quiet.

    A molecule with more than ``max_atoms`` heavy atoms (None: no limit), or a SMILES longer
    than :func:`smiles_char_limit`, is refused before RDKit sanitises it (kekulising a
    10,000-atom aromatic system alone takes half a minute)."""
    from rdkit import Chem

    if smiles is None or (isinstance(smiles, float) and smiles != smiles):
        return None, "missing SMILES"
    text = str(smiles).strip()
    if not text:
        return None, "empty SMILES"
    reason = _over_limit(text, max_atoms)
    if reason:
        return None, reason
    with quiet():
        mol = Chem.MolFromSmiles(text)
    if mol is None:
        return None, _why_invalid(text)
    if mol.GetNumAtoms() == 0:
        return None, "SMILES has no atoms"
    return mol, ""


def _over_limit(text: str, max_atoms: int | None) -> str:
    """Why ``text`` is too big to parse, or "". Every heavy atom takes at least one character,
    so only a SMILES longer than ``max_atoms`` needs counting: an unsanitised parse, which is
    linear in its length."""
    if max_atoms is None or len(text) <= max_atoms:
        return ""
    limit = smiles_char_limit(max_atoms)
    if len(text) > limit:
        return (f"SMILES of {len(text):,} characters, over the limit of {limit:,} "
                f"({SMILES_CHARS_PER_ATOM} x --max-atoms)")
    from rdkit import Chem

    with quiet():
        raw = Chem.MolFromSmiles(text, sanitize=False)
    if raw is not None and raw.GetNumHeavyAtoms() > max_atoms:
        return too_many_atoms(raw.GetNumHeavyAtoms(), max_atoms)
    return ""


def _why_invalid(text: str) -> str:
    """A short reason for an unparsable SMILES, from a sanitisation-free parse."""
    from rdkit import Chem

    with quiet():
        raw = Chem.MolFromSmiles(text, sanitize=False)
    if raw is None:
        return "cannot parse SMILES"
    try:
        with quiet():
            Chem.SanitizeMol(raw)
    except Exception as exc:  # RDKit raises several sanitisation error types
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"invalid molecule ({msg.strip()})"
    return "invalid molecule"


def from_smiles(smiles: Iterable[Any], *, start_line: int = 1, source: str = "",
                max_atoms: int | None = MAX_ATOMS) -> tuple[list[Molecule | None], Rejects]:
    """Parse many SMILES; the result list is aligned with the input (None where invalid)."""
    out: list[Molecule | None] = []
    rejects = Rejects(source=source, item_name="smiles")
    for i, smi in enumerate(smiles):
        mol, reason = parse_smiles(smi, max_atoms=max_atoms)
        line = start_line + i
        if mol is None:
            rejects.add(reject_item(smi), line, reason)
            out.append(None)
        else:
            out.append(Molecule(str(smi).strip(), mol, line=line))
    return out, rejects


def molecule_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in MOLECULE_FORMATS:
            raise BadInputError(f"unknown molecule format {fmt!r}",
                                hint=f"choose from {', '.join(MOLECULE_FORMATS)}")
        return fmt
    name = Path(str(path)).name.lower()
    for suffix in (".gz", ".bgz"):
        name = name.removesuffix(suffix)
    for ext, f in ((".smi", "smi"), (".smiles", "smi"), (".sdf", "sdf"), (".sd", "sdf"),
                   (".mol", "sdf"), (".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"),
                   (".txt", "tsv"), (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(ext):
            return f
    raise BadInputError(f"cannot tell the molecule format of '{path}' from its suffix",
                        hint="use .csv, .tsv, .parquet, .smi or .sdf (optionally .gz), or --format")


@dataclass
class MoleculeTable:
    """Molecules read from a file: the rows (as a DataFrame aligned with the input, including
    invalid rows), the parsed molecules aligned with it (None where invalid), and the rejects."""

    frame: Any  # pandas.DataFrame, indexed by input line number
    molecules: list[Molecule | None]
    rejects: Rejects
    smiles_column: str

    @property
    def valid(self) -> list[Molecule]:
        return [m for m in self.molecules if m is not None]

    @property
    def mask(self):
        import numpy as np

        return np.array([m is not None for m in self.molecules], dtype=bool)

    def __len__(self) -> int:
        return len(self.molecules)


def read_molecules(path: str | os.PathLike, *, smiles_column: str = "smiles",
                   id_column: str | None = None, fmt: str | None = None,
                   columns: Sequence[str] | None = None,
                   max_atoms: int | None = MAX_ATOMS) -> MoleculeTable:
    """Read a whole molecule file (see :func:`iter_molecules` for streaming)."""
    import pandas as pd

    chunks = list(iter_molecules(path, smiles_column=smiles_column, id_column=id_column,
                                 fmt=fmt, columns=columns, chunksize=None,
                                 max_atoms=max_atoms))
    if not chunks:
        frame = pd.DataFrame(columns=[smiles_column])
        return MoleculeTable(frame, [], Rejects(source=str(path), item_name="smiles"),
                             smiles_column)
    frame = pd.concat([c.frame for c in chunks]) if len(chunks) > 1 else chunks[0].frame
    rejects = Rejects(source=str(path), item_name="smiles")
    mols: list[Molecule | None] = []
    for c in chunks:
        rejects.extend(c.rejects)
        mols.extend(c.molecules)
    return MoleculeTable(frame, mols, rejects, smiles_column)


def iter_molecules(path: str | os.PathLike, *, smiles_column: str = "smiles",
                   id_column: str | None = None, fmt: str | None = None,
                   columns: Sequence[str] | None = None,
                   chunksize: int | None = 10_000,
                   max_atoms: int | None = MAX_ATOMS) -> Iterator[MoleculeTable]:
    """Stream a molecule file in chunks of :class:`MoleculeTable`; memory stays flat.

    Tables need ``smiles_column`` (and any of ``columns``); ``.smi`` files are
    ``SMILES [id ...]`` per line (a header line ``smiles ...`` is skipped); SDF records keep
    their properties as columns and get their SMILES written by RDKit. A molecule with more
    than ``max_atoms`` heavy atoms is a reject (None: no limit).
    """
    fmt = molecule_format(path, fmt)
    if fmt == "sdf":
        yield from _iter_sdf(path, _source(path), chunksize, max_atoms)
        return
    for rows in iter_molecule_rows(path, smiles_column=smiles_column, id_column=id_column,
                                   fmt=fmt, columns=columns, chunksize=chunksize):
        yield parse_molecule_rows(rows, fmt=fmt, smiles_column=smiles_column,
                                  id_column=id_column, source=_source(path),
                                  max_atoms=max_atoms)


def _source(path: str | os.PathLike) -> str:
    return "stdin" if is_stdio(path) else str(path)


#: the formats :func:`iter_molecule_rows` reads as text rows (an SDF record needs RDKit)
ROW_FORMATS = ("csv", "tsv", "parquet", "smi")


def iter_molecule_rows(path: str | os.PathLike, *, smiles_column: str = "smiles",
                       id_column: str | None = None, fmt: str | None = None,
                       columns: Sequence[str] | None = None,
                       chunksize: int | None = 10_000) -> Iterator[Any]:
    """The rows :func:`iter_molecules` parses, unparsed: DataFrames indexed by line number,
    chunk by chunk (a ``.smi`` file's have the columns ``smiles`` and ``id``). Reading is
    cheap and parsing is not, so a partitioned run reads here and parses with
    :func:`parse_molecule_rows` where the work is done. Tables and ``.smi`` only."""
    fmt = molecule_format(path, fmt)
    if fmt not in ROW_FORMATS:
        raise BadInputError(f"'{path}': {fmt} records are read whole, not as rows",
                            hint=f"use one of {', '.join(ROW_FORMATS)}")
    if fmt == "smi":
        yield from _iter_smi_rows(path, chunksize)
        return
    need = [smiles_column, *([id_column] if id_column else []), *(columns or [])]
    yield from iter_table(path, columns=need, fmt=fmt, chunksize=chunksize)


def parse_molecule_rows(rows: Any, *, fmt: str, smiles_column: str = "smiles",
                        id_column: str | None = None, source: str = "",
                        max_atoms: int | None = MAX_ATOMS) -> MoleculeTable:
    """One chunk of :func:`iter_molecule_rows` parsed, as :func:`iter_molecules` yields it."""
    if fmt == "smi":
        mols: list[Molecule | None] = []
        rejects = Rejects(source=source, item_name="smiles")
        for line, smi, ident in zip(rows.index, rows["smiles"], rows["id"]):
            mol, reason = parse_smiles(smi, max_atoms=max_atoms)
            if mol is None:
                rejects.add(reject_item(smi), int(line), reason)
                mols.append(None)
            else:
                mols.append(Molecule(smi, mol, line=int(line), id=ident))
        return MoleculeTable(rows, mols, rejects, "smiles")
    mols, rejects = from_smiles(rows[smiles_column].tolist(),
                                start_line=int(rows.index[0]) if len(rows) else 1,
                                source=source, max_atoms=max_atoms)
    if id_column:
        for m, ident in zip(mols, rows[id_column]):
            if m is not None:
                m.id = str(ident)
    return MoleculeTable(rows, mols, rejects, smiles_column)


def _chunked(rows: Iterable, size: int | None) -> Iterator[list]:
    batch: list = []
    for row in rows:
        batch.append(row)
        if size and len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _iter_smi_rows(path, chunksize) -> Iterator[Any]:
    import pandas as pd

    def rows():
        for number, line in iter_lines(path):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.split(None, 1)
            if number == 1 and parts[0].lower() in ("smiles", "smi"):
                continue
            yield number, parts[0], parts[1].strip() if len(parts) > 1 else None

    for batch in _chunked(rows(), chunksize):
        yield pd.DataFrame({"smiles": [b[1] for b in batch], "id": [b[2] for b in batch]},
                           index=pd.Index([b[0] for b in batch]))


def _iter_sdf(path, source, chunksize, max_atoms) -> Iterator[MoleculeTable]:
    """SDF records; the 'line' of a record is its 1-based record number in the file. (A V2000
    record holds at most 999 atoms; the limit matters for V3000 records.)"""
    import pandas as pd
    from rdkit import Chem

    if is_stdio(path):
        raise BadInputError("SDF input from stdin is not supported", hint="give a file path")
    p = require_file(path)
    with open(p, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    handle = gzip.open(p, "rb") if gz else open(p, "rb")
    with reading(p), handle, quiet():
        supplier = Chem.ForwardSDMolSupplier(handle, sanitize=True, removeHs=True)

        def records():
            for number, mol in enumerate(supplier, start=1):
                yield number, mol

        for batch in _chunked(records(), chunksize):
            rows, mols = [], []
            rejects = Rejects(source=source, item_name="smiles")
            for number, mol in batch:
                reason = ("invalid SDF record" if mol is None or mol.GetNumAtoms() == 0 else
                          too_many_atoms(mol.GetNumHeavyAtoms(), max_atoms)
                          if max_atoms is not None and mol.GetNumHeavyAtoms() > max_atoms
                          else "")
                if reason:
                    rejects.add(f"record {number}", number, reason)
                    rows.append({"smiles": None})
                    mols.append(None)
                    continue
                smi = Chem.MolToSmiles(mol)
                props = mol.GetPropsAsDict()
                name = mol.GetProp("_Name") if mol.HasProp("_Name") else None
                rows.append({"smiles": smi, "id": name, **props})
                mols.append(Molecule(smi, mol, line=number, id=name, props=props))
            frame = pd.DataFrame(rows, index=pd.Index([b[0] for b in batch]))
            yield MoleculeTable(frame, mols, rejects, "smiles")
