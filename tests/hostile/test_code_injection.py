"""Pipeline and run files are data, never code (issue 23).

Every payload below once had a way to run Python: a table.rank condition went to pandas
``query(engine="python")``, which resolves ``@name`` in the caller's namespace. Each tries to
create a sentinel file; through ``pmt pipeline validate`` and ``pmt pipeline run``, from the
TOML file and from ``--set``, each must be a one-line error with exit code 2, before any step
runs, and the sentinel must not exist."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from tests.pipeline.test_engine import TINY

PAYLOADS = {
    "at-system": '@shutil.os.system("touch SENTINEL") == 0',
    "at-builtins": '@__builtins__["open"]("SENTINEL", "w") is not None',
    "at-after-and": 'logS > 0 and @pd.io.common.os.system("touch SENTINEL") == 0',
    "attribute-chain": "logS.__class__.__mro__[-1].__subclasses__() == 0",
    "attribute-real": "logS.real > 0",
    "dunder-call": "__import__('os').system('touch SENTINEL') == 0",
    "open-call": "open('SENTINEL', 'w') == 0",
    "exec-call": "exec(\"open('SENTINEL', 'w')\") == 0",
    "getattr-call": 'getattr(logS, "__class__") == 0',
    "backtick-attribute": "`logS`.__class__ == 0",
    "backtick-code": '`__import__("os").system("touch SENTINEL")` == 0',
    "backtick-globals": "`logS` > 0 or `name`.__init__.__globals__ == 0",
    "lambda": "(lambda: __import__('os').system('touch SENTINEL'))() == 0",
    "f-string": "f\"{__import__('os').system('touch SENTINEL')}\" == '0'",
    "subscript": 'smiles[0] == "C"',
    "walrus": "(x := open('SENTINEL', 'w')) == 0",
    "comprehension": "[open('SENTINEL', 'w') for _ in [1]] == 0",
    "statement": "logS > 0; import os; os.system('touch SENTINEL')",
    "second-line": "logS > 0\nimport os",
    "power-bomb": "9 ** 9 ** 9 ** 9 > logS",
    "power-bomb-column": "logS ** 10 ** 10 ** 10 > 0",
    "huge-number": "logS > 1" + "0" * 400,
    "deep-parentheses": "(" * 100_000 + "logS > 0" + ")" * 100_000,
    "nested-200": "(" * 200 + "logS > 0" + ")" * 200,
    "long": "logS > 0 or " * 5_000 + "logS > 0",
}


@pytest.fixture
def tiny(tmp_path, test_data):
    shutil.copy(test_data / "esol_tiny.csv", tmp_path / "esol_tiny.csv")
    return tmp_path


def _pipeline(folder, conditions=None):
    text = TINY
    if conditions is not None:
        text = text.replace("top = 5", "top = 5\nwhere = [" + ", ".join(
            json.dumps(c) for c in conditions) + "]")  # a JSON string is a TOML basic string
    path = folder / "tiny.toml"
    path.write_text(text)
    return path


def _refused(r, sentinel):
    assert not sentinel.exists()
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pmt: error: step 'rank' (table.rank): "
                                                   "condition "), r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("name", PAYLOADS)
def test_hostile_conditions_are_refused_before_anything_runs(pmt, tiny, name):
    sentinel = tiny / "SENTINEL"
    payload = PAYLOADS[name].replace("SENTINEL", str(sentinel))
    hostile = _pipeline(tiny, [payload])
    _refused(pmt("pipeline", "validate", "-c", hostile), sentinel)
    _refused(pmt("pipeline", "run", "-c", hostile, "-o", tiny / "run"), sentinel)
    assert not (tiny / "run").exists()  # refused while checking the plan: no step ran

    clean = _pipeline(tiny)
    override = "rank.where=[" + json.dumps(payload) + "]"
    for args in (("validate", "-c", clean), ("run", "-c", clean, "-o", tiny / "run")):
        r = pmt("pipeline", *args, "--set", override)
        _refused(r, sentinel)
    assert not (tiny / "run").exists()


def test_the_error_points_at_the_offending_character(pmt, tiny):
    r = pmt("pipeline", "validate", "-c", _pipeline(tiny, ["logS > @x"]))
    assert ("condition 'logS > @x': unexpected '@' at column 8; no @variables: a condition "
            "sees only the table's columns (conditions may use column names") in r.stderr


def test_legitimate_conditions_still_work_end_to_end(pmt, tiny):
    conditions = ["logS > -3 and not (name == 'Pentane')",
                  "`logS` < 0 or smiles in ['CCO', 'C']"]
    path = _pipeline(tiny, conditions)
    r = pmt("pipeline", "validate", "-c", path)
    assert r.exit_code == 0, r.stderr
    r = pmt("pipeline", "run", "-c", path, "-o", tiny / "run")
    assert r.exit_code == 0, r.stderr
    molecules = pd.read_csv(tiny / "run" / "standardize" / "molecules.csv")
    expected = molecules[(molecules.logS > -3) & (molecules.name != "Pentane")
                         & ((molecules.logS < 0) | molecules.smiles.isin(["CCO", "C"]))]
    expected = expected.sort_values("logS", ascending=False, kind="stable").head(5)
    ranked = pd.read_csv(tiny / "run" / "rank" / "ranked.csv")
    assert list(ranked["name"]) == list(expected["name"]) and len(ranked) == 5
    assert "Pentane" in set(molecules.name) and "Pentane" not in set(ranked.name)
    # the same from the command line; a changed condition reruns the step
    r = pmt("pipeline", "run", "-c", _pipeline(tiny), "-o", tiny / "run", "--set",
            "rank.where=[\"logS > -3 and not (name == 'Pentane')\", \"logS < -1\"]")
    assert r.exit_code == 0, r.stderr
    ranked = pd.read_csv(tiny / "run" / "rank" / "ranked.csv")
    assert ranked["logS"].between(-3, -1, inclusive="neither").all() and len(ranked) == 5
    # a column that is not there is an error at run time, naming the columns
    r = pmt("pipeline", "run", "-c", _pipeline(tiny, ["logs > 0"]), "-o", tiny / "run")
    assert r.exit_code == 2
    assert ("step 'rank' (table.rank) failed: condition 'logs > 0': no column 'logs' at "
            "column 1 (did you mean 'logS'? columns: input_smiles, logS, name, smiles)"
            ) in r.stderr


def test_deeply_nested_set_values_are_a_clean_error():
    from pmtoolkit.core.errors import ConfigError
    from pmtoolkit.pipeline.engine import parse_override

    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_override("rank.where=" + "[" * 100_000)


# ----------------------------------------------------------------------------- other holes


@pytest.mark.parametrize("alerts", ["__class__", "PAINS,__dict__", "FilterCatalogs"])
def test_alert_catalogs_come_from_an_allow_list(pmt, tmp_path, alerts):
    (tmp_path / "m.csv").write_text("smiles\nCCO\n")
    r = pmt("mol", "filter", "-i", tmp_path / "m.csv", "-o", tmp_path / "f.csv",
            "--alerts", alerts)
    assert r.exit_code == 2 and "unknown alert catalog" in r.stderr
    assert not (tmp_path / "f.csv").exists()


def test_the_catalog_builder_itself_refuses_other_names():
    from pmtoolkit.chem.filters import _catalog
    from pmtoolkit.core.errors import BadInputError

    with pytest.raises(BadInputError, match="unknown alert catalog"):
        _catalog(("__class__",))


@pytest.mark.parametrize("path", ["pmtoolkit.cli.__main__:main", "pmtoolkit.core.model:__class__",
                                  "pmtoolkit._lazy:lazy_exports", "pmtoolkit..core.model:Model",
                                  "pmtoolkit.core.model:Model.__init__", "os; import x:y"])
def test_import_object_refuses_private_and_dunder_names(path):
    import sys

    from pmtoolkit.core.errors import BadInputError
    from pmtoolkit.core.registry import import_object

    with pytest.raises(BadInputError, match="refusing to import"):
        import_object(path)
    assert "pmtoolkit.cli.__main__" not in sys.modules
    from pmtoolkit.core.model import Model

    assert import_object("pmtoolkit.core.model:Model") is Model


def test_a_model_file_cannot_make_pmtoolkit_import_its_main_module(pmt, tmp_path):
    """Importing pmtoolkit.cli.__main__ runs the command line: a model file naming it as its
    class was enough to do that before the class path was checked."""
    import sys

    import torch

    from pmtoolkit.core.checkpoint import save_checkpoint

    evil = tmp_path / "evil.safetensors"
    save_checkpoint(evil, {"w": torch.zeros(1)}, model_class="pmtoolkit.cli.__main__:main")
    (tmp_path / "m.csv").write_text("smiles\nCCO\n")
    r = pmt("property", "predict", "-m", evil, "-i", tmp_path / "m.csv", "-o", tmp_path / "p.csv")
    assert r.exit_code == 2 and "refusing to import 'pmtoolkit.cli.__main__:main'" in r.stderr
    assert "pmtoolkit.cli.__main__" not in sys.modules
