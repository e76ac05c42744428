"""The root ``pmt`` group: global options, lazy command groups, and the error policy.

Command groups are imported only when invoked, so ``pmt --help`` loads click and nothing
heavy. Errors become one line on stderr and an exit code: 2 for a user's mistake (usage,
missing file, bad input), 1 for an internal failure; ``-v`` adds the traceback.
"""
from __future__ import annotations

import difflib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback

import click

from pmtoolkit._version import __version__

#: Every top-level command: name -> (import path, one-line help). The help is repeated here so
#: that listing commands imports none of them; a test keeps it equal to the command's own.
COMMANDS: dict[str, tuple[str, str]] = {
    "mol": ("pmtoolkit.cli.mol:mol",
            "Read, standardise, describe, fingerprint, filter and split molecules."),
    "property": ("pmtoolkit.cli.property:property_",
                 "Train, predict and evaluate molecular property models."),
    "generate": ("pmtoolkit.cli.generate:generate",
                 "Sample, train, fine-tune, optimise and evaluate SMILES generators."),
    "dti": ("pmtoolkit.cli.dti:dti",
            "Train, predict and evaluate drug-target affinity models; screen libraries."),
    "variants": ("pmtoolkit.cli.variants:variants",
                 "Score genetic variants with DNA sequence models; train models; mutagenesis "
                 "maps."),
    "expr": ("pmtoolkit.cli.expr:expr",
             "Single-cell and bulk expression on AnnData: pipeline, embeddings, label "
             "transfer, DE."),
    "imaging": ("pmtoolkit.cli.imaging:imaging",
                "Classify and segment medical images; Grad-CAM explanations; evaluation "
                "reports."),
    "ehr": ("pmtoolkit.cli.ehr:ehr",
            "Risk models over patient visit sequences: build, train, predict, evaluate, "
            "explain."),
    "fusion": ("pmtoolkit.cli.fusion:fusion",
               "Multimodal patient models: simulate cohorts, fuse modality embeddings, "
               "attribute."),
    "response": ("pmtoolkit.cli.response:response",
                 "Drug response from sample features and drug structure: simulate, train, "
                 "predict, explain, evaluate."),
    "federated": ("pmtoolkit.cli.federated:federated",
                  "Federated training with Flower: FedAvg or FedProx across simulated non-IID "
                  "sites."),
    "pipeline": ("pmtoolkit.cli.pipeline:pipeline",
                 "Run declarative pipelines (TOML files of steps); validate and list them."),
    "demo": ("pmtoolkit.cli.demo:demo",
             "Run the main job on shipped defaults and write a report folder."),
    "info": ("pmtoolkit.cli.info:info",
             "Show versions, the compute device, and the shipped datasets and models."),
}

_state: dict = {"verbose": 0, "quiet": False, "log_file": None, "argv": []}


