"""Labelled DNA sequences for training and evaluating sequence models.

Sources: a table with a sequence column (CSV/TSV/Parquet); a FASTA whose record ids join a
label table; a BED of regions cut from a reference FASTA, whose names (4th column; else
``chrom:start-end``) join a label table. Every sequence is brought to the model's window:
longer ones are cut around their centre, shorter ones padded with ``N`` on both sides.

Sequences are stored as base codes (``uint8``: 0-3 = A, C, G, T; 4 = N or another ambiguity
code), a quarter of the memory of one-hot floats; batches are one-hot encoded on the fly.
"""
from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.core.io import Rejects, read_table, require_file

TASKS = ("binary", "multiclass", "regression")


def fit_window(seq: str, window: int) -> str:
    """``seq`` cut around its centre or padded with ``N`` to ``window`` bases."""
    n = len(seq)
    if n == window:
        return seq
    if n > window:
        start = (n - window) // 2
        return seq[start:start + window]
    left = (window - n) // 2
    return "N" * left + seq + "N" * (window - n - left)


@dataclass
class SequenceData:
    """Sequences as base codes ``(N, window)`` with their labels.

    ``y``: ``(N, T)`` float (binary 0/1 or regression values; NaN = missing) or ``(N,)`` int
    class indices (multiclass); ``None`` for unlabelled data."""

    codes: np.ndarray
    y: np.ndarray | None
    targets: list[str]
    task: str
    ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def window(self) -> int:
        return int(self.codes.shape[1])

    def subset(self, index: Sequence[int] | np.ndarray) -> SequenceData:
        index = np.asarray(index, dtype=np.int64)
        return SequenceData(self.codes[index], None if self.y is None else self.y[index],
                            list(self.targets), self.task,
                            [self.ids[i] for i in index] if self.ids else [])

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.codes.tobytes())
        if self.y is not None:
            h.update(np.ascontiguousarray(self.y).tobytes())
        h.update("\n".join(self.targets).encode())
        return h.hexdigest()

    def sequences(self) -> list[str]:
        letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
        return [letters[row].tobytes().decode() for row in self.codes]


def encode_sequences(seqs: Sequence[str], window: int, *, rejects: Rejects | None = None,
                     lines: Sequence[int | None] | None = None,
                     ids: Sequence[str] | None = None) -> tuple[np.ndarray, list[int]]:
    """Base codes ``(n_ok, window)`` of the valid sequences and the positions they came from;
    an invalid sequence is a reject (or, without ``rejects``, a :class:`BadInputError`)."""
    from pmtoolkit.genomics.sequence import codes

    out = np.empty((len(seqs), window), dtype=np.uint8)
    keep: list[int] = []
    for i, s in enumerate(seqs):
        if s is None or (isinstance(s, float) and math.isnan(s)):
            reason = "missing sequence"
        else:
            s = "".join(str(s).split())
            reason = "" if s else "empty sequence"
        if not reason:
            try:
                out[len(keep)] = codes(fit_window(s, window))
            except BadInputError as exc:
                reason = exc.message
        if reason:
            item = ids[i] if ids else (str(s)[:60] if s is not None else "")
            line = lines[i] if lines else None
            if rejects is None:
                where = f"line {line}: " if line is not None else ""
                raise BadInputError(f"{where}{reason}: {item!r}")
            rejects.add(item, line, reason)
            continue
        keep.append(i)
    return out[:len(keep)], keep


