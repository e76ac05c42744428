"""core.distributed: a batch job in partitions, in this process and on a real Dask cluster
(two worker processes), with resume, bad shards, other settings and a worker that dies."""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pmtoolkit.core.distributed import (
    PARTS_SUFFIX,
    Cluster,
    PartResult,
    WorkerModel,
    run_job,
)
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Reject, write_table

#: a line of a shard that cannot be read: the shard's reading fails there
UNREADABLE = "<unreadable>"


@dataclass
class SquareJob:
    """Squares the integers of text files, ``size`` lines a partition; anything else on a line
    is a reject. Every computed partition leaves a file in ``marks`` (so a test counts them);
    ``interrupt_at``: the partition starting at that line is stopped by a Ctrl-C;
    ``die_once``: a partition's first attempt kills its worker process; ``bad_partition``:
    the partition starting at that line raises bad input."""

    shards: list[str]
    size: int
    marks: str
    interrupt_at: int | None = None
    die_once: bool = False
    bad_partition: int | None = None
    name: str = "square"

    def settings(self):
        return {"size": self.size}

    def read(self, shard):
        lines = Path(shard).read_text().splitlines()
        for start in range(0, len(lines), self.size):
            chunk = lines[start:start + self.size]
            if UNREADABLE in chunk:
                raise BadInputError(f"'{shard}' cannot be read at line "
                                    f"{start + chunk.index(UNREADABLE) + 1}")
            yield [Path(shard).name,
                   pd.DataFrame({"x": chunk}, index=range(start + 1, start + 1 + len(chunk)))]

    def run(self, payload):
        shard, frame = payload
        first = int(frame.index[0])
        if self.die_once:
            died = Path(self.marks) / f"died-{shard}-{first}"
            if not died.exists():
                died.touch()
                os._exit(1)
        if first == self.interrupt_at:
            raise KeyboardInterrupt
        if first == self.bad_partition:
            raise BadInputError(f"{shard}: partition at line {first} is bad")
        (Path(self.marks) / f"ran-{shard}-{first}-{uuid.uuid4().hex}").touch()
        rows, rejects = [], []
        for line, x in frame["x"].items():
            if x.lstrip("-").isdigit():
                rows.append((shard, int(line), int(x) ** 2))
            else:
                rejects.append(Reject(x, int(line), "not an integer"))
        table = pd.DataFrame(rows, columns=["shard", "line", "square"])
        return PartResult([table], rejects, {"n": len(rows)})

    def merge(self, parts, output):
        tables, rejects, n = [], [], 0
        for part in parts:
            tables += part.tables
            rejects += part.rejects
            n += part.counts["n"]
        write_table(pd.concat(tables, ignore_index=True), output)
        return {"n": n, "rejects": [(r.line, r.item) for r in rejects]}


def _shards(folder: Path, **contents: list) -> list[str]:
    paths = []
    for name, values in contents.items():
        path = folder / f"{name}.txt"
        path.write_text("".join(f"{v}\n" for v in values))
        paths.append(str(path))
    return paths


def _job(tmp_path, shards, **kwargs) -> SquareJob:
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    return SquareJob(shards, kwargs.pop("size", 3), str(marks), **kwargs)


def _ran(job: SquareJob) -> list[str]:
    return sorted("-".join(p.name.split("-")[1:3]) for p in Path(job.marks).glob("ran-*"))


def _expected(*shards: list) -> list[tuple]:
    return [(name, i + 1, int(v) ** 2) for name, values in shards for i, v in enumerate(values)
            if str(v).lstrip("-").isdigit()]


def _rows(path) -> list[tuple]:
    return list(pd.read_csv(path).itertuples(index=False, name=None))


# --------------------------------------------------------------------------- in this process


def test_partitions_are_merged_in_input_order_and_the_parts_folder_goes(tmp_path):
    a, b = list(range(10)), [-3, "x", 4, 5]
    job = _job(tmp_path, _shards(tmp_path, a=a, b=b))
    out = tmp_path / "out.csv"
    info = run_job(job, out, Cluster())
    assert _rows(out) == _expected(("a.txt", a), ("b.txt", b))
    assert info == {"n": 13, "rejects": [(2, "x")], "partitions": 6, "resumed": 0}
    assert not Path(f"{out}{PARTS_SUFFIX}").exists()


