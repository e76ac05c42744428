"""Config dataclasses <-> TOML/JSON files and CLI options, failing loudly on typos.

Every model and command keeps its settings in a dataclass. A config file's keys are the long
option names (``max-epochs`` or ``max_epochs``); an unknown key is an error that names it and
suggests the closest valid one; values are checked against the field types. The resolved config
(defaults filled in) is written beside a run's outputs so the run can be replayed.

A numeric field declares its valid values once, as ``field(metadata={"range": Range(...)})``;
config files, pipeline TOML and the CLI options generated from the field (click ranges) all
check it, and no float field takes NaN or an infinity.

The settings of a training run that every model has (epochs, patience, batch size, seed,
device, precision) are declared once, by :func:`training_fields`; each model config chooses
their defaults.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from pmtoolkit.core.devices import DEVICE_HELP
from pmtoolkit.core.errors import BadInputError, ConfigError
from pmtoolkit.core.io import reading, require_file, write_json

T = TypeVar("T")


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric config field: ``min``/``max`` (None: unbounded), each
    inclusive unless ``*_open``. Bounds also keep hostile sizes out (a hidden size of 120,000
    would allocate tens of GB before anything could fail)."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        return self.max is None or (value < self.max if self.max_open else value <= self.max)

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return (f"{'(' if self.min_open else '['}{self.min:g}, {self.max:g}"
                    f"{')' if self.max_open else ']'}")
        if self.min is not None:
            return f"{'>' if self.min_open else '>='} {self.min:g}"
        if self.max is not None:
            return f"{'<' if self.max_open else '<='} {self.max:g}"
        return "any number"

    def check(self, value: Any, where: str) -> None:
        """Raise a :class:`ConfigError` if ``value`` (or any item of a list) is out of range."""
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v not in self:
                raise ConfigError(f"{where}: {v:g} is out of range, expected {self.describe()}")


# Ranges many models share. Sizes stop far above any sensible model but below what would
# exhaust memory; a seed fits NumPy's (32 bits).
SEED = Range(0, 2**32 - 1)
EPOCHS = Range(1, 100_000)
PATIENCE = Range(0, 100_000)
BATCH_SIZE = Range(1, 1_000_000)
LEARNING_RATE = Range(0, 10, min_open=True)
WEIGHT_DECAY = Range(0, 10)
DROPOUT = Range(0, 1, max_open=True)
FRACTION = Range(0, 1)
WIDTH = Range(1, 8192)
LAYERS = Range(1, 64)

#: Lightning's precision settings (``Trainer(precision=...)``) a training run may use.
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "64-true", "16-true", "bf16-true")
Precision = Literal[PRECISIONS]  # type: ignore[valid-type]

#: The fields :func:`training_fields` adds to a model config, in this order.
TRAINING_FIELDS = ("epochs", "patience", "batch_size", "seed", "device", "precision")


def check_precision(value: Any) -> str:
    """``value`` if it is one of :data:`PRECISIONS`, else a one-line :class:`BadInputError`."""
    if value not in PRECISIONS:
        raise BadInputError(f"invalid precision {value!r}",
                            hint="use one of " + ", ".join(PRECISIONS))
    return value


def training_fields(*, epochs: int | None, patience: int, batch_size: int | None,
                    metric: str = "validation loss", items: str = "examples",
                    auto_epochs: str | None = None):
    """Class decorator (below ``@dataclass``) that adds the settings of a training run to a
    model config: ``epochs``, ``patience``, ``batch_size``, ``seed``, ``device`` and
    ``precision`` (:data:`TRAINING_FIELDS`), with their ranges and help declared here once and
    the defaults the model chooses. They are ordinary fields of the config, so a saved model's
    metadata keeps them as flat keys, and CLI options, config files and pipeline TOML use the
    same names; :func:`pmtoolkit.core.training.train_config` turns them into a run's
    ``TrainConfig``.

    ``batch_size=None``: the model batches otherwise and has no ``batch_size``;
    ``epochs=None``: the model chooses the number of epochs from the data, as ``auto_epochs``
    says. ``metric`` (what ``patience`` waits on) and ``items`` (what a batch holds) fill in
    the help texts."""
    if epochs is None and not auto_epochs:
        raise TypeError("training_fields(epochs=None) needs auto_epochs, the rule it follows")
    epochs_help = "maximum training epochs" + (f" (default: {auto_epochs})" if auto_epochs
                                               else "")
    specs: dict[str, tuple[Any, Any, dict[str, Any]]] = {
        "epochs": (int | None if epochs is None else int, epochs,
                   {"range": EPOCHS, "help": epochs_help}),
        "patience": (int, patience, {"range": PATIENCE,
                     "help": f"stop after this many epochs without a better {metric} "
                             "(0: never)"}),
        "batch_size": (int, batch_size, {"range": BATCH_SIZE, "help": f"{items} per batch"}),
        "seed": (int, 0, {"range": SEED,
                 "help": "model seed (initial weights, batch order, augmentation)"}),
        "device": (str, "auto", {"help": DEVICE_HELP}),
        "precision": (Precision, "32-true", {
            "help": "numeric precision of training (Lightning's): 32-true; bf16-mixed or "
                    "16-mixed, mixed precision for GPUs; 64-true, 16-true or bf16-true, the "
                    "whole network in that type (the trained model is saved as before)"}),
    }
    if batch_size is None:
        del specs["batch_size"]

    def deco(cls: type[T]) -> type[T]:
        if "__dataclass_fields__" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: put @training_fields below @dataclass")
        own = dict(inspect.get_annotations(cls))
        clash = [n for n in TRAINING_FIELDS if n in own]
        if clash:
            raise TypeError(f"{cls.__name__} declares {clash[0]!r} itself; training_fields "
                            "declares it (choose its default there)")
        for name, (hint, default, metadata) in specs.items():
            own[name] = hint
            setattr(cls, name, dataclasses.field(default=default, metadata=metadata))
        cls.__annotations__ = own
        return cls

    return deco


def option_name(field_name: str) -> str:
    return field_name.replace("_", "-")


def _key(name: str) -> str:
    return name.replace("-", "_")


def load_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``.toml`` or ``.json`` config file into a dict."""
    p = require_file(path, "config file")
    with reading(p):
        text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot parse config file '{p}': {exc}") from None
    except RecursionError:
        raise ConfigError(f"cannot parse config file '{p}': nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{p}' must hold a table of settings")
    return data


