"""A truncated .gz or a binary file where text belongs: one line naming the file, exit 2, for
the molecule readers (CSV, SMI, SDF) and every command's TOML/JSON settings files. (Each
domain's own formats are covered in its test_<domain> file here.)"""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
BINARY = bytes(range(256)) * 8


def _truncated(data: bytes) -> bytes:
    packed = gzip.compress(data * 40)
    return packed[: len(packed) // 2]


def _one_line(r, path: Path):
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("pmt: error: ") and "Traceback" not in r.stderr
    assert path.name in lines[-1]
    return lines[-1]


MOLECULES = {
    "cut.csv.gz": _truncated((TESTS / "data" / "esol_tiny.csv").read_bytes()),
    "cut.smi.gz": _truncated((TESTS / "data" / "tiny.smi").read_bytes()),
    "cut.sdf.gz": _truncated(gzip.decompress((TESTS / "data" / "tiny.sdf.gz").read_bytes())),
    "binary.smi": BINARY,
    "binary.csv": b"smiles\n" + BINARY,
}


@pytest.mark.parametrize("name", list(MOLECULES))
@pytest.mark.parametrize("command", [["mol", "descriptors", "--names", "MolWt"],
                                     ["mol", "standardize"], ["property", "predict"]])
def test_damaged_molecule_files(pmt, tmp_path, name, command):
    path = tmp_path / name
    path.write_bytes(MOLECULES[name])
    out = tmp_path / "out.csv"
    line = _one_line(pmt(*command, "-i", path, "-o", out), path)
    assert "truncated or not valid gzip" in line or "is not UTF-8 text" in line
    assert not out.exists() and not list(tmp_path.glob(".*pmt-tmp*"))


@pytest.mark.parametrize("command", [
    ["property", "train", "-i", TESTS / "data" / "esol_tiny.csv", "--label-column", "logS",
     "-o", "{out}", "-c", "{file}"],
    ["generate", "optimize", "-c", "{file}", "-o", "{out}"],
    ["pipeline", "validate", "-c", "{file}"],
    ["federated", "split", "-c", "{file}"],
    ["demo", "-o", "{out}", "-c", "{file}"],
], ids=["property-train-config", "generate-optimize", "pipeline-validate", "federated-split",
        "demo-config"])
@pytest.mark.parametrize("content", [BINARY, _truncated(b"[model]\nepochs = 3\n")],
                         ids=["binary", "truncated-gzip"])
def test_binary_settings_files(pmt, tmp_path, command, content):
    path = tmp_path / "settings.toml"
    path.write_bytes(content)
    out = tmp_path / "out"
    args = [str(a).format(file=path, out=out) for a in command]
    line = _one_line(pmt(*args), path)
    assert "not UTF-8" in line or "cannot parse" in line or "gzip" in line
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ("[modle]\nhiden-size = 8\n", "unknown table 'modle' in '"),
    ("[modle]\nhiden-size = 8\n", "run.toml' (did you mean [model]? tables: [model], [split])"),
    ("[model]\nhiden-size = 8\n", "unknown key 'hiden-size'"),
    ("model = 3\n", "'model' must be a table of settings"),
    ("[split]\nsizes = [0.5, 0.5]\n", "[split]"),
])
def test_a_misspelt_settings_file_is_refused_not_ignored(pmt, tmp_path, text, message):
    path = tmp_path / "run.toml"
    path.write_text(text)
    out = tmp_path / "out"
    line = _one_line(pmt("property", "train", "-i", TESTS / "data" / "esol_tiny.csv",
                         "--label-column", "logS", "-o", out, "-c", path), path)
    assert message in line and not out.exists()
