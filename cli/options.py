"""Options shared by every command, and options generated from config dataclasses.

A config file (``--config run.toml``) uses the long option names as keys. Values resolve in
layers: the dataclass defaults, then the config file, then options given on the command line.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import click

from pmtoolkit.core.devices import DEVICE_HELP


def key_values(values: tuple[str, ...], option: str, *, cast=str,
               example: str = "NAME=VALUE") -> dict[str, Any]:
    """Repeated ``KEY=VALUE`` options as a dict (``cast`` applied to each value); a malformed
    one, or a key given twice, is a usage error naming the option."""
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise click.BadParameter(f"{v!r}: expected {example}", param_hint=option)
        if key.strip() in out:  # the later one would silently win
            raise click.BadParameter(f"{key.strip()!r} is given twice", param_hint=option)
        try:
            out[key.strip()] = cast(val.strip())
        except ValueError:
            raise click.BadParameter(f"{v!r}: {val.strip()!r} is not a number",
                                     param_hint=option) from None
    return out


def comma_list(values: tuple[str, ...], *, option: str | None = None) -> list[str]:
    """The values of a repeatable option that also takes comma-separated lists
    (``-m a,b -m c`` -> ``[a, b, c]``); with ``option``, a value given twice is a usage
    error naming it."""
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    if option:
        twice = sorted({v for v in out if out.count(v) > 1})
        if twice:
            raise click.BadParameter(f"{twice[0]!r} is given twice", param_hint=option)
    return out


def device_option(f):
    return click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)(f)


def seed_option(f):
    return click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0,
                        show_default=True, help="Random seed.")(f)


def on_invalid_option(default: str):
    return click.option("--on-invalid", type=click.Choice(["error", "skip"]), default=default,
                        show_default=True,
                        help="On an invalid record: stop with exit code 2 (error), or drop it "
                             "and list it in rejected.csv beside the output (skip).")


def overwrite_option(f):
    return click.option("--overwrite", is_flag=True,
                        help="Replace an output folder written by an earlier pmt run.")(f)


def resume_option(f):
    return click.option("--resume", is_flag=True,
                        help="Continue an interrupted run into the same output folder from its "
                             "last checkpoint (OUTPUT/work); give the same options as before.")(f)


def config_option(f):
    return click.option("-c", "--config", "config_file",
                        type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help="TOML or JSON file of settings; keys are the long option names.")(f)


#: Config fields whose option is spelt otherwise (one spelling per concept across commands;
#: the field keeps its name, which saved models' metadata and resolved configs record). A
#: config file takes either spelling.
OPTION_NAMES = {"arch": "architecture", "hidden": "hidden-size", "hidden_dim": "hidden-size",
                "label_key": "label-column", "target_column": "label-column"}


def field_option(field_name: str) -> str:
    """The long option (without ``--``) of a config field."""
    return OPTION_NAMES.get(field_name, field_name.replace("_", "-"))


def file_keys(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """A config file's settings with option spellings (``architecture``) turned into the field
    names of ``cls`` (``arch``); other keys unchanged (unknown ones fail in the merge)."""
    renamed = {field_option(f.name): f.name for f in dataclasses.fields(cls)
               if f.name in OPTION_NAMES}
    return {renamed.get(str(k).replace("_", "-"), k): v for k, v in data.items()}


def _click_type(hint: Any) -> tuple[Any, bool, int]:
    """(click type, is_multiple, nargs) for a dataclass field's type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _click_type(inner[0]) if len(inner) == 1 else (str, False, 1)
    if origin is Literal:
        return click.Choice([str(a) for a in args]), False, 1
    if origin is tuple and args and Ellipsis not in args:  # fixed length: --sizes 0.8 0.1 0.1
        return _click_type(args[0])[0], False, len(args)
    if origin in (list, tuple):
        return _click_type(args[0] if args else str)[0], True, 1
    if hint in (int, float, str, bool):
        return hint, False, 1
    if hint is Path:
        return click.Path(path_type=Path), False, 1
    return str, False, 1


def dataclass_options(cls: type, *, exclude: tuple[str, ...] = ()):
    """Decorator adding one ``--option`` per field of config dataclass ``cls``; their help
    comes from ``field(metadata={"help": ...})``. None of them has a click default, so the
    command can tell what the user set (see :func:`given`)."""
    hints = typing.get_type_hints(cls)

    def deco(f):
        for fld in reversed(dataclasses.fields(cls)):
            if fld.name in exclude or not fld.init:
                continue
            default = _default(fld)
            shown = "" if default in (None, (), []) else f"  [default: {_show(default)}]"
            f = _field_option(f, fld.name, hints[fld.name], fld.metadata.get("help", ""), shown,
                              fld.metadata.get("range"))
        return f

    return deco


