"""Run files: the documented examples are valid, overrides parse as TOML values, and every
mistake is a one-line error naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from pmtoolkit.core.errors import ConfigError
from pmtoolkit.federated.config import load_run_config, parse_overrides
from pmtoolkit.federated.tasks import TASKS, make_task

DOCS = Path(__file__).resolve().parents[2] / "docs" / "federated"


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.toml")), ids=lambda p: p.name)
def test_documented_run_files_are_valid(path):
    run = load_run_config(path)
    task = make_task(run.federated.task, run.model, run.data)  # [model] and [data] keys
    assert run.federated.task in TASKS and task.name == run.federated.task


def test_overrides_are_toml_values_in_their_tables():
    out = parse_overrides(["rounds=5", "model.lr=0.01", 'data.target_columns=["a", "b"]',
                           "centralised=false", "strategy=fedprox", "federated.alpha=1"])
    assert out == {"federated": {"rounds": 5, "centralised": False, "strategy": "fedprox",
                                 "alpha": 1},
                   "model": {"lr": 0.01}, "data": {"target_columns": ["a", "b"]}}


@pytest.mark.parametrize("sets, match", [
    (["rounds"], "KEY=VALUE"),
    (["optim.lr=1"], "unknown table 'optim'"),
    (["rounds=0"], "at least 1"),
    (["fraction_fit=0"], "fraction_fit"),
    (["alpha=-1"], "positive"),
    (["test_fraction=1.0"], "test_fraction"),
    (["rounds=2.5"], "expected an integer"),
])
def test_bad_settings(sets, match):
    with pytest.raises(ConfigError, match=match):
        load_run_config(None, ("data=esol", *sets))


def test_no_dataset():
    with pytest.raises(ConfigError, match="no dataset"):
        load_run_config(None, ())
