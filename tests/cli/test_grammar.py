"""One CLI grammar (docs/cli.md's preamble), held for every command of the whole click tree,
loaded through the lazy root group as a user's command line loads it."""
from __future__ import annotations

import re
from collections import defaultdict

import click
import pytest
from pmtoolkit.cli.main import cli

from tests.hostile.cli_tree import placeholder_args

#: option spellings replaced by one spelling per concept
BANNED = {"--arch": "--architecture", "--hidden": "--hidden-size",
          "--hidden-dim": "--hidden-size", "--label-key": "--label-column",
          "--value-column": "--label-column", "--target-columns": "--label-column",
          "--target-column": "--label-column"}
#: short flags of the root group, which no subcommand may take for something else
GLOBAL_SHORT = ("-v", "-q", "-h")
#: the short flags every command spells the same
SHARED = {"-i": "--input", "-o": "--output", "-m": "--model", "-c": "--config"}


def _tree() -> list[tuple[list[str], click.Command]]:
    """Every group and command below ``pmt``, as ``(["expr", "classify", "train"], cmd)``."""
    out = []

    def walk(cmd, path, parent):
        ctx = click.Context(cmd, info_name=path[-1] if path else "pmt", parent=parent)
        out.append((path, cmd))
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, f"pmt {' '.join(path + [name])} does not load"
                walk(sub, [*path, name], ctx)

    walk(cli, [], None)
    return out


TREE = _tree()
SUBCOMMANDS = [(p, c) for p, c in TREE if p]
LEAVES = [(p, c) for p, c in TREE if not isinstance(c, click.Group)]
IDS = [" ".join(p) for p, _ in LEAVES]


def _options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option)]


def _longs(p: click.Option) -> list[str]:
    return [o for o in [*p.opts, *p.secondary_opts] if o.startswith("--")]


def _shorts(p: click.Option) -> list[str]:
    return [o for o in [*p.opts, *p.secondary_opts] if not o.startswith("--")]


def test_the_tree_is_walked_whole():
    assert len(LEAVES) > 40 and {"mol", "property", "ehr", "info"} <= {p[0] for p, _ in LEAVES}
    assert ["expr", "classify", "train"] in [p for p, _ in LEAVES]


def test_global_short_flags_are_never_reused():
    """-v and -q are pmt's own: a subcommand takes them only to hand them to pmt
    (``pmt variants score ... -v`` is ``pmt -v variants score ...``), never for its own."""
    from pmtoolkit.cli.common import GlobalFlag

    reused = [(" ".join(path), o) for path, cmd in SUBCOMMANDS for p in _options(cmd)
              for o in _shorts(p) if o in GLOBAL_SHORT and not isinstance(p, GlobalFlag)]
    assert not reused, f"global short flags taken by subcommands: {reused}"
    root = {o for p in _options(cli) for o in _shorts(p)}
    for path, cmd in SUBCOMMANDS:
        forwarded = {o for p in _options(cmd) if isinstance(p, GlobalFlag) for o in p.opts}
        assert forwarded == {"-v", "--verbose", "-q", "--quiet"} and {"-v", "-q"} <= root, path


def test_a_short_flag_means_one_option_everywhere():
    meanings = defaultdict(set)
    for path, cmd in SUBCOMMANDS:
        for p in _options(cmd):
            for short in _shorts(p):
                meanings[short].add(tuple(_longs(p)))
    ambiguous = {s: sorted(m) for s, m in meanings.items() if len(m) > 1}
    assert not ambiguous, f"short flags with several meanings: {ambiguous}"
    for short, long_ in SHARED.items():
        assert meanings[short] == {(long_,)}, (short, meanings[short])


def test_shared_options_carry_their_short_flag():
    """Where a command has --input, --output, --model or --config, it is -i, -o, -m, -c."""
    missing = [(" ".join(path), long_) for path, cmd in LEAVES for p in _options(cmd)
               for short, long_ in SHARED.items() if long_ in _longs(p) and short not in p.opts]
    assert not missing, missing


def test_every_option_has_help_text():
    bare = [(" ".join(path) or "pmt", p.opts[0]) for path, cmd in TREE for p in _options(cmd)
            if not (p.help or "").strip()]
    assert not bare, f"options without help: {bare}"


@pytest.mark.parametrize("path, cmd", LEAVES, ids=IDS)
def test_every_command_has_an_example(path, cmd):
    """An ``Example:`` block (click's ``\\b``, so lines keep their breaks) whose lines run
    this very command."""
    match = re.search(r"\n\s*\x08\n\s*Examples?:\n((?:[ \t]+\S.*\n?)+)", cmd.help or "")
    assert match, f"pmt {' '.join(path)} has no \\b Example: block"
    lines = [ln.strip() for ln in match.group(1).splitlines()]
    starts = [ln for ln in lines if not ln.startswith("--") and not ln.startswith("-")]
    assert starts and all(ln.startswith("pmt " + " ".join(path)) for ln in starts), lines


