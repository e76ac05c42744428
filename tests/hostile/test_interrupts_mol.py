"""Ctrl-C stops `pmt mol` within a second or two: exit 130, one line, no output file and no
hidden temporary file beside it; a worker pool stops with its parent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
STARTUP = "INFO pmtoolkit "  # the start-up line every command logs before it works


def _library(tmp_path: Path, copies: int) -> Path:
    """A 10,000-atom alkane, then the test set's 400 drug-like SMILES ``copies`` times
    (descriptors take a few ms each). Before the atom limit the alkane alone kept RDKit busy
    for many minutes inside one C++ call (a distance matrix), where Python never gets to
    handle a signal: Ctrl-C was ignored."""
    lines = [ln.split()[0] for ln in (TESTS / "data" / "moses_tiny.smi").read_text().splitlines()
             if ln.strip()]
    path = tmp_path / "library.csv"
    path.write_text("smiles\n" + "C" * 10_000 + "\n" + "\n".join(lines * copies) + "\n")
    return path


def _start(args, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pmtoolkit.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _interrupt(proc: subprocess.Popen, after: float, *, within: float) -> tuple[str, float]:
    """SIGINT ``after`` seconds past the start-up line; the rest of stderr and how long the
    process took to exit after the signal."""
    first = proc.stderr.readline()  # blocks until the command logs that it starts working
    if STARTUP not in first:
        proc.kill()
        pytest.fail(f"no start-up line: {first}{proc.communicate()[1]}")
    time.sleep(after)
    assert proc.poll() is None, "the run ended before the signal; give it more input"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, rest = proc.communicate(timeout=within + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"still running {within + 10} s after SIGINT")
    return rest, time.monotonic() - sent


def test_ctrl_c_stops_mol_descriptors(tmp_path):
    library = _library(tmp_path, copies=10)  # 4,000 molecules: tens of seconds of work
    out = tmp_path / "descriptors.csv"
    proc = _start(["mol", "descriptors", "-i", library, "-o", out], tmp_path)
    rest, took = _interrupt(proc, 2.0, within=3.0)
    assert proc.returncode == 130, rest
    assert took < 3.0, f"exit {took:.1f} s after SIGINT"
    assert [ln for ln in rest.splitlines() if ln.strip()] == ["pmt: error: interrupted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library.csv"]  # no output, no temp


_FEATURIZE = textwrap.dedent("""
    import sys
    from pmtoolkit.chem.featurizer import GraphFeaturizer
    smiles = [s.split()[0] for s in open(sys.argv[1]) if s.strip()] * 500
    print("started", flush=True)
    GraphFeaturizer(cache_size=0).featurize(smiles, n_jobs=2)
    print("finished", flush=True)
""")


def test_ctrl_c_stops_featurizer_workers(tmp_path):
    """The parallel featurizer (pmt property/dti on >= 4,000 molecules) stops with its parent:
    the workers are terminated, not waited for."""
    script = tmp_path / "featurize.py"
    script.write_text(_FEATURIZE)
    proc = subprocess.Popen([sys.executable, script, TESTS / "data" / "moses_tiny.smi"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(1.5)  # the pool is up and busy with 200,000 SMILES
        assert proc.poll() is None
        children = _children(proc.pid)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("still running 15 s after SIGINT")
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "KeyboardInterrupt" in err and "finished" not in out
    assert took < 3.0, f"exit {took:.1f} s after SIGINT"
    time.sleep(0.5)
    assert not [c for c in children if _alive(c)], "worker processes outlived their parent"


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        pytest.skip("needs Linux /proc to list child processes")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
