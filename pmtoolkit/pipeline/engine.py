"""The pipeline engine: a TOML file of named steps -> checked plan -> steps run in order, each
into its own folder, skipped when its inputs and parameters have not changed.

A pipeline file::

    [pipeline]
    name = "variant-prioritisation"
    description = "VCF -> scores -> filter -> annotated VCF + report"

    [steps.score]
    action = "variants.score"        # what the step does: pmt pipeline list --actions
    vcf = "tert_variants"            # an input: a path (relative to this file), a shipped
    fasta = "tert_promoter"          # dataset's name, or "@step" / "@step.output"
    model = "mpra"                   # a parameter of the action, type-checked

    [steps.filter]
    action = "variants.filter"
    input = "@score"                 # the primary output of step "score"
    min_abs_effect = 0.1

Every key of a step is its ``action``, one of the action's inputs, or one of its parameters;
anything else is an error naming the step and the closest valid key, raised before any step
runs, as are wrong types, references to unknown or later steps and missing input files.

A run writes ``OUTDIR/<step>/`` for each step (built in a temporary folder and moved into
place, so a failed step leaves no half-written folder and every earlier step's folder intact),
``OUTDIR/<step>/.pmt-step.json`` (the step's key, resolved parameters, input and output
hashes, seconds), ``OUTDIR/pipeline.json`` (the run's state) and ``OUTDIR/index.html``. A step
is skipped when its key — the sha256 of its action, action version, resolved parameters and the
content of every input file and of every shipped model or file a parameter names — matches the
recorded one and its outputs are unchanged; so a changed parameter reruns that step and the
steps downstream of it whose inputs then change.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmtoolkit.core.config import check_keys
from pmtoolkit.core.errors import ConfigError, MissingInputError, PmtError

# the built-in actions register themselves on import, so ACTIONS is complete from here on
from pmtoolkit.pipeline import actions as _builtin  # noqa: F401
from pmtoolkit.pipeline.registry import ACTIONS, Action, Input, StepRun, action  # noqa: F401

log = logging.getLogger(__name__)

STEP_RECORD = ".pmt-step.json"
STATE = "pipeline.json"
_REF = re.compile(r"^@([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*))?$")
_NAME = re.compile(r"^[A-Za-z_][\w-]*$")
_IGNORED = {STEP_RECORD, ".pmtoolkit-output"}


# --------------------------------------------------------------------------- plans


@dataclass
class Step:
    name: str
    action: Action
    params: Any
    inputs: dict[str, Any]  # input name -> reference (str) or list of them, as written


@dataclass
class Pipeline:
    name: str
    description: str
    steps: list[Step]
    path: Path | None = None

    @property
    def base(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()


def registered_actions() -> dict[str, Action]:
    """Every action a step can name (the built-in ones and any registered since)."""
    return ACTIONS


def _close(word: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(word, valid, n=1)
    return (f"did you mean {close[0]!r}? " if close else "") + "valid: " + ", ".join(valid)


def parse_override(text: str) -> tuple[str, str, Any]:
    """``STEP.KEY=VALUE`` (VALUE as TOML, else a string) -> (step, key, value)."""
    import tomllib

    lhs, sep, rhs = text.partition("=")
    step, dot, key = lhs.strip().partition(".")
    if not sep or not dot or not step or not key:
        raise ConfigError(f"--set {text!r}: expected STEP.KEY=VALUE, e.g. filter.min_qed=0.5")
    try:
        value = tomllib.loads(f"v = {rhs.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = rhs.strip()
    except RecursionError:  # tomllib recurses per nested array or table
        raise ConfigError(f"--set {text[:60]!r}...: nested too deeply") from None
    return step, key.strip(), value


def parse(data: Mapping[str, Any], *, path: Path | None = None,
          overrides: list[str] | tuple[str, ...] = ()) -> Pipeline:
    """Check a pipeline's tables and build its plan; every mistake is a :class:`ConfigError`
    naming the step and key."""
    actions = registered_actions()
    where = f"'{path}'" if path else "the pipeline"
    check_keys(data, ("pipeline", "steps"), where=where, what="table")
    head = data.get("pipeline", {})
    if not isinstance(head, Mapping):
        raise ConfigError(f"[pipeline] in {where} must be a table")
    check_keys(head, ("name", "description"), where=f"[pipeline] of {where}")
    steps_raw = data.get("steps")
    if not isinstance(steps_raw, Mapping) or not steps_raw:
        raise ConfigError(f"{where} has no steps", hint="add [steps.NAME] tables")
    raw = {name: dict(body) if isinstance(body, Mapping) else body
           for name, body in steps_raw.items()}
    for text in overrides:
        step, key, value = parse_override(text)
        if step not in raw:
            raise ConfigError(f"--set {text!r}: no step {step!r}", hint=_close(step, list(raw)))
        if not isinstance(raw[step], dict):
            raise ConfigError(f"step {step!r} in {where} must be a table")
        raw[step][key] = value
    steps: list[Step] = []
    for name, body in raw.items():
        if not _NAME.match(name):
            raise ConfigError(f"step name {name!r} in {where}: use letters, digits, _ and -")
        if not isinstance(body, Mapping):
            raise ConfigError(f"step {name!r} in {where} must be a table")
        if "action" not in body:
            raise ConfigError(f"step {name!r} has no action",
                              hint="e.g. action = \"mol.standardize\"; pmt pipeline list "
                                   "--actions")
        act = actions.get(body["action"]) if isinstance(body["action"], str) else None
        if act is None:
            raise ConfigError(f"step {name!r}: unknown action {body['action']!r}",
                              hint=_close(str(body["action"]), sorted(actions)))
        inputs: dict[str, Any] = {}
        params: dict[str, Any] = {}
        names = {i.name: i for i in act.inputs}
        check_keys(body, act.keys(), where=f"step {name!r} ({act.name})")
        for key, value in body.items():
            k = key.replace("-", "_")
            if key == "action":
                continue
            if k in names:
                inputs[k] = _check_refs(value, names[k], name, steps, where)
            else:
                params[k] = value
        missing = [i.name for i in act.inputs if not i.optional and i.name not in inputs]
        if missing:
            raise ConfigError(f"step {name!r} ({act.name}) needs input {missing[0]!r}",
                              hint=next(i.help for i in act.inputs if i.name == missing[0]))
        if act.params is not None:
            from pmtoolkit.core.config import from_mapping

            source = f"step {name!r} ({act.name})"
            try:
                config = from_mapping(act.params, params, source=source)
            except ConfigError:
                raise
            except PmtError as exc:  # a parameter's own check, e.g. a table.rank condition
                raise ConfigError(f"{source}: {exc.message}", hint=exc.hint) from None
        else:
            config = None
        steps.append(Step(name, act, config, inputs))
    pipe = Pipeline(str(head.get("name") or (path.stem if path else "pipeline")),
                    str(head.get("description", "")), steps, path)
    for step in steps:  # literal inputs must exist before anything runs
        for ref in _refs(step):
            if not ref.startswith("@"):
                _literal(ref, pipe.base, step.name)
    return pipe


def _check_refs(value: Any, spec: Input, step: str, earlier: list[Step], where: str) -> Any:
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not spec.many:
        raise ConfigError(f"step {step!r}: input {spec.name!r} takes one file, got a list")
    for v in values:
        if not isinstance(v, str) or not v:
            raise ConfigError(f"step {step!r}: input {spec.name!r} must be a path, a shipped "
                              f"dataset's name or @step, got {v!r}")
        if v.startswith("@"):
            m = _REF.match(v)
            if not m:
                raise ConfigError(f"step {step!r}: {v!r} is not a reference",
                                  hint="write @STEP or @STEP.OUTPUT")
            done = {s.name: s for s in earlier}
            if m.group(1) not in done:
                later = "a later or unknown step"
                raise ConfigError(f"step {step!r}: {v!r} refers to {later}",
                                  hint=("steps before it: " + ", ".join(done)) if done
                                  else "it is the first step")
            out = m.group(2)
            src = done[m.group(1)].action
            if out is not None and out not in src.outputs:
                raise ConfigError(f"step {step!r}: step {m.group(1)!r} ({src.name}) has no "
                                  f"output {out!r}", hint="outputs: " + ", ".join(src.outputs))
    return value


def _refs(step: Step) -> list[str]:
    out = []
    for v in step.inputs.values():
        out += v if isinstance(v, list) else [v]
    return out


def _literal(ref: str, base: Path, step: str) -> Path:
    from pmtoolkit.core import shipped

    p = Path(ref).expanduser()
    p = p if p.is_absolute() else base / p
    if p.exists():
        return p
    names = {e.name for e in shipped.manifest() if e.kind in ("dataset", "config")}
    if ref in names:
        entry = next(e for e in shipped.manifest() if e.name == ref)
        return shipped.path(ref, entry.kind)
    raise MissingInputError(f"step {step!r}: input '{ref}' does not exist",
                            hint=f"paths are relative to {base}; shipped datasets: "
                                 + ", ".join(sorted(names)))


def load(source: str | os.PathLike, *, overrides: list[str] | tuple[str, ...] = ()) -> Pipeline:
    """A pipeline file, or a shipped pipeline by name (``pmt pipeline list``)."""
    from pmtoolkit.core.config import load_file

    p = Path(source)
    if not p.is_file():
        shipped = shipped_pipelines()
        if str(source) in shipped:
            p = shipped[str(source)]
        elif p.suffix or os.sep in str(source):
            raise MissingInputError(f"pipeline file '{p}' does not exist")
        else:
            from pmtoolkit.core.errors import unknown_name

            raise unknown_name("pipeline", str(source), sorted(shipped))
    return parse(load_file(p), path=p.resolve(), overrides=overrides)


def shipped_pipelines() -> dict[str, Path]:
    """The pipelines that ship with pmtoolkit: name -> TOML file (``pmtoolkit/pipelines`` in
    an installed wheel, ``pipelines/`` beside the package in a source checkout)."""
    here = Path(__file__).resolve().parents[1]
    for root in (here / "pipelines", here.parent / "pipelines"):
        found = sorted(root.glob("*.toml"))
        if found:
            return {p.stem: p for p in found}
    return {}


# --------------------------------------------------------------------------- hashing


def _file_hash(path: Path) -> str:
    from pmtoolkit.core.io import sha256_file

    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(path.rglob("*")):
            if f.is_file() and f.name not in _IGNORED:
                h.update(f.relative_to(path).as_posix().encode() + b"\0")
                h.update(sha256_file(f).encode())
        return h.hexdigest()
    return sha256_file(path)


def _named_files(value: Any, base: Path) -> dict[str, str]:
    """Content hashes of what a parameter names: a shipped model or dataset (its manifest
    sha256) or an existing file — so swapping a model file reruns the step."""
    from pmtoolkit.core import shipped

    out = {}
    for v in value if isinstance(value, (list, tuple)) else [value]:
        if not isinstance(v, str) or not v or len(v) > 255 or "\n" in v:
            continue  # text, not a name
        entry = next((e for e in shipped.manifest() if e.name == v), None)
        p = Path(v) if Path(v).is_absolute() else base / v
        try:
            is_file = p.is_file()
        except OSError:  # not a valid path on this system
            is_file = False
        if is_file:
            out[v] = _file_hash(p)
        elif entry is not None:
            out[v] = entry.sha256
    return out


def _params_dict(step: Step) -> dict[str, Any]:
    from pmtoolkit.core.config import to_dict

    return to_dict(step.params) if step.params is not None else {}


# --------------------------------------------------------------------------- running


class StepFailed(PmtError):
    """A step failed; carries the exit code of the underlying error (2 for bad input)."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 1):
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


