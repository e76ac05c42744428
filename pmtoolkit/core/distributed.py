"""Batch jobs in partitions: in this process, on a local Dask cluster, or on the user's own.

A :class:`Job` is an ordered list of partitions, each a pure function of its slice of the input
and of the job's settings. :func:`run_job` runs them where a :class:`Cluster` says:

- nowhere in particular (``Cluster()``): one after the other in this process, without Dask;
- ``Cluster(workers=N)``: a ``dask.distributed.LocalCluster`` of N single-threaded worker
  processes on this machine, started and stopped here;
- ``Cluster(scheduler="tcp://HOST:PORT")``: an existing cluster (``dask scheduler`` /
  ``dask worker``, dask-jobqueue, dask-kubernetes), whose workers run this same pmtoolkit.

The client (this process) reads the input and ships each partition's slice to a worker;
reading a table is a thousand times cheaper than scoring it, and a worker then needs no view
of the input files. A worker loads a model once (:class:`WorkerModel`) and keeps it for every
partition it runs. Each finished partition comes back to the client, which writes it into
``OUTPUT.parts/`` atomically (its tables as Parquet, then its entry ``part-….json``: digest of
its input, rejects, counts); ``job.json`` there records the job's settings. Once every
partition is in, the job merges them in input order into ``OUTPUT`` (written atomically: it
appears only complete) and the parts folder goes. An interrupted or failed run leaves the
parts folder; the same command again computes only the partitions whose entry is missing or
whose input changed (the digest differs). Other settings than the folder's are an error that
names the first difference: its partitions are not silently thrown away.

A partition whose input cannot be read (a truncated or binary stretch of a file) or a bad record
under a stop-at-the-first-reject policy ends the run with exit code 2 after the other partitions
have finished, and nothing at ``OUTPUT``; a lost worker's partitions are run again by Dask
(``retries``, and the scheduler's own rescheduling when a worker process dies).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pmtoolkit.core.errors import BadInputError, PmtError
from pmtoolkit.core.io import Reject, is_stdio, json_safe, write_json, write_table
from pmtoolkit.core.progress import progress_bar

log = logging.getLogger(__name__)

#: the most worker processes ``--workers`` starts on one machine
MAX_WORKERS = 256
#: rows a partition holds when ``--partition-size`` is not given (rounded to whole chunks):
#: about half a minute of ``dti screen`` on one core, so a task's Dask overhead (~ms) is noise
#: and a lost worker costs little
PARTITION_ROWS = 20_000
#: times a partition whose task raised is run again (a worker process that dies has its tasks
#: rescheduled by the scheduler as well, up to ``distributed.scheduler.allowed-failures``)
RETRIES = 2
#: the most rows ``--partition-size`` puts in one partition: a partition is held in memory, in
#: the client while it waits and in the worker that scores it
MAX_PARTITION_ROWS = 1_000_000
#: seconds an existing cluster may take to show its first worker
WAIT_FOR_WORKERS = 60
#: partitions kept in flight per worker thread: one running, one waiting, so none idles
IN_FLIGHT_PER_THREAD = 2
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss")
PARTS_SUFFIX = ".parts"
_JOB_FILE = "job.json"
_FORMAT = 1


# --------------------------------------------------------------------------- where


@dataclass(frozen=True)
class Cluster:
    """Where a partitioned job runs: ``workers`` local processes, the cluster at
    ``scheduler``, or (neither) this process; ``partition_size``: rows per partition (None:
    about :data:`PARTITION_ROWS`)."""

    workers: int | None = None
    scheduler: str | None = None
    partition_size: int | None = None

    def __post_init__(self):
        if self.workers is not None and self.scheduler is not None:
            raise BadInputError("--workers and --scheduler exclude each other",
                                hint="--workers starts a local cluster, --scheduler uses yours")
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            raise BadInputError(f"--workers {self.workers} is out of range 1..{MAX_WORKERS}")
        if self.scheduler is not None:
            check_scheduler(self.scheduler)
        if self.partition_size is not None and self.partition_size < 1:
            raise BadInputError(f"--partition-size {self.partition_size} must be at least 1")

    @property
    def distributed(self) -> bool:
        """Whether the job runs on Dask (else in this process)."""
        return self.workers is not None or self.scheduler is not None

    def chunks_per_partition(self, chunksize: int, default_rows: int = PARTITION_ROWS) -> int:
        """How many of a job's chunks of ``chunksize`` rows make one partition. A partition is
        whole chunks, so a model sees the very batches a single-process run gives it (a
        network's float sums depend on the batch) and the result is the same to the last
        digit; a ``partition_size`` that is not a multiple of ``chunksize`` is an error.
        ``default_rows``: the job's own default, where a row costs more than a molecule."""
        if self.partition_size is None:
            return max(1, default_rows // chunksize)
        if self.partition_size % chunksize:
            raise BadInputError(f"--partition-size {self.partition_size:,} is not a multiple "
                                f"of the chunk size {chunksize:,}",
                                hint="partitions are whole chunks, so that the result equals a "
                                     "single-process run's; use a multiple, or change "
                                     "--chunk-size")
        return self.partition_size // chunksize


_ADDRESS = re.compile(r"^(?P<scheme>[a-z]+)://(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)"
                      r":(?P<port>[0-9]{1,5})$")


def check_scheduler(address: str) -> str:
    """``address`` if it is a Dask scheduler address (``tcp://HOST:PORT``, or tls, ws, wss),
    else a one-line :class:`BadInputError` saying what is expected."""
    m = _ADDRESS.match(address.strip())
    if not m or m["scheme"] not in SCHEDULER_SCHEMES or not 1 <= int(m["port"]) <= 65535:
        raise BadInputError(f"--scheduler {address!r} is not a scheduler address",
                            hint="expected tcp://HOST:PORT (or tls://, ws://, wss://), as "
                                 "'dask scheduler' prints it")
    return address.strip()


# --------------------------------------------------------------------------- models


_MODELS: OrderedDict[str, Any] = OrderedDict()
_MODELS_LOCK = threading.RLock()  # a load may get another WorkerModel
#: models one worker process keeps: a long-lived worker serving several jobs drops the oldest
MODELS_KEPT = 4


@dataclass(frozen=True)
class WorkerModel:
    """A model (or any costly object a partition needs), loaded once per process by
    ``load(*args)`` and kept there: every partition a worker runs shares it. ``args`` name it
    (a model's name or path, a config); ``version`` tells apart two states of the same name (a
    model file rewritten between runs of a long-lived worker). ``load`` must be a module-level
    function or class, so that it travels to workers by name."""

    load: Callable[..., Any]
    args: tuple = ()
    version: str = ""

    @classmethod
    def named(cls, load: Callable[..., Any], *names: str | os.PathLike) -> WorkerModel:
        """The model(s) ``load(*names)`` returns, for names that may be files: a file's size
        and modification time are part of its identity."""
        stamps = []
        for name in names:
            p = Path(name)
            if p.is_file():
                st = p.stat()
                stamps.append(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}")
        return cls(load, tuple(str(n) for n in names), ";".join(stamps))

    @property
    def key(self) -> str:
        return repr((self.load.__module__, self.load.__qualname__, self.args, self.version))

    def get(self) -> Any:
        """The object, loaded on first use in this process."""
        with _MODELS_LOCK:
            if self.key in _MODELS:
                _MODELS.move_to_end(self.key)
                return _MODELS[self.key]
            obj = self.load(*self.args)
            _MODELS[self.key] = obj
            while len(_MODELS) > MODELS_KEPT:
                _MODELS.popitem(last=False)
            return obj


def named_model(model: Any) -> WorkerModel:
    """``model`` as a run on Dask needs it: a :class:`WorkerModel`, which each worker loads by
    name or path (loaded here first, so that a bad name stops the run before it starts); a
    model object in memory is refused."""
    if not isinstance(model, WorkerModel):
        raise BadInputError("a run on Dask loads the model on each worker",
                            hint="give the model's name or path, not a loaded model")
    model.get()
    return model


# --------------------------------------------------------------------------- jobs


@dataclass
class PartResult:
    """What a partition gives: its result tables in order, the records it could not use, and
    counts (molecules scored, ...: JSON values) for the merge."""

    tables: list[Any] = field(default_factory=list)  # pandas DataFrames
    rejects: list[Reject] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)


class Job(Protocol):
    """What a domain declares to run a batch job in partitions (see the module docstring)."""

    #: what the job is called in the progress bar and messages ("dti screen")
    name: str
    #: where the input is read from, in order (files; one for a single input)
    shards: list[str]

    def settings(self) -> dict[str, Any]:
        """Everything besides the input that decides the result, as JSON values (the options,
        the model names): a rerun resumes only with the same."""

    def read(self, shard: str) -> Iterator[Any]:
        """The input slices of the partitions of one shard, in order; cheap (no parsing), in
        the client. Bad input raises :class:`BadInputError`."""

    def run(self, payload: Any) -> PartResult:
        """One partition's result, a pure function of ``payload`` and the job's settings; runs
        on a worker (models through :class:`WorkerModel`)."""

    def merge(self, parts: Iterator[PartResult], output: str | os.PathLike) -> dict[str, Any]:
        """Write ``output`` (atomically) from every partition's result in input order; returns
        a summary."""

    # optional: ``stop_on_rejects = True``: the first partition with rejects stops the
    # submission of further partitions (the merge then reports the first reject, as a
    # single-process run under ``--on-invalid error`` would)


@dataclass(frozen=True)
class Partition:
    """One slice of a job's input: ``shard`` and ``number`` (its place in input order)."""

    shard: int
    number: int
    payload: Any
    digest: str

    @property
    def name(self) -> str:
        return f"part-{self.shard:05d}-{self.number:07d}"


@dataclass(frozen=True)
class _Failed:
    """A partition that ran into bad input on a worker: the one-line message."""

    message: str


def _run_partition(job: Job, payload: Any) -> PartResult | _Failed:
    # bad input is an answer, not a failure for Dask to retry: the same input fails again
    try:
        return job.run(payload)
    except PmtError as exc:
        if exc.exit_code != 2:
            raise
        return _Failed(exc.one_line())


def digest(payload: Any) -> str:
    """sha256 of a partition's input: DataFrames by their columns, types, index and values,
    lists of them element by element, anything else as JSON."""
    h = hashlib.sha256()
    _feed(h, payload)
    return h.hexdigest()


def _feed(h, value: Any) -> None:
    import pandas as pd

    if isinstance(value, (list, tuple)):
        h.update(b"[%d" % len(value))
        for v in value:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(value, pd.DataFrame):
        h.update(json.dumps([[str(c) for c in value.columns],
                             [str(t) for t in value.dtypes]]).encode())
        h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    else:
        h.update(json.dumps(json_safe(value), sort_keys=True).encode())


# --------------------------------------------------------------------------- the parts folder


class _Parts:
    """``OUTPUT.parts/``: the job's settings, and each finished partition's tables and entry."""

    def __init__(self, output: str | os.PathLike, settings: dict[str, Any]):
        self.path = Path(f"{output}{PARTS_SUFFIX}")
        recorded = self.path / _JOB_FILE
        current = json.loads(json.dumps(json_safe({"format": _FORMAT, **settings})))
        if self.path.exists():
            if not recorded.is_file():
                raise BadInputError(f"'{self.path}' exists and was not written by pmtoolkit",
                                    hint="move it away, or write the output elsewhere")
            before = json.loads(recorded.read_text(encoding="utf-8"))
            if before != current and not self.count():  # nothing to lose: start afresh
                write_json(recorded, current)
            elif before != current:
                from pmtoolkit.core.io import _first_difference

                raise BadInputError(
                    f"'{self.path}' holds the partitions of a run with other settings "
                    f"({_first_difference(before, current)})",
                    hint="rerun with the same options to resume it, or remove that folder "
                         "to start afresh")
            log.info("resuming from the finished partitions in %s", self.path)
        else:
            self.path.mkdir(parents=True)
            write_json(recorded, current)

    def _entry(self, p: Partition) -> Path:
        return self.path / f"{p.name}.json"

    def finished(self, p: Partition) -> bool:
        """Whether ``p`` was finished by an earlier run from the same input."""
        entry = self._entry(p)
        if not entry.is_file():
            return False
        if json.loads(entry.read_text(encoding="utf-8")).get("digest") == p.digest:
            return True
        log.info("%s: the input changed since it was computed; computing it again", p.name)
        return False

    def save(self, p: Partition, result: PartResult) -> None:
        """Write ``p``'s tables, then its entry: an entry names a complete partition."""
        self._entry(p).unlink(missing_ok=True)
        for k, table in enumerate(result.tables):
            write_table(table, self.path / f"{p.name}.{k}.parquet")
        write_json(self._entry(p), {
            "digest": p.digest, "tables": len(result.tables), "counts": result.counts,
            "rejects": [[r.line, r.item, r.reason, r.file] for r in result.rejects]},
            indent=None)

    def has_rejects(self, p: Partition) -> bool:
        return bool(json.loads(self._entry(p).read_text(encoding="utf-8"))["rejects"])

    def load(self, name: str) -> PartResult:
        import pandas as pd

        entry = self.path / f"{name}.json"
        if not entry.is_file():
            raise RuntimeError(f"partition {name} is not finished")
        e = json.loads(entry.read_text(encoding="utf-8"))
        return PartResult(
            tables=[pd.read_parquet(self.path / f"{name}.{k}.parquet")
                    for k in range(e["tables"])],
            rejects=[Reject(item, line, reason, *file) for line, item, reason, *file
                     in e["rejects"]],
            counts=e["counts"])

    def count(self) -> int:
        return sum(1 for _ in self.path.glob("part-*.json"))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------- running


def run_job(job: Job, output: str | os.PathLike, cluster: Cluster) -> dict[str, Any]:
    """Run ``job`` partition by partition where ``cluster`` says, keep each finished
    partition in ``OUTPUT.parts/``, and merge them into ``output`` (see the module
    docstring). Returns the merge's summary, with ``partitions`` and ``resumed`` added."""
    if is_stdio(output):
        raise BadInputError("a partitioned run keeps its partitions beside the output, so it "
                            "needs an output file", hint="give -o a file name, not -")
    parts = _Parts(output, {"job": job.name, "shards": list(job.shards), **job.settings()})
    order: list[str] = []
    failures: list[tuple[tuple[int, int], str]] = []
    stop = threading.Event()
    bar = progress_bar(desc=job.name, unit="partition")
    resumed = 0

    def todo() -> Iterator[Partition]:
        nonlocal resumed
        for s, shard in enumerate(job.shards):
            number = 0
            try:
                for payload in job.read(shard):
                    if stop.is_set():
                        return
                    p = Partition(s, number, payload, digest(payload))
                    order.append(p.name)
                    number += 1
                    if parts.finished(p):
                        resumed += 1
                        bar.update(1)
                        if getattr(job, "stop_on_rejects", False) and parts.has_rejects(p):
                            stop.set()
                        continue
                    yield p
            except BadInputError as exc:  # the shard's other partitions stay
                failures.append(((s, number), exc.one_line()))

    try:
        with _executor(cluster) as execute:
            for p, outcome in execute(job, todo()):
                if isinstance(outcome, _Failed):
                    failures.append(((p.shard, p.number), outcome.message))
                else:
                    if len(job.shards) > 1:  # which file each reject is from
                        outcome.rejects = [r if r.file else dataclasses.replace(
                            r, file=str(job.shards[p.shard])) for r in outcome.rejects]
                    parts.save(p, outcome)
                    if getattr(job, "stop_on_rejects", False) and outcome.rejects:
                        stop.set()
                bar.update(1)
        if failures:
            failures.sort()
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            kept = parts.count()
            raise BadInputError(f"{failures[0][1]}{more}", hint=kept and (
                f"the {kept} finished partitions are kept in {parts.path}; the same command "
                "resumes from them") or None)
    except BaseException:
        if not parts.count():  # stopped before a partition finished: nothing to resume
            parts.remove()
        raise
    finally:
        bar.close()
    log.info("%d partitions (%d from an earlier run); merging into %s", len(order), resumed,
             output)
    summary = job.merge((parts.load(name) for name in order), output)
    parts.remove()
    return {**summary, "partitions": len(order), "resumed": resumed}


@contextlib.contextmanager
def _executor(cluster: Cluster):
    """A function ``(job, partitions) -> iterator of (partition, outcome)`` running them where
    ``cluster`` says, for the duration of the block."""
    if not cluster.distributed:
        yield lambda job, todo: ((p, _run_partition(job, p.payload)) for p in todo)
        return
    with _client(cluster) as client:
        yield functools.partial(_on_dask, client)


@contextlib.contextmanager
def _client(cluster: Cluster):
    """A ``distributed.Client`` of a local cluster started (and stopped) here, or of the
    scheduler the user runs."""
    Client = _dask().Client
    if cluster.workers is not None:
        with _local_cluster(cluster.workers) as lc, Client(lc) as client:
            _log_cluster(client, f"a local cluster of {cluster.workers} worker processes")
            yield client
        return
    try:
        client = Client(cluster.scheduler)
    except (OSError, TimeoutError) as exc:
        raise BadInputError(f"cannot reach the Dask scheduler at {cluster.scheduler} "
                            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                            hint="start it with 'dask scheduler', or check the address") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS)
        except TimeoutError:
            raise BadInputError(f"the Dask scheduler at {cluster.scheduler} has no workers "
                                f"(waited {WAIT_FOR_WORKERS} s)",
                                hint="start some with 'dask worker ADDRESS'") from None
        _log_cluster(client, f"the cluster at {cluster.scheduler}")
        yield client


