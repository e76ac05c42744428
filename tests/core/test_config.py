from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from pmtoolkit.core import config as cfg
from pmtoolkit.core.errors import BadInputError, ConfigError, MissingInputError


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


@dataclass
class Ranged:
    width: int = field(default=8, metadata={"range": cfg.WIDTH, "help": "width"})
    dropout: float = field(default=0.1, metadata={"range": cfg.DROPOUT, "help": "dropout"})
    sizes: tuple[int, ...] = field(default=(4, 4), metadata={"range": cfg.Range(1, 16),
                                                             "help": "sizes"})
    clip: float | None = field(default=None, metadata={"range": cfg.Range(0, None,
                                                                          min_open=True)})


def test_range_bounds_and_their_description():
    r = cfg.Range(0, 1, max_open=True)
    assert 0 in r and 0.999 in r and 1 not in r and -1e-9 not in r
    assert r.describe() == "[0, 1)"
    assert cfg.Range(1).describe() == ">= 1" and cfg.Range(0, min_open=True).describe() == "> 0"
    assert cfg.Range(None, 5).describe() == "<= 5"


@pytest.mark.parametrize("key, value, message", [
    ("width", 0, r"width: 0 is out of range, expected \[1, 8192\]"),
    ("width", 120_000, "120000 is out of range"),
    ("width", 10**30, "out of range"),
    ("dropout", 1.0, r"expected \[0, 1\)"),
    ("dropout", float("nan"), "nan is not a finite number"),
    ("dropout", float("inf"), "inf is not a finite number"),
    ("sizes", [4, 0], "0 is out of range"),
    ("clip", 0, r"expected > 0"),
])
def test_values_out_of_range_are_config_errors(key, value, message):
    with pytest.raises(ConfigError, match=message):
        cfg.from_mapping(Ranged, {key: value}, source="run.toml")


def test_ranges_hold_for_configs_built_in_python():
    cfg.check_ranges(Ranged())
    with pytest.raises(ConfigError, match="width: 0 is out of range"):
        cfg.check_ranges(Ranged(width=0))
    with pytest.raises(ConfigError, match="not a finite number"):
        cfg.check_ranges(Ranged(clip=float("nan")))


def test_a_nan_in_a_toml_file_is_refused(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("dropout = nan\n")
    with pytest.raises(ConfigError, match="dropout: nan is not a finite number"):
        cfg.merge(Ranged, cfg.load_file(path), source=str(path))


def test_binary_and_deeply_nested_config_files_are_one_line_errors(tmp_path):
    binary = tmp_path / "run.toml"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(BadInputError, match="is not UTF-8 text"):
        cfg.load_file(binary)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply|cannot parse"):
        cfg.load_file(deep)


def _config_classes():
    """Every config dataclass whose fields become options or config-file keys."""
    import dataclasses
    import importlib
    import pkgutil

    import pmtoolkit

    found = {}
    for info in pkgutil.walk_packages(pmtoolkit.__path__, "pmtoolkit."):
        if info.name.startswith("pmtoolkit.cli"):
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (isinstance(obj, type) and dataclasses.is_dataclass(obj)
                    and obj.__module__ == module.__name__
                    and any("help" in f.metadata for f in dataclasses.fields(obj))):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_numeric_setting_declares_its_range():
    """A number a user can set (option, config file, pipeline TOML) has declared bounds, so a
    0, a negative or an absurd size is refused at the door, not deep inside torch."""
    import dataclasses
    import typing

    missing = []
    for name, cls in _config_classes().items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = str(hints[f.name])
            numeric = any(t in hint for t in ("int", "float")) and "Literal" not in hint \
                and "dict" not in hint
            if numeric and f.init and "range" not in f.metadata:
                missing.append(f"{name}.{f.name}")
    assert not missing, missing
