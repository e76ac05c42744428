"""Fusion benchmark: on simulated linked cohorts (``pmtoolkit.fusion.simulate``), is the fused
model better than every single modality, does it degrade gracefully when a modality is
missing, and do its attributions name the modality the simulator planted?

Cohorts (5,000 patients each by default; every modality missing for part of the patients as
the simulator's defaults say: expression 20%, imaging 30%, genotype 10%):

- ``equal``: every modality's factor drives the outcome equally (weight 1 log-odds per sd),
  one cohort per seed (``--seeds``): fused vs single, late fusion, ceiling, masking;
- ``dominant-<m>``: modality ``m`` has weight 2, the others 0.25: its attribution should rank
  first (seed 0);
- ``null-imaging``: imaging has weight 0 (the others 1): it should get the smallest
  attribution and hiding it should cost nothing;
- ``interaction``: weights 0.5 and a cross-modal term 1.5 x f_ehr x f_expression, one cohort
  per seed: where fusion inside the network should beat late fusion.

For each cohort ``pmt fusion run``'s function (:func:`pmtoolkit.fusion.run.experiment`) trains
the four encoders on 40% of the patients, the three fusion heads on the embeddings of another
30%, stops both early on 10%, and scores everything on the last 20%.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/fusion/run.py
    python benchmarks/fusion/run.py --patients 600 --seeds 0 --cohorts equal   # a quick look
    python benchmarks/fusion/run.py --report-only

Each result is appended to docs/benchmarks/fusion_runs.jsonl (a rerun skips what is there;
``--force`` re-measures); the tables go to docs/benchmarks/fusion.md, pictures to
docs/images/fusion_*.png.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "benchmarks"
IMAGES = ROOT / "docs" / "images"
JOURNAL = DOCS / "fusion_runs.jsonl"
MODALITIES = ("ehr", "expression", "imaging", "genotype")
FUSIONS = ("concat", "attention", "gated")


def cohorts(names: list[str], seeds: list[int]) -> list[tuple[str, int, dict[str, float]]]:
    out = []
    for name in names:
        if name == "equal":
            out += [(name, s, dict.fromkeys(MODALITIES, 1.0)) for s in seeds]
        elif name.startswith("dominant-"):
            m = name.split("-", 1)[1]
            out.append((name, 0, {k: 2.0 if k == m else 0.25 for k in MODALITIES}))
        elif name == "interaction":
            out += [(name, s, {"interaction": 1.5, **dict.fromkeys(MODALITIES, 0.5)})
                    for s in seeds]
        elif name == "null-imaging":
            out.append((name, 0, {k: 0.0 if k == "imaging" else 1.0 for k in MODALITIES}))
        else:
            raise SystemExit(f"unknown cohort {name!r}")
    return out


def journal() -> list[dict]:
    if not JOURNAL.is_file():
        return []
    return [json.loads(line) for line in JOURNAL.read_text().splitlines() if line.strip()]


def record(row: dict) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    with JOURNAL.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def run(args) -> None:
    from pmtoolkit.fusion.run import experiment
    from pmtoolkit.fusion.simulate import CohortConfig, simulate_cohort

    done = {(r["cohort"], r["seed"], r["patients"]) for r in journal()}
    work = Path(args.workdir or tempfile.mkdtemp(prefix="pmt-fusion-bench-"))
    for name, seed, weights in cohorts(args.cohorts, args.seeds):
        if (name, seed, args.patients) in done and not args.force:
            print(f"{name} seed {seed}: done already", file=sys.stderr)
            continue
        folder = work / f"{name}-{seed}-{args.patients}"
        start = time.perf_counter()
        weights = dict(weights)
        interaction = weights.pop("interaction", 0.0)
        simulate_cohort(folder / "cohort", CohortConfig(
            patients=args.patients, seed=seed + 1, interaction=interaction,
            weights=weights), overwrite=True)
        res = experiment(folder / "cohort", folder / "run", seed=seed, epochs=args.epochs,
                         overwrite=True)
        seconds = time.perf_counter() - start
        record({"cohort": name, "seed": seed, "patients": args.patients, "weights": weights,
                "interaction": interaction,
                "seconds": round(seconds, 1), **res})
        largest = max(r["patients"] for r in journal() if r["cohort"] == "equal")
        if name == "equal" and seed == min(args.seeds) and args.patients == largest:
            IMAGES.mkdir(parents=True, exist_ok=True)
            for pic in ("auroc", "masking"):
                shutil.copyfile(folder / "run" / f"{pic}.png", IMAGES / f"fusion_{pic}.png")
        best = max(v["auroc"] for v in res["single"].values())
        print(f"{name} seed {seed}: fused " + ", ".join(f"{f} {v:.3f}" for f, v in
                                                      res["fused"].items())
              + f"; best single {best:.3f}; {seconds:.0f} s", file=sys.stderr)


def _ms(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def report() -> None:
    rows = journal()
    latest: dict[tuple, dict] = {}
    for r in rows:  # the latest record of each (cohort, seed, size)
        latest[(r["cohort"], r["seed"], r["patients"])] = r
    if not latest:
        raise SystemExit("no results yet: run the benchmark first")
    size = max(k[2] for k in latest)
    runs = {k: v for k, v in latest.items() if k[2] == size}
    eq = [v for k, v in sorted(runs.items()) if k[0] == "equal"]
    lines = ["# Multimodal fusion on simulated cohorts", "",
             "Written by `benchmarks/fusion/run.py` (see its docstring for the cohorts and how "
             "to rerun). Each cohort: "
             f"{size:,} simulated patients; encoders trained on 40%, fusion heads on another "
             "30% (embeddings of patients their encoders never saw), 10% for early stopping, "
             "test AUROC on the last 20%. A single modality is scored on the test patients "
             "who have it; the fused models on every test patient. The simulator and the "
             "models: [docs/fusion.md](../fusion.md).", ""]
    if eq:
        n = len(eq)
        lines += [f"## Fused against single modalities (equal weights, {n} cohort"
                  f"{'s' if n > 1 else ''}, mean ± sd)", "",
                  "| model | test AUROC |", "|---|---|"]
        for m in MODALITIES:
            lines.append(f"| {m} alone (its encoder) | {_ms([r['single'][m]['auroc'] for r in eq])} |")
        lines.append(f"| late fusion: logistic regression on the encoders' outputs | "
                     f"{_ms([r.get('late') for r in eq])} |")
        for f in FUSIONS:
            lines.append(f"| **{f} fusion** | **{_ms([r['fused'][f] for r in eq])}** |")
        lines.append(f"| ceiling: logistic regression on the planted factors | "
                     f"{_ms([r.get('oracle') for r in eq])} |")
        lines += ["", "Like with like: each modality alone against each fused model on the "
                  "same test patients (those who have that modality; the fused model also "
                  "uses their other modalities).", "",
                  "| patients with | alone | " + " | ".join(FUSIONS) + " |",
                  "|---|---|" + "---|" * len(FUSIONS)]
        for m in MODALITIES:
            lines.append(f"| {m} | {_ms([r['single'][m]['auroc'] for r in eq])} | "
                         + " | ".join(_ms([r['fused_on'][f][m] for r in eq]) for f in FUSIONS)
                         + " |")
        margins = [min(r["fused_on"][f][m] - r["single"][m]["auroc"] for f in FUSIONS
                       for m in MODALITIES) for r in eq]
        lines += ["", "Smallest gain of a fused model over a single modality on the same "
                  "patients, per cohort: " + ", ".join(f"{m:+.3f}" for m in margins) + ".", "",
                  "![test AUROC](../images/fusion_auroc.png)", "",
                  "## Missing modalities", "",
                  "Every test patient with one modality hidden from the trained model (not "
                  "retrained), equal weights, mean over cohorts; in brackets the best single "
                  "modality of those left.", "",
                  "| fusion | all present | " + " | ".join(f"without {m}" for m in MODALITIES)
                  + " |", "|---|---|" + "---|" * len(MODALITIES)]
        for f in FUSIONS:
            cells = []
            for m in MODALITIES:
                left = statistics.mean(max(v["auroc"] for k, v in r["single"].items() if k != m)
                                       for r in eq)
                cells.append(f"{_ms([r['without'][f][m] for r in eq])} ({left:.3f})")
            lines.append(f"| {f} | {_ms([r['fused'][f] for r in eq])} | " + " | ".join(cells)
                         + " |")
        lines += ["", "![masking](../images/fusion_masking.png)", "",
                  "Encoder of each modality against its planted factor (Pearson r of its "
                  "prediction with the factor, test patients): "
                  + ", ".join(f"{m} {_ms([r['encoder_recovery'].get(m) for r in eq])}"
                              for m in MODALITIES) + ".", ""]
    sizes = sorted({k[2] for k in latest if k[0] == "equal"})
    if len(sizes) > 1:
        lines += ["## Cohort size", "",
                  "Equal-weights cohorts of each size (mean ± sd over seeds), with how well "
                  "each encoder recovers its planted factor (Pearson r, EHR / expression / "
                  "imaging / genotype): fusion can only combine what the encoders learnt, and "
                  "they learn from 40% of the patients.", "",
                  "| patients | best single modality | late fusion | "
                  + " | ".join(FUSIONS) + " | ceiling | encoder r |",
                  "|---|---|---|" + "---|" * 5]
        for n in sizes:
            rs = [v for k, v in sorted(latest.items()) if k[0] == "equal" and k[2] == n]
            rec = " / ".join(f"{statistics.mean(r['encoder_recovery'][m] for r in rs):.2f}"
                             for m in MODALITIES)
            lines.append(f"| {n:,} ({len(rs)} seeds) | "
                         f"{_ms([max(v['auroc'] for v in r['single'].values()) for r in rs])} | "
                         f"{_ms([r.get('late') for r in rs])} | "
                         + " | ".join(_ms([r['fused'][f] for r in rs]) for f in FUSIONS)
                         + f" | {_ms([r.get('oracle') for r in rs])} | {rec} |")
        lines.append("")
    inter = [v for k, v in sorted(runs.items()) if k[0] == "interaction"]
    if inter:
        rec = " / ".join(f"{statistics.mean(r['encoder_recovery'][m] for r in inter):.2f}"
                         for m in MODALITIES)
        lines += ["## A cross-modal effect", "",
                  "Cohorts whose outcome also depends on the product of the EHR and expression "
                  "factors (weights 0.5 each, interaction 1.5 log-odds per sd²; "
                  f"{len(inter)} seed{'s' if len(inter) > 1 else ''}, mean ± sd). Late "
                  "fusion adds one score per modality and cannot represent a product; a fusion "
                  "head could, if the embeddings carried both factors.", "",
                  "| best single modality | late fusion | " + " | ".join(FUSIONS)
                  + " | ceiling | encoder r |", "|---|---|" + "---|" * 5,
                  f"| {_ms([max(v['auroc'] for v in r['single'].values()) for r in inter])} | "
                  f"{_ms([r.get('late') for r in inter])} | "
                  + " | ".join(_ms([r['fused'][f] for r in inter]) for f in FUSIONS)
                  + f" | {_ms([r.get('oracle') for r in inter])} | {rec} |", "",
                  "Compare the fused models with late fusion and the ceiling: a gain over late "
                  "fusion would be the product learnt. The encoders, each trained on the outcome "
                  "alone, see their factor only through its main effect and the product's "
                  "marginal trace; the encoder r column says how much of it they kept.", ""]
    att = [v for k, v in sorted(runs.items()) if k[0] not in ("equal", "interaction")]
    if att:
        lines += ["## Which modality drove the prediction", "",
                  "Share of the mean |occlusion| (change of a test patient's logit when the "
                  "modality is hidden) per modality, for each fusion; the planted weights "
                  "first. ✓: the planted dominant modality ranks first (for `null-imaging`: "
                  "imaging ranks last).", "",
                  "| cohort | planted weights | fusion | " + " | ".join(MODALITIES)
                  + " | named |", "|---|---|---|" + "---|" * len(MODALITIES) + "---|"]
        hits = total = 0
        for r in att:
            w = r["planted_weights"]
            planted = " ".join(f"{m[:4]} {w[m]:g}" for m in MODALITIES)
            for f in FUSIONS:
                a = np.array([r["attribution"][f].get(m, 0.0) for m in MODALITIES])
                share = a / a.sum()
                if r["cohort"] == "null-imaging":
                    ok = int(np.argmin(a)) == MODALITIES.index("imaging")
                else:
                    ok = MODALITIES[int(np.argmax(a))] == r["cohort"].split("-", 1)[1]
                hits += ok
                total += 1
                lines.append(f"| {r['cohort']} | {planted} | {f} | "
                             + " | ".join(f"{s:.2f}" for s in share)
                             + f" | {'✓' if ok else '✗'} |")
        dom = []
        for r in att:
            if r["cohort"].startswith("dominant-"):
                m = r["cohort"].split("-", 1)[1]
                on = [r["fused_on"][f][m] for f in FUSIONS]
                dom.append(f"{m} alone {r['single'][m]['auroc']:.3f}, fused on the same "
                           f"patients {min(on):.3f}-{max(on):.3f}")
        lines += ["", f"Named correctly in {hits} of {total} (cohort, fusion) pairs.", ""]
        if dom:
            lines += ["Where one modality carries nearly all the signal the fused models match "
                      "it rather than beat it (test AUROC): " + "; ".join(dom) + ".", ""]
        lines += [
                  "![attribution](../images/fusion_attribution.png)", ""]
        _attribution_figure(att)
    lines += ["## Runs", "", "| cohort | seed | patients | seconds (one core) |", "|---|---|---|---|"]
    for k, r in sorted(latest.items()):
        lines.append(f"| {k[0]} | {k[1]} | {k[2]:,} | {r['seconds']:.0f} |")
    (DOCS / "fusion.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {DOCS / 'fusion.md'}", file=sys.stderr)


def _attribution_figure(att: list[dict]) -> None:
    from pmtoolkit.core.plots import figure

    IMAGES.mkdir(parents=True, exist_ok=True)
    with figure(IMAGES / "fusion_attribution.png", size=(2.3 * len(att), 2.9), ncols=len(att),
                sharey=True) as (_fig, axes):
        for ax, r in zip(np.atleast_1d(axes), att):
            x = np.arange(len(MODALITIES))
            w = np.array([r["planted_weights"][m] for m in MODALITIES])
            ax.bar(x - 0.3, w / w.sum(), 0.2, color="k", label="planted")
            for k, f in enumerate(FUSIONS):
                a = np.array([r["attribution"][f].get(m, 0.0) for m in MODALITIES])
                ax.bar(x - 0.1 + 0.2 * k, a / a.sum(), 0.2, label=f)
            ax.set_xticks(x, [m[:4] for m in MODALITIES], fontsize=7)
            ax.set_title(r["cohort"], fontsize=8)
        np.atleast_1d(axes)[0].set_ylabel("share")
        np.atleast_1d(axes)[0].legend(fontsize=6, frameon=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=5000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cohorts", nargs="+", default=["equal", "dominant-ehr",
                                                     "dominant-expression", "dominant-imaging",
                                                     "dominant-genotype", "null-imaging"])
    ap.add_argument("--epochs", type=int, default=20, help="encoders' maximum epochs")
    ap.add_argument("--workdir", help="keep cohorts and runs here (default: a temp folder)")
    ap.add_argument("--force", action="store_true", help="re-measure what the journal has")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not args.report_only:
        run(args)
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
