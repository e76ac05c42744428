"""Property datasets: SMILES with one or more target columns (NaN = missing label), read with
the reject-list policy, featurised once and cached."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Rejects, sha256_rows

Task = Literal["regression", "classification"]


@dataclass
class PropertyData:
    """Valid molecules and their targets; ``lines`` are the input line numbers."""

    smiles: list[str]
    y: np.ndarray | None  # (n, n_tasks) float32, NaN where a label is missing; None: no targets
    target_names: list[str]
    lines: list[int | None]
    _codes: list | None = field(default=None, repr=False)
    _mols: list | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.smiles)

    def subset(self, index: Sequence[int]) -> PropertyData:
        idx = np.asarray(index, dtype=np.int64)
        return PropertyData(
            smiles=[self.smiles[i] for i in idx],
            y=None if self.y is None else self.y[idx],
            target_names=list(self.target_names),
            lines=[self.lines[i] for i in idx],
            _codes=None if self._codes is None else [self._codes[i] for i in idx],
            _mols=None if self._mols is None else [self._mols[i] for i in idx],
        )

    def codes(self) -> list:
        """Graph codes of the molecules, from the RDKit molecules parsed when the data was
        read (parsing the SMILES again would double the featurisation cost)."""
        if self._codes is None:
            from pmtoolkit.chem.featurizer import mol_codes

            self._codes = [mol_codes(m) for m in self.mols()]
        return self._codes

    def mols(self) -> list:
        if self._mols is None:
            from pmtoolkit.chem.molecules import parse_smiles

            self._mols = [parse_smiles(s)[0] for s in self.smiles]
        return self._mols

    def fingerprint(self) -> str:
        """sha256 of the SMILES and labels: the training-data fingerprint saved with a model."""
        rows = self.smiles if self.y is None else [
            s + "\t" + ",".join("" if np.isnan(v) else f"{v:.6g}" for v in row)
            for s, row in zip(self.smiles, self.y)]
        return sha256_rows(rows)


def _target_problem(row: np.ndarray, names: Sequence[str], task: str) -> str:
    """Why a row of labels cannot be used ('' if it can)."""
    if np.isnan(row).all():
        return "no target value"
    if task == "classification":
        wrong = ~np.isnan(row) & ~np.isin(row, (0.0, 1.0))
        if wrong.any():
            j = int(np.flatnonzero(wrong)[0])
            return f"label {row[j]:g} in {names[j]!r} is not 0 or 1"
    return ""


def from_arrays(smiles: Sequence[str], y: Any = None, target_names: Sequence[str] | None = None,
                *, task: Task = "regression", source: str = "",
                mols: Sequence[Any] | None = None) -> tuple[PropertyData, Rejects]:
    """Build a dataset from Python values; invalid molecules and labels become rejects.
    ``mols``: RDKit molecules already parsed from ``smiles`` (None where invalid), so a
    reader's work is not done twice."""
    from pmtoolkit.chem.molecules import parse_smiles

    y_arr = None
    if y is not None:
        y_arr = np.asarray(y, dtype=np.float64)
        if y_arr.ndim == 1:
            y_arr = y_arr[:, None]
        if len(y_arr) != len(smiles):
            raise BadInputError(f"{len(smiles)} SMILES but {len(y_arr)} target rows")
    if mols is not None and len(mols) != len(smiles):
        raise ValueError(f"{len(smiles)} SMILES but {len(mols)} molecules")
    names = list(target_names or ([f"task{i}" for i in range(y_arr.shape[1])] if y_arr is not None
                                  else []))
    rejects = Rejects(source=source, item_name="smiles")
    keep_smiles, keep_y, keep_lines, keep_mols = [], [], [], []
    for i, smi in enumerate(smiles):
        line = i + 1
        mol = mols[i] if mols is not None else None
        if mol is None:
            mol, reason = parse_smiles(smi)
        if mol is None:
            rejects.add("" if smi is None else smi, line, reason)
            continue
        if y_arr is not None:
            row = y_arr[i]
            problem = _target_problem(row, names, task)
            if problem:
                rejects.add(smi, line, problem)
                continue
            keep_y.append(row)
        keep_smiles.append(str(smi).strip())
        keep_lines.append(line)
        keep_mols.append(mol)
    y_out = np.array(keep_y, dtype=np.float32).reshape(-1, len(names)) if y_arr is not None else None
    return PropertyData(keep_smiles, y_out, names, keep_lines, _mols=keep_mols), rejects


def read_property_data(path: str | os.PathLike, *, smiles_column: str = "smiles",
                       target_columns: Sequence[str] | None = None, task: Task = "regression",
                       fmt: str | None = None) -> tuple[PropertyData, Rejects]:
    """Read a molecule table with targets. Non-numeric target cells are rejects, as are
    invalid SMILES and rows with no label at all; ``line`` is the file's line number."""
    import pandas as pd

    from pmtoolkit.chem.molecules import read_molecules

    table = read_molecules(path, smiles_column=smiles_column, fmt=fmt,
                           columns=list(target_columns or []))
    rejects = Rejects(source=str(path), item_name="smiles")
    rejects.extend(table.rejects)
    frame = table.frame
    names = list(target_columns or [])
    numeric = {}
    for col in names:
        values = pd.to_numeric(frame[col], errors="coerce")
        numeric[col] = values.to_numpy(dtype=np.float64)
        bad_text = values.isna() & frame[col].notna() & (frame[col].astype(str).str.strip() != "")
        numeric[col + "__bad"] = bad_text.to_numpy()
    keep_smiles, keep_y, keep_lines, keep_mols = [], [], [], []
    for i, (line, m) in enumerate(zip(frame.index, table.molecules)):
        if m is None:
            continue  # already a reject
        if names:
            bad = [c for c in names if numeric[c + "__bad"][i]]
            if bad:
                rejects.add(m.smiles, int(line),
                            f"target {bad[0]!r} is {frame[bad[0]].iloc[i]!r}, not a number")
                continue
            row = np.array([numeric[c][i] for c in names])
            problem = _target_problem(row, names, task)
            if problem:
                rejects.add(m.smiles, int(line), problem)
                continue
            keep_y.append(row)
        keep_smiles.append(m.smiles)
        keep_lines.append(int(line))
        keep_mols.append(m.mol)
    rejects.items.sort(key=lambda r: (r.line is None, r.line or 0))
    y = np.array(keep_y, dtype=np.float32).reshape(-1, len(names)) if names else None
    return PropertyData(keep_smiles, y, names, keep_lines, _mols=keep_mols), rejects
