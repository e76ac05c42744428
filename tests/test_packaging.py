"""The install: torch pinned to the CPU build, and a wheel that carries cli/, data/ and
pipelines/."""
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
    pipelines = sorted(p.name for p in (ROOT / "pipelines").glob("*.toml"))
    assert pipelines and all(f"pmtoolkit/pipelines/{n}" in names for n in pipelines)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "pmt = pmtoolkit.cli.main:main" in text and "pmtoolkit = pmtoolkit.cli.main:main" in text


def test_cli_reference_is_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_shipped_model_predicts_from_a_non_editable_install(tmp_path):
    """Install the built wheel into a bare folder and run `pmt property predict -m solubility`
    from it, with the editable install out of the way (no .pth processing: python -S)."""
    import site

    if not (ROOT / "pyproject.toml").exists():
        pytest.skip("not a source checkout")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(ROOT)], check=True, capture_output=True)
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), *map(str, wheels.glob("*.whl"))], check=True,
                   capture_output=True)
    smi = tmp_path / "in.smi"
    smi.write_text("CCO ethanol\nc1ccc2cc3ccccc3cc2c1 anthracene\n")
    out = tmp_path / "out.csv"
    code = (f"import sys; sys.path[:0] = [{str(target)!r}, *{site.getsitepackages()!r}]; "
            "import pmtoolkit; assert pmtoolkit.__file__.startswith(sys.path[0]), "
            "pmtoolkit.__file__; from pmtoolkit.cli.main import main; "
            f"main(['-q', 'property', 'predict', '-m', 'solubility', '-i', {str(smi)!r}, "
            f"'-o', {str(out)!r}])")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("smiles,id,logS_pred") and len(lines) == 3
