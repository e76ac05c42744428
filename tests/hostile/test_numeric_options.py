"""Every numeric option of every command, fed a 0, a negative, a NaN and an absurd value:
exit 2 with one line naming the option, or a run that succeeds — never exit 1 from deep
inside torch, scikit-learn or RDKit."""
from __future__ import annotations

import math

import click
import pytest

from tests.hostile.cli_tree import leaf_commands, placeholder_args

HOSTILE = ("0", "-1", "nan", "1e12")


def _numeric_options():
    for path, cmd in leaf_commands():
        for p in cmd.params:
            counter = getattr(p, "count", False)  # -vv takes no value (pmt's own -v, forwarded)
            if isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType)) and \
                    not counter:
                yield path, cmd, p


NUMERIC = list(_numeric_options())
IDS = [f"{' '.join(path)} {p.opts[0]}" for path, _, p in NUMERIC]


def accepts(param: click.Parameter, value: str) -> bool:
    """Whether the command line takes ``value`` for ``param`` (its click type and the rule
    that no option is NaN or infinite)."""
    try:
        v = param.type.convert(value, param, None)
    except click.BadParameter:
        return False
    return not (isinstance(v, float) and not math.isfinite(v))


@pytest.mark.parametrize("path, cmd, param", NUMERIC, ids=IDS)
def test_every_numeric_option_declares_its_range(path, cmd, param):
    """Bounds live on the option (generated from the config field's Range, or declared on a
    hand-written option), so the help shows them and a bad value never reaches the model."""
    assert isinstance(param.type, (click.IntRange, click.FloatRange)), \
        f"{' '.join(path)} {param.opts[0]} has no range"
    assert param.type.min is not None or param.type.max is not None


@pytest.mark.parametrize("path, cmd, param", NUMERIC, ids=IDS)
def test_refused_values_exit_2_naming_the_option(pmt, tmp_path, path, cmd, param):
    dummy = tmp_path / "in.csv"
    dummy.write_text("smiles\nCCO\n")
    rest = placeholder_args(cmd, {param.name}, tmp_path, dummy)
    for value in HOSTILE:
        if accepts(param, value):
            continue  # runs for real in test_accepted_values_run (slow) and the domain tests
        values = [value] * (param.nargs if param.nargs > 0 else 1)
        args = values if isinstance(param, click.Argument) else [param.opts[0], *values]
        r = pmt(*path, *args, *rest)
        assert r.exit_code == 2, (value, r.output)
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith("pmt: error: ") and "Traceback" not in r.stderr
        assert any(o in line for o in param.opts), (value, line)
