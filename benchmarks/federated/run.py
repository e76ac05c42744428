"""Federated benchmark: the same model on the same data with the same epoch budget, trained
centrally (all sites' training data pooled) and with Flower across non-IID sites.

Data: MoleculeNet BBBP (2,039 molecules, blood-brain-barrier penetration, 76% positive) from
../shared/data/molecules/bbbp.csv. Model: pmtoolkit's D-MPNN property classifier (hidden 128,
depth 3, mean aggregation, Adam at a constant 5e-3, batch 64). For each seed the molecules are
split (with that seed) into a stratified 20% test set kept by the server and 80% dealt to 5
sites, which train on all of their share (no site-side evaluation: the server tests the
global model after every round). Every federated run trains 60 rounds of 1 local epoch — 60
passes over the training data in all, like the centralised run's 60 epochs — through ``pmt
federated run``'s code: a real Flower server and 5 client processes on loopback. The
centralised reference starts from the same initial weights and trains on the same training
molecules (the 5 sites' shares pooled: every split of a seed pools to the same set, so one
centralised run per seed is the reference of all its experiments), tested after every
epoch.

Experiments (site splits): ``iid`` (random), ``dirichlet`` (label skew, Dirichlet(0.5): sites
from nearly all-positive to mostly negative), ``scaffold`` (whole Bemis-Murcko scaffolds per
site: different chemistry per site); FedAvg on each, FedProx (mu 0.1) on the Dirichlet split,
and FedAvg on the Dirichlet split with 3 local epochs in 20 rounds (a third of the
communication).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 1 python benchmarks/federated/run.py
    python benchmarks/federated/run.py --seeds 0 --experiments fedavg-iid   # a quick look
    python benchmarks/federated/run.py --report-only

Every run is appended to docs/benchmarks/federated_runs.jsonl (a rerun skips what is there;
``--force`` re-measures); the table goes to docs/benchmarks/federated.md and the curves to
docs/images/federated_convergence.png.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BBBP = ROOT.parent / "shared" / "data" / "molecules" / "bbbp.csv"
DOCS = ROOT / "docs" / "benchmarks"
JOURNAL = DOCS / "federated_runs.jsonl"
FIGURE = ROOT / "docs" / "images" / "federated_convergence.png"
MARGIN = 0.02  # AUROC: "within the margin" of the centralised model

BASE = {
    "federated": {"task": "property", "data": str(BBBP), "sites": 5, "rounds": 60,
                  "local_epochs": 1, "test_fraction": 0.2, "valid_fraction": 0.0,
                  "fraction_evaluate": 0.0, "timeout": 1800.0},
    "data": {"target_columns": ["p_np"]},
    "model": {"task": "classification", "architecture": "dmpnn", "hidden_size": 128,
              "ffn_hidden_size": 128, "depth": 3, "aggregation": "mean", "lr": 0.005,
              "batch_size": 64, "device": "cpu"},
}
EXPERIMENTS = {
    "fedavg-iid": {"split": "iid", "strategy": "fedavg"},
    "fedavg-dirichlet": {"split": "dirichlet", "alpha": 0.5, "strategy": "fedavg"},
    "fedprox-dirichlet": {"split": "dirichlet", "alpha": 0.5, "strategy": "fedprox",
                          "proximal_mu": 0.1},
    "fedavg-scaffold": {"split": "group", "group_by": "scaffold", "strategy": "fedavg"},
    "fedavg-dirichlet-3x20": {"split": "dirichlet", "alpha": 0.5, "strategy": "fedavg",
                              "local_epochs": 3, "rounds": 20},
    "fedavg-iid-5x60": {"split": "iid", "strategy": "fedavg", "local_epochs": 5},
    "fedavg-dirichlet-5x60": {"split": "dirichlet", "alpha": 0.5, "strategy": "fedavg",
                              "local_epochs": 5},
}
TITLES = {
    "fedavg-iid": "FedAvg, IID sites",
    "fedavg-dirichlet": "FedAvg, label skew (Dirichlet 0.5)",
    "fedprox-dirichlet": "FedProx (mu 0.1), label skew (Dirichlet 0.5)",
    "fedavg-scaffold": "FedAvg, one scaffold set per site",
    "fedavg-dirichlet-3x20": "FedAvg, label skew, 3 local epochs x 20 rounds",
    "fedavg-iid-5x60": "FedAvg, IID sites, 5 local epochs x 60 rounds (5x the site compute)",
    "fedavg-dirichlet-5x60": "FedAvg, label skew, 5 local epochs x 60 rounds (5x the site "
                             "compute)",
}


def _journal() -> list[dict]:
    if not JOURNAL.exists():
        return []
    return [json.loads(line) for line in JOURNAL.read_text().splitlines() if line.strip()]


def _first_within(curve: list[tuple[int, float]], target: float, margin: float) -> int | None:
    """The first round whose AUROC is at least ``target - margin`` and stays so to the end."""
    hit = None
    for rnd, v in curve:
        if v >= target - margin:
            if hit is None:
                hit = rnd
        else:
            hit = None
    return hit


def run_one(name: str, seed: int, reference: list | None) -> dict:
    """One federated run; with no ``reference`` (the seed's centralised curve) yet, the
    run also trains the centralised model."""
    from pmtoolkit.federated.config import load_run_config
    from pmtoolkit.federated.run import run

    fed = {**BASE["federated"], **EXPERIMENTS[name], "seed": seed, "split_seed": seed,
           "centralised": reference is None}
    sets = [f"{k}={json.dumps(v)}" for k, v in fed.items()]
    sets += [f"data.{k}={json.dumps(v)}" for k, v in BASE["data"].items()]
    sets += [f"model.{k}={json.dumps(v)}" for k, v in BASE["model"].items()]
    config = load_run_config(None, tuple(sets))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pmt-fedbench-") as tmp:
        s = run(config, Path(tmp) / "out")
    seconds = time.perf_counter() - start
    fed_curve = [(r["round"], r["test"]["roc_auc"]) for r in s["rounds_log"] if "test" in r]
    cen_curve = reference or [(r["round"], r["test"]["roc_auc"]) for r in s["centralised_log"]]
    fed_final, cen_final = fed_curve[-1][1], cen_curve[-1][1]
    equivalent = next((epoch for epoch, v in cen_curve if v >= fed_final), None)
    return {
        "experiment": name, "seed": seed, "sites": s["sites"], "rounds": s["rounds"],
        "local_epochs": s["local_epochs"], "federated_auroc": fed_final,
        "centralised_auroc": cen_final, "delta": fed_final - cen_final,
        "rounds_to_centralised": _first_within(fed_curve, cen_final, MARGIN),
        "rounds_to_own_final": _first_within(fed_curve, fed_final, MARGIN),
        "centralised_epochs_to_own_final": _first_within(cen_curve, cen_final, MARGIN),
        "centralised_epochs_to_federated_final": equivalent,
        "bytes_total": s["bytes"]["total"], "bytes_per_round": s["bytes"]["per_round"],
        "bytes_down": s["bytes"]["down"], "bytes_up": s["bytes"]["up"],
        "federated_curve": fed_curve, "centralised_curve": cen_curve,
        "site_table": s["site_table"], "seconds": seconds, "flower": s["flower"]["version"],
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }


def _ms(values: list[float], fmt: str = "{:.3f}") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    sd = fmt.replace("+", "").format(statistics.stdev(values))
    return f"{fmt.format(statistics.mean(values))} ± {sd}"


def listed(values) -> str:
    return ", ".join("n/a" if x is None else str(x) for x in values)


def _plateaus(by: dict[str, list[dict]]) -> list:
    """The centralised reference's epochs to plateau, one per seed."""
    seen = {}
    for rs in by.values():
        for r in rs:
            seen.setdefault(r["seed"], r["centralised_epochs_to_own_final"])
    return [seen[k] for k in sorted(seen)]


def report() -> None:
    rows = _journal()
    if not rows:
        print("no runs in the journal", file=sys.stderr)
        return
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["experiment"], []).append(r)
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "# Federated training (Flower) beside centralised training",
        "",
        "Written by `benchmarks/federated/run.py` from `federated_runs.jsonl`; do not edit by "
        "hand.",
        "",
        "Same model, same data, the same 60-epoch budget unless a row says otherwise. "
        "MoleculeNet BBBP (2,039 molecules, 76% "
        "positive); pmtoolkit's D-MPNN classifier (hidden 128, depth 3, mean aggregation, "
        "Adam at a constant 5e-3, batch 64). Per seed: a stratified 20% test set kept by the "
        "server, the other 80% dealt to 5 sites. Federated: a real Flower "
        f"{rows[0]['flower']} server and 5 client processes on loopback gRPC (`pmt federated "
        "run`), 60 rounds x 1 local epoch unless stated, the server testing the global model "
        "after every round. Centralised: the same initial weights and the same training "
        "molecules (all sites' shares pooled), 60 epochs, one optimizer, tested after every "
        "epoch. Test ROC-AUC of the final model, mean ± sd over seeds "
        f"{', '.join(map(str, seeds))} (the seed sets the split and the weights); Δ = "
        "federated − centralised, paired by seed (worst seed in brackets).",
        "",
        "Columns: *centralised epochs to match* — the first epoch at which the centralised "
        "model reached the federated model's final AUROC (how much centralised training the "
        f"federated run is worth); *rounds to within {MARGIN}* — the first round from which "
        f"the federated AUROC stays within {MARGIN} of the centralised final AUROC to the end "
        f"(n/a: not within the budget); *rounds to plateau* — the first round from which it "
        f"stays within {MARGIN} of its own final AUROC (the centralised runs: epochs "
        f"{listed(_plateaus(by))}); *MB exchanged* — Flower's serialized weights sent to "
        "the sites and returned by them over all rounds (gRPC/protobuf framing not counted), "
        "per round in brackets.",
        "",
        "| split / strategy | federated AUROC | centralised AUROC | Δ AUROC (worst) | "
        f"centralised epochs to match | rounds to within {MARGIN} | rounds to plateau | "
        "MB exchanged (per round) | minutes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    for name in EXPERIMENTS:
        rs = sorted(by.get(name, []), key=lambda r: r["seed"])
        if not rs:
            continue
        worst = min(r["delta"] for r in rs)
        lines.append(
            f"| {TITLES[name]} | {_ms([r['federated_auroc'] for r in rs])} | "
            f"{_ms([r['centralised_auroc'] for r in rs])} | "
            f"{_ms([r['delta'] for r in rs], '{:+.3f}')} ({worst:+.3f}) | "
            f"{listed(r['centralised_epochs_to_federated_final'] for r in rs)} of 60 | "
            f"{listed(r['rounds_to_centralised'] for r in rs)} of {rs[0]['rounds']} | "
            f"{listed(r['rounds_to_own_final'] for r in rs)} | "
            f"{_ms([r['bytes_total'] / 1e6 for r in rs], '{:.1f}')} "
            f"({_ms([r['bytes_per_round'] / 1e6 for r in rs], '{:.2f}')}) | "
            f"{_ms([r['seconds'] / 60 for r in rs], '{:.1f}')} |")
    lines += ["", "Sites of seed 0 (molecules per site, share positive):", ""]
    for name in EXPERIMENTS:
        rs = [r for r in by.get(name, []) if r["seed"] == seeds[0]]
        if rs:
            sites = [t for t in rs[0]["site_table"] if t["site"].startswith("site")]
            shown = "; ".join(f"{t['samples']} ({t['positive_share']:.2f})" for t in sites)
            lines.append(f"- {TITLES[name]}: {shown}")
    lines += ["", "![test AUROC per round](../images/federated_convergence.png)", "",
              "Measured on one CPU core (`taskset -c 1`, `OMP_NUM_THREADS=1`): the five site "
              "processes and the server share it, so minutes are no parallel speed-up; they "
              "include process start-up (several seconds a process) and, for the first "
              "experiment of each seed, the centralised reference.", ""]
    (DOCS / "federated.md").write_text("\n".join(lines))
    _figure(by)
    print("\n".join(lines))


