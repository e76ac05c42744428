"""No input is ever destroyed: one rule for every command's outputs."""
from __future__ import annotations

import click
import pytest

from pmtoolkit.cli.common import CACHE_PARAMS, OUTPUT_PARAMS
from tests.hostile.cli_tree import leaf_commands, placeholder_args

COMMANDS = leaf_commands()

#: Path parameters that name what a command reads although the path need not exist when
#: parsing (a shipped name, a glob, stdin, or a file checked by the command itself).
INPUTS = {"input_", "images", "library", "query", "events", "source", "dataset", "table",
          "model_path", "fasta", "vcf", "labels", "patients", "target", "train", "test",
          "npz", "valid_table", "outcomes", "split_file", "config_file", "run_file", "cohort",
          "responses", "drugs", "features", "pairs", "log_file"}


def _path_params(cmd):
    return [p for p in cmd.params if isinstance(p.type, click.Path)]


@pytest.mark.parametrize("path, cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_path_parameter_is_an_input_or_an_output(path, cmd):
    """A new option that writes a file must join OUTPUT_PARAMS (and so the rule below)."""
    for p in _path_params(cmd):
        assert p.name in OUTPUT_PARAMS | CACHE_PARAMS | INPUTS, (path, p.name)


def _file_outputs():
    for path, cmd in COMMANDS:
        for p in _path_params(cmd):
            if p.name in OUTPUT_PARAMS and p.type.file_okay:
                yield path, cmd, p


FILE_OUTPUTS = list(_file_outputs())


@pytest.mark.parametrize("path, cmd, out", FILE_OUTPUTS,
                         ids=[f"{' '.join(p)} {o.name}" for p, _, o in FILE_OUTPUTS])
def test_an_existing_output_file_is_kept_without_overwrite(pmt, tmp_path, path, cmd, out):
    dummy = tmp_path / "in.csv"
    dummy.write_text("smiles\nCCO\n")
    target = tmp_path / "existing.csv"
    target.write_text("keep me\n")
    args = [out.opts[0], target] + placeholder_args(cmd, {out.name}, tmp_path, dummy)
    r = pmt(*path, *args)
    assert r.exit_code == 2, r.output
    assert "exists (pass --overwrite to replace it" in r.stderr.strip().splitlines()[-1]
    assert target.read_text() == "keep me\n"


@pytest.mark.parametrize("path, cmd, out", FILE_OUTPUTS,
                         ids=[f"{' '.join(p)} {o.name}" for p, _, o in FILE_OUTPUTS])
def test_an_output_that_is_an_input_is_refused(pmt, tmp_path, path, cmd, out):
    """-o equal to -i (or to any other input, e.g. a model file) would destroy it."""
    dummy = tmp_path / "in.csv"
    dummy.write_text("smiles\nCCO\n")
    inputs = [p for p in _path_params(cmd) if p.name in INPUTS and p.type.file_okay]
    if not inputs:
        pytest.skip("no file input")
    first = inputs[0]
    args = placeholder_args(cmd, {out.name, first.name}, tmp_path, dummy)
    value = [str(dummy)] * (first.nargs if first.nargs > 0 else 1)
    given = value if isinstance(first, click.Argument) else [first.opts[0], *value]
    r = pmt(*path, *given, *args, out.opts[0], dummy, "--overwrite")
    assert r.exit_code == 2, r.output
    assert "is also an input" in r.stderr.strip().splitlines()[-1]
    assert dummy.read_text() == "smiles\nCCO\n"


def test_an_input_inside_an_output_folder_that_would_be_replaced(pmt, tmp_path, test_data):
    out = tmp_path / "split"
    r = pmt("mol", "split", "-i", test_data / "esol_tiny.csv", "-o", out, "--split", "random")
    assert r.exit_code == 0, r.output
    inside = out / "train.csv"
    before = inside.read_bytes()
    r = pmt("mol", "split", "-i", inside, "-o", out, "--overwrite")
    assert r.exit_code == 2 and "inside the output folder" in r.stderr
    assert inside.read_bytes() == before


def test_overwrite_replaces_an_output_file(pmt, tmp_path, test_data):
    target = tmp_path / "d.csv"
    target.write_text("old\n")
    r = pmt("mol", "descriptors", "-i", test_data / "tiny.smi", "-o", target, "--overwrite",
            "--names", "MolWt")
    assert r.exit_code == 0, r.output
    assert target.read_text().startswith("smiles") or "MolWt" in target.read_text()
