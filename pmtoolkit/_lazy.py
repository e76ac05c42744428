"""Lazy public namespaces: names load from their submodule on first access (datamol's and
scanpy's pattern), so importing a package never imports RDKit or torch by itself."""
from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, whose public names are
    ``exports`` (name -> submodule of ``package``, or a module's absolute dotted name)."""
    names = sorted(exports)

    def __getattr__(name: str):
        if name in exports:
            target = exports[name]
            module = importlib.import_module(
                target if target.startswith("pmtoolkit.") else f"{package}.{target}")
            return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return names

    return __getattr__, __dir__, names
