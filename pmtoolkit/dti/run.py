"""File-to-file workflows behind ``pmt dti train|predict|evaluate|screen``.

``train_file`` takes a table of pairs or a DeepDTA benchmark folder (``davis``, ``kiba``),
splits, trains, evaluates on the test pairs and writes an output folder: ``model.safetensors``,
``config.json`` (resolved), ``split.json``, ``metrics.json``, ``test_predictions.csv``, a
parity plot, and ``rejected.csv`` when pairs were skipped.
"""
from __future__ import annotations

import heapq
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core import workflow
from pmtoolkit.core.distributed import Cluster
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid, Rejects
from pmtoolkit.core.workflow import Parts
from pmtoolkit.dti.config import DTIConfig
from pmtoolkit.dti.data import PairData
from pmtoolkit.dti.model import DTIModel, evaluate, fit

log = logging.getLogger(__name__)

#: shipped models by the name users type; each is a ``model`` entry in data/MANIFEST
SHIPPED_MODELS = ("davis",)
SPLITS = ("setting1", "random", "cold-drug", "cold-target", "cold-pair")


def load(name_or_path: str | os.PathLike) -> DTIModel:
    """A saved model file, or a shipped model by name (``davis``)."""
    from pmtoolkit.core.model import load_named

    return load_named(name_or_path, shipped_names=SHIPPED_MODELS, model_class=DTIModel,
                      what="drug-target model")


def _is_benchmark(path: Path) -> bool:
    return path.is_dir() and (path / "proteins.txt").is_file() and (path / "folds").is_dir()


def load_training_pairs(input: str | os.PathLike, *, smiles_column: str = "smiles",
                        sequence_column: str = "sequence", value_column: str = "value"):
    """``(data, rejects, benchmark or None)`` from a pairs table or a benchmark folder."""
    from pmtoolkit.dti.data import load_benchmark, read_pairs

    path = Path(input)
    if _is_benchmark(path):
        bench = load_benchmark(path)
        return bench.data, Rejects(source=str(path), item_name="pair"), bench
    data, rejects = read_pairs(path, smiles_column=smiles_column,
                               sequence_column=sequence_column, value_column=value_column)
    return data, rejects, None


@dataclass
class PairTask:
    """The drug-target domain's :class:`~pmtoolkit.core.workflow.SupervisedTask`: a pairs
    table or a DeepDTA benchmark folder, a random / cold-drug / cold-target / cold-pair split
    (setting1: the benchmark's own folds; or a saved split), an ensemble of pair networks,
    the test pairs' predictions and a parity plot."""

    input: str | os.PathLike
    config: DTIConfig
    smiles_column: str = "smiles"
    sequence_column: str = "sequence"
    value_column: str = "value"
    split_method: str = "random"
    sizes: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    fold: int = -1
    split_file: str | os.PathLike | None = None
    on_invalid: OnInvalid = "error"
    noun: str = "pairs"
    min_records: int = 10

    def __post_init__(self):
        from pmtoolkit.chem.splits import split_method

        self.split_method = split_method(self.split_method)
        self._bench = None

    def settings(self) -> dict[str, Any]:
        from pmtoolkit.core.config import to_dict

        return {"model": to_dict(self.config), "data": {
            "input": str(self.input), "smiles-column": self.smiles_column,
            "sequence-column": self.sequence_column, "value-column": self.value_column,
            "split": self.split_method, "sizes": list(self.sizes),
            "split-seed": self.split_seed, "fold": self.fold, "on-invalid": self.on_invalid,
            "split-file": None if self.split_file is None else str(self.split_file)}}

    def read(self):
        data, rejects, self._bench = load_training_pairs(
            self.input, smiles_column=self.smiles_column,
            sequence_column=self.sequence_column, value_column=self.value_column)
        return data, rejects

    def split(self, data) -> Parts:
        from pmtoolkit.chem.splits import load_split
        from pmtoolkit.dti.splits import pair_keys, pair_split, setting1_split

        if self.split_file:
            s = load_split(self.split_file)
            s.check(pair_keys(data))
        elif self.split_method == "setting1":
            if self._bench is None:
                raise BadInputError("--split setting1 needs a DeepDTA benchmark folder (davis, "
                                    "kiba) as input")
            s = setting1_split(self._bench, self.fold)
        else:
            s = pair_split(data, self.split_method, self.sizes, self.split_seed)
        return Parts.of(data, s)

    def fit(self, train, valid, *, workdir, checkpoints, resume):
        return fit(train, valid, self.config, workdir=workdir, checkpoints=checkpoints,
                   resume=resume)

    def evaluate(self, model, data):
        return evaluate(model, data)

    def write_test(self, model, test, folder: Path) -> None:
        _write_test(test, model.predict(test), folder, self.config.task)