def _labels(frame: pd.DataFrame, label_columns: Sequence[str], task: str, source: str
            ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(y, targets, ok) from label columns; ``ok`` marks rows with a usable label."""
    if task not in TASKS:
        raise BadInputError(f"unknown task {task!r}", hint=f"choose from {', '.join(TASKS)}")
    missing = [c for c in label_columns if c not in frame.columns]
    if missing:
        raise MissingInputError(f"{source}: no label column {missing[0]!r}",
                                hint=f"columns are {', '.join(map(str, frame.columns))}")
    if task == "multiclass":
        if len(label_columns) != 1:
            raise BadInputError("a multiclass task takes one label column (the class names)")
        col = frame[label_columns[0]]
        ok = col.notna().to_numpy()
        names = col[ok].astype(str).str.strip()
        targets = sorted(names.unique())
        if len(targets) < 2:
            raise BadInputError(f"{source}: a multiclass task needs at least two classes; "
                                f"found {targets}")
        y = np.full(len(frame), -1, dtype=np.int64)
        y[ok] = pd.Categorical(names, categories=targets).codes
        return y, targets, ok
    values = frame[list(label_columns)].apply(pd.to_numeric, errors="coerce")
    y = values.to_numpy(dtype=np.float32)
    bad = frame[list(label_columns)].notna().to_numpy() & np.isnan(y)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise BadInputError(f"{source}: label {frame[label_columns[c]].iloc[r]!r} in column "
                            f"{label_columns[c]!r} is not a number")
    if task == "binary":
        finite = y[~np.isnan(y)]
        if not np.isin(finite, (0.0, 1.0)).all():
            raise BadInputError(f"{source}: binary labels must be 0 or 1 (or empty); found "
                                f"{finite[~np.isin(finite, (0.0, 1.0))][0]!r}",
                                hint="use --task regression for real values")
    ok = ~np.isnan(y).all(axis=1)
    return y, [str(c) for c in label_columns], ok


def _finish(seqs: list, frame: pd.DataFrame, label_columns: Sequence[str] | None, task: str,
            window: int, ids: list[str], source: str, rejects: Rejects | None,
            lines: list[int] | None = None) -> SequenceData:
    rej = rejects if rejects is not None else Rejects(source, "sequence")
    if label_columns:
        y, targets, ok = _labels(frame, label_columns, task, source)
        for i in np.flatnonzero(~ok):
            rej.add(ids[i] if ids else str(seqs[i])[:60], lines[i] if lines else None,
                    "no label")
        rows = np.flatnonzero(ok)
    else:
        y, targets, rows = None, [], np.arange(len(seqs))
    codes, keep = encode_sequences([seqs[i] for i in rows], window, rejects=rej,
                                   lines=[lines[i] for i in rows] if lines else None,
                                   ids=[ids[i] for i in rows] if ids else None)
    rows = rows[keep]
    if rejects is None:
        rej.raise_first()
    if len(rows) == 0:
        raise BadInputError(f"{source}: no usable sequences")
    return SequenceData(codes, None if y is None else y[rows], targets, task,
                        [ids[i] for i in rows] if ids else [f"seq{i + 1}" for i in rows])


def read_sequence_table(path: str | os.PathLike, *, window: int, task: str = "binary",
                        label_columns: Sequence[str] | None = None,
                        sequence_column: str = "sequence", id_column: str | None = None,
                        rejects: Rejects | None = None) -> SequenceData:
    """A table with a sequence column and label columns. ``rejects=None`` raises on the first
    bad row; a :class:`Rejects` collects them instead."""
    frame = read_table(path)
    frame.columns = [str(c).strip() for c in frame.columns]  # padded headers (UCI files)
    for c in [sequence_column] + ([id_column] if id_column else []):
        if c not in frame.columns:
            raise MissingInputError(f"column {c!r} not found in '{path}'",
                                    hint=f"columns are {', '.join(frame.columns)}")
    for c in frame.columns:
        if frame[c].dtype == object:
            frame[c] = frame[c].map(lambda v: v.strip() if isinstance(v, str) else v)
    ids = frame[id_column].astype(str).tolist() if id_column else []
    return _finish(frame[sequence_column].tolist(), frame, label_columns, task, window, ids,
                   str(path), rejects, lines=list(frame.index))


def _join_labels(names: list[str], labels: str | os.PathLike, id_column: str, source: str
                 ) -> pd.DataFrame:
    table = read_table(labels, columns=[id_column])
    table[id_column] = table[id_column].astype(str)
    if table[id_column].duplicated().any():
        dup = table[id_column][table[id_column].duplicated()].iloc[0]
        raise BadInputError(f"{labels}: id {dup!r} appears more than once")
    joined = pd.DataFrame({id_column: names}).merge(table, on=id_column, how="left")
    return joined


def _finish_named(seqs: list, names: list[str], labels, label_columns, id_column: str,
                  task: str, window: int, path, rejects: Rejects | None) -> SequenceData:
    """Named sequences labelled by joining their names to ``labels`` (every column but the id
    unless ``label_columns`` says), or unlabelled without ``labels``."""
    if labels is None:
        return _finish(seqs, pd.DataFrame({id_column: names}), None, task, window, names,
                       str(path), rejects)
    frame = _join_labels(names, labels, id_column, str(path))
    if not label_columns:
        label_columns = [c for c in frame.columns if c != id_column]
    return _finish(seqs, frame, label_columns, task, window, names, str(path), rejects)


def read_fasta_sequences(fasta: str | os.PathLike, *, window: int, labels=None,
                         task: str = "binary", label_columns: Sequence[str] | None = None,
                         id_column: str = "id", rejects: Rejects | None = None
                         ) -> SequenceData:
    """FASTA records, labelled by joining their ids to ``labels`` (a table with ``id_column``);
    a record without a label row is a reject."""
    from Bio import SeqIO

    from pmtoolkit.core.io import open_text

    path = require_file(fasta, "FASTA")
    names, seqs = [], []
    with open_text(path) as fh:
        try:
            for rec in SeqIO.parse(fh, "fasta"):
                names.append(rec.id)
                seqs.append(str(rec.seq))
        except ValueError as exc:
            raise BadInputError(f"{path}: not a FASTA file ({exc})") from None
    if not seqs:
        raise BadInputError(f"{path}: no FASTA records", hint="a record starts with '>name'")
    return _finish_named(seqs, names, labels, label_columns, id_column, task, window, path,
                         rejects)


def read_bed_regions(bed: str | os.PathLike, reference, *, window: int, labels=None,
                     task: str = "binary", label_columns: Sequence[str] | None = None,
                     id_column: str = "id", rejects: Rejects | None = None) -> SequenceData:
    """BED regions (0-based, half-open) cut from ``reference``, centred in the window; each
    region's name (4th column, else ``chrom:start-end``) joins ``labels``."""
    from pmtoolkit.core.io import iter_lines

    path = require_file(bed, "BED")
    rej = rejects if rejects is not None else Rejects(str(path), "region")
    names, seqs, lines = [], [], []
    for n, line in iter_lines(path):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 3:
            parts = line.split()
        try:
            chrom, start, end = parts[0], int(parts[1]), int(parts[2])
            if start < 0 or end <= start:
                raise ValueError
        except (ValueError, IndexError):
            rej.add(line.strip()[:80], n, "malformed BED line (need chrom, start < end)")
            continue
        name = parts[3] if len(parts) > 3 and parts[3] not in ("", ".") \
            else f"{chrom}:{start}-{end}"
        if reference.resolve(chrom) is None:
            rej.add(name, n, f"contig {chrom!r} is not in the reference")
            continue
        mid = (start + end) // 2
        names.append(name)
        seqs.append(reference.fetch(chrom, mid - window // 2, mid - window // 2 + window))
        lines.append(n)
    if rejects is None:
        rej.raise_first()
    if not seqs:
        raise BadInputError(f"{path}: no usable regions")
    return _finish_named(seqs, names, labels, label_columns, id_column, task, window, path,
                         rejects)
