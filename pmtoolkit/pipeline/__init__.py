"""Declarative pipelines: a TOML file of named steps, each calling a pmtoolkit function with
parameters and the outputs of earlier steps (``pmt pipeline run|validate|list``).

A package rather than one module: the engine (parsing, checking, content-hash caching,
atomic step folders) is domain-free, the actions (:mod:`pmtoolkit.pipeline.actions`) wrap
every domain's functions.
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
