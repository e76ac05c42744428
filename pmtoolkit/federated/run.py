"""A federated run from a run file: ``pmt federated run -c config.toml -o out/``.

1. The task reads the dataset; a stratified test set is held out for the server; the rest is
   dealt to the sites (:mod:`pmtoolkit.federated.split`), each site's share written in the
   domain's own file format into its own folder.
2. The sites' summary statistics give the shared set-up (vocabulary, target scaler); the seed
   gives the initial weights.
3. A real Flower server (``python -m pmtoolkit.federated.server``) and one Flower client
   process per site (``python -m pmtoolkit.federated.client``) talk gRPC over loopback, on a
   free port; each finished round shows as a progress line. A process that fails, or no
   round finishing within ``timeout`` seconds, stops the run; every process started is
   stopped on the way out, whatever happens.
4. Optionally the same model trains on all sites' data pooled (the centralised reference),
   tested as often.
5. The output folder (written atomically): ``model.safetensors`` (the global model, saved by
   the domain model's own ``save``: ``pmt property predict`` / ``pmt ehr predict`` load it),
   ``federated.json`` (every round: test and per-site metrics, bytes each way, time),
   ``config.json``, ``sites.csv`` (who held what), ``convergence.png``, ``report.html`` and
   the processes' ``logs/``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import PmtError
from pmtoolkit.federated.config import FederatedRunConfig
from pmtoolkit.federated.split import Plan

log = logging.getLogger(__name__)


class FederatedRunError(PmtError):
    """The Flower server or a site process failed, or the run stalled."""

    exit_code = 1


@dataclass
class Prepared:
    """A run before any process starts: the task, its data, who holds what, the set-up."""

    run: FederatedRunConfig
    task: Any
    data: Any
    plan: Plan
    setup: dict[str, Any]
    sites: list[dict[str, Any]]


def prepare(run: FederatedRunConfig) -> Prepared:
    """Read the data, split it, and compute the shared set-up from the sites' summaries."""
    from pmtoolkit.federated import split as S
    from pmtoolkit.federated.tasks import make_task

    fed = run.federated
    task = make_task(fed.task, run.model, run.data)
    data = task.load(fed.data)
    labels = task.labels(data)
    groups = task.groups(data, fed.group_by) if fed.split == "group" else None
    plan = S.plan(labels, sites=fed.sites, method=fed.split, alpha=fed.alpha,
                  units=task.units(data), groups=groups, test_fraction=fed.test_fraction,
                  valid_fraction=fed.valid_fraction, min_size=fed.min_site_size,
                  seed=fed.split_seed)
    summaries = [task.summary(task.subset(data, idx)) for idx in plan.train]
    setup = task.setup(summaries)
    rows = S.describe(plan, labels, task.classification)
    return Prepared(run, task, data, plan, setup, rows)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_work(p: Prepared, work: Path) -> list[np.ndarray]:
    """Each site's folder, the server's test set, the spec every process reads, and the
    initial weights; returns the initial weights."""
    from dataclasses import asdict

    from pmtoolkit.core.config import to_dict
    from pmtoolkit.core.io import json_safe
    from pmtoolkit.federated.params import get_weights

    fed, task = p.run.federated, p.task
    for s in range(p.plan.sites):
        for part, idx in (("train", p.plan.train[s]), ("valid", p.plan.valid[s])):
            if len(idx):
                folder = work / f"site{s}" / part
                folder.mkdir(parents=True, exist_ok=True)
                task.write(task.subset(p.data, idx), folder / task.site_file)
    if len(p.plan.test):
        (work / "server").mkdir(parents=True, exist_ok=True)
        task.write(task.subset(p.data, p.plan.test), work / "server" / task.site_file)
    spec = {"task": fed.task, "model": to_dict(task.config), "data": to_dict(task.options),
            "setup": p.setup, "seed": fed.seed, "sites": fed.sites, "rounds": fed.rounds,
            "local_epochs": fed.local_epochs, "strategy": fed.strategy,
            "proximal_mu": fed.proximal_mu if fed.strategy == "fedprox" else 0.0,
            "fraction_fit": fed.fraction_fit, "fraction_evaluate": fed.fraction_evaluate,
            "federated": asdict(fed)}
    (work / "spec.json").write_text(json.dumps(json_safe(spec), indent=1), encoding="utf-8")
    weights = get_weights(task.network(task.new_model(p.setup, fed.seed)))
    np.savez(work / "initial.npz", *weights)
    return weights


