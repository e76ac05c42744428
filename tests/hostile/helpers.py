"""What the hostile tests share: the bad-input rule as an assertion, damaged files, real
subprocesses for signals, and the fuzzing settings."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

#: derandomised (repeatable) in the default run; PMT_FUZZ_EXAMPLES=N explores N random examples
FUZZ = settings(max_examples=int(os.environ.get("PMT_FUZZ_EXAMPLES", "8")), deadline=None,
                derandomize="PMT_FUZZ_EXAMPLES" not in os.environ, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


def refused(result, folder: Path, *needles: str,
            leftover: Callable[[Path], bool] = lambda p: False) -> str:
    """Exit 2, one error line naming what is wrong (each of ``needles``), no traceback, no
    hidden temporary file in ``folder`` and nothing there that ``leftover`` calls an output.
    Returns the error line."""
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("pmt: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    left = [p.name for p in folder.rglob("*") if ".pmt-tmp" in p.name or leftover(p)]
    assert not left, left
    return errors[0]


def truncated_gz(path: Path, text: str | bytes) -> Path:
    """``text`` gzipped and cut in half, written to ``path``."""
    data = gzip.compress(text.encode() if isinstance(text, str) else text)
    path.write_bytes(data[: len(data) // 2])
    return path


def binary(path: Path) -> Path:
    """Bytes that are no text (every byte value, repeated), written to ``path``."""
    path.write_bytes(bytes(range(256)) * 64)
    return path


def fuzz_run(pmt, command, files: dict[str, bytes], output: str):
    """Run ``command`` on ``files`` written into a fresh folder (``{dir}`` in an argument is
    that folder, ``{out}`` the output there, ``{in_csv}`` the file ``in.csv``): success, or
    exit 2 with one line and nothing written."""
    folder = Path(tempfile.mkdtemp(prefix="pmt-fuzz-"))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    places = {k.replace(".", "_"): folder / k for k in files}
    r = pmt(*[str(a).format(dir=folder, out=folder / output, **places) for a in command])
    shown = {k: v[:300] for k, v in files.items()}
    assert r.exit_code in (0, 2), f"exit {r.exit_code} for {shown}:\n{r.stderr[-3000:]}"
    if r.exit_code == 2:
        lines = r.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("pmt: error: "), (shown, r.stderr)
        assert "Traceback" not in r.stderr, (shown, r.stderr)
        assert not (folder / output).exists(), f"half-written output for {shown}"
    assert not [p for p in folder.iterdir() if ".pmt-tmp" in p.name], shown
    return r


def start_pmt(args, cwd: Path) -> subprocess.Popen:
    """``pmt ARGS`` as a real process (signals reach it as they would from a shell)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pmtoolkit.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> Path:
    """Wait until ``path`` exists (e.g. a run's first checkpoint) while ``proc`` runs."""
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {path} appeared: {proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)
    return path
