"""File-to-file molecule operations behind ``pmt mol``: each streams the input in chunks,
adds columns aligned with the input rows (empty where a molecule is invalid) and writes the
output atomically; invalid molecules follow the reject-list policy."""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.chem.molecules import MAX_ATOMS, MoleculeTable, iter_molecules, read_molecules
from pmtoolkit.core.distributed import Cluster
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid, Rejects, TableWriter, atomic_dir, write_table

log = logging.getLogger(__name__)


def _valid_positions(chunk: MoleculeTable) -> tuple[np.ndarray, list]:
    pos = np.array([i for i, m in enumerate(chunk.molecules) if m is not None], dtype=np.int64)
    return pos, [chunk.molecules[i].mol for i in pos]


class Standardize:
    def __init__(self, config):
        from pmtoolkit.chem.standardize import Standardizer

        self.standardizer = Standardizer(config)
        self.isomeric = config.keep_stereo

    def __call__(self, chunk: MoleculeTable, rejects: Rejects):
        import pandas as pd

        from pmtoolkit.chem.standardize import canonical_smiles

        out: list[Any] = [None] * len(chunk)
        for i, m in enumerate(chunk.molecules):
            if m is None:
                continue
            std, reason = self.standardizer(m.mol)
            if std is None:
                rejects.add(m.smiles, m.line, reason)
            else:
                out[i] = canonical_smiles(std, isomeric=self.isomeric)
        return pd.DataFrame({"standardized_smiles": out}, index=chunk.frame.index)


class Descriptors:
    """RDKit's 2D descriptors (all, or ``names``), then QED and SA score. RDKit's list has its
    own ``qed`` (the same function), so it is computed once and its column appears once."""

    def __init__(self, names: Sequence[str] | None):
        from pmtoolkit.chem.descriptors import check_descriptor_names, descriptor_names

        self.names = check_descriptor_names(names) if names else descriptor_names()
        self.columns = [*self.names, *(c for c in ("qed", "sa_score") if c not in self.names)]

    def __call__(self, chunk: MoleculeTable, rejects: Rejects):
        import pandas as pd

        from pmtoolkit.chem.descriptors import qed, rdkit_descriptors, sa_score

        pos, mols = _valid_positions(chunk)
        values = np.full((len(chunk), len(self.columns)), np.nan, dtype=np.float64)
        if len(pos):
            n = len(self.names)
            values[pos, :n] = rdkit_descriptors(mols, self.names)
            extra = {"qed": qed, "sa_score": sa_score}
            for j, column in enumerate(self.columns[n:], start=n):
                values[pos, j] = [extra[column](m) for m in mols]
        return pd.DataFrame(values, columns=self.columns, index=chunk.frame.index)


class Fingerprints:
    def __init__(self, config):
        self.config = config

    def __call__(self, chunk: MoleculeTable, rejects: Rejects):
        import pandas as pd

        from pmtoolkit.chem.fingerprints import fingerprints

        pos, mols = _valid_positions(chunk)
        fp = fingerprints(mols, self.config)
        # an invalid molecule has no fingerprint: a float table with NaN, not a row of zeros
        out = np.full((len(chunk), fp.shape[1]), np.nan, dtype=np.float32)
        out[pos] = fp
        frame = pd.DataFrame(out, columns=[f"fp_{j}" for j in range(fp.shape[1])],
                             index=chunk.frame.index)
        return frame.astype("UInt16" if self.config.counts else "UInt8")


class Filter:
    def __init__(self, catalogs: Sequence[str], passing_only: bool):
        from pmtoolkit.chem.filters import check_catalogs

        self.catalogs = check_catalogs(catalogs)
        self.passing_only = passing_only

    def __call__(self, chunk: MoleculeTable, rejects: Rejects):
        from pmtoolkit.chem.filters import filter_table

        frame = filter_table([m.mol if m is not None else None for m in chunk.molecules],
                             catalogs=self.catalogs)
        frame.index = chunk.frame.index
        return frame

    def keep(self, added) -> np.ndarray:
        return added["passes"].fillna(False).to_numpy(dtype=bool) if self.passing_only else None


