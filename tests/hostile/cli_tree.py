"""The pmt command tree as data, for tests that hold every command to the same rules."""
from __future__ import annotations

from pathlib import Path

import click

from pmtoolkit.cli.common import OUTPUT_PARAMS
from pmtoolkit.cli.main import cli


def leaf_commands() -> list[tuple[list[str], click.Command]]:
    """``(["mol", "descriptors"], command)`` for every command that does something."""
    ctx = click.Context(cli)
    out = []

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])
        else:
            out.append((path, cmd))

    walk(cli, [])
    return out


def placeholder_args(cmd: click.Command, given: set[str], folder, dummy_file) -> list[str]:
    """Command-line arguments filling every required parameter not in ``given`` with a value
    that parses (an existing file or folder, the first choice, a number in range), so a test
    reaches the checks that run before a command's body."""
    args: list[str] = []
    for p in cmd.params:
        if p.name in given or not p.required:
            continue
        if p.name in OUTPUT_PARAMS:  # a place to write, never the dummy input
            value = str(Path(folder) / f"placeholder-{p.name}")
        else:
            value = _placeholder(p.type, folder, dummy_file)
        values = [value] * (p.nargs if p.nargs > 0 else 1)
        if isinstance(p, click.Argument):
            args += values
        else:
            args += [p.opts[0], *values]
    return args


def _placeholder(t: click.ParamType, folder, dummy_file) -> str:
    if isinstance(t, click.Path):
        return str(dummy_file if t.file_okay else folder)
    if isinstance(t, click.Choice):
        return str(t.choices[0])
    if isinstance(t, (click.IntRange, click.FloatRange)):
        return str(t.min if t.min is not None and not t.min_open else
                   (t.min + 1 if t.min is not None else 1))
    if isinstance(t, (click.types.IntParamType, click.types.FloatParamType)):
        return "1"
    return "x"


def option_flag(cmd: click.Command, name: str) -> str:
    for p in cmd.params:
        if p.name == name:
            return p.opts[0] if isinstance(p, click.Option) else ""
    raise KeyError(name)
