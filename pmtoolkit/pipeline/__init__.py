"""Declarative pipelines: a TOML file of named steps, each calling a pmtoolkit function with
parameters and the outputs of earlier steps (``pmt pipeline run|validate|list``).

A package rather than one module: the registry (:mod:`pmtoolkit.pipeline.registry`: what an
action is) and the engine (parsing, checking, content-hash caching, atomic step folders) are
domain-free; the actions (:mod:`pmtoolkit.pipeline.actions`) wrap every domain's functions,
importing each domain only when a step runs. ``ACTIONS`` is complete once this package is
imported.
"""
from pmtoolkit.pipeline.engine import (
    ACTIONS,
    Action,
    Input,
    Pipeline,
    RunResult,
    StepFailed,
    StepRun,
    action,
    load,
    parse,
    run,
    shipped_pipelines,
)

__all__ = ["ACTIONS", "Action", "Input", "Pipeline", "RunResult", "StepFailed", "StepRun",
           "action", "load", "parse", "run", "shipped_pipelines"]