def train_file(input: str | os.PathLike, outdir: str | os.PathLike, *, config: DTIConfig,
               smiles_column: str = "smiles", sequence_column: str = "sequence",
               value_column: str = "value", split: str = "random",
               sizes: tuple[float, float, float] = (0.8, 0.1, 0.1), split_seed: int = 0,
               fold: int = -1, split_file: str | os.PathLike | None = None,
               on_invalid: OnInvalid = "error", overwrite: bool = False,
               resume: bool = False) -> dict[str, Any]:
    """Train on a pairs table or benchmark folder and write the run folder ``outdir``
    (:func:`pmtoolkit.core.workflow.train_file`); an interrupted run keeps its checkpoints in
    ``outdir/work`` and continues from them with ``resume``."""
    task = PairTask(input, config, smiles_column, sequence_column, value_column, split, sizes,
                    split_seed, fold, split_file, on_invalid)
    return workflow.train_file(task, outdir, source=input, on_invalid=on_invalid,
                               overwrite=overwrite, resume=resume)


def _write_test(test: PairData, pred: np.ndarray, folder: Path, task: str) -> None:
    import pandas as pd

    from pmtoolkit.core import metrics as M
    from pmtoolkit.core.plots import figure, parity

    frame = pd.DataFrame({
        "drug": [test.drug_ids[d] if test.drug_ids else test.drugs[d] for d in test.drug_index],
        "protein": [test.protein_ids[p] if test.protein_ids else f"protein{p}"
                    for p in test.protein_index],
        "value": test.y, "prediction": pred})
    frame.to_csv(folder / "test_predictions.csv", index=False)
    if task != "regression":
        return
    y, p = np.asarray(test.y, float), pred
    with figure(folder / "test_plot.png", size=(4.2, 4.0)) as (_, ax):
        parity(ax, y, p, xlabel="measured", ylabel="predicted",
               title=f"test CI {M.concordance_index(y, p):.3f}, MSE {M.mse(y, p):.3f}")


def _read_pair_table(input, smiles_column, sequence_column, value_column=None):
    from pmtoolkit.core.io import read_table
    from pmtoolkit.dti.data import pairs_from_frame

    columns = [smiles_column, sequence_column] + ([value_column] if value_column else [])
    table = read_table(input, columns=columns)  # every column kept; missing ones are errors
    data, rejects = pairs_from_frame(table, smiles_column=smiles_column,
                                     sequence_column=sequence_column,
                                     value_column=value_column, source=str(input))
    return table, data, rejects


@dataclass
class PairPredictTask:
    """The drug-target domain's :class:`~pmtoolkit.core.workflow.PredictTask`: a table of
    pairs streamed in chunks; the model adds ``prediction`` (``probability`` for a
    classifier) and, for an ensemble, ``uncertainty`` (the members' standard deviation)."""

    input: str | os.PathLike
    smiles_column: str = "smiles"
    sequence_column: str = "sequence"
    chunksize: int = 10_000
    noun: str = "pairs"
    item_name: str = "pair"

    @property
    def source(self) -> str:
        return str(self.input)

    def chunks(self):
        for rows in self.rows():
            yield self.parse(rows)

    def rows(self):
        """The table's rows, unparsed, chunk by chunk (every column kept; missing ones are
        errors): cheap reading for a partitioned run, parsed where the work is done."""
        from pmtoolkit.core.io import iter_table

        return iter_table(self.input, columns=[self.smiles_column, self.sequence_column],
                          chunksize=self.chunksize)

    def parse(self, rows):
        from pmtoolkit.core.workflow import InputChunk
        from pmtoolkit.dti.data import pairs_from_frame

        data, rejects = pairs_from_frame(rows, smiles_column=self.smiles_column,
                                         sequence_column=self.sequence_column,
                                         source=self.source)
        return InputChunk(rows, data, rejects)

    def predict(self, model: DTIModel, records: PairData):
        import pandas as pd

        members = model.predict_members(records)
        col = "probability" if model.config.task == "classification" else "prediction"
        out = pd.DataFrame({col: members.mean(axis=0)})
        if len(members) > 1:
            out["uncertainty"] = members.std(axis=0, ddof=1)
        return out


