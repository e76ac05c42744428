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


def render() -> str:
    from pmtoolkit.cli.main import cli

    out = ["# Command-line reference", "",
           "Generated from the commands by `python scripts/gen_cli_docs.py`; do not edit by hand.",
           "", "Every command: exit code 0 on success, 2 for a usage or input error, 1 for an "
           "internal error; errors are one line on stderr (`-v` adds the traceback).", ""]
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
