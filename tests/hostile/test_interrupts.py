"""Stopping a run: Ctrl-C and SIGTERM end it with one line and exit 130/143, leave nothing
half-written, and a training run continues with --resume where it stopped."""
from __future__ import annotations

import csv
import signal
from pathlib import Path

import pytest

from tests.hostile.helpers import start_pmt, wait_for

TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("signum, code", [
    (signal.SIGTERM, 143),
    # Ctrl-C is covered quickly by test_interrupts_mol.py and tests/core/test_training.py
    pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow),
])
def test_property_training_stops_and_resumes(tmp_path, signum, code):
    out = tmp_path / "run"
    args = ["property", "train", "-i", TESTS / "data" / "esol_tiny.csv", "--label-column",
            "logS", "-o", out, "--split", "random", "--epochs", 60, "--hidden-size", 32,
            "--ffn-hidden-size", 32]
    proc = start_pmt(args, tmp_path)
    wait_for(out / "work" / "member0" / "last.ckpt", proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == "pmt: error: interrupted"
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["work"]  # the checkpoint, nothing else
    assert not [p for p in tmp_path.rglob("*") if ".pmt-tmp" in p.name]

    again = start_pmt(args, tmp_path)  # without --resume: refused, nothing touched
    _, err = again.communicate(timeout=120)
    assert again.returncode == 2 and "holds an interrupted run" in err

    resumed = start_pmt([*args, "--resume"], tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "resuming from" in err
    with open(out / "training" / "member0" / "history.csv") as fh:
        epochs = [int(r["epoch"]) for r in csv.DictReader(fh)]
    assert epochs == list(range(60))  # the epochs before the stop are kept, none twice
    assert (out / "model.safetensors").is_file() and not (out / "work").exists()
