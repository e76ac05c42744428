"""Write docs/cli.md, the CLI reference, from the click commands themselves.

    python scripts/gen_cli_docs.py          # rewrite docs/cli.md
    python scripts/gen_cli_docs.py --check  # exit 1 if docs/cli.md is out of date
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "cli.md"


def _walk(cmd: click.Command, path: list[str], parent: click.Context | None):
    settings = {"terminal_width": 100, "max_content_width": 100, **cmd.context_settings}
    ctx = click.Context(cmd, info_name=path[-1], parent=parent, **settings)
    yield path, cmd, ctx
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, path + [name], ctx)


#: The grammar every command follows (tests/cli/test_grammar.py holds the tree to it).
PREAMBLE = """\
## One grammar

Every `pmt` command is spelt the same way, so a user who learned one knows them all.

- **Input** is `-i/--input FILE`: the one file or folder a command reads. A command that
  takes any number of files of one kind takes them as positional arguments instead
  (`pmt imaging predict a.png b.png`); no other command has positional arguments (the one
  exception is the name in `pmt info NAME`). Inputs with another role have their own names
  (`-f/--fasta`, `-d/--drugs`, `--features`, `--labels`, `--reference`, `--valid`). One
  input in several formats is still one option, its format read from the file name:
  `pmt imaging train -i data.npz` reads a MedMNIST archive, `-i labels.csv` a table of image
  paths.
- **Output** is `-o/--output`: a file (`-` for stdout where a table can stream) or a folder.
  An existing output is replaced only with `--overwrite`.
- **Model** is `-m/--model`: a model file or a shipped model's name (`pmt info NAME` shows
  one). Where several models make sense (`pmt property predict`) the option repeats and takes
  comma-separated names: `-m solubility,bbbp` or `-m solubility -m bbbp`.
- **Settings** are `-c/--config FILE`: TOML or JSON whose keys are the long option names
  (`hidden-size = 64`); options given on the command line override it. Commands driven by a
  file of their own (`pmt generate optimize`, `pmt federated run`, `pmt pipeline run`) take
  that file as `-c/--config` too.
- **One spelling per concept**: `--architecture`, `--hidden-size`, `--label-column` (the
  column of values to learn or to evaluate against; several labels: repeat it, or separate
  with commas), `--smiles-column`, `--sequence-column`.
- **Splits**: `--split` is always a method (`random`, `scaffold`, `cold-drug`, `cold-target`,
  `cold-sample`, `cold-pair`, ...) and `--sizes` the train, validation and test fractions;
  `--part` picks a part (`train`, `valid`, `test`) of a dataset that is already split. In
  pipeline TOML, run files and saved split files `cold_drug` reads as `cold-drug`.
- **Short flags** have one meaning everywhere: `-i` input, `-o` output, `-m` model, `-c`
  config, `-s` SMILES column, `-f` reference FASTA, `-d` drugs table, `-l` label column,
  `-n` number to sample, `-t` sampling temperature. `-v/--verbose` and `-q/--quiet` belong to
  `pmt` itself and no subcommand reuses them; they may stand anywhere on the line
  (`pmt variants score ... -v` is `pmt -v variants score ...`).
- **An option that takes one value is given once**: repeating it is a usage error (exit 2)
  naming the option, not a silent choice of the last value. Options that may repeat say so
  in their help.
- Every option has help text and every command an example (`pmt COMMAND --help`).
- Exit codes: 0 success, 2 usage or input error, 1 internal error; errors are one line on
  stderr (`pmt -v ...` adds the traceback). Logs go to stderr; data goes to stdout only with
  `-o -`.
"""


def render() -> str:
    from pmtoolkit.cli.main import cli

    out = ["# Command-line reference", "",
           "Generated from the commands by `python scripts/gen_cli_docs.py`; do not edit by hand.",
           "", PREAMBLE]
    for path, cmd, ctx in _walk(cli, ["pmt"], None):
        out += [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", "", "```text",
                cmd.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(out)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
