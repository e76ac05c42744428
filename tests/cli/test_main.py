"""The root command: help, version, and the error policy (one line, exit code 2 or 1)."""
from __future__ import annotations

import pytest
from pmtoolkit.cli.main import COMMANDS, cli

from tests.conftest import TEST_DATA


def _one_line_error(result, code):
    assert result.exit_code == code, result.output
    # log lines may come first; the error itself is exactly one line, the last
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("pmt: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def test_help_lists_every_command(pmt):
    result = pmt("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.stdout


def test_version(pmt):
    result = pmt("--version")
    assert result.exit_code == 0 and result.stdout.startswith("pmtoolkit ")


def test_unknown_command_is_one_line_exit_2(pmt):
    line = _one_line_error(pmt("nonexistent"), 2)
    assert "No such command 'nonexistent'" in line and "pmt --help" in line
    assert "Did you mean 'demo'" in _one_line_error(pmt("dmeo"), 2)


def test_bad_option_is_one_line_exit_2(pmt):
    line = _one_line_error(pmt("demo", "--no-such-option"), 2)
    assert "--no-such-option" in line and "pmt demo --help" in line


def test_missing_input_file_is_one_line_exit_2(pmt, tmp_path):
    line = _one_line_error(pmt("demo", "--config", tmp_path / "missing.toml"), 2)
    assert "does not exist" in line
    line = _one_line_error(pmt("demo", "-o", tmp_path / "o", "--dataset",
                               tmp_path / "missing.csv"), 2)
    assert "neither an existing file nor a shipped dataset" in line
    assert not (tmp_path / "o").exists()


def test_registry_help_matches_each_command():
    for name, (_, help_) in COMMANDS.items():
        cmd = cli.get_command(None, name)
        assert cmd.get_short_help_str(200) == help_, name


def test_internal_error_is_exit_1_and_verbose_shows_traceback(pmt, tmp_path, monkeypatch):
    from pmtoolkit import demo

    def broken(ctx):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(demo, "STEPS", [("broken", broken)])
    line = _one_line_error(pmt("demo", "-o", tmp_path / "o"), 1)
    assert "internal error: ZeroDivisionError" in line
    verbose = pmt("-v", "demo", "-o", tmp_path / "o")
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr
    assert not (tmp_path / "o").exists()  # nothing half-written


@pytest.mark.parametrize("args", [["--help"], ["demo", "--help"], ["info", "--help"]])
def test_help_of_every_command_works(pmt, args):
    assert pmt(*args).exit_code == 0


def test_quiet_and_log_file(pmt, tmp_path):
    log_file = tmp_path / "run.log"
    # a short command: the demo's own test covers its log lines
    result = pmt("-q", "--log-file", log_file, "property", "predict", "-i",
                 TEST_DATA / "esol_tiny.csv", "-o", tmp_path / "p.csv")
    assert result.exit_code == 0
    assert "INFO" not in result.stderr  # -q: warnings and errors only
    text = log_file.read_text()
    assert "pmtoolkit 0.1.0" in text and "model solubility" in text  # full log in the file
    assert "pmt -q --log-file" in text  # the start-up line records the command line


def test_verbose_and_quiet_may_follow_the_subcommand(pmt, tmp_path, monkeypatch):
    """-v and -q are pmt's own flags wherever they stand: ``pmt demo ... -v`` is
    ``pmt -v demo ...`` (-v once meant --vcf in pmt variants score)."""
    from pmtoolkit import demo

    def broken(ctx):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(demo, "STEPS", [("broken", broken)])
    for args in (["demo", "-o", tmp_path / "o", "-v"], ["demo", "--verbose", "-o", tmp_path / "o"]):
        result = pmt(*args)
        assert result.exit_code == 1 and "Traceback" in result.stderr, args
    assert "Traceback" not in pmt("demo", "-o", tmp_path / "o").stderr


def test_variants_score_takes_v_as_verbose_and_q_as_quiet(pmt, tmp_path):
    args = ["variants", "score", "-i", TEST_DATA / "variants_tiny.vcf", "-f",
            TEST_DATA / "genome_tiny.fa", "-m", "mpra", "--ref-mismatch", "skip"]
    loud = pmt(*args, "-o", tmp_path / "a.tsv", "-v")
    assert loud.exit_code == 0, loud.stderr
    assert " INFO pmtoolkit 0.1.0" in loud.stderr and (tmp_path / "a.tsv").is_file()
    quiet = pmt(*args, "-o", tmp_path / "b.tsv", "-q")
    assert quiet.exit_code == 0 and "INFO" not in quiet.stderr
    assert "WARNING" in quiet.stderr  # -q keeps warnings (5 records do not match the FASTA)
    group = pmt("variants", "-q", *args[1:], "-o", tmp_path / "c.tsv")
    assert group.exit_code == 0 and "INFO" not in group.stderr
    both = pmt("-q", *args, "-o", tmp_path / "d.tsv", "-vv")
    assert both.exit_code == 0 and "INFO" not in both.stderr  # -q wins, as in pmt -q -vv


def test_global_flags_stay_out_of_subcommand_help(pmt):
    """Hidden there: pmt --help and docs/cli.md's preamble document them once."""
    text = pmt("variants", "score", "--help").stdout
    assert "--verbose" not in text and "--quiet" not in text
    assert "--verbose" in pmt("--help").stdout