@dataclass
class StepResult:
    name: str
    action: str
    status: str  # ran | skipped | failed | not run
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    error: str = ""


@dataclass
class RunResult:
    pipeline: Pipeline
    outdir: Path
    steps: list[StepResult]

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "ran"]

    @property
    def skipped(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "skipped"]


def _prepare(outdir: Path) -> None:
    if outdir.exists():
        if not outdir.is_dir():
            raise ConfigError(f"output '{outdir}' exists and is not a folder")
        if any(outdir.iterdir()) and not (outdir / STATE).is_file():
            raise ConfigError(f"output folder '{outdir}' holds other files and no {STATE}",
                              hint="choose an empty or new folder, or a pipeline run folder")
    outdir.mkdir(parents=True, exist_ok=True)


def _resolve_inputs(step: Step, pipe: Pipeline, outdir: Path) -> dict[str, Any]:
    def one(ref: str) -> Path:
        m = _REF.match(ref)
        if m:
            src = next(s for s in pipe.steps if s.name == m.group(1))
            return outdir / src.name / src.action.outputs[m.group(2) or src.action.primary]
        return _literal(ref, pipe.base, step.name)

    return {k: [one(r) for r in v] if isinstance(v, list) else one(v)
            for k, v in step.inputs.items()}


def _step_key(step: Step, inputs: dict[str, Any], params: dict[str, Any], base: Path
              ) -> tuple[str, dict[str, Any]]:
    hashes: dict[str, Any] = {}
    for k, v in inputs.items():
        paths = v if isinstance(v, list) else [v]
        for p in paths:
            if not p.exists():
                raise StepFailed(f"step {step.name!r}: input '{p}' does not exist", exit_code=2)
        hashes[k] = [_file_hash(p) for p in v] if isinstance(v, list) else _file_hash(v)
    named = {k: h for k, v in params.items() for k, h in _named_files(v, base).items()}
    doc = {"action": step.action.name, "version": step.action.version, "params": params,
           "inputs": hashes, "named": named}
    key = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
    return key, doc


