"""The shape of the house (scanpy's tests/test_package_structure.py in spirit): every domain is
``pmt.<domain>``, loads models with ``load(name_or_path)``, names its file workflows
``train_file`` / ``predict_file`` / ``evaluate_file``, and imports no other domain's private
names; cross-domain imports are the few listed here, each with its reason."""
from __future__ import annotations

import ast
import importlib
import inspect
import re

import pytest

import pmtoolkit as pmt
from tests.test_import_cycles import ROOT, _modules

DOMAINS = ("chem", "property", "dti", "design", "genomics", "expression", "imaging", "ehr",
           "fusion", "response")
#: domains that ship or save models, and so load them by name or path
WITH_MODELS = ("property", "dti", "design", "genomics", "expression", "imaging", "ehr",
               "fusion", "response")
#: the layers that orchestrate domains (they may import any domain's public names)
ORCHESTRATION = ("pipeline", "federated", "fusion", "demo", "variants")
#: imports between domains outside the orchestration layers, each for a reason
ALLOWED = {
    ("design", "property"): "a scoring component of goal-directed design is a property model",
    ("response", "expression"): "cell-line expression features are read as AnnData",
}


@pytest.mark.parametrize("name", [*DOMAINS, "core", "federated", "pipeline", "variants",
                                  "expr"])
def test_every_domain_is_an_attribute_of_pmtoolkit(name):
    assert name in pmt.__all__ and inspect.ismodule(getattr(pmt, name))


@pytest.mark.parametrize("name", WITH_MODELS)
def test_every_domain_with_models_loads_by_name_or_path(name):
    domain = importlib.import_module(f"pmtoolkit.{name}")
    assert "load" in domain.__all__
    params = list(inspect.signature(domain.load).parameters)
    assert params[0] == "name_or_path", f"pmt.{name}.load{params}"


def _domain_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "pmtoolkit" or parts[1].startswith("_"):
        return None  # the package itself and its private helpers (_version, _lazy)
    return parts[1]


def _imported_names(path):
    """(module imported from, name) for every ``from pmtoolkit... import name``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pmtoolkit"):
            for alias in node.names:
                yield node.module, alias.name


def test_no_module_imports_another_domains_private_names():
    bad = []
    for module, path in _modules().items():
        here = _domain_of(module)
        for source, name in _imported_names(path):
            if _domain_of(source) != here and name.startswith("_") \
                    and not name.startswith("__"):
                bad.append(f"{module}: from {source} import {name}")
    assert not bad, bad


def test_domains_import_only_core_chem_and_the_listed_domains():
    found = set()
    for module, path in _modules().items():
        here = _domain_of(module)
        if here in (None, "core", *ORCHESTRATION) or here not in DOMAINS:
            continue
        for source, _ in _imported_names(path):
            there = _domain_of(source)
            if there not in (None, here, "core", "chem"):
                found.add((here, there))
    assert found <= set(ALLOWED), sorted(found - set(ALLOWED))
    assert "core" not in {d for d, _ in found}


def test_core_imports_no_domain():
    for module, path in _modules().items():
        if _domain_of(module) == "core":
            for source, _ in _imported_names(path):
                assert _domain_of(source) in ("core", None), f"{module} imports {source}"


OLD_WORKFLOW_NAMES = re.compile(r"^(train|predict|evaluate)(_files?|_classifier_file)?$")


@pytest.mark.parametrize("name", [*WITH_MODELS, "chem"])
def test_file_workflows_have_one_name_everywhere(name):
    """``train_file`` / ``predict_file`` / ``evaluate_file``; never ``train``, ``predict``,
    ``train_files`` ... in a domain's run module."""
    path = ROOT / name / "run.py"
    if not path.exists():
        pytest.skip(f"{name} has no run module")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert not [n for n in names if OLD_WORKFLOW_NAMES.match(n) and not n.endswith("_file")], \
        names


def test_no_module_shadows_core_model_load_model():
    """``core.model.load_model`` loads any saved model; no domain defines its own
    ``load_model`` with another meaning."""
    for module, path in _modules().items():
        if module == "pmtoolkit.core.model":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert "load_model" not in [n.name for n in tree.body
                                    if isinstance(n, ast.FunctionDef)], module


def _workflows():
    for name in (*WITH_MODELS, "chem"):
        for module in ("run", "classify"):
            try:
                mod = importlib.import_module(f"pmtoolkit.{name}.{module}")
            except ModuleNotFoundError:
                continue
            for fname, f in inspect.getmembers(mod, inspect.isfunction):
                if fname.endswith("_file") and not fname.startswith("_") \
                        and f.__module__ == mod.__name__:
                    yield f"{name}.{module}.{fname}", f


@pytest.mark.parametrize("name, function", list(_workflows()))
def test_file_workflows_share_one_signature_shape(name, function):
    """``train_file(inputs..., outdir, *, config=...)``; ``predict_file(model, inputs...,
    output, ...)`` and ``evaluate_file(model, inputs..., ...)`` take the model first, as
    ``sample_file`` and ``finetune_file`` do; an output is never before an input."""
    params = inspect.signature(function).parameters
    positional = [p for p, v in params.items()
                  if v.kind in (v.POSITIONAL_ONLY, v.POSITIONAL_OR_KEYWORD)]
    if "config" in params:
        assert params["config"].kind == inspect.Parameter.KEYWORD_ONLY, name
    if "model" in params:
        assert positional[0] == "model", f"{name}{positional}"
    outputs = [i for i, p in enumerate(positional) if p in ("output", "outdir")]
    assert not outputs or outputs[0] == len(positional) - 1 or name.endswith("split_file") \
        or positional[outputs[0] + 1:] == [], f"{name}{positional}"


def test_settings_classes_are_configs_with_one_name_each():
    """Settings dataclasses are called ``...Config`` (not Options, Spec, Params or RunFile),
    and no two modules define one of the same name."""
    where: dict[str, list[str]] = {}
    for module, path in _modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                assert not re.search(r"(Options|Spec|Params|RunFile)$", node.name), \
                    f"{module}.{node.name}"
                if node.name.endswith("Config"):
                    where.setdefault(node.name, []).append(module)
    assert {k: v for k, v in where.items() if len(v) > 1} == {}
