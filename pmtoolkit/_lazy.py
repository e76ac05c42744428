"""Lazy public namespaces: names load from their submodule on first access (datamol's and
scanpy's pattern), so importing a package never imports RDKit or torch by itself."""
from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable


class _Namespace(types.ModuleType):
    """A package whose exported names win over its submodules of the same name: importing
    ``pmtoolkit.chem.standardize`` would otherwise replace the function
    ``pmtoolkit.chem.standardize`` with the module (Python sets a package attribute for each
    submodule it loads). The module stays importable by its dotted name."""

    def __setattr__(self, name: str, value) -> None:
        if (isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}"
                and name in self.__dict__.get("_exported", ())):
            return
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, whose public names are
    ``exports`` (name -> submodule of ``package``, or a module's absolute dotted name)."""
    names = sorted(exports)
    module = sys.modules[package]
    module.__dict__["_exported"] = frozenset(exports)
    module.__class__ = _Namespace

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
