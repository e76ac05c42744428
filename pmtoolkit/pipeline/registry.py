"""What a pipeline step can do: the registry of actions (name -> typed parameters, named
inputs and outputs, the function), and what an action's function receives.

Domain-free, imported by both the built-in actions (:mod:`pmtoolkit.pipeline.actions`, which
register themselves with :func:`action`) and the engine, which imports the built-in actions
once; so neither imports the other's importer, and :data:`ACTIONS` is complete as soon as
:mod:`pmtoolkit.pipeline` is imported.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Input:
    """An input of an action: one file (or folder), or a list of them (``many``)."""

    name: str
    help: str
    optional: bool = False
    many: bool = False


@dataclass(frozen=True)
class Action:
    """What a step can do: typed parameters (a dataclass whose fields are the TOML keys),
    named inputs, named output files (the first is the primary one, ``@step``) and the
    function that does the work."""

    name: str
    help: str
    func: Callable[[StepRun], dict[str, Any] | None]
    params: type | None = None
    inputs: tuple[Input, ...] = ()
    outputs: Mapping[str, str] = field(default_factory=dict)
    version: int = 1

    @property
    def primary(self) -> str:
        return next(iter(self.outputs))

    def keys(self) -> list[str]:
        names = ["action"] + [i.name for i in self.inputs]
        if self.params is not None:
            names += [f.name for f in dataclasses.fields(self.params) if f.init]
        return names


ACTIONS: dict[str, Action] = {}


def action(name: str, *, help: str, params: type | None = None, inputs: tuple[Input, ...] = (),
           outputs: Mapping[str, str], version: int = 1):
    """Register the decorated function as pipeline action ``name``."""
    def register(func):
        ACTIONS[name] = Action(name, help, func, params, inputs, dict(outputs), version)
        return func

    return register


@dataclass
class StepRun:
    """What an action's function receives: its resolved parameters and inputs, and the
    (temporary) folder it writes its outputs into."""

    name: str
    action: Action
    params: Any
    inputs: dict[str, Any]
    folder: Path
    base: Path | None = None  # the pipeline file's folder (relative paths in parameters)
    final: Path | None = None  # where ``folder`` ends up (for messages)
    #: the Dask cluster the run's batch steps share (a
    #: :class:`~pmtoolkit.core.distributed.Cluster`), or None: this process
    cluster: Any = None

    def output(self, key: str | None = None) -> Path:
        return self.folder / self.action.outputs[key or self.action.primary]

    def final_output(self, key: str | None = None) -> Path:
        """Where :meth:`output` will be once the step has finished."""
        return (self.final or self.folder) / self.action.outputs[key or self.action.primary]
