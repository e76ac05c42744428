"""The install: torch pinned to the CPU build, and a wheel that carries cli/ and data/."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_torch_is_the_pinned_build_without_cuda_packages():
    import torch

    assert torch.__version__.startswith("2.13.0")
    if torch.version.cuda is None:  # the CPU wheel: nothing may have pulled GPU libraries
        gpu = sorted(d.metadata["Name"] for d in metadata.distributions()
                     if (d.metadata["Name"] or "").lower().startswith(("nvidia-", "triton")))
        assert gpu == [], f"CUDA packages installed next to the CPU torch: {gpu}"


def test_wheel_ships_cli_and_data(tmp_path):
    if not (ROOT / "pyproject.toml").exists():
        pytest.skip("not a source checkout")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("pmtoolkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "pmtoolkit/cli/main.py" in names
    assert "pmtoolkit/core/checkpoint.py" in names
    assert "pmtoolkit/data/MANIFEST" in names
    manifest = (ROOT / "data" / "MANIFEST").read_text().splitlines()
    shipped = [line.split("\t")[2] for line in manifest
               if line and not line.startswith(("#", "name\t"))]
    for rel in shipped:
        assert f"pmtoolkit/data/{rel}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "pmt = pmtoolkit.cli.main:main" in text and "pmtoolkit = pmtoolkit.cli.main:main" in text


def test_cli_reference_is_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