def predict_file(model: DTIModel | str | os.PathLike, input: str | os.PathLike,
                 output: str | os.PathLike, *, smiles_column: str = "smiles",
                 sequence_column: str = "sequence", on_invalid: OnInvalid = "skip",
                 chunksize: int = 10_000, cluster: Cluster | None = None) -> int:
    """Predict every pair of a table, streamed in chunks of ``chunksize`` rows
    (:func:`pmtoolkit.core.workflow.predict_file`); the output keeps the input's rows and
    columns and adds ``prediction`` (``probability``), ``uncertainty`` for an ensemble, and
    ``error`` (empty predictions and a reason where a pair is invalid).

    ``model``: a loaded model, or its name or path (what a ``cluster`` running on Dask needs:
    each worker loads it once; the output is the same as a single-process run's)."""
    from pmtoolkit.core.distributed import WorkerModel

    if isinstance(model, (str, os.PathLike)):
        model = WorkerModel.named(load, model)
    task = PairPredictTask(input, smiles_column, sequence_column, chunksize)
    return workflow.predict_file(task, model, output, on_invalid=on_invalid, cluster=cluster)


def evaluate_file(model: DTIModel, input: str | os.PathLike, *, smiles_column: str = "smiles",
                  sequence_column: str = "sequence", value_column: str = "value",
                  on_invalid: OnInvalid = "error") -> dict[str, Any]:
    class Table(PairTask):
        def read(self):
            _, data, rejects = _read_pair_table(input, smiles_column, sequence_column,
                                                value_column)
            return data, rejects

    task = Table(input, model.config, smiles_column, sequence_column, value_column,
                 on_invalid=on_invalid)
    return workflow.evaluate_file(task, model, source=input, on_invalid=on_invalid)


def screen_file(model: DTIModel | str | os.PathLike, target: str | os.PathLike,
                library: str | os.PathLike, output: str | os.PathLike, *, top: int = 100,
                smiles_column: str = "smiles", id_column: str | None = None,
                lowest: bool = False, chunksize: int = 5000,
                cluster: Cluster | None = None) -> dict[str, Any]:
    """Rank a molecule library of any size against each protein of a FASTA file.

    The library is streamed in chunks and only the best ``top`` molecules per target are
    kept, so memory stays flat. Highest predictions rank first (pKd, KIBA scores and
    probabilities grow with binding); ``lowest`` for a model of Kd or IC50 values; equal
    predictions rank in library order. The output has one row per (target, rank): target,
    rank, smiles, id, line, prediction. Invalid molecules go to
    ``<output stem>.rejected.csv``.

    ``model``: a loaded model, or its name or path. With a ``cluster`` that runs on Dask
    (:class:`pmtoolkit.core.distributed.Cluster`) the library is scored in partitions of whole
    chunks, each worker loading the model by name or path once; the hits equal a
    single-process run's."""
    from pmtoolkit.core.distributed import WorkerModel, named_model, run_job
    from pmtoolkit.dti.data import read_fasta

    if top < 1:
        raise BadInputError("--top must be at least 1")
    if isinstance(model, (str, os.PathLike)):
        model = WorkerModel.named(load, model)
    records = read_fasta(target)
    if cluster is None:
        return _screen_here(model.get() if isinstance(model, WorkerModel) else model, records,
                            library, output, top=top, smiles_column=smiles_column,
                            id_column=id_column, lowest=lowest, chunksize=chunksize)
    job = ScreenJob(named_model(model), records, library, top=top,
                    smiles_column=smiles_column, id_column=id_column, lowest=lowest,
                    chunksize=chunksize, per_partition=cluster.chunks_per_partition(chunksize))
    t0 = time.perf_counter()
    info = run_job(job, output, cluster)
    seconds = time.perf_counter() - t0
    return {**info, "targets": len(records), "seconds": seconds,
            "molecules_per_second": info["molecules"] / seconds if seconds else 0.0}


