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
    (["rounds=0"], r"rounds: 0 is out of range, expected \[1, 100000\]"),
    (["fraction_fit=0"], r"fraction-fit: 0 is out of range"),
    (["alpha=-1"], r"alpha: -1 is out of range"),
    (["test_fraction=1.0"], r"test-fraction: 1 is out of range"),
    (["rounds=2.5"], "expected an integer"),
    (["alpha=nan"], "alpha: nan is not a finite number"),
    (["timeout=inf"], "timeout: inf is not a finite number"),
    (["sites=100000"], "sites: 100000 is out of range"),
    (["model.hiden_size=64"], "unknown key 'hiden_size' in \\[model\\]"),
    (["model.hidden_size=1000000"], "hidden-size: 1e\\+06 is out of range"),
    (["data.smiles_colum=x"], "unknown key 'smiles_colum' in \\[data\\]"),
    (["rounds=" + "[" * 50_000], "nested too deeply"),
    (["rounds=5\nsites=100"], "on one line"),
])
def test_bad_settings(sets, match):
    with pytest.raises(ConfigError, match=match):
        config = load_run_config(None, ("data=esol", *sets))
        make_task(config.federated.task, config.model, config.data)  # reads [model], [data]


def test_no_dataset():
    with pytest.raises(ConfigError, match="no dataset"):
        load_run_config(None, ())


def test_configs_built_in_python_are_range_checked():
    from pmtoolkit.federated.config import FederatedConfig, check
    from pmtoolkit.property.config import PropertyConfig

    with pytest.raises(ConfigError, match=r"\[model\]: hidden-size: 0 is out of range"):
        make_task("property", PropertyConfig(hidden_size=0))
    with pytest.raises(ConfigError, match=r"\[federated\]: alpha: nan is not a finite"):
        check(FederatedConfig(data="esol", alpha=float("nan")))
