"""Registries of named blocks: one place lists the names; CLI choices and error messages come
from it. Entries may be given as ``"module:attr"`` strings so listing names imports nothing."""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from pmtoolkit.core.errors import BadInputError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to objects, resolved lazily; an unknown name raises an error listing valid ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._help: dict[str, str] = {}

    def add(self, name: str, obj: T | str, help: str = "") -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = obj
        self._help[name] = help

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj, help)
            return obj
        return deco

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise unknown_name(self.kind, name, self._entries)
        obj = self._entries[name]
        if isinstance(obj, str):
            module, _, attr = obj.partition(":")
            obj = getattr(importlib.import_module(module), attr)
            self._entries[name] = obj
        return obj

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


# public dotted module names and a public attribute: no relative import, no private or dunder
# module (importing pmtoolkit.cli.__main__ runs the command line), no dunder attribute
_OBJECT_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*:[A-Za-z][A-Za-z0-9_]*")


def import_object(path: str) -> Any:
    """The object ``"package.module:Name"`` names. The path may come from a file (a saved
    model's class), so anything but public module and attribute names is refused, unimported;
    the caller still checks what the object is."""
    if not isinstance(path, str) or not _OBJECT_PATH.fullmatch(path):
        raise BadInputError(f"refusing to import {str(path)[:100]!r}",
                            hint="expected package.module:Name with public names")
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)