class LazyGroup(click.Group):
    """The root group: subcommands imported on first use, and the error policy in ``main``."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy) + [c for c in super().list_commands(ctx) if c not in self.lazy]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            from pmtoolkit.cli.common import guard_commands

            module, _, attr = self.lazy[name][0].partition(":")
            return guard_commands(getattr(importlib.import_module(module), attr))
        return super().get_command(ctx, name)

    def make_parser(self, ctx: click.Context):
        from pmtoolkit.cli.common import refuse_repeats

        return refuse_repeats(super().make_parser(ctx), ctx)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        """Run the command; Ctrl-C leaves as :class:`Interrupted` before click would turn it
        (and an escaped EOFError) into Abort with a stray blank line."""
        from pmtoolkit.core.errors import InternalError, Interrupted

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted(signal.SIGINT) from None
        except EOFError as exc:  # core.io.reading names truncated inputs; this is a bug
            raise InternalError(f"unexpected end of input ({exc})") from exc

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        """Run the command line; every failure becomes one line on stderr and an exit code."""
        from pmtoolkit.core.errors import Interrupted, PmtError

        _state["argv"] = list(sys.argv[1:] if args is None else args)
        previous = _catch_sigterm()
        try:
            rv = super().main(args=args, prog_name=prog_name or "pmt", complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.UsageError as exc:
            cmd = exc.ctx.command_path if exc.ctx is not None else "pmt"
            _fail(f"{exc.format_message().rstrip('.')} (see '{cmd} --help')", exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except (click.Abort, KeyboardInterrupt):  # Ctrl-C outside a command's body
            _fail("interrupted", 128 + signal.SIGINT)
        except Interrupted as exc:
            _fail("interrupted", exc.exit_code)
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (pmt ... | head); nothing to report
            sys.exit(0)
        except PmtError as exc:
            if _state["verbose"]:
                traceback.print_exc()
            message = exc.one_line()
            if exc.exit_code == 1:
                message = (f"internal error: {message} (a bug in pmtoolkit; rerun with -v for "
                           "the traceback and report it)")
            _fail(message, exc.exit_code)
        except (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            # a path the user gave that the system will not let us use
            if _state["verbose"]:
                traceback.print_exc()
            where = f" '{exc.filename}'" if exc.filename else ""
            _fail(f"cannot use{where}: {exc.strerror or exc}", 2)
        except Exception as exc:  # anything else is a bug in pmtoolkit
            if _state["verbose"]:
                traceback.print_exc()
            _fail(f"internal error: {type(exc).__name__}: {exc} (a bug in pmtoolkit; rerun with "
                  "-v for the traceback and report it)", 1)
        finally:
            _restore_sigterm(previous)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in self.lazy.items()]
        for name in super().list_commands(ctx):
            if name not in self.lazy:
                cmd = super().get_command(ctx, name)
                rows.append((name, cmd.get_short_help_str(80) if cmd else ""))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _configure_logging(verbose: int, quiet: bool, log_file: str | None) -> None:
    from pmtoolkit.core.devices import secondary_process

    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    if secondary_process():  # a DDP training process after the first: the first one speaks
        level, log_file = max(level, logging.WARNING), None
    if not verbose:  # torch's C++ warnings (DDP's reducer) are noise unless debugging; read
        os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # when torch is first imported
    logger = logging.getLogger("pmtoolkit")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()  # a --log-file handler configured again (-v after a subcommand) is reopened
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(console)
    if log_file:
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(fh)
    # Third-party warnings are noise for a command-line user unless debugging.
    logging.captureWarnings(True)
    pywarn = logging.getLogger("py.warnings")
    pywarn.handlers = list(logger.handlers) if verbose else [logging.NullHandler()]
    pywarn.propagate = False
    if secondary_process() and "stderr" not in _state:
        # its results and summaries are the first process's: dropped (the log handler above
        # and _fail keep the real stderr, so its warnings and errors still show)
        _state["stderr"] = sys.stderr
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the process's life


@click.group(name="pmt", cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="pmtoolkit",
                      message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More log output; -v also shows tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.option("--log-file", type=click.Path(dir_okay=False, writable=True),
              help="Also write a full debug log to this file.")
def cli(verbose: int, quiet: bool, log_file: str | None) -> None:
    """pmtoolkit: precision-medicine models from the command line.

    Files in, files out; logs on stderr; data on stdout only with -o -.
    Exit codes: 0 success, 1 internal error, 2 usage or input error.
    """
    _state.update(verbose=verbose, quiet=quiet, log_file=log_file)
    _configure_logging(verbose, quiet, log_file)


def more_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Add ``-v``/``-q`` given after a subcommand (``pmt variants score ... -v``) to those
    given to ``pmt`` itself, and configure logging again (see
    :func:`pmtoolkit.cli.common.global_flags`)."""
    if not (verbose or quiet):
        return
    _state["verbose"] += verbose
    _state["quiet"] = _state["quiet"] or quiet
    _configure_logging(_state["verbose"], _state["quiet"], _state["log_file"])


def _raise_interrupted(signum, frame) -> None:
    from pmtoolkit.core.errors import Interrupted

    raise Interrupted(signum)


def _catch_sigterm():
    """SIGTERM (a scheduler's or `kill`'s stop) unwinds the run like Ctrl-C does, so atomic
    writers remove their temporary files and the exit code says what happened (143)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupted)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _fail(message: str, code: int) -> None:
    click.echo(f"pmt: error: {' '.join(message.split())}", file=_state.get("stderr"), err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="pmt")


if __name__ == "__main__":
    main()
