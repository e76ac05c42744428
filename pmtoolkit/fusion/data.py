"""The tables a fusion model reads: per-modality embedding tables aligned on ``patient_id``,
and an outcomes table (``patient_id``, ``outcome``); every bad row is a one-line error naming
the file, line and patient."""
from __future__ import annotations

import os

import numpy as np

from pmtoolkit.core.errors import BadInputError


def read_embeddings(tables: dict[str, str | os.PathLike], ids: list[str] | None = None
                    ) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """Read one table per modality and align them on ``patient_id``: returns the patient ids
    (``ids`` if given, else every patient in any table, in first-seen order), the embeddings
    (zeros where missing) and the presence mask (N, M)."""
    import pandas as pd

    from pmtoolkit.core.io import read_table

    if not tables:
        raise BadInputError("no modality given", hint="--modality NAME=TABLE, once per modality")
    frames = {}
    for name, path in tables.items():
        frame = read_table(path)
        if "patient_id" not in frame.columns:
            raise BadInputError(f"{path}: no 'patient_id' column",
                                hint="columns: " + ", ".join(map(str, frame.columns[:8])))
        frame["patient_id"] = _patient_ids(frame["patient_id"], path)
        feats = frame.drop(columns=["patient_id"])
        bad = [c for c in feats.columns if not pd.api.types.is_numeric_dtype(feats[c])]
        if bad:
            raise BadInputError(f"{path}: column {bad[0]!r} is not numeric (embedding tables "
                                "hold patient_id and numbers)")
        if feats.shape[1] == 0:
            raise BadInputError(f"{path}: no feature columns besides patient_id")
        values = feats.to_numpy(dtype=np.float64)
        # beyond float32 (the model's precision) a value would become infinite
        bad = ~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max)
        if bad.any():
            row, col = (int(v[0]) for v in np.nonzero(bad))
            raise BadInputError(f"{path}: line {frame.index[row]}: patient "
                                f"{frame['patient_id'].iloc[row]!r} has a missing, infinite "
                                f"or out-of-range value in {feats.columns[col]!r}")
        values = values.astype(np.float32)
        frames[name] = (frame["patient_id"].tolist(), values)
    if ids is None:
        seen: dict[str, None] = {}
        for pids, _ in frames.values():
            seen.update(dict.fromkeys(pids))
        ids = list(seen)
    pos = {p: i for i, p in enumerate(ids)}
    data, mask = {}, np.zeros((len(ids), len(frames)), bool)
    for j, (name, (pids, values)) in enumerate(frames.items()):
        x = np.zeros((len(ids), values.shape[1]), np.float32)
        rows = [(pos[p], k) for k, p in enumerate(pids) if p in pos]
        if rows:
            r, k = map(list, zip(*rows))
            x[r] = values[k]
            mask[r, j] = True
        data[name] = x
    return ids, data, mask


def _patient_ids(ids, path) -> list[str]:
    """A table's ``patient_id`` column as text: one row per patient, none empty."""
    import pandas as pd

    text = ids.astype(str).str.strip()
    empty = ids.isna().to_numpy() | (text == "").to_numpy()
    if empty.any():
        raise BadInputError(f"{path}: line {ids.index[int(np.flatnonzero(empty)[0])]}: no "
                            "patient_id")
    dup = pd.Index(text).duplicated()
    if dup.any():
        k = int(np.flatnonzero(dup)[0])
        raise BadInputError(f"{path}: line {ids.index[k]}: patient {text.iloc[k]!r} appears "
                            "twice (one row per patient)")
    return text.tolist()


def read_outcomes(path: str | os.PathLike, task: str) -> dict[str, float]:
    """An outcomes table (``patient_id``, ``outcome``) as patient id -> value; every outcome
    must fit ``task`` (0/1 for ``binary``, a finite number for ``regression``)."""
    import pandas as pd

    from pmtoolkit.core.io import read_table

    frame = read_table(path)
    for col in ("patient_id", "outcome"):
        if col not in frame.columns:
            raise BadInputError(f"{path}: no {col!r} column",
                                hint="an outcomes table has patient_id and outcome")
    ids = _patient_ids(frame["patient_id"], path)
    y = frame["outcome"]
    values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if task == "binary":
        bad |= ~np.isin(values, (0.0, 1.0))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        what = "0 or 1 (use --task regression for a number)" if task == "binary" else \
            "a finite number"
        value = y.iloc[k]
        shown = repr(value) if isinstance(value, str) else str(value)
        raise BadInputError(f"{path}: line {frame.index[k]}: outcome {shown} of patient "
                            f"{ids[k]!r} is not {what}")
    return dict(zip(ids, values))