def transform_file(transform, input: str | os.PathLike, output: str | os.PathLike, *,
                   smiles_column: str = "smiles", fmt: str | None = None,
                   on_invalid: OnInvalid = "skip", chunksize: int = 10_000,
                   final: str | os.PathLike | None = None,
                   max_atoms: int | None = MAX_ATOMS,
                   cluster: Cluster | None = None) -> tuple[int, int]:
    """Apply ``transform`` to every chunk; returns (rows written, invalid molecules).
    ``final``: where ``output`` will end up when written in a temporary folder (for the log).
    ``max_atoms``: molecules with more heavy atoms are rejects (None: no limit).

    ``transform``: one of this module's transforms (:class:`Standardize`, ...) or a
    :class:`~pmtoolkit.core.distributed.WorkerModel` that builds one; with a ``cluster`` that
    runs on Dask, the latter (each worker builds it once), and partitions of whole chunks give
    the output of a single-process run."""
    from pmtoolkit.core.distributed import WorkerModel, named_model, run_job
    from pmtoolkit.core.progress import progress

    if cluster is not None:
        job = TransformJob(named_model(transform), input, smiles_column, fmt, chunksize,
                           max_atoms, on_invalid, cluster.chunks_per_partition(chunksize))
        info = run_job(job, output, cluster)
        return info["rows"], info["rejected"]
    if isinstance(transform, WorkerModel):
        transform = transform.get()
    all_rejects = Rejects(source=str(input), item_name="smiles")
    rows = 0
    with TableWriter(output) as writer:
        for chunk in progress(iter_molecules(input, smiles_column=smiles_column, fmt=fmt,
                                             chunksize=chunksize, max_atoms=max_atoms),
                              desc="molecules",
                              unit="chunk"):
            frame, chunk_rejects = _transformed(transform, chunk, str(input))
            if chunk_rejects and on_invalid == "error":
                chunk_rejects.raise_first()
            all_rejects.extend(chunk_rejects)
            writer.write(frame)
            rows += len(frame)
    return rows, _apply_rejects(all_rejects, output, final)


def _transformed(transform, chunk: MoleculeTable, source: str):
    """One chunk's output rows (its columns, then the transform's; only the kept rows) and
    its rejects."""
    import pandas as pd

    rejects = Rejects(source=source, item_name="smiles")
    rejects.extend(chunk.rejects)
    added = transform(chunk, rejects)
    base = chunk.frame.drop(columns=[c for c in added.columns if c in chunk.frame])
    frame = pd.concat([base, added], axis=1)
    keep = getattr(transform, "keep", lambda _: None)(added)
    if keep is not None:
        frame = frame[keep]
    return frame.reset_index(drop=True), rejects


def _apply_rejects(rejects: Rejects, output, final) -> int:
    rejects.items.sort(key=lambda r: r.line or 0)
    rejects.apply("skip", output, final=final)
    return len(rejects)