def check_keys(data: Mapping[str, Any], valid: Sequence[str], *, where: str,
               what: str = "key") -> None:
    """Refuse the first key of ``data`` that is not one of ``valid`` (``-`` and ``_`` alike):
    a :class:`ConfigError` (exit 2) naming it and ``where`` it is, with the closest valid name
    as a "did you mean" and the valid ones listed. Every settings file goes through this:
    ``--config`` files (tables and keys), pipeline TOML and run files. ``what="table"`` words
    the message for a file's ``[tables]``."""
    names = [str(v) for v in valid]
    known = [_key(v) for v in names]

    def show(v: str) -> str:
        return f"[{v}]" if what == "table" else repr(v)

    for raw in data:
        key = str(raw)
        if _key(key) in known:
            continue
        close = difflib.get_close_matches(_key(key), known, n=1)
        guess = f"did you mean {show(names[known.index(close[0])])}? " if close else ""
        listed = ("tables: " + ", ".join(map(show, names)) if what == "table"
                  else "valid: " + ", ".join(names))
        raise ConfigError(f"unknown {what} {key!r} in {where}", hint=guess + listed)


def check_tables(data: Mapping[str, Any], tables: Sequence[str], *, where: str) -> None:
    """A settings file of ``[tables]``: only ``tables`` (see :func:`check_keys`), each one a
    table of settings."""
    check_keys(data, tables, where=where, what="table")
    for key, value in data.items():
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {key!r} must be a table of settings",
                              hint=f"write [{key}] and the settings below it")


def from_mapping(cls: type[T], data: Mapping[str, Any], *, source: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys (:func:`check_keys`) and mistyped
    values are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    check_keys(data, sorted(option_name(k) for k in fields), where=source)
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = _key(str(raw_key))
        where = f"{source}: {option_name(key)}"
        values[key] = coerce(value, hints[key], where)
        limits = fields[key].metadata.get("range")
        if limits is not None:
            limits.check(values[key], where)
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def check_ranges(obj: Any, *, source: str = "config") -> None:
    """Check every field of config dataclass ``obj`` against its declared :class:`Range` and,
    where its type is a ``Literal``, its choices, and refuse non-finite floats (for configs
    built in Python rather than read from a file, which :func:`from_mapping` checks)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        where = f"{source}: {option_name(f.name)}"
        if typing.get_origin(hints.get(f.name)) is Literal:
            coerce(value, hints[f.name], where)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{where}: {v} is not a finite number")
        limits = f.metadata.get("range")
        if limits is not None:
            limits.check(value, where)


def merge(cls: type[T], *layers: Mapping[str, Any] | None, source: str = "config") -> T:
    """Later layers override earlier ones (defaults < config file < command line)."""
    combined: dict[str, tuple[str, Any]] = {}  # normalised key -> (key as written, value)
    for layer in layers:
        for k, v in (layer or {}).items():
            combined[_key(str(k))] = (str(k), v)
    return from_mapping(cls, dict(combined.values()), source=source)


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a type hint, converting where it is lossless (int -> float,
    list -> tuple, str -> Path)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if errors else ConfigError(f"{where}: unexpected value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: invalid value {value!r}",
                              hint="choose from " + ", ".join(map(str, args)))
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and Ellipsis not in args:  # fixed length: (0.8, 0.1, 0.1)
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(coerce(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        items = [coerce(v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: {value} is not a finite number")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if hint is Path:
        if isinstance(value, (str, os.PathLike)):
            return Path(value)
        raise ConfigError(f"{where}: expected a path, got {value!r}")
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return from_mapping(hint, value, source=where)
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as plain JSON values, with option names as keys."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return to_dict(v)
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    return {option_name(f.name): plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def write_resolved(path: str | os.PathLike, **sections: Any) -> None:
    """Write the resolved config(s) of a run as JSON, one section per dataclass or dict."""
    data = {name: to_dict(v) if dataclasses.is_dataclass(v) else v for name, v in sections.items()}
    write_json(path, data, default=str)
