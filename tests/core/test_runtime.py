"""Seeds, devices, the registry of named blocks and the shipped-data manifest."""
from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
import torch

from pmtoolkit.core import shipped
from pmtoolkit.core.devices import (
    launched_processes,
    lightning_devices,
    resolve_device,
    secondary_process,
    torch_device,
)
from pmtoolkit.core.errors import BadInputError, MissingResourceError
from pmtoolkit.core.registry import Registry
from pmtoolkit.core.seeds import seed_everything


def test_seed_everything_repeats_every_generator():
    def draw():
        rng = seed_everything(123)
        return random.random(), np.random.rand(), torch.rand(1).item(), rng.random()

    assert draw() == draw()
    with pytest.raises(BadInputError):
        seed_everything(-1)
    with pytest.raises(BadInputError):
        seed_everything(1.5)


def test_devices():
    assert str(resolve_device("cpu")) == "cpu"
    assert torch_device("cpu") == torch.device("cpu")
    assert lightning_devices("cpu") == ("cpu", 1, 1)
    assert str(resolve_device("cpu:4")) == "cpu:4" and str(resolve_device("cpu:1")) == "cpu"
    assert lightning_devices("cpu:4") == ("cpu", 4, 1)  # 4 DDP processes on this machine
    assert torch_device("cpu:4") == torch.device("cpu")
    auto = resolve_device("auto")
    assert auto.kind == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:x", "tpu", "cuda:0,", "cpu:", "cpu:0", "cpu:257", "cpu:-1"):
        with pytest.raises(BadInputError, match="invalid device"):
            resolve_device(bad)


_LAUNCH_ENV = ("TORCHELASTIC_RUN_ID", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "RANK", "LOCAL_RANK",
               "NODE_RANK", "SLURM_NTASKS", "SLURM_NNODES", "SLURM_PROCID", "SLURM_JOB_NAME")


@pytest.fixture
def launch_env(monkeypatch):
    for name in _LAUNCH_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_cluster_launcher_sets_the_processes_per_node_and_the_nodes(launch_env):
    assert launched_processes() is None and not secondary_process()
    # torchrun --nnodes 2 --nproc-per-node 4: second node's third process
    for k, v in {"TORCHELASTIC_RUN_ID": "job", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4",
                 "RANK": "6", "LOCAL_RANK": "2"}.items():
        launch_env.setenv(k, v)
    assert launched_processes() == (2, 4) and secondary_process()
    assert lightning_devices("cpu") == ("cpu", 4, 2)
    assert lightning_devices("cpu:4") == ("cpu", 4, 2)
    with pytest.raises(BadInputError, match="names 3 device.*4 process"):
        lightning_devices("cpu:3")
    launch_env.setenv("RANK", "0")
    launch_env.setenv("LOCAL_RANK", "0")
    assert not secondary_process()  # the first process of the run writes the outputs


def test_slurm_tasks_are_processes_and_only_task_0_writes(launch_env):
    for k, v in {"SLURM_NTASKS": "8", "SLURM_NNODES": "2", "SLURM_PROCID": "0",
                 "SLURM_JOB_NAME": "train"}.items():
        launch_env.setenv(k, v)
    assert launched_processes() == (2, 4) and not secondary_process()
    launch_env.setenv("SLURM_PROCID", "5")
    assert secondary_process()
    launch_env.setenv("SLURM_JOB_NAME", "bash")  # an interactive allocation: not a launch
    assert launched_processes() is None
    # Lightning's own extra processes on one machine carry LOCAL_RANK only
    launch_env.delenv("SLURM_NTASKS")
    launch_env.delenv("SLURM_PROCID")
    launch_env.setenv("LOCAL_RANK", "1")
    assert secondary_process()


def test_a_secondary_training_process_writes_nothing(launch_env, tmp_path):
    from pmtoolkit.core.io import atomic_dir, atomic_path, atomic_write, work_dir, write_json

    launch_env.setenv("LOCAL_RANK", "1")
    out = tmp_path / "run"
    with atomic_dir(out) as scratch:
        assert not str(scratch).startswith(str(tmp_path))
        write_json(scratch / "metrics.json", {"a": 1})
        checkpoints = work_dir(out, {"x": 1})
    assert not scratch.exists()
    with atomic_write(tmp_path / "table.csv") as fh:
        fh.write("a\n")
    with atomic_path(tmp_path / "cells.h5ad") as path:
        path.write_text("x")
    assert list(tmp_path.iterdir()) == [] and checkpoints == out / "work"
    # an output folder that the first process would refuse is its business, not this one's
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    with atomic_dir(tmp_path / "foreign"):
        pass
    assert (tmp_path / "foreign" / "keep.txt").read_text() == "mine"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_asking_for_a_missing_gpu_is_a_user_error():
    with pytest.raises(BadInputError, match="no CUDA GPU"):
        resolve_device("cuda:0")


def test_registry_lists_names_and_loads_lazily():
    reg = Registry("featurizer")
    reg.add("sqrt", "math:sqrt", help="square root")
    reg.add("abs", abs)
    assert reg.names() == ["sqrt", "abs"] and "sqrt" in reg
    assert reg.get("sqrt")(9) == 3.0
    with pytest.raises(MissingResourceError, match="unknown featurizer 'sqr'.*did you mean 'sqrt'"):
        reg.get("sqr")
    with pytest.raises(ValueError, match="twice"):
        reg.add("abs", abs)


def test_every_shipped_file_matches_the_manifest():
    entries = shipped.manifest()
    assert entries, "data/MANIFEST lists nothing"
    for e in entries:
        assert e.kind in shipped.KINDS
        assert shipped.verify(e).stat().st_size == e.bytes
        assert e.source and e.licence
    total = sum(e.bytes for e in entries)
    assert total < 50 * 1024 * 1024, "data/ must stay well under 50 MB"


def test_shipped_lookup_errors(tmp_path, monkeypatch):
    with pytest.raises(MissingResourceError, match="unknown shipped dataset 'esoll'.*'esol'"):
        shipped.path("esoll", "dataset")
    # a copy of the data folder with one file altered
    copy = tmp_path / "data"
    shutil.copytree(shipped.data_dir(), copy)
    monkeypatch.setenv("PMT_DATA_DIR", str(copy))
    target = copy / shipped.entry("esol").path
    target.write_text(target.read_text().replace("Amigdalin", "Amygdalin"))
    with pytest.raises(MissingResourceError, match="does not match the sha256"):
        shipped.path("esol")
    target.unlink()
    with pytest.raises(MissingResourceError, match="is missing"):
        shipped.path("esol")