@contextlib.contextmanager
def shared(cluster: Cluster) -> Iterator[Cluster]:
    """``cluster`` for several jobs in a row (a pipeline's steps): a ``--workers`` cluster is
    started once, here, and the jobs reach it by its scheduler's address; any other is
    itself."""
    if cluster.workers is None:
        yield cluster
        return
    with _local_cluster(cluster.workers) as lc:
        log.info("a local cluster of %d worker processes for the run; dashboard %s",
                 cluster.workers, lc.dashboard_link)
        yield Cluster(scheduler=lc.scheduler_address, partition_size=cluster.partition_size)


def _dask():
    try:
        import distributed
    except ImportError:
        raise BadInputError("--workers and --scheduler need Dask", hint="pip install "
                            "'pmtoolkit[dask]'") from None
    return distributed


def _local_cluster(workers: int):
    """A ``LocalCluster`` of ``workers`` single-threaded processes sharing out the cores.

    Without Dask's ``MALLOC_TRIM_THRESHOLD_`` (:data:`WORKER_ENVIRON_DROPPED`): setting it
    fixes glibc's mmap threshold at 128 KiB, so every array a model allocates per batch is a
    fresh mmap with its page faults, and a worker scored variants at half the speed of the
    same code in one process (measured: 8.4 s vs 4.9 s for 20,480 SNVs, 1 thread each)."""
    import dask

    # a Nanny writes its pre-spawn variables into this process's environment when it spawns
    # (an earlier cluster here left them), and the workers inherit that: drop them while ours
    # start, then put back what was there
    saved = {name: os.environ.pop(name) for name in WORKER_ENVIRON_DROPPED
             if name in os.environ}
    try:
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{name}": None
                              for name in WORKER_ENVIRON_DROPPED}):
            return _dask().LocalCluster(n_workers=workers, threads_per_worker=1,
                                        processes=True, dashboard_address=":0",
                                        env={"OMP_NUM_THREADS": str(worker_threads(workers))})
    finally:
        os.environ.update(saved)