def test_an_interrupted_run_resumes_from_its_finished_partitions(tmp_path):
    values = list(range(20))
    shards = _shards(tmp_path, a=values)
    out = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        run_job(_job(tmp_path, shards, interrupt_at=10), out, Cluster())
    assert not out.exists()
    parts = Path(f"{out}{PARTS_SUFFIX}")
    assert len(list(parts.glob("part-*.json"))) == 3  # lines 1, 4, 7
    job = _job(tmp_path, shards)
    before = _ran(job)
    info = run_job(job, out, Cluster())
    assert info["resumed"] == 3 and info["partitions"] == 7
    # only the partitions from line 10 on were computed again
    assert sorted(set(_ran(job)) - set(before)) == sorted(
        f"a.txt-{line}" for line in (10, 13, 16, 19))
    assert _rows(out) == _expected(("a.txt", values))


def test_a_changed_input_partition_is_computed_again(tmp_path):
    shards = _shards(tmp_path, a=list(range(9)))
    out = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        run_job(_job(tmp_path, shards, interrupt_at=7), out, Cluster())
    changed = [0, 1, 2, 30, 4, 5, 6, 7, 8]
    _shards(tmp_path, a=changed)
    job = _job(tmp_path, shards)
    info = run_job(job, out, Cluster())
    assert info["resumed"] == 1  # lines 1-3 unchanged; 4-6 changed
    assert _rows(out) == _expected(("a.txt", changed))


def test_other_settings_than_the_finished_partitions_are_refused(tmp_path):
    shards = _shards(tmp_path, a=list(range(9)))
    out = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        run_job(_job(tmp_path, shards, interrupt_at=4), out, Cluster())
    with pytest.raises(BadInputError, match=r"other settings \(size: 3 then, 2 now\)") as e:
        run_job(_job(tmp_path, shards, size=2), out, Cluster())
    assert e.value.exit_code == 2 and "remove that folder" in str(e.value)
    assert not out.exists()


def test_a_run_stopped_before_any_partition_leaves_nothing_and_other_settings_then_start(
        tmp_path):
    shards = _shards(tmp_path, a=list(range(6)))
    out = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        run_job(_job(tmp_path, shards, interrupt_at=1), out, Cluster())
    assert not Path(f"{out}{PARTS_SUFFIX}").exists()
    run_job(_job(tmp_path, shards, size=2), out, Cluster())
    assert _rows(out) == _expected(("a.txt", list(range(6))))


def test_a_folder_in_the_way_that_pmtoolkit_did_not_write_is_refused(tmp_path):
    out = tmp_path / "out.csv"
    Path(f"{out}{PARTS_SUFFIX}").mkdir()
    with pytest.raises(BadInputError, match="not written by pmtoolkit"):
        run_job(_job(tmp_path, _shards(tmp_path, a=[1])), out, Cluster())


def test_a_bad_shard_is_reported_after_the_others_finished_and_they_are_kept(tmp_path):
    a, b, c = list(range(6)), [1, 2, 3, 4, UNREADABLE, 6], [7, 8]
    shards = _shards(tmp_path, a=a, b=b, c=c)
    out = tmp_path / "out.csv"
    job = _job(tmp_path, shards)
    with pytest.raises(BadInputError, match=r"b.txt' cannot be read at line 5") as e:
        run_job(job, out, Cluster())
    assert e.value.exit_code == 2 and "4 finished partitions are kept" in str(e.value)
    assert not out.exists()
    assert _ran(job) == ["a.txt-1", "a.txt-4", "b.txt-1", "c.txt-1"]
    fixed = [1, 2, 3, 4, 5, 6]
    _shards(tmp_path, b=fixed)
    info = run_job(job, out, Cluster())
    assert info["resumed"] == 4 and _ran(job)[-1] == "c.txt-1"
    assert sorted(set(_ran(job))) == ["a.txt-1", "a.txt-4", "b.txt-1", "b.txt-4", "c.txt-1"]
    assert _rows(out) == _expected(("a.txt", a), ("b.txt", fixed), ("c.txt", c))


def test_a_partition_that_finds_bad_input_is_reported_and_the_rest_finish(tmp_path):
    shards = _shards(tmp_path, a=list(range(9)))
    out = tmp_path / "out.csv"
    job = _job(tmp_path, shards, bad_partition=4)
    with pytest.raises(BadInputError, match="partition at line 4 is bad"):
        run_job(job, out, Cluster())
    assert _ran(job) == ["a.txt-1", "a.txt-7"] and not out.exists()


def test_stdout_cannot_hold_partitions(tmp_path):
    with pytest.raises(BadInputError, match="needs an output file"):
        run_job(_job(tmp_path, _shards(tmp_path, a=[1])), "-", Cluster())