def _figure(by: dict[str, list[dict]]) -> None:
    from pmtoolkit.core.plots import figure

    with figure(FIGURE, size=(10.0, 4.0), ncols=2) as (_, ax):
        cen = [r["centralised_curve"] for rs in by.values() for r in rs]
        if cen:
            n = min(len(c) for c in cen)
            ys = np.array([[v for _, v in c[:n]] for c in cen])
            ax[0].plot(range(n), ys.mean(0), color="black", lw=2, label="centralised (pooled)")
        for k, name in enumerate(n for n in EXPERIMENTS if n in by):
            rs = by[name]
            curves = [r["federated_curve"] for r in rs]
            n = min(len(c) for c in curves)
            rounds = np.array([rnd for rnd, _ in curves[0][:n]])
            ys = np.array([[v for _, v in c[:n]] for c in curves]).mean(0)
            epochs = rounds * rs[0]["local_epochs"]
            keep = epochs <= 60
            style = {"color": f"C{k}", "label": TITLES.get(name, name)}
            ax[0].plot(epochs[keep], ys[keep], **style)
            ax[1].plot(rounds, ys, **style)
        ax[0].set_xlabel("epochs of training data seen (rounds x local epochs)")
        ax[1].set_xlabel("rounds (weights exchanged)")
        for a in ax:
            a.set_ylabel("test ROC-AUC (mean over seeds)")
            a.set_ylim(0.45, 0.95)
        h0, l0 = ax[0].get_legend_handles_labels()
        h1, l1 = ax[1].get_legend_handles_labels()
        ax[1].legend(h0[:1] + h1, l0[:1] + l1, fontsize=7, frameon=False, loc="lower right")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                    choices=list(EXPERIMENTS))
    ap.add_argument("--force", action="store_true", help="re-measure runs in the journal")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        stream=sys.stderr)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not args.report_only:
        if not BBBP.exists():
            sys.exit(f"{BBBP} not found (the shared benchmark data)")
        done = {(r["experiment"], r["seed"]): r for r in _journal()}
        for seed in args.seeds:
            reference = next((r["centralised_curve"] for (_, s), r in done.items()
                              if s == seed and not args.force), None)
            for name in args.experiments:
                if (name, seed) in done and not args.force:
                    continue
                logging.info("%s, seed %d", name, seed)
                rec = run_one(name, seed, reference)
                reference = rec["centralised_curve"]
                logging.info("%s seed %d: federated %.4f, centralised %.4f, %.1f min", name,
                             seed, rec["federated_auroc"], rec["centralised_auroc"],
                             rec["seconds"] / 60)
                JOURNAL.parent.mkdir(parents=True, exist_ok=True)
                with open(JOURNAL, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
    report()


if __name__ == "__main__":
    main()