#: variables of Dask's ``distributed.nanny.pre-spawn-environ`` that pmtoolkit's local workers
#: go without (see :func:`_local_cluster`; for the workers of a cluster the user starts,
#: docs/scale.md gives the Dask config file that does the same)
WORKER_ENVIRON_DROPPED = ("MALLOC_TRIM_THRESHOLD_",)


def worker_threads(workers: int) -> int:
    """The threads torch uses in each of ``workers`` local worker processes: the machine's
    cores shared out (torch's own default would be all of them, in every worker). A model's
    float32 sums can differ in the last digits with the thread count, so a single-process run
    equals a ``--workers`` run to the last digit at this many threads (``OMP_NUM_THREADS``)."""
    return max(1, (os.cpu_count() or 1) // workers)


def _log_cluster(client, what: str) -> None:
    threads = client.nthreads()
    log.info("running on %s: %d workers, %d threads; dashboard %s", what, len(threads),
             sum(threads.values()), client.dashboard_link)


def _on_dask(client, job: Job, todo: Iterator[Partition]
             ) -> Iterator[tuple[Partition, PartResult | _Failed]]:
    """Submit partitions as workers free up (a bounded number in flight: the input is read
    as fast as it is scored, and memory stays flat) and yield them as they finish."""
    import uuid

    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    pending: dict[Any, Partition] = {}
    done = as_completed()
    partitions = iter(todo)

    def submit() -> None:
        limit = IN_FLIGHT_PER_THREAD * max(1, sum(client.nthreads().values()))
        while len(pending) < limit:
            p = next(partitions, None)
            if p is None:
                return
            # the slice travels inside the task, so the scheduler can run it again elsewhere
            future = client.submit(_run_partition, job, p.payload, retries=RETRIES,
                                   key=f"pmt-{run}-{p.name}")
            pending[future] = p
            done.add(future)

    submit()
    for future in done:
        p = pending.pop(future)
        outcome = future.result()
        future.release()
        yield p, outcome
        submit()


def shard_list(inputs: Any) -> list[str]:
    """A job's input as its list of shards: one file, or several (a list)."""
    return [str(x) for x in inputs] if isinstance(inputs, (list, tuple)) else [str(inputs)]


def shards_format(shards: list[str], fmt_of: Callable[[str], str]) -> str:
    """The one format of every shard (``fmt_of(shard)``); shards of mixed formats are an
    error naming the first that differs."""
    fmt = fmt_of(shards[0])
    for shard in shards[1:]:
        other = fmt_of(shard)
        if other != fmt:
            raise BadInputError(f"the input files are of mixed formats: '{shards[0]}' is "
                                f"{fmt.upper()}, '{shard}' is {other.upper()}",
                                hint="give shards of one format")
    return fmt


def batched(items: Iterator[Any], n: int) -> Iterator[list[Any]]:
    """Lists of ``n`` consecutive items (the last may hold fewer)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