def _last_error(path: Path) -> str:
    """The line of a process log that says why it stopped (the exception's, else the last)."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    for ln in reversed(lines):
        if ("Error" in ln or "Exception" in ln) and not ln.startswith(("File ", "Traceback")):
            return ln[:300]
    return lines[-1][:300] if lines else "no output"


def _stop(procs: dict[str, subprocess.Popen], grace: float = 5.0) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _sigterm_raises():
    """While the processes run, SIGTERM (a pipeline cancelling us) unwinds as
    :class:`~pmtoolkit.core.errors.Interrupted` (exit 143 from the CLI), so they are stopped,
    also when called from Python; returns the handler to restore (None off the main thread)."""
    import threading

    from pmtoolkit.core.errors import Interrupted

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise Interrupted(signum)

    return signal.signal(signal.SIGTERM, handler)


def _env(sites: int) -> dict[str, str]:
    import pmtoolkit

    env = dict(os.environ, FLWR_TELEMETRY_ENABLED="0", PYTHONUNBUFFERED="1",
               GRPC_VERBOSITY=os.environ.get("GRPC_VERBOSITY", "ERROR"))
    # the processes share the machine's cores
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // (sites + 1))))
    root = str(Path(pmtoolkit.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _flower(work: Path, sites: int, rounds: int, timeout: float, on_round) -> None:
    """Start the Flower server and the sites, follow the rounds, stop everything."""
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    env = _env(sites)
    address = f"127.0.0.1:{_free_port()}"
    progress = work / "rounds.jsonl"
    procs: dict[str, subprocess.Popen] = {}
    handles = []

    def start(name: str, module: str, *args: str) -> None:
        fh = open(logs / f"{name.replace(' ', '')}.log", "wb")
        handles.append(fh)
        procs[name] = subprocess.Popen([sys.executable, "-m", module, str(work), *args],
                                       stdout=fh, stderr=subprocess.STDOUT, env=env,
                                       stdin=subprocess.DEVNULL)

    def fail(name: str, why: str) -> None:
        # a site that crashed is the cause (the server then only sees it gone), whether or
        # not its process has finished exiting
        for site, proc in procs.items():
            log_file = logs / (site.replace(" ", "") + ".log")
            if site != "server" and (proc.poll() not in (None, 0) or "Traceback" in
                                     log_file.read_text(errors="replace")):
                name, why = site, f"raised: {_last_error(log_file)}"
                break
        raise FederatedRunError(f"federated run failed: {name} {why}")

    previous = _sigterm_raises()
    try:
        start("server", "pmtoolkit.federated.server", address)
        for s in range(sites):
            start(f"site {s}", "pmtoolkit.federated.client", str(s), address)
        log.info("Flower server on %s with %d site processes", address, sites)
        offset, last = 0, time.monotonic()
        while True:
            if progress.exists():
                with open(progress, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                complete = chunk[:chunk.rfind(b"\n") + 1]
                offset += len(complete)
                for line in complete.decode("utf-8").splitlines():
                    on_round(json.loads(line))
                    last = time.monotonic()
            rc = procs["server"].poll()
            if rc is not None:
                if rc != 0:
                    fail("server", f"(exit {rc}): {_last_error(logs / 'server.log')}")
                break
            for name, proc in procs.items():
                if name != "server" and proc.poll() not in (None, 0):
                    fail(name, f"(exit {proc.returncode}): "
                               f"{_last_error(logs / (name.replace(' ', '') + '.log'))}")
            if time.monotonic() - last > timeout:
                fail("run", f"stalled: no round finished in {timeout:.0f} s (logs: {logs})")
            time.sleep(0.2)
        # the server tells the sites to disconnect at the end; give them a moment
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
            time.sleep(0.1)
    finally:
        _stop(procs)
        for fh in handles:
            fh.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if not (work / "final.npz").exists():
        fail("server", "ended without writing the global model")


def _fmt_round(rec: dict[str, Any], rounds: int, metric: str) -> str:
    parts = [f"round {rec['round']}/{rounds}"]
    test = rec.get("test", {})
    if metric in test:
        parts.append(f"test {metric} {test[metric]:.4f}")
    valid = rec.get("sites_valid", {})
    if metric in valid:
        parts.append(f"sites' valid {metric} {valid[metric]:.4f}")
    mb = (rec.get("bytes_down", 0) + rec.get("bytes_up", 0)) / 1e6
    parts.append(f"{mb:.2f} MB exchanged")
    if "seconds" in rec:
        parts.append(f"{rec['seconds']:.1f} s")
    return ", ".join(parts)


def centralised(p: Prepared, initial: list[np.ndarray], on_epoch=None) -> list[dict[str, Any]]:
    """The reference: the same model from the same initial weights trained on every site's
    training share pooled, for ``rounds * local_epochs`` epochs, tested every
    ``local_epochs`` epochs (the federated run's rounds)."""
    from pmtoolkit.federated.local import train_pooled
    from pmtoolkit.federated.params import set_weights

    fed, task = p.run.federated, p.task
    test = task.subset(p.data, p.plan.test) if len(p.plan.test) else None
    pooled = task.subset(p.data, np.sort(np.concatenate(p.plan.train)))
    model = task.new_model(p.setup, fed.seed)
    set_weights(task.network(model), initial)
    records: list[dict[str, Any]] = []

    def record(epoch: int, m) -> None:
        rec: dict[str, Any] = {"round": epoch // fed.local_epochs, "epoch": epoch}
        if test is not None:
            loss, metrics = task.evaluate(m, test)
            rec["test"] = {"loss": loss, **metrics}
        records.append(rec)
        if on_epoch is not None:
            on_epoch(rec)

    record(0, model)
    train_pooled(task, model, pooled, p.setup, epochs=fed.rounds * fed.local_epochs,
                 every=fed.local_epochs, seed=fed.seed, on_checkpoint=record)
    return records


def run(run: FederatedRunConfig, outdir: str | os.PathLike, *, overwrite: bool = False
        ) -> dict[str, Any]:
    """The whole run (see the module docstring); returns the summary in federated.json."""
    import flwr

    from pmtoolkit.core.config import write_resolved
    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_json
    from pmtoolkit.federated.params import set_weights

    check_output_dir(outdir, overwrite=overwrite)
    fed = run.federated
    p = prepare(run)
    task = p.task
    for row in p.sites:
        log.info("%s: %d samples (%d train, %d valid)%s", row["site"], row["samples"],
                 row["train"], row["valid"],
                 f", positive share {row['positive_share']:.2f}" if "positive_share" in row
                 else f", label mean {row.get('label_mean', float('nan')):.2f}")
    start = time.perf_counter()
    records: list[dict[str, Any]] = []

    def on_round(rec):
        records.append(rec)
        if rec["round"] > 0:
            log.info("%s: %s", fed.strategy, _fmt_round(rec, fed.rounds, task.metric))

    with tempfile.TemporaryDirectory(prefix="pmt-federated-") as tmp:
        work = Path(tmp)
        initial = _write_work(p, work)
        for attempt in range(3):
            try:
                _flower(work, fed.sites, fed.rounds, fed.timeout, on_round)
                break
            except FederatedRunError as exc:
                # another program took the free port between our look and the server's bind
                taken = "already in use" in str(exc) or "bind" in str(exc).lower()
                if not taken or records or attempt == 2:
                    raise
                log.warning("the Flower server could not bind its port; retrying on another")
        with np.load(work / "final.npz", allow_pickle=False) as z:
            final = [z[f"arr_{i}"] for i in range(len(z.files))]
        fed_seconds = time.perf_counter() - start
        ref: list[dict[str, Any]] = []
        if fed.centralised:
            log.info("centralised reference: %d epochs on the pooled training data",
                     fed.rounds * fed.local_epochs)
            def on_epoch(rec):
                if rec["round"] > 0:
                    log.info("centralised: %s", _fmt_round(rec, fed.rounds, task.metric))

            ref = centralised(p, initial, on_epoch=on_epoch)
        model = task.new_model(p.setup, fed.seed)
        set_weights(task.network(model), final)
        summary = _summary(p, records, ref, fed_seconds, flwr.__version__)
        test_final = summary["final"].get("federated")
        model = task.finish(model, p.setup, {"test": test_final, "federated": {
            k: summary[k] for k in ("strategy", "sites", "rounds", "bytes")}})
        with atomic_dir(outdir, overwrite=overwrite) as out:
            model.save(out / "model.safetensors")
            write_json(out / "federated.json", summary)
            write_resolved(out / "config.json", federated=fed, data=task.options,
                           model=task.config)
            _write_sites(p, out / "sites.csv")
            _plot(summary, task.metric, out / "convergence.png")
            _report(summary, task.metric, out / "report.html")
            shutil.copytree(work / "logs", out / "logs")
    return summary


def _write_sites(p: Prepared, path: Path) -> None:
    import pandas as pd

    from pmtoolkit.core.io import write_table

    site, part = p.plan.site_of(p.task.size(p.data))
    frame = pd.DataFrame({"item": np.arange(len(site)), "site": site, "part": part})
    units = p.task.units(p.data)
    if units is not None:
        frame.insert(1, "unit", units)
    write_table(frame, path)


def _summary(p: Prepared, records, ref, seconds: float, flwr_version: str) -> dict[str, Any]:
    fed, task = p.run.federated, p.task
    records = sorted(records, key=lambda r: r["round"])
    down = sum(r.get("bytes_down", 0) for r in records)
    up = sum(r.get("bytes_up", 0) for r in records)
    trained = [r for r in records if r["round"] > 0]
    final = {"federated": trained[-1].get("test") if trained else None}
    if ref:
        final["centralised"] = ref[-1].get("test")
    return {
        "task": fed.task, "metric": task.metric, "higher_is_better": task.higher_is_better,
        "strategy": fed.strategy, "proximal_mu": fed.proximal_mu if fed.strategy == "fedprox"
        else None, "sites": fed.sites, "split": fed.split, "alpha": fed.alpha,
        "group_by": fed.group_by or None, "rounds": fed.rounds, "local_epochs": fed.local_epochs,
        "fraction_fit": fed.fraction_fit, "seed": fed.seed, "split_seed": fed.split_seed,
        "flower": {"version": flwr_version,
                   "mechanism": "flwr.server.start_server / flwr.client.start_client: Flower "
                                "gRPC server and one client process per site on 127.0.0.1"},
        "site_table": p.sites,
        "bytes": {"down": down, "up": up, "total": down + up,
                  "per_round": (down + up) / max(1, len(trained)),
                  "what": "Flower's serialized weights (.npy per array) sent to and returned "
                          "by the sites; gRPC and protobuf framing not counted"},
        "seconds": seconds,
        "final": final,
        "rounds_log": records,
        "centralised_log": ref,
    }


def _series(records, metric) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in records:
        v = (r.get("test") or {}).get(metric)
        if v is not None:
            xs.append(r["round"])
            ys.append(v)
    return xs, ys


def _plot(summary: dict[str, Any], metric: str, path: Path) -> None:
    from matplotlib.ticker import MaxNLocator

    from pmtoolkit.core.plots import figure

    with figure(path, size=(9.0, 3.6), ncols=2) as (_, ax):
        xs, ys = _series(summary["rounds_log"], metric)
        ax[0].plot(xs, ys, marker="o", ms=3,
                   label=f"{summary['strategy']}: global model, server's test set")
        xv = [r["round"] for r in summary["rounds_log"] if metric in r.get("sites_valid", {})]
        yv = [r["sites_valid"][metric] for r in summary["rounds_log"]
              if metric in r.get("sites_valid", {})]
        if xv:
            ax[0].plot(xv, yv, ls=":", color="#888",
                       label="global model, sites' own validation shares")
        if summary["centralised_log"]:
            xc, yc = _series(summary["centralised_log"], metric)
            ax[0].plot(xc, yc, marker="s", ms=3, color="#b42318",
                       label="centralised (pooled), server's test set")
        ax[0].set_xlabel(f"round (= {summary['local_epochs']} local epoch(s))")
        ax[0].set_ylabel(metric)
        ax[0].legend(fontsize=8, frameon=False)
        trained = [r for r in summary["rounds_log"] if r["round"] > 0]
        cum = np.cumsum([(r.get("bytes_down", 0) + r.get("bytes_up", 0)) / 1e6 for r in trained])
        ax[1].plot([r["round"] for r in trained], cum, marker="o", ms=3)
        ax[1].set_xlabel("round")
        ax[1].set_ylabel("MB exchanged (cumulative)")
        for a in ax:
            a.xaxis.set_major_locator(MaxNLocator(integer=True))


def _report(summary: dict[str, Any], metric: str, path: Path) -> None:
    import pandas as pd

    from pmtoolkit.core.report import Report

    rep = Report(f"Federated training: {summary['task']} with {summary['strategy']}",
                 f"{summary['sites']} sites ({summary['split']} split), {summary['rounds']} "
                 f"rounds of {summary['local_epochs']} local epoch(s); Flower "
                 f"{summary['flower']['version']}")
    rows = []
    for name, res in summary["final"].items():
        if res:
            rows.append({"model": name, f"test {metric}": res.get(metric),
                         "test loss": res.get("loss")})
    sec = rep.section("Result")
    if rows:
        sec.table(pd.DataFrame(rows), floatfmt="{:.4f}")
    b = summary["bytes"]
    sec.text(f"Exchanged {b['total'] / 1e6:.2f} MB ({b['down'] / 1e6:.2f} MB to the sites, "
             f"{b['up'] / 1e6:.2f} MB back), {b['per_round'] / 1e6:.3f} MB per round; "
             f"{summary['seconds']:.0f} s. {b['what']}.")
    rep.section("Sites").table(pd.DataFrame(summary["site_table"]))
    rep.section("Convergence").figure("convergence.png", f"test {metric} of the global model "
                                      "after each round, and cumulative bytes exchanged")
    per_round = []
    for r in summary["rounds_log"]:
        per_round.append({"round": r["round"], f"test {metric}": (r.get("test") or {}).get(metric),
                          f"sites' valid {metric}": (r.get("sites_valid") or {}).get(metric),
                          "MB down": r.get("bytes_down", 0) / 1e6,
                          "MB up": r.get("bytes_up", 0) / 1e6,
                          "seconds": r.get("seconds")})
    rep.section("Rounds").table(pd.DataFrame(per_round), max_rows=500, floatfmt="{:.4g}")
    rep.write(path)


def preview(run: FederatedRunConfig) -> list[dict[str, Any]]:
    """The site split a run would use (sizes and label mix per site); starts nothing."""
    return prepare(run).sites