def _default(fld: dataclasses.Field) -> Any:
    if fld.default is not dataclasses.MISSING:
        return fld.default
    if fld.default_factory is not dataclasses.MISSING:
        return fld.default_factory()
    return None


def _field_option(f, field_name: str, hint: Any, help_: str, shown: str, limits=None):
    """Add the ``--option`` of one config field to command ``f`` (no click default, so the
    command can tell what the user set); a field's declared range becomes a click range."""
    name = field_option(field_name)
    typ, multiple, nargs = _click_type(hint)
    if limits is not None and typ in (int, float):
        ranged = click.IntRange if typ is int else click.FloatRange
        typ = ranged(limits.min, limits.max, min_open=limits.min_open,
                     max_open=limits.max_open)
    help_ = help_[:1].upper() + help_[1:] + ("." if help_ and help_[-1] not in ".?)" else "")
    if typ is bool:
        return click.option(f"--{name}/--no-{name}", field_name, default=None,
                            help=help_ + shown)(f)
    return click.option(f"--{name}", field_name, type=typ, multiple=multiple, nargs=nargs,
                        default=None, help=help_ + shown)(f)


def choice_options(configs: dict[str, type]):
    """Options for a command whose config class depends on a choice (``--task classify``
    -> ExpressionClassifierConfig, ...): one option per field of any of ``configs``; the help shows
    each choice's default where they differ, and names the choice a field belongs to when
    only one has it. Resolve with :func:`resolve_choice`."""
    fields: dict[str, dict[str, Any]] = {}
    for choice, cls in configs.items():
        hints = typing.get_type_hints(cls)
        for fld in dataclasses.fields(cls):
            if not fld.init:
                continue
            entry = fields.setdefault(fld.name, {"hint": hints[fld.name], "defaults": {},
                                                 "help": fld.metadata.get("help", ""),
                                                 "range": fld.metadata.get("range")})
            entry["defaults"][choice] = _show(_default(fld))

    def deco(f):
        for name, entry in reversed(list(fields.items())):
            d = entry["defaults"]
            if len(d) == len(configs) and len(set(d.values())) > 1:
                shown = ", ".join(f"{v} ({c})" for c, v in d.items())
            else:
                choice, value = next(iter(d.items()))
                shown = value + ("" if len(d) == len(configs) else f"; {choice} only")
            f = _field_option(f, name, entry["hint"], entry["help"], f"  [default: {shown}]",
                              entry["range"])
        return f

    return deco


def resolve_choice(configs: dict[str, type], choice: str, params: dict[str, Any],
                   config_file: Path | None, *, option: str):
    """The config of ``choice`` from :func:`choice_options`' parameters (defaults < config
    file < command line); a setting given on the command line that only another choice has
    is a usage error."""
    cls = configs[choice]
    own = {f.name for f in dataclasses.fields(cls)}
    for other, other_cls in configs.items():
        stray = sorted(set(given(other_cls, params)) - own)
        if stray:
            raise click.UsageError(f"--{field_option(stray[0])} is a setting of "
                                   f"{option} {other}")
    return resolve(cls, params, config_file)


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return " ".join(map(str, v))
    return str(v)