class _Hits:
    """The best ``top`` molecules per target so far. An entry is (score, -shard, -line,
    smiles, id, line): the higher score wins, then the molecule read first."""

    def __init__(self, n_targets: int, top: int):
        self.top = top
        self.heaps: list[list] = [[] for _ in range(n_targets)]

    def push(self, t: int, entry: tuple) -> None:
        heap = self.heaps[t]
        if len(heap) < self.top:
            heapq.heappush(heap, entry)
        elif entry[:3] > heap[0][:3]:
            heapq.heapreplace(heap, entry)

    def add(self, scores: np.ndarray, smiles, ids, lines, shard: int = 0) -> None:
        """A chunk's signed scores (molecules x targets)."""
        for t in range(scores.shape[1]):
            col = scores[:, t]
            # only molecules that can enter this target's top list are pushed
            k = min(self.top, len(col))
            for i in np.argpartition(-col, k - 1)[:k]:
                self.push(t, (float(col[i]), -shard, -lines[i], smiles[i], ids[i], lines[i]))

    def table(self):
        """Every kept entry as a row (target index, score, shard, smiles, id, line)."""
        import pandas as pd

        rows = [(t, e[0], -e[1], e[3], e[4], e[5]) for t, heap in enumerate(self.heaps)
                for e in heap]
        return pd.DataFrame(rows, columns=["target", "score", "shard", "smiles", "id", "line"])

    def add_table(self, table) -> None:
        for t, score, shard, smi, ident, line in table.itertuples(index=False):
            line = int(line)
            self.push(int(t), (float(score), -int(shard), -line, smi, ident, line))

    def write(self, names: list[str], sign: float, output,
              files: list[str] | None = None) -> None:
        """The hits table; with ``files`` (a library of several shards), a ``file`` column
        before ``line`` says which shard each hit is from."""
        import pandas as pd

        from pmtoolkit.core.io import TableWriter

        rows = []
        for t, heap in enumerate(self.heaps):
            for rank, e in enumerate(sorted(heap, key=lambda e: e[:3], reverse=True), 1):
                rows.append({"target": names[t], "rank": rank, "smiles": e[3], "id": e[4],
                             **({"file": files[-e[1]]} if files else {}), "line": e[5],
                             "prediction": e[0] * sign})
        frame = pd.DataFrame(rows, columns=["target", "rank", "smiles", "id",
                                            *(["file"] if files else []), "line",
                                            "prediction"])
        with TableWriter(output) as writer:
            writer.write(frame)


def _screen_here(model: DTIModel, records, library, output, *, top, smiles_column, id_column,
                 lowest, chunksize) -> dict[str, Any]:
    """:func:`screen_file` in this process."""
    from pmtoolkit.core.progress import progress

    targets = model.encode_targets([seq for _, seq in records])
    sign = -1.0 if lowest else 1.0
    hits = _Hits(len(records), top)
    rejects = Rejects(source=str(library), item_name="smiles")
    n_scored = 0
    t0 = time.perf_counter()
    for smiles, ids, lines, codes in progress(
            _library_chunks(library, smiles_column, id_column, chunksize, rejects),
            desc="screen", unit="chunk"):
        if codes:
            hits.add(model.score_codes(codes, targets) * sign, smiles, ids, lines)
        n_scored += len(codes)
    seconds = time.perf_counter() - t0
    hits.write([name for name, _ in records], sign, output)
    if rejects:
        rejects.apply("skip", output)
    return {"molecules": n_scored, "rejected": len(rejects), "targets": len(records),
            "seconds": seconds, "molecules_per_second": n_scored / seconds if seconds else 0.0}


@dataclass
class ScreenJob:
    """:func:`screen_file` as a :class:`pmtoolkit.core.distributed.Job`: a partition is
    ``per_partition`` chunks of library rows; it gives its own best ``top`` per target, and
    the merge keeps the best of those (the best of the whole library: the order is total)."""

    model: Any  # WorkerModel
    records: list[tuple[str, str]]
    library: Any  # a file, or a list of them (shards)
    top: int
    smiles_column: str
    id_column: str | None
    lowest: bool
    chunksize: int
    per_partition: int
    name: str = "screen"

    def __post_init__(self):
        from pmtoolkit.chem.molecules import ROW_FORMATS, molecule_format

        from pmtoolkit.core.distributed import shard_list, shards_format

        self.shards = shard_list(self.library)
        self.fmt = shards_format(self.shards, molecule_format)
        if self.fmt not in ROW_FORMATS:
            raise BadInputError(f"a partitioned screen reads {', '.join(ROW_FORMATS)} "
                                f"libraries; '{self.shards[0]}' is {self.fmt.upper()}",
                                hint="convert it, e.g. pmt mol standardize -o library.csv")

    def settings(self) -> dict[str, Any]:
        return {"model": list(self.model.args), "model-version": self.model.version,
                "targets": [[n, s] for n, s in self.records], "top": self.top,
                "smiles-column": self.smiles_column, "id-column": self.id_column,
                "lowest": self.lowest, "chunk-size": self.chunksize,
                "partition-size": self.chunksize * self.per_partition}

    def read(self, shard: str):
        from pmtoolkit.core.distributed import batched

        number = self.shards.index(shard)
        return ((number, rows) for rows in batched(
            _library_rows(shard, self.fmt, self.smiles_column, self.id_column,
                          self.chunksize), self.per_partition))

    def run(self, payload):
        from pmtoolkit.core.distributed import PartResult, WorkerModel

        model = self.model.get()
        seqs = tuple(seq for _, seq in self.records)
        # the targets' encodings, like the model, once per worker
        targets = WorkerModel(_encode_targets, (self.model, seqs)).get()
        sign = -1.0 if self.lowest else 1.0
        hits = _Hits(len(self.records), self.top)
        shard, chunks = payload
        rejects = Rejects(source=self.shards[shard], item_name="smiles")
        n = 0
        for rows in chunks:
            smiles, ids, lines, codes = _featurize_rows(
                rows, self.fmt, self.smiles_column, self.id_column, self.shards[shard],
                rejects, n_jobs=1)  # a worker is one core (and may not fork)
            if codes:
                hits.add(model.score_codes(codes, targets) * sign, smiles, ids, lines, shard)
            n += len(codes)
        return PartResult([hits.table()], rejects.items, {"molecules": n})

    def merge(self, parts, output) -> dict[str, Any]:
        hits = _Hits(len(self.records), self.top)
        rejects = Rejects(source=", ".join(self.shards), item_name="smiles")
        n = 0
        for part in parts:
            hits.add_table(part.tables[0])
            rejects.items.extend(part.rejects)
            n += part.counts["molecules"]
        hits.write([name for name, _ in self.records], -1.0 if self.lowest else 1.0, output,
                   self.shards if len(self.shards) > 1 else None)
        if rejects:
            rejects.apply("skip", output)
        return {"molecules": n, "rejected": len(rejects)}


