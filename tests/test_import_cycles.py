"""No import cycles between pmtoolkit's modules.

A static import graph read from the source (every ``import`` statement, including those inside
functions: a deferred import keeps start-up light but is still a dependency, and a cycle through
one is the same tangle, only discovered later at run time) must have no strongly connected
component larger than one module. Importing a submodule is not counted as importing its parent
package's ``__init__`` (Python has loaded that first already), and names a package exports lazily
through ``importlib`` are not static imports.
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pmtoolkit

ROOT = Path(pmtoolkit.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {"pmtoolkit": ROOT / "__init__.py"}
    for info in pkgutil.walk_packages([str(ROOT)], prefix="pmtoolkit."):
        spec = importlib.util.find_spec(info.name)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            mods[info.name] = Path(spec.origin)
    return mods


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """The pmtoolkit modules that ``name`` (source file ``path``) imports."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                parts = parts[: len(parts) - node.level + (1 if is_package else 0)]
                base = ".".join(parts + ([base] if base else []))
            # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # ``import a.b.c`` of a name in a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    names = set(mods)
    return {name: _imports(name, path, names) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_every_module_and_its_imports():
    graph = import_graph()
    assert {"pmtoolkit.core.io", "pmtoolkit.pipeline.engine", "pmtoolkit.design.run"} <= set(graph)
    assert "pmtoolkit.pipeline.registry" in graph["pmtoolkit.pipeline.actions"]
    assert "pmtoolkit.design.optimize" in graph["pmtoolkit.design.run"]  # a deferred import


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)
