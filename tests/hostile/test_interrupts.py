"""Stopping a run: Ctrl-C and SIGTERM end it with one line and exit 130/143, leave nothing
half-written, and a training run continues with --resume where it stopped."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def _start(args, cwd):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pmtoolkit.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(path_glob, root: Path, proc, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = list(root.glob(path_glob))
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {path_glob} appeared: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{path_glob} did not appear within {timeout} s")


@pytest.mark.parametrize("signum, code", [
    (signal.SIGTERM, 143),
    # Ctrl-C is covered quickly by test_interrupts_mol.py and tests/core/test_training.py
    pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow),
])
def test_property_training_stops_and_resumes(tmp_path, signum, code):
    out = tmp_path / "run"
    args = ["property", "train", "-i", TESTS / "data" / "esol_tiny.csv", "--target-columns",
            "logS", "-o", out, "--split", "random", "--epochs", 60, "--hidden-size", 32,
            "--ffn-hidden-size", 32]
    proc = _start(args, tmp_path)
    _wait_for("run/work/member0/last.ckpt", tmp_path, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == "pmt: error: interrupted"
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["work"]  # the checkpoint, nothing else
    assert not [p for p in tmp_path.rglob("*") if ".pmt-tmp" in p.name]

    again = _start(args, tmp_path)  # without --resume: refused, nothing touched
    _, err = again.communicate(timeout=120)
    assert again.returncode == 2 and "holds an interrupted run" in err

    resumed = _start([*args, "--resume"], tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "resuming from" in err
    with open(out / "training" / "member0" / "history.csv") as fh:
        epochs = [int(r["epoch"]) for r in csv.DictReader(fh)]
    assert epochs == list(range(60))  # the epochs before the stop are kept, none twice
    assert (out / "model.safetensors").is_file() and not (out / "work").exists()
