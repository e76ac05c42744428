"""Helpers every command uses: the start-up log line, and the rules every command obeys
(outputs never destroy inputs or earlier results, no NaN options)."""
from __future__ import annotations

import functools
import logging
import math
import os
import shlex
import sys
from pathlib import Path

import click

log = logging.getLogger("pmtoolkit.cli")


def startup(**fields: object) -> None:
    """Log one line with the versions, device, seed and the command line, as a run starts."""
    from importlib import metadata

    from pmtoolkit.cli.main import _state

    from pmtoolkit._version import __version__

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "none"
    parts = [f"pmtoolkit {__version__}", f"python {sys.version.split()[0]}",
             f"torch {torch_version}"]
    parts += [f"{k} {v}" for k, v in fields.items() if v is not None]
    log.info("%s | %s", " | ".join(parts), shlex.join(["pmt", *map(str, _state["argv"])]))


# --------------------------------------------------------------------------- the output rule

#: Parameters that name what a command writes: a file, or a folder written whole. Every other
#: path-like value is an input. (A test holds every command's parameters to this list.)
OUTPUT_PARAMS = frozenset({"output", "outdir", "predictions", "save_model", "attributions"})
#: Read when present and written when absent: neither refused as existing nor as an input.
CACHE_PARAMS = frozenset({"reference_cache"})

_OVERWRITE_HELP = "Replace an existing output file (without it, an existing output is an error)."


def guard_commands(command: click.Command) -> click.Command:
    """Give ``command`` (and every command below it) the rules that hold for all of pmt,
    checked before the command body runs:

    - an output that is also an input is an error (``-o`` equal to ``-i``; an input inside an
      output folder that would be replaced);
    - an existing output file is replaced only with ``--overwrite`` (added where a command
      writes files and had no such option; output folders are guarded by
      :func:`pmtoolkit.core.io.check_output_dir`, which knows the folders pmt wrote);
    - an option that takes one value is given at most once (:func:`single_values`);
    - ``-v`` and ``-q`` mean what they mean to ``pmt`` wherever they stand
      (:func:`global_flags`);
    - no numeric option takes NaN or an infinity;
    - native helper threads never take Ctrl-C or SIGTERM from the main thread
      (:func:`pmtoolkit.core.signals.start_native_threads`).
    """
    if getattr(command, "_pmt_guarded", False):
        return command
    single_values(command)
    global_flags(command)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            guard_commands(sub)
        command._pmt_guarded = True
        return command
    if command.callback is None:
        return command
    names = {p.name for p in command.params}
    added = False
    if (names & OUTPUT_PARAMS) and "overwrite" not in names:
        command.params.append(click.Option(["--overwrite"], is_flag=True, help=_OVERWRITE_HELP))
        added = True
    body = command.callback

    @functools.wraps(body)
    def guarded(*args, **kwargs):
        from pmtoolkit.core.signals import start_native_threads

        ctx = click.get_current_context()
        check_params(ctx)
        start_native_threads()
        if added:
            kwargs.pop("overwrite", None)
        return body(*args, **kwargs)

    command.callback = guarded
    command._pmt_guarded = True
    return command


class GlobalFlag(click.Option):
    """``-v/--verbose`` or ``-q/--quiet`` of ``pmt`` itself, accepted again by a subcommand
    (hidden from its help) and handed to the root's logging set-up."""

    def __init__(self, decls: list[str], **kwargs):
        super().__init__(decls, hidden=True, expose_value=False, callback=self._forward,
                         **kwargs)

    @staticmethod
    def _forward(ctx: click.Context, param: click.Parameter, value) -> None:
        from pmtoolkit.cli.main import more_logging

        if not ctx.resilient_parsing:
            more_logging(**{param.name: value})


