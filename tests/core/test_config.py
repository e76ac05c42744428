from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from pmtoolkit.core import config as cfg
from pmtoolkit.core.errors import ConfigError, MissingInputError


@dataclass
class Inner:
    size: int = 3


@dataclass
class Example:
    hidden_size: int = 64
    dropout: float = 0.1
    kind: Literal["gru", "lstm"] = "gru"
    layers: list[int] = field(default_factory=lambda: [1, 2])
    clip: float | None = None
    bidirectional: bool = False
    out: Path = Path("x")
    inner: Inner = field(default_factory=Inner)


def test_keys_are_option_names_and_values_are_coerced():
    c = cfg.from_mapping(Example, {"hidden-size": 8, "dropout": 0, "layers": (3,),
                                   "clip": 1, "out": "a/b", "inner": {"size": 5}})
    assert c == Example(hidden_size=8, dropout=0.0, layers=[3], clip=1.0, out=Path("a/b"),
                        inner=Inner(5))
    assert isinstance(c.dropout, float)


def test_unknown_key_names_it_and_suggests():
    with pytest.raises(ConfigError, match=r"unknown key 'hiden-size' in run.toml.*did you mean "
                                          r"'hidden-size'"):
        cfg.from_mapping(Example, {"hiden-size": 3}, source="run.toml")


@pytest.mark.parametrize("key,value,message", [
    ("hidden_size", "64", "expected an integer"),
    ("hidden_size", 1.5, "expected an integer"),
    ("hidden_size", True, "expected an integer"),
    ("dropout", "0.1", "expected a number"),
    ("kind", "transformer", "choose from gru, lstm"),
    ("layers", 3, "expected a list"),
    ("bidirectional", "yes", "expected true or false"),
    ("inner", {"sise": 1}, "unknown key 'sise'"),
])
def test_wrong_types_are_errors(key, value, message):
    with pytest.raises(ConfigError, match=message):
        cfg.from_mapping(Example, {key: value})


def test_layers_override_in_order(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('hidden-size = 32\nkind = "lstm"\n')
    c = cfg.merge(Example, cfg.load_file(path), {"kind": "gru"})
    assert (c.hidden_size, c.kind) == (32, "gru")


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("hidden-size = = 3")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        cfg.load_file(bad)
    with pytest.raises(MissingInputError, match="config file .* does not exist"):
        cfg.load_file(tmp_path / "nope.toml")
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold a table"):
        cfg.load_file(lst)


def test_resolved_config_round_trips(tmp_path):
    c = Example(hidden_size=7, kind="lstm", clip=0.5)
    cfg.write_resolved(tmp_path / "config.json", model=c)
    again = cfg.from_mapping(Example, cfg.load_file(tmp_path / "config.json")["model"])
    assert again == c