def test_no_banned_spellings():
    found = [(" ".join(path), o, BANNED[o]) for path, cmd in TREE for p in _options(cmd)
             for o in _longs(p) if o in BANNED]
    assert not found, f"old spellings (use the new one): {found}"
    cold = [(" ".join(path), c) for path, cmd in TREE for p in cmd.params
            if isinstance(p.type, click.Choice) for c in p.type.choices
            if str(c).startswith("cold_")]
    assert not cold, f"split methods are spelt cold-drug, cold-target, ...: {cold}"


def test_split_is_a_method_and_sizes_are_fractions():
    for path, cmd in LEAVES:
        for p in _options(cmd):
            if "--split" in _longs(p):
                assert p.nargs == 1 and isinstance(p.type, click.Choice), " ".join(path)
                assert not {"train", "valid", "val", "test"} & set(p.type.choices), \
                    f"pmt {' '.join(path)} --split names a part, not a method"
            if "--sizes" in _longs(p):
                assert p.nargs == 3 and isinstance(p.type, click.FloatRange), " ".join(path)


def test_positional_arguments_only_for_many_files():
    """A command's input is -i/--input; positional arguments are kept for any number of
    files (``pmt imaging predict a.png b.png``) and for ``pmt info NAME``."""
    single = [(" ".join(path), p.name) for path, cmd in LEAVES for p in cmd.params
              if isinstance(p, click.Argument) and p.nargs != -1 and path != ["info"]]
    assert not single, f"single positional inputs (use -i/--input): {single}"


def _single_valued(cmd: click.Command) -> click.Option | None:
    for p in _options(cmd):
        if not (p.multiple or p.count or p.is_flag or p.hidden):
            return p
    return None


REPEATABLE_CASES = [(path, cmd, _single_valued(cmd)) for path, cmd in LEAVES
                    if _single_valued(cmd) is not None]


@pytest.mark.parametrize("path, cmd, param", REPEATABLE_CASES,
                         ids=[" ".join(p) for p, _, _ in REPEATABLE_CASES])
def test_repeating_a_single_valued_option_exits_2(pmt, tmp_path, path, cmd, param):
    dummy = tmp_path / "in.csv"
    dummy.write_text("smiles\nCCO\n")
    value = ["x"] * param.nargs  # refused while parsing, before any value is converted
    rest = placeholder_args(cmd, {param.name}, tmp_path, dummy)
    r = pmt(*path, param.opts[0], *value, param.opts[0], *value, *rest)
    assert r.exit_code == 2, r.output
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("pmt: error: ") and param.opts[0] in line and "more than once" in line


def test_repeating_a_root_option_exits_2(pmt, tmp_path):
    r = pmt("--log-file", str(tmp_path / "a.log"), "--log-file", str(tmp_path / "b.log"),
            "info")
    assert r.exit_code == 2 and "--log-file" in r.stderr


def test_repeatable_options_still_repeat(pmt):
    """Counters and multiple options are not single-valued: ``-vv`` and two -m work."""
    assert pmt("-v", "-v", "info", "--json").exit_code == 0
    r = pmt("property", "predict", "-i", "-", "-m", "solubility", "-m", "solubility",
            "-o", "-", input="smiles\nCCO\n")
    assert r.exit_code == 2 and "given twice" in r.stderr  # the same model twice: named


def test_a_cold_split_in_a_run_file_takes_either_spelling(tmp_path):
    from pmtoolkit.chem.splits import Split, split_method

    assert split_method("cold_drug") == split_method("cold-drug") == "cold-drug"
    assert split_method("balanced_scaffold") == "balanced_scaffold"
    # drug response's split of unseen drugs and unseen samples was called both-cold
    assert split_method("both-cold") == split_method("cold_pair") == "cold-pair"
    old = Split(method="both-cold", seed=0, sizes=(0.5, 0.25, 0.25), train=[0, 1], val=[2],
                test=[3], n=4)
    old.save(tmp_path / "split.json")
    assert Split.load(tmp_path / "split.json").method == "cold-pair"


def test_response_splits_are_spelt_as_dti_splits():
    from pmtoolkit.dti.splits import PAIR_SPLITS
    from pmtoolkit.response.config import SPLITS

    assert "cold-pair" in SPLITS and "cold-pair" in PAIR_SPLITS
    assert all(s in PAIR_SPLITS or s == "cold-sample" for s in SPLITS)


def test_config_files_take_the_option_spelling():
    """A config file's keys are the long option names, so --architecture is
    ``architecture`` there (and the field name a saved config.json holds still reads)."""
    from pmtoolkit.cli.options import file_keys

    from pmtoolkit.ehr.config import RiskModelConfig

    assert file_keys(RiskModelConfig, {"architecture": "gru", "hidden-size": 8}) == \
        {"arch": "gru", "hidden_dim": 8}
    assert file_keys(RiskModelConfig, {"arch": "gru"}) == {"arch": "gru"}