def given(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """The options of ``cls`` the user actually set on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for k, v in params.items():
        if k in names and v is not None and v != ():
            out[k] = list(v) if isinstance(v, tuple) else v
    return out


def resolve(cls: type, params: dict[str, Any], config_file: Path | None, *,
            section: str | None = None, sections: tuple[str, ...] | None = None):
    """Defaults < config file (optionally one ``[section]`` of it) < command line.

    A file of sections holds only ``sections`` (default: just ``section``) and each is a
    table: a misspelt ``[modle]`` is an error naming it, not settings silently left out."""
    from pmtoolkit.core import config as cfg

    from_file: dict[str, Any] = {}
    source = "command-line options"
    if config_file is not None:
        data = cfg.load_file(config_file)
        source = f"'{config_file}'"
        from_file = data
        if section:
            cfg.check_tables(data, sections or (section,), where=source)
            from_file = data.get(section, {})
            source = f"{source} [{section}]"
    return cfg.merge(cls, file_keys(cls, from_file), given(cls, params), source=source)


def pass_params(f):
    """Collect all keyword options into one ``params`` dict (keeps signatures short)."""
    @functools.wraps(f)
    def wrapper(**params):
        return f(params)
    return wrapper


class SchedulerAddress(click.ParamType):
    """A Dask scheduler address, ``tcp://HOST:PORT`` (or tls, ws, wss)."""

    name = "tcp://HOST:PORT"

    def convert(self, value, param, ctx):
        from pmtoolkit.core.distributed import SCHEDULER_SCHEMES, check_scheduler
        from pmtoolkit.core.errors import BadInputError

        try:
            return check_scheduler(str(value))
        except BadInputError:
            schemes = ", ".join(f"{s}://" for s in SCHEDULER_SCHEMES)
            self.fail(f"{value!r} is not a scheduler address: expected tcp://HOST:PORT (or "
                      f"{schemes}), as 'dask scheduler' prints it", param, ctx)


#: the most files a glob or folder of shards may name (each is a shard of the job)
MAX_SHARDS = 100_000
SHARDS_HELP = (" Several files as one input: a glob in quotes ('lib/*.smi.gz') or a folder of "
               "shards, in sorted order (output in that order; rejects name their file).")


class InputFiles(click.Path):
    """An input file, or several as one input: a glob in quotes (``'library/*.smi.gz'``) or a
    folder (every file in it that is not hidden, e.g. a Parquet dataset's part files), in
    sorted order. A single file converts to its path; several to a list of paths. A
    ``click.Path`` to whatever inspects the commands' file parameters."""

    def __init__(self):
        super().__init__(dir_okay=True, allow_dash=True)
        self.name = "FILE|GLOB|DIR"

    def convert(self, value, param, ctx):
        import glob
        import os

        if isinstance(value, list):
            return value
        text = os.fspath(value)
        if Path(text).is_dir():
            files = sorted(str(p) for p in Path(text).iterdir()
                           if p.is_file() and not p.name.startswith((".", "_")))
            what = f"folder '{text}'"
        elif glob.has_magic(text) and not Path(text).exists():
            files = sorted(p for p in glob.glob(text) if Path(p).is_file())
            what = f"'{text}'"
        else:  # one file (a missing one is reported where it is read, as for any input)
            return text
        if not files:
            self.fail(f"{what} names no file", param, ctx)
        if len(files) > MAX_SHARDS:
            self.fail(f"{what} names {len(files):,} files, more than {MAX_SHARDS:,}", param, ctx)
        return files[0] if len(files) == 1 else files


def distributed_options(f):
    """``--workers``, ``--scheduler`` and ``--partition-size``: run a batch command in
    partitions on Dask (see :mod:`pmtoolkit.core.distributed`); collect them with
    :func:`cluster_from`."""
    from pmtoolkit.core.distributed import MAX_PARTITION_ROWS, MAX_WORKERS, PARTITION_ROWS

    f = click.option("--partition-size", type=click.IntRange(1, MAX_PARTITION_ROWS),
                     help="Input rows per partition with --workers or --scheduler (or several "
                          "input files): a whole number of chunks (default: about "
                          f"{PARTITION_ROWS:,} molecules or pairs; the command's help says "
                          "what it counts for VCF lines and cells).")(f)
    f = click.option("--scheduler", type=SchedulerAddress(),
                     help="Run on the Dask cluster whose scheduler is at this address (its "
                          "workers need this pmtoolkit); partitions finished before an "
                          "interruption are kept beside the output and reused.")(f)
    f = click.option("--workers", type=click.IntRange(1, MAX_WORKERS),
                     help="Run on a local Dask cluster of this many worker processes, "
                          "each with its share of the cores (pip install 'pmtoolkit[dask]'); "
                          "see docs/scale.md.")(f)
    return f


def cluster_from(workers: int | None, scheduler: str | None, partition_size: int | None,
                 inputs: Any = None):
    """The :class:`~pmtoolkit.core.distributed.Cluster` of :func:`distributed_options`' values:
    None for a single-process run of one input file; a usage error (exit 2) for options that
    contradict. ``inputs`` (:class:`InputFiles`' value): several files run as the shards of a
    partitioned job, in this process when there is no cluster (``Cluster()``)."""
    if workers is not None and scheduler is not None:
        raise click.UsageError("--workers and --scheduler exclude each other: --workers starts "
                               "a local cluster, --scheduler uses a running one")
    if workers is None and scheduler is None:
        if isinstance(inputs, list):
            from pmtoolkit.core.distributed import Cluster

            return Cluster(partition_size=partition_size)
        if partition_size is not None:
            raise click.UsageError("--partition-size applies to runs with --workers or "
                                   "--scheduler, or several input files")
        return None
    from pmtoolkit.core.distributed import Cluster

    return Cluster(workers=workers, scheduler=scheduler, partition_size=partition_size)


def chunk_size_option(default: int, maximum: int = 100_000):
    """``--chunk-size``: rows read, scored and written at a time (memory stays flat)."""
    return click.option("--chunk-size", type=click.IntRange(1, maximum), default=default,
                        show_default=True,
                        help="Rows read and scored at a time; memory stays flat for any input "
                             "size.")