def global_flags(command: click.Command) -> click.Command:
    """Let ``command`` take ``pmt``'s own ``-v/--verbose`` and ``-q/--quiet`` too, so that
    ``pmt variants score ... -v`` is ``pmt -v variants score ...`` (no subcommand uses either
    flag for anything else: tests/cli/test_grammar.py holds that)."""
    command.params += [
        GlobalFlag(["-v", "--verbose", "verbose"], count=True,
                   help="As pmt -v: more log output; -v also shows tracebacks."),
        GlobalFlag(["-q", "--quiet", "quiet"], is_flag=True,
                   help="As pmt -q: only warnings and errors; no progress bars."),
    ]
    return command


def single_values(command: click.Command) -> click.Command:
    """Make giving a single-valued option of ``command`` twice a usage error (exit 2) naming
    the option (see :func:`refuse_repeats`)."""
    make_parser = command.make_parser
    command.make_parser = lambda ctx: refuse_repeats(make_parser(ctx), ctx)
    return command


def refuse_repeats(parser, ctx: click.Context):
    """``parser`` (a click option parser), refusing a single-valued option given twice: click
    would silently keep the last value (``-m solubility -m bbbp`` predicting with bbbp only).
    Flags, counters (``-vv``) and options declared ``multiple`` may repeat."""
    parse = parser.parse_args

    def parse_args(args):
        opts, rest, order = parse(args)
        if not ctx.resilient_parsing:
            seen = set()
            for p in order:
                if isinstance(p, click.Option) and not (p.multiple or p.count or p.is_flag):
                    if p.name in seen:
                        raise click.UsageError(f"option {'/'.join(p.opts)} is given more than "
                                               "once; it takes one value", ctx=ctx)
                    seen.add(p.name)
        return opts, rest, order

    parser.parse_args = parse_args
    return parser


def _values(value) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _values(v)]
    return [] if value is None else [value]


def _option_name(ctx: click.Context, name: str) -> str:
    for p in ctx.command.params:
        if p.name == name:
            return "/".join(o for o in p.opts if o.startswith("--")) or p.human_readable_name
    return name


def check_params(ctx: click.Context) -> None:
    """The checks of :func:`guard_commands` on a parsed command line (raises a one-line
    :class:`click.BadParameter` or :class:`BadInputError`, exit code 2)."""
    from pmtoolkit.core.errors import BadInputError

    params = ctx.params
    for name, value in params.items():
        for v in _values(value):
            if isinstance(v, float) and not math.isfinite(v):
                raise click.BadParameter(f"{v} is not a finite number",
                                         param_hint=_option_name(ctx, name))
    inputs = []
    for name, value in params.items():
        if name in OUTPUT_PARAMS or name in CACHE_PARAMS:
            continue
        for v in _values(value):
            if isinstance(v, (str, Path)) and str(v) not in ("", "-") and _exists(v):
                inputs.append((name, Path(v)))
    overwrite = bool(params.get("overwrite"))
    for name in [n for n in params if n in OUTPUT_PARAMS]:  # in order: the same error each run
        value = params[name]
        if value is None or str(value) == "-":
            continue
        out = Path(value)
        if not _exists(out):
            continue
        option = _option_name(ctx, name)
        for in_name, path in inputs:
            if _same(out, path):
                raise BadInputError(f"{option} '{out}' is also an input "
                                    f"({_option_name(ctx, in_name)}); it would be destroyed",
                                    hint="write the output elsewhere")
            if out.is_dir() and _inside(path, out) and overwrite:
                raise BadInputError(f"input '{path}' ({_option_name(ctx, in_name)}) is inside "
                                    f"the output folder '{out}', which --overwrite would "
                                    "replace", hint="write the output elsewhere")
        if out.is_file() and not overwrite:
            raise BadInputError(f"output '{out}' exists",
                                hint="pass --overwrite to replace it, or choose another name")


def _exists(value: str | Path) -> bool:
    try:
        return Path(value).exists()
    except (OSError, ValueError):  # a name too long for a path, or holding a NUL: not a file
        return False


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # both exist: inputs and outputs are filtered by _exists
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False