def _outputs_intact(folder: Path, record: dict[str, Any]) -> bool:
    for name, digest in record.get("outputs", {}).items():
        p = folder / name
        if not p.exists() or _file_hash(p) != digest:
            return False
    return True


def run(pipe: Pipeline, outdir: str | os.PathLike, *, force: bool = False,
        cluster: Any = None) -> RunResult:
    """Run the plan's steps in order into ``outdir`` (see the module doc). ``cluster`` (a
    :class:`~pmtoolkit.core.distributed.Cluster`): the batch steps (generate.sample,
    mol.standardize, mol.filter, property.predict, variants.score) run their partitions on
    it, one local cluster started for the whole run; their outputs are the same."""
    from pmtoolkit.core.distributed import shared

    out = Path(outdir)
    _prepare(out)
    if cluster is None:
        return _run(pipe, out, force, None)
    with shared(cluster) as on:
        return _run(pipe, out, force, on)


def _run(pipe: Pipeline, out: Path, force: bool, cluster: Any) -> RunResult:
    from pmtoolkit.core.io import atomic_dir, write_json
    from pmtoolkit.core.progress import progress

    results = [StepResult(s.name, s.action.name, "not run") for s in pipe.steps]
    failure: StepFailed | None = None
    for step, res in progress(list(zip(pipe.steps, results)), desc=pipe.name, unit="step"):
        params = _params_dict(step)
        res.params = params
        inputs = _resolve_inputs(step, pipe, out)
        key, doc = _step_key(step, inputs, params, pipe.base)
        folder = out / step.name
        record_path = folder / STEP_RECORD
        record = json.loads(record_path.read_text()) if record_path.is_file() else None
        if (not force and record is not None and record.get("key") == key
                and _outputs_intact(folder, record)):
            log.info("step %s (%s): unchanged, skipped", step.name, step.action.name)
            res.status, res.summary = "skipped", record.get("summary", {})
            res.seconds, res.outputs = record.get("seconds", 0.0), record.get("outputs", {})
            continue
        log.info("step %s (%s) parameters: %s; inputs: %s", step.name, step.action.name,
                 json.dumps(params, default=str),
                 json.dumps({k: [str(p) for p in v] if isinstance(v, list) else str(v)
                             for k, v in inputs.items()}))
        start = time.perf_counter()
        try:
            with atomic_dir(folder, overwrite=True) as tmp:
                summary = step.action.func(StepRun(step.name, step.action, step.params,
                                                   inputs, tmp, pipe.base, folder,
                                                   cluster)) or {}
                missing = [f for f in step.action.outputs.values() if not (tmp / f).exists()]
                if missing:
                    raise StepFailed(f"step {step.name!r} ({step.action.name}) wrote no "
                                     f"{missing[0]} (a bug in the action)")
                res.outputs = {f: _file_hash(tmp / f) for f in step.action.outputs.values()}
                res.seconds = round(time.perf_counter() - start, 3)
                res.summary = summary
                write_json(tmp / STEP_RECORD, {
                    "key": key, "step": step.name, **doc, "outputs": res.outputs,
                    "seconds": res.seconds, "summary": summary,
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        except StepFailed as exc:
            failure = exc
        except PmtError as exc:
            failure = StepFailed(f"step {step.name!r} ({step.action.name}) failed: "
                                 f"{exc.message}", hint=exc.hint, exit_code=exc.exit_code)
            failure.__cause__ = exc
        except Exception as exc:  # noqa: BLE001  (a bug in the step: exit 1, traceback with -v)
            failure = StepFailed(f"step {step.name!r} ({step.action.name}) failed with an "
                                 f"internal error: {type(exc).__name__}: {exc}",
                                 hint="earlier steps' outputs are kept; rerun with -v for the "
                                      "traceback", exit_code=1)
            failure.__cause__ = exc
        if failure is not None:
            res.status, res.error = "failed", failure.message
            res.seconds = round(time.perf_counter() - start, 3)
            break
        res.status = "ran"
        log.info("step %s done in %.1f s", step.name, res.seconds)
    result = RunResult(pipe, out, results)
    write_json(out / STATE, state(result))
    write_index(result)
    if failure is not None:
        raise failure
    return result


def state(result: RunResult) -> dict[str, Any]:
    pipe = result.pipeline
    return {"format": "pmtoolkit-pipeline-run/1", "pipeline": pipe.name,
            "description": pipe.description, "file": str(pipe.path) if pipe.path else None,
            "steps": [dataclasses.asdict(s) for s in result.steps]}


def write_index(result: RunResult) -> Path:
    """``OUTDIR/index.html``: every step with its status, time, parameters and links to its
    outputs (and to a step's own report.html where it wrote one)."""
    import html

    from pmtoolkit.core.report import Report

    pipe = result.pipeline
    report = Report(f"Pipeline {pipe.name}", pipe.description)
    rows = []
    for s in result.steps:
        links = []
        folder = result.outdir / s.name
        for f in s.outputs or {}:
            links.append(f'<a href="{html.escape(s.name)}/{html.escape(f)}">{html.escape(f)}</a>')
        if (folder / "report.html").is_file() and "report.html" not in (s.outputs or {}):
            links.append(f'<a href="{html.escape(s.name)}/report.html">report.html</a>')
        cls = {"ran": "status-ok", "skipped": "status-ok", "failed": "status-bad"}.get(
            s.status, "meta")
        params = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in s.params.items())
        rows.append(
            f"<tr><td><b>{html.escape(s.name)}</b><br><span class=\"meta\">"
            f"{html.escape(s.action)}</span></td><td class=\"{cls}\">{html.escape(s.status)}"
            + (f"<br>{html.escape(s.error)}" if s.error else "")
            + f"</td><td class=\"num\">{s.seconds:.1f}</td><td>{' '.join(links)}</td>"
            f"<td class=\"meta\">{html.escape(params)}</td></tr>")
    table = ("<table><thead><tr><th>step</th><th>status</th><th>seconds</th><th>outputs</th>"
             "<th>parameters</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    sec = report.section("Steps")
    sec.text("Skipped steps had the same inputs and parameters as the run that wrote their "
             "outputs (content hashes in each step's .pmt-step.json).")
    sec.html(table)
    return report.write(result.outdir / "index.html")


def describe(pipe: Pipeline) -> list[dict[str, Any]]:
    """The plan as rows (for ``validate`` and ``list``)."""
    return [{"step": s.name, "action": s.action.name,
             "inputs": ", ".join(f"{k}={v}" for k, v in s.inputs.items()),
             "params": json.dumps(_params_dict(s), default=str)} for s in pipe.steps]