def _encode_targets(model_ref, sequences: tuple[str, ...]):
    return model_ref.get().encode_targets(list(sequences))


def _library_chunks(library, smiles_column: str, id_column: str | None, chunksize: int,
                    rejects: Rejects):
    """(smiles, ids, lines, graph codes) of the valid molecules of each chunk of a library.
    Tables are featurised from their SMILES on every core (parsing included); .smi and SDF
    go through the molecule reader."""
    from pmtoolkit.chem.featurizer import mol_codes
    from pmtoolkit.chem.molecules import iter_molecules, molecule_format

    fmt = molecule_format(library)
    if fmt != "sdf":
        for rows in _library_rows(library, fmt, smiles_column, id_column, chunksize):
            yield _featurize_rows(rows, fmt, smiles_column, id_column, str(library), rejects)
        return
    for chunk in iter_molecules(library, smiles_column=smiles_column, id_column=id_column,
                                chunksize=chunksize):
        rejects.extend(chunk.rejects)
        valid = chunk.valid
        yield ([m.smiles for m in valid], [m.id for m in valid], [m.line for m in valid],
               [mol_codes(m.mol) for m in valid])


def _library_rows(library, fmt: str, smiles_column: str, id_column: str | None,
                  chunksize: int):
    """A table's or .smi file's rows, chunk by chunk, unparsed (indexed by line)."""
    from pmtoolkit.chem.molecules import iter_molecule_rows

    return iter_molecule_rows(library, smiles_column=smiles_column, id_column=id_column,
                              fmt=fmt, chunksize=chunksize)


def _featurize_rows(rows, fmt: str, smiles_column: str, id_column: str | None, source: str,
                    rejects: Rejects, n_jobs: int = 0):
    """(smiles, ids, lines, graph codes) of the valid molecules among one chunk of
    :func:`_library_rows`; the invalid ones join ``rejects``."""
    from pmtoolkit.chem.featurizer import GraphFeaturizer, mol_codes
    from pmtoolkit.chem.molecules import parse_molecule_rows

    if fmt == "smi":
        chunk = parse_molecule_rows(rows, fmt=fmt, source=source)
        rejects.extend(chunk.rejects)
        valid = chunk.valid
        return ([m.smiles for m in valid], [m.id for m in valid], [m.line for m in valid],
                [mol_codes(m.mol) for m in valid])
    featurizer = GraphFeaturizer(cache_size=0)
    smiles = ["" if not isinstance(x, str) else x for x in rows[smiles_column]]
    lines = [int(i) for i in rows.index]
    codes, chunk_rejects = featurizer.featurize(smiles, start_line=lines[0] if lines else 1,
                                                source=source, n_jobs=n_jobs)
    rejects.extend(chunk_rejects)
    keep = [i for i, c in enumerate(codes) if c is not None]
    ids = rows[id_column].astype(str).tolist() if id_column else [None] * len(rows)
    return ([smiles[i].strip() for i in keep], [ids[i] for i in keep],
            [lines[i] for i in keep], [codes[i] for i in keep])