@dataclass
class TransformJob:
    """:func:`transform_file` as a :class:`pmtoolkit.core.distributed.Job`: a partition is
    ``per_partition`` chunks of unparsed rows; a worker parses and transforms them, the merge
    writes them in order as a single-process run does."""

    transform: Any  # WorkerModel
    input: str
    smiles_column: str
    fmt: str | None
    chunksize: int
    max_atoms: int | None
    on_invalid: OnInvalid
    per_partition: int
    name: str = "molecules"

    def __post_init__(self):
        from pmtoolkit.chem.molecules import ROW_FORMATS, molecule_format

        from pmtoolkit.core.distributed import shard_list, shards_format

        self.shards = shard_list(self.input)
        self.fmt = shards_format(self.shards, lambda s: molecule_format(s, self.fmt))
        self.input = ", ".join(self.shards)  # the input's name in messages
        if self.fmt not in ROW_FORMATS:
            raise BadInputError(f"a partitioned run reads {', '.join(ROW_FORMATS)} files; "
                                f"'{self.shards[0]}' is SDF",
                                hint="convert it, e.g. pmt mol standardize -o molecules.csv")
        self.stop_on_rejects = self.on_invalid == "error"

    def settings(self) -> dict[str, Any]:
        # not --on-invalid: a partition's rows are the same under either policy, so a run
        # stopped at a reject resumes with skip
        return {"transform": self.transform.key, "smiles-column": self.smiles_column,
                "format": self.fmt, "chunk-size": self.chunksize, "max-atoms": self.max_atoms,
                "partition-size": self.chunksize * self.per_partition}

    def read(self, shard: str):
        from pmtoolkit.chem.molecules import iter_molecule_rows
        from pmtoolkit.core.distributed import batched

        return batched(iter_molecule_rows(shard, smiles_column=self.smiles_column,
                                          fmt=self.fmt, chunksize=self.chunksize),
                       self.per_partition)

    def run(self, payload):
        from pmtoolkit.chem.molecules import parse_molecule_rows
        from pmtoolkit.core.distributed import PartResult

        transform = self.transform.get()
        result = PartResult(counts={"chunk_rejects": []})
        for rows in payload:
            chunk = parse_molecule_rows(rows, fmt=self.fmt, smiles_column=self.smiles_column,
                                        source=self.input, max_atoms=self.max_atoms)
            frame, rejects = _transformed(transform, chunk, self.input)
            result.tables.append(frame)
            result.rejects.extend(rejects)
            result.counts["chunk_rejects"].append(len(rejects))
        return result

    def merge(self, parts, output) -> dict[str, Any]:
        all_rejects = Rejects(source=self.input, item_name="smiles")
        with TableWriter(output) as writer:
            for part in parts:
                start = 0
                for frame, n in zip(part.tables, part.counts["chunk_rejects"]):
                    chunk_rejects = Rejects(self.input, "smiles",
                                            part.rejects[start:start + n])
                    start += n
                    if chunk_rejects and self.on_invalid == "error":
                        chunk_rejects.raise_first()
                    all_rejects.extend(chunk_rejects)
                    writer.write(frame)
        return {"rows": writer.rows, "rejected": _apply_rejects(all_rejects, output, None)}


def split_file(input: str | os.PathLike, outdir: str | os.PathLike, *, method: str,
               sizes: Sequence[float], seed: int, smiles_column: str = "smiles",
               fmt: str | None = None, folds: int = 5, target_column: str | None = None,
               on_invalid: OnInvalid = "error", overwrite: bool = False,
               max_atoms: int | None = MAX_ATOMS) -> dict[str, int]:
    """Write ``split.json`` (or ``fold_K/split.json`` for k-fold) and the split tables."""
    from pmtoolkit.chem.splits import _check_folds, check_sizes, kfold, make_split

    # settings first: a bad one is refused before the input is read
    if method == "kfold":
        _check_folds(folds)
    else:
        check_sizes(sizes)
    table = read_molecules(input, smiles_column=smiles_column, fmt=fmt,
                           columns=[target_column] if target_column else None,
                           max_atoms=max_atoms)
    if on_invalid == "error":
        table.rejects.raise_first()
    valid_rows = np.flatnonzero(table.mask)
    frame = table.frame.iloc[valid_rows].reset_index(drop=True)
    mols = [m.mol for m in table.valid]
    smiles = [m.smiles for m in table.valid]
    if len(mols) < 3:
        raise BadInputError(f"only {len(mols)} valid molecules in '{input}'; nothing to split")
    y = None
    if method == "stratified":
        if not target_column:
            raise BadInputError("a stratified split needs --label-column")
        y = frame[target_column].to_numpy(dtype=float)
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        if table.rejects:
            table.rejects.apply("skip", tmp, final=outdir)
        if method == "kfold":
            from pmtoolkit.chem.scaffolds import murcko_scaffold

            counts = {}
            for s in kfold(len(mols), folds, seed, groups=[murcko_scaffold(m) for m in mols],
                           smiles=smiles):
                folder = Path(tmp) / f"fold_{s.fold}"
                folder.mkdir()
                _write_split(s, frame, folder)
                counts[f"fold_{s.fold}"] = len(s.test)
            return counts
        s = make_split(method, mols=mols, y=y, n=len(mols), sizes=sizes, seed=seed,
                       smiles=smiles)
        _write_split(s, frame, Path(tmp))
        return {k: len(v) for k, v in s.indices().items()}


def _write_split(s, frame, folder: Path) -> None:
    s.save(folder / "split.json")
    for name, idx in s.indices().items():
        write_table(frame.iloc[idx], folder / f"{name}.csv")
