"""One validator for every settings file (core.config.check_keys / check_tables): ``--config``
files, pipeline TOML, optimisation run files and federated run files all refuse an unknown
table or key with exit 2, naming it and the closest valid name."""
from __future__ import annotations

from pathlib import Path

import pytest

from pmtoolkit.core.config import check_keys, check_tables
from pmtoolkit.core.errors import ConfigError

TESTS = Path(__file__).resolve().parents[1]


def test_check_keys_names_the_key_and_suggests():
    with pytest.raises(ConfigError) as err:
        check_keys({"lr": 1, "hiden_size": 8}, ["hidden-size", "lr"], where="'x.toml' [model]")
    assert err.value.exit_code == 2
    assert err.value.one_line() == ("unknown key 'hiden_size' in 'x.toml' [model] (did you "
                                    "mean 'hidden-size'? valid: hidden-size, lr)")
    check_keys({"hidden_size": 1, "lr": 2}, ["hidden-size", "lr"], where="x")  # - and _ alike


def test_check_tables_names_the_table_and_wants_tables():
    with pytest.raises(ConfigError, match=r"unknown table 'modle' in 'x.toml' \(did you mean "
                                          r"\[model\]\? tables: \[model\], \[split\]\)"):
        check_tables({"modle": {}}, ["model", "split"], where="'x.toml'")
    with pytest.raises(ConfigError, match="'model' must be a table of settings"):
        check_tables({"model": 3}, ["model"], where="'x.toml'")
    with pytest.raises(ConfigError, match="unknown table 'zzz'.*tables: \\[model\\]\\)$"):
        check_tables({"zzz": {}}, ["model"], where="f")  # nothing close: no guess


@pytest.mark.parametrize("text, message", [
    ("[modle]\nhidden-size = 8\n", "unknown table 'modle' in '{path}' (did you mean [model]?"),
    ("[model]\nhiden-size = 8\n", "unknown key 'hiden-size' in '{path}' [model] (did you mean "
                                  "'hidden-size'?"),
])
def test_config_option_refuses_unknown_tables_and_keys(pmt, tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    result = pmt("property", "train", "-i", TESTS / "data" / "esol_tiny.csv", "--label-column",
                 "logS", "-o", out, "-c", path)
    assert result.exit_code == 2
    assert message.format(path=path) in result.stderr
    assert not out.exists()


def test_pipeline_toml_refuses_unknown_tables_and_keys():
    from pmtoolkit.pipeline import parse

    step = {"action": "mol.standardize", "input": "x.smi"}
    with pytest.raises(ConfigError, match=r"unknown table 'step' in the pipeline \(did you "
                                          r"mean \[steps\]\?"):
        parse({"step": {"a": step}})
    with pytest.raises(ConfigError, match=r"unknown key 'nmae' in \[pipeline\] of the pipeline "
                                          r"\(did you mean 'name'\?"):
        parse({"pipeline": {"nmae": "x"}, "steps": {"a": step}})
    with pytest.raises(ConfigError, match=r"unknown key 'inptu' in step 'a' \(mol.standardize\) "
                                          r"\(did you mean 'input'\?"):
        parse({"steps": {"a": {"action": "mol.standardize", "inptu": "x.smi"}}})


def test_optimisation_run_file_refuses_unknown_tables_and_keys(tmp_path):
    from pmtoolkit.design.optimize import load_run_file

    path = tmp_path / "run.toml"
    path.write_text("[optimize]\nstepz = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'stepz' in run.toml: optimize \(did "
                                          r"you mean 'steps'\?"):
        load_run_file(path)
    path.write_text("[optimise]\nsteps = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optimise' in run.toml \(did you mean "
                                          r"'optimize'\?"):
        load_run_file(path)


def test_federated_run_file_refuses_unknown_tables_and_keys(tmp_path):
    from pmtoolkit.federated.config import load_run_config

    path = tmp_path / "fed.toml"
    path.write_text("[federatd]\nrounds = 2\n")
    with pytest.raises(ConfigError, match=r"unknown table 'federatd' in '.*fed.toml' \(did you "
                                          r"mean \[federated\]\?"):
        load_run_config(path)
    path.write_text("[federated]\nrounds = 2\nsitse = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'sitse' in \[federated\] of .* \(did "
                                          r"you mean 'sites'\?"):
        load_run_config(path)
    with pytest.raises(ConfigError, match=r"unknown table 'modle' in --set 'modle.depth=2' "
                                          r"\(did you mean \[model\]\?"):
        load_run_config(None, ("modle.depth=2",))
