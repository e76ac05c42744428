"""Training on several processes (Lightning DDP) as far as one machine allows: ``--device
cpu:2`` (Lightning starts the second process itself) and two "nodes" on 127.0.0.1 started by
``torchrun``, the launcher of a multi-node run. The command runs as a real process: Lightning's
extra processes re-run the command line.

With a batch that holds the whole training set, DDP's averaged gradient over the two halves is
the one-process gradient, so both runs must end on the one-process weights: a run whose second
process did not take part (or trained on its own) would not."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

pytestmark = pytest.mark.slow

TRAIN = ["property", "train", "--label-column", "logS", "--split", "random", "--epochs", "3",
         "--hidden-size", "16", "--ffn-hidden-size", "16", "--ensemble-size", "2"]


def _run(args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "pmtoolkit.cli", *map(str, args)], check=False,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(run):
    return load_file(str(run / "model.safetensors"))


def _close(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst <= atol, worst


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, test_data_dir):
    out = tmp_path_factory.mktemp("single") / "run"
    result = _run([*TRAIN, "-i", test_data_dir / "esol_tiny.csv", "-o", out, "--device", "cpu"])
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def test_data_dir():
    from tests.conftest import TEST_DATA

    return TEST_DATA


def test_cpu_2_trains_on_two_processes_and_writes_once(tmp_path, one_process, test_data_dir):
    out = tmp_path / "run"
    result = _run([*TRAIN, "-i", test_data_dir / "esol_tiny.csv", "-o", out, "--device", "cpu:2"])
    assert result.returncode == 0, result.stderr
    assert "trained on 2 processes (DDP over 1 node(s))" in result.stderr
    assert result.stderr.count("model written to") == 1  # the second process said nothing
    assert "reducer" not in result.stderr  # torch's C++ warnings are quieted
    _close(_weights(out), _weights(one_process))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    metrics = (out / "metrics.json").read_text()
    assert '"n_train": 32' in metrics


def test_two_nodes_under_torchrun(tmp_path, one_process, test_data_dir):
    """Two torchrun "nodes" of one process each on 127.0.0.1, writing one shared output folder
    as on a cluster's shared file system: node 0 writes it, node 1 writes nothing; both exit
    0 and train as one run (the one-process weights)."""
    out, port = tmp_path / "run", _free_port()
    procs = []
    for rank in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
               "--nproc-per-node", "1", "--node-rank", str(rank), "--master-addr", "127.0.0.1",
               "--master-port", str(port), "-m", "pmtoolkit.cli", *TRAIN,
               "-i", str(test_data_dir / "esol_tiny.csv"), "-o", str(out), "--device", "cpu"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], results[0][1][-2000:] + results[1][1][-2000:]
    (_, err0), (out1, err1) = results
    assert "model written to" in err0 and "model written to" not in err1 and out1 == ""
    assert "trained on 2 processes (DDP over 2 node(s))" in err0
    assert "INFO" not in err1  # the second node's logs are quieted to warnings
    _close(_weights(out), _weights(one_process))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_launcher_and_a_device_count_that_disagree_exit_2(tmp_path, test_data_dir):
    env = {"TORCHELASTIC_RUN_ID": "x", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "RANK": "0",
           "LOCAL_RANK": "0"}
    result = _run([*TRAIN, "-i", test_data_dir / "esol_tiny.csv", "-o", tmp_path / "run",
                   "--device", "cpu:3"], env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "launcher started 2 process(es) per node" in result.stderr
    assert not (tmp_path / "run").exists()
