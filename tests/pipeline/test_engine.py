"""The pipeline engine: checking before running, content-hash skipping, failures that keep
earlier outputs, on tiny pipelines of real actions."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import pytest

from pmtoolkit import pipeline as pl
from pmtoolkit.core.errors import ConfigError, MissingInputError
from pmtoolkit.pipeline.engine import ACTIONS, StepFailed, parse_override

TINY = """
[pipeline]
name = "tiny"
description = "standardise -> rank -> report"

[steps.standardize]
action = "mol.standardize"
input = "esol_tiny.csv"

[steps.rank]
action = "table.rank"
input = "@standardize"
by = "logS"
top = 5

[steps.report]
action = "report"
inputs = ["@rank"]
title = "tiny"
molecules = 4
"""


@pytest.fixture
def tiny(tmp_path, test_data):
    shutil.copy(test_data / "esol_tiny.csv", tmp_path / "esol_tiny.csv")
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _status(result):
    return {s.name: s.status for s in result.steps}


def test_runs_skips_and_reruns_only_downstream_of_a_change(tiny, tmp_path):
    out = tmp_path / "run"
    first = pl.run(pl.load(tiny), out)
    assert _status(first) == {"standardize": "ran", "rank": "ran", "report": "ran"}
    ranked = (out / "rank" / "ranked.csv").read_text().splitlines()
    assert ranked[0].startswith("rank,logS,") and len(ranked) == 6  # the score leads
    values = [float(line.split(",")[1]) for line in ranked[1:]]
    assert values == sorted(values, reverse=True)  # largest logS first
    assert "tiny" in (out / "report" / "report.html").read_text()
    assert (out / "index.html").is_file()
    state = json.loads((out / "pipeline.json").read_text())
    assert [s["status"] for s in state["steps"]] == ["ran", "ran", "ran"]
    assert state["steps"][1]["params"]["top"] == 5

    again = pl.run(pl.load(tiny), out)
    assert _status(again) == {"standardize": "skipped", "rank": "skipped", "report": "skipped"}

    changed = pl.run(pl.load(tiny, overrides=["rank.top=3"]), out)
    assert _status(changed) == {"standardize": "skipped", "rank": "ran", "report": "ran"}
    assert len((out / "rank" / "ranked.csv").read_text().splitlines()) == 4

    # an input file changed on disk reruns everything that depends on it
    src = tmp_path / "esol_tiny.csv"
    src.write_text(src.read_text().replace("-0.77", "-0.78"))
    assert _status(pl.run(pl.load(tiny, overrides=["rank.top=3"]), out))["standardize"] == "ran"

    # an output edited by hand is not trusted: its step reruns
    (out / "rank" / "ranked.csv").write_text("edited\n")
    redo = pl.run(pl.load(tiny, overrides=["rank.top=3"]), out)
    assert _status(redo)["rank"] == "ran" and _status(redo)["standardize"] == "skipped"
    assert _status(pl.run(pl.load(tiny), out, force=True)) == {
        "standardize": "ran", "rank": "ran", "report": "ran"}


def test_report_shows_the_chosen_columns_and_links_the_full_table(tiny, tmp_path):
    import re

    tiny.write_text(TINY.replace("molecules = 4", 'molecules = 4\ncolumns = ["rank", "logS", '
                                 '"smiles"]'))
    out = tmp_path / "run"
    pl.run(pl.load(tiny), out)
    report = (out / "report" / "report.html").read_text()
    assert re.findall(r"<th>(.*?)</th>", report) == ["rank", "logS", "smiles"]
    n_columns = len((out / "rank" / "ranked.csv").read_text().splitlines()[0].split(","))
    assert f"3 of {n_columns} columns" in report
    link = re.search(r'<a href="([^"]+)">ranked.csv</a>', report).group(1)
    assert link == "../rank/ranked.csv" and (out / "report" / link).is_file()
    # a column no table has is named, not silently dropped
    tiny.write_text(TINY.replace("molecules = 4", 'molecules = 4\ncolumns = ["logs"]'))
    with pytest.raises(StepFailed) as err:
        pl.run(pl.load(tiny), tmp_path / "run2")
    assert err.value.exit_code == 2
    assert "no table has the column 'logs'" in err.value.one_line()
    assert "logS" in err.value.one_line()


@pytest.mark.parametrize("edit, message", [
    (("top = 5", "topp = 5"), "unknown key 'topp' in step 'rank' (table.rank)"),
    (("top = 5", 'top = "five"'), "step 'rank' (table.rank): top: expected an integer"),
    (('action = "table.rank"', 'action = "table.rnak"'), "unknown action 'table.rnak'"),
    (('input = "@standardize"', 'input = "@report"'), "refers to a later or unknown step"),
    (('inputs = ["@rank"]', 'inputs = ["@rank.nope"]'), "has no output 'nope'"),
    (('input = "esol_tiny.csv"', 'input = "missing.csv"'), "input 'missing.csv' does not exist"),
    (('[pipeline]', '[pipelin]'), "unknown table 'pipelin'"),
])
def test_mistakes_are_named_before_anything_runs(tiny, tmp_path, edit, message):
    tiny.write_text(TINY.replace(*edit))
    with pytest.raises((ConfigError, MissingInputError)) as err:
        pl.load(tiny)
    assert message in err.value.one_line()
    if "topp" in message:
        assert "did you mean 'top'" in err.value.one_line()


def test_overrides_are_checked_like_the_file(tiny):
    with pytest.raises(ConfigError, match="no step 'rnak'"):
        pl.load(tiny, overrides=["rnak.top=3"])
    with pytest.raises(ConfigError, match="expected STEP.KEY=VALUE"):
        pl.load(tiny, overrides=["top=3"])
    with pytest.raises(ConfigError, match="expected an integer"):
        pl.load(tiny, overrides=["rank.top=three"])
    assert parse_override('rank.where=["logS > 0"]') == ("rank", "where", ["logS > 0"])


def test_a_failed_step_keeps_earlier_outputs_and_writes_nothing_half(tiny, tmp_path):
    out = tmp_path / "run"
    plan = pl.load(tiny, overrides=['rank.where=["nonexistent > 1"]'])
    with pytest.raises(StepFailed) as err:
        pl.run(plan, out)
    assert err.value.exit_code == 2
    assert "step 'rank' (table.rank) failed" in err.value.one_line()
    assert (out / "standardize" / "molecules.csv").is_file()
    assert not (out / "rank").exists() and not (out / "report").exists()
    assert not [p for p in out.iterdir() if ".pmt-tmp-" in p.name]
    state = json.loads((out / "pipeline.json").read_text())
    assert [s["status"] for s in state["steps"]] == ["ran", "failed", "not run"]
    # fixed, the rerun picks up where it failed
    fixed = pl.run(pl.load(tiny), out)
    assert _status(fixed) == {"standardize": "skipped", "rank": "ran", "report": "ran"}


@dataclass
class _Boom:
    when: int = 0


def test_an_internal_error_in_a_step_exits_1_and_names_it(tiny, tmp_path):
    def boom(run):
        raise RuntimeError("kaboom")

    pl.action("test.boom", help="fails", params=_Boom, outputs={"x": "x.txt"})(boom)
    try:
        tiny.write_text(TINY + '\n[steps.boom]\naction = "test.boom"\n')
        with pytest.raises(StepFailed) as err:
            pl.run(pl.load(tiny), tmp_path / "run")
        assert err.value.exit_code == 1
        assert "step 'boom' (test.boom) failed with an internal error: RuntimeError: kaboom" \
            in err.value.one_line()
        assert (tmp_path / "run" / "report" / "report.html").is_file()
    finally:
        ACTIONS.pop("test.boom")


def test_refuses_a_folder_of_other_files(tiny, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds other files"):
        pl.run(pl.load(tiny), out)
    assert (out / "notes.txt").read_text() == "mine"


def test_shipped_pipelines_are_valid():
    shipped = pl.shipped_pipelines()
    assert set(shipped) >= {"virtual-screening", "variant-prioritisation", "single-cell"}
    for name in shipped:
        plan = pl.load(name)
        assert plan.steps and plan.description