@pytest.mark.parametrize("kwargs, message", [
    ({"workers": 2, "scheduler": "tcp://127.0.0.1:8786"}, "exclude each other"),
    ({"workers": 0}, "out of range"),
    ({"scheduler": "127.0.0.1:8786"}, "not a scheduler address"),
    ({"scheduler": "tcp://host:99999"}, "not a scheduler address"),
    ({"scheduler": "http://host:8786"}, "not a scheduler address"),
    ({"scheduler": "tcp://host:8786; rm -rf /"}, "not a scheduler address"),
    ({"partition_size": 0}, "at least 1"),
])
def test_cluster_settings_are_checked(kwargs, message):
    with pytest.raises(BadInputError, match=message):
        Cluster(**kwargs)


def test_scheduler_addresses_of_every_transport_are_accepted():
    for address in ("tcp://127.0.0.1:8786", "tls://scheduler.cluster.local:8786",
                    "tcp://[::1]:8786", "ws://node-1:80"):
        assert Cluster(scheduler=address).distributed


def test_a_partition_is_whole_chunks():
    assert Cluster(workers=1, partition_size=15_000).chunks_per_partition(5000) == 3
    assert Cluster(workers=1).chunks_per_partition(5000) == 4
    assert Cluster(workers=1).chunks_per_partition(50_000) == 1
    with pytest.raises(BadInputError, match="not a multiple of the chunk size 5,000"):
        Cluster(workers=1, partition_size=12_000).chunks_per_partition(5000)


LOADS: list[str] = []


def _load_counted(name: str) -> str:
    LOADS.append(name)
    return name.upper()


def test_a_worker_model_is_loaded_once_per_process(tmp_path):
    LOADS.clear()
    a = WorkerModel(_load_counted, ("davis",))
    assert a.get() == "DAVIS" and WorkerModel(_load_counted, ("davis",)).get() == "DAVIS"
    assert LOADS == ["davis"]
    model = tmp_path / "m.safetensors"
    model.write_text("1")
    first = WorkerModel.named(_load_counted, model)
    first.get()
    os.utime(model, ns=(0, 0))  # the file rewritten: another model
    WorkerModel.named(_load_counted, model).get()
    assert LOADS == ["davis", str(model), str(model)]


# --------------------------------------------------------------------------- on Dask


@pytest.fixture(scope="module")
def scheduler():
    """The address of the local Dask cluster pmtoolkit starts for ``--workers 2``, started
    where an earlier cluster left Dask's MALLOC_TRIM_THRESHOLD_ in the environment."""
    pytest.importorskip("distributed")
    from pmtoolkit.core.distributed import _local_cluster

    before = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"
    try:
        with _local_cluster(2) as cluster:
            assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # put back
            yield cluster.scheduler_address
    finally:
        if before is None:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        else:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = before


def _worker_environ(names):
    return {name: os.environ.get(name) for name in names}


def test_local_workers_go_without_dasks_malloc_trim_threshold(scheduler):
    """Dask's MALLOC_TRIM_THRESHOLD_ fixes glibc's mmap threshold: variants scored at half
    speed in a worker. pmtoolkit's local workers are started without it, even where an
    earlier Dask cluster of this process left it in the environment (the module's cluster
    below is started after the test sets it)."""
    from distributed import Client

    from pmtoolkit.core.distributed import worker_threads

    with Client(scheduler) as client:
        envs = client.run(_worker_environ, ["MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS"])
    assert len(envs) == 2
    for env in envs.values():
        assert env["MALLOC_TRIM_THRESHOLD_"] is None, env
        assert env["OMP_NUM_THREADS"] == str(worker_threads(2))


def test_on_dask_the_result_is_the_single_process_one(tmp_path, scheduler):
    a, b = [1, "y", *range(20)], list(range(-5, 5))
    shards = _shards(tmp_path, a=a, b=b)
    here, there = tmp_path / "here.csv", tmp_path / "there.csv"
    assert run_job(_job(tmp_path, shards), here, Cluster()) == \
        run_job(_job(tmp_path, shards), there, Cluster(scheduler=scheduler))
    assert here.read_bytes() == there.read_bytes()


def test_a_worker_killed_mid_job_has_its_partitions_run_again(tmp_path, scheduler):
    values = list(range(12))
    shards = _shards(tmp_path, a=values)
    out = tmp_path / "out.csv"
    job = _job(tmp_path, shards, die_once=True)
    info = run_job(job, out, Cluster(scheduler=scheduler))
    # every partition's first attempt killed the worker process that ran it
    assert sorted(p.name for p in Path(job.marks).glob("died-*")) == [
        f"died-a.txt-{line}" for line in (1, 10, 4, 7)]
    assert info["partitions"] == 4 and info["n"] == 12
    assert _rows(out) == _expected(("a.txt", values))
