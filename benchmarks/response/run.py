"""Drug-response benchmark on a simulated panel: every model x every split, 3 seeds, beside
the noise ceiling and the baselines.

The panel is ``pmt response simulate`` with its defaults (200 samples x 150 drugs from the
shipped ESOL structures, 500 genes, 4 structure-planted mechanisms, 90% of pairs measured);
see pmtoolkit/response/simulate.py for the model. For each split (random, cold-drug,
cold-sample, cold-pair; 80/10/10) and seed (the split seed and the model seed), every model is
fitted on the training pairs (validation pairs pick the epoch / ridge penalty) and scored on the
test pairs: RMSE, Pearson, per-drug and per-sample Pearson, and which planted component the
predictions follow (within-drug r with the interaction alone, r with the drug and sample
effects). The noise ceiling is computed on the same test pairs.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/response/run.py       # ~1 h on one core
    python benchmarks/response/run.py --report                             # tables only

Every finished run is appended to docs/benchmarks/response_runs.jsonl, so an interrupted
benchmark resumes; results: docs/benchmarks/response.md, response.json and
docs/images/response_benchmark.png.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "benchmarks"
JOURNAL = DOCS / "response_runs.jsonl"
FIGURE = ROOT / "docs" / "images" / "response_benchmark.png"
SPLITS = ("random", "cold-drug", "cold-sample", "cold-pair")
BASELINES = ("drug-mean", "sample-mean", "additive", "ridge", "forest")
NETS = {"net-both": "both", "net-concat": "concat", "net-bilinear": "bilinear"}
MODELS = (*BASELINES, *NETS)


def _journal() -> dict[tuple[str, int, str], dict]:
    done = {}
    if JOURNAL.is_file():
        for line in JOURNAL.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[(row["split"], row["seed"], row["model"])] = row
    return done


def run(workdir: Path, seeds: list[int], splits: list[str], models: list[str]) -> None:
    import pandas as pd

    from pmtoolkit import response as R
    from pmtoolkit.response.config import PanelConfig, ResponseConfig
    from pmtoolkit.response.simulate import noise_ceiling, recovery, simulate_panel

    panel = workdir / "panel"
    if not (panel / "panel.json").is_file():
        simulate_panel(panel, PanelConfig(), overwrite=True)
    truth = pd.read_csv(panel / "truth.csv", dtype={"sample_id": str, "drug_id": str})
    data, _, _ = R.load_panel(panel / "responses.csv", panel / "drugs.csv",
                              panel / "expression.h5ad")
    done = _journal()
    for seed in seeds:  # seed-major: an interrupted run still covers every split
        for split in splits:
            todo = [m for m in models if (split, seed, m) not in done]
            if not todo:
                continue
            idx = R.response_split(data, split, seed=seed).indices()
            train, valid, test = (data.subset(idx[k]) for k in ("train", "val", "test"))
            frame = test.frame()
            test_truth = truth.merge(frame[["sample_id", "drug_id"]], on=["sample_id",
                                                                            "drug_id"])
            ceiling = noise_ceiling(test_truth)
            for name in todo:
                t0 = time.perf_counter()
                if name in NETS:
                    config = ResponseConfig(fusion=NETS[name], seed=seed, device="cpu")
                    model = R.fit(train, valid, config)
                    extra = {"epochs": model.metadata["metrics"]["epochs_run"]}
                else:
                    model = R.fit_baseline(name, train, valid,
                                           ResponseConfig(seed=seed, device="cpu"))
                    extra = {}
                pred = model.predict(test)
                seconds = time.perf_counter() - t0
                metrics = R.response_metrics(test.y, pred, test.drug_index, test.sample_index)
                frame["prediction"] = pred
                rec = recovery(truth, frame)
                rec.pop("ceiling")
                row = {"split": split, "seed": seed, "model": name, "seconds": seconds,
                       **metrics, **{f"rec_{k}": v for k, v in rec.items()},
                       **{f"ceiling_{k}": v for k, v in ceiling.items()}, **extra,
                       "n_train": len(train), "n_valid": len(valid)}
                with JOURNAL.open("a") as fh:
                    fh.write(json.dumps(row, default=float) + "\n")
                print(f"{split:11s} seed {seed} {name:12s} per-drug "
                      f"{metrics['per_drug_pearson']:.3f} rmse {metrics['rmse']:.3f} "
                      f"({seconds:.0f} s)", flush=True)


def _numbers(values) -> list[float]:
    """The finite values (NaN and None mean "no value": e.g. a within-drug correlation of a
    prediction constant within every drug)."""
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _cell(values: list[float], digits: int = 3) -> str:
    vals = _numbers(values)
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.mean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


COLUMNS = [("rmse", "RMSE"), ("pearson", "Pearson"), ("per_drug_pearson", "per-drug r"),
           ("per_sample_pearson", "per-sample r"),
           ("rec_interaction_within_drug", "r with interaction, within drug"),
           ("rec_r_drug_effect", "r with drug effect"),
           ("rec_r_sample_effect", "r with sample effect"), ("seconds", "time (s)")]


def report() -> None:
    rows = list(_journal().values())
    if not rows:
        raise SystemExit("no runs in the journal yet")
    summary: dict = {}
    intro = ("Written by `benchmarks/response/run.py` (every model x every split, mean ± sd "
             "over seeds 0-2; the seed is both the split seed and the model seed). The panel "
             "is `pmt response simulate` with its defaults: 200 samples x 150 drugs (real "
             "structures from the shipped ESOL set), 500 genes, 4 mechanisms planted from "
             "SMARTS counts, 26,974 measured pairs (90%); splits 80/10/10 of the pairs. The "
             "simulator's model is written out in [docs/response.md](../response.md).")
    machine = (f"Machine: {platform.machine()}, Python {platform.python_version()}, one CPU "
               "core (OMP_NUM_THREADS=1), shared with other jobs (times are indicative).")
    legend = ("**Ceiling**: Pearson r of the noiseless simulated response with the observed "
             "one on the same test pairs (overall, and the mean within drugs and samples): "
             "what a perfect model of the planted signal would score. "
             "**r with interaction, within drug**: the mean over test drugs of the Pearson r "
             "between the predictions and the planted drug x sample interaction alone: how "
             "much of the pair-specific signal (what ranking a drug's samples needs beyond "
             "general sensitivity) a model recovered.")
    lines = ["# Drug-response prediction on a simulated panel", "", intro, "", machine, "",
             legend, ""]
    for split in SPLITS:
        sub = [r for r in rows if r["split"] == split]
        if not sub:
            continue
        seeds = sorted({r["seed"] for r in sub})
        first = [r for r in sub if r["model"] == sub[0]["model"]]  # one row per seed
        sizes = (f"Seeds {', '.join(map(str, seeds))}; test pairs "
                 f"{_cell([r['n'] for r in first], 0)}, test drugs "
                 f"{_cell([r['n_drugs'] for r in first], 0)}, test samples "
                 f"{_cell([r['n_samples'] for r in first], 0)}.")
        header = "| model | " + " | ".join(h for _, h in COLUMNS) + " |"
        lines += [f"## {split}", "", sizes, "", header, "|---|" + "---|" * len(COLUMNS)]
        keys = ("rmse", "pearson", "per_drug_pearson", "per_sample_pearson")
        ceiling = {k: [r[f"ceiling_{k}"] for r in first] for k in keys}
        lines.append("| *noise ceiling* | " + " | ".join(_cell(ceiling[k]) for k in keys)
                     + " | — | — | — | — |")
        summary[split] = {"ceiling": {k: statistics.mean(v) for k, v in ceiling.items()}}
        for model in MODELS:
            mrows = [r for r in sub if r["model"] == model]
            if not mrows:
                continue
            lines.append(f"| {model} | " + " | ".join(
                _cell([r.get(k) for r in mrows], 1 if k == "seconds" else 3)
                for k, _ in COLUMNS) + " |")
            summary[split][model] = {
                k: statistics.mean(_numbers([r.get(k) for r in mrows]) or [float("nan")])
                for k, _ in COLUMNS}
        lines.append("")
    picture = ("![per-drug Pearson of every model on every split, beside the ceiling]"
               "(../images/response_benchmark.png)")
    lines += [picture, ""]
    (DOCS / "response.md").write_text("\n".join(lines))
    from pmtoolkit.core.io import write_json

    write_json(DOCS / "response.json", summary)
    _figure(rows, summary)


def _figure(rows: list[dict], summary: dict) -> None:
    import numpy as np

    from pmtoolkit.core.plots import figure

    # the per-drug mean is constant within a drug: it has no per-drug correlation to show
    models = [m for m in MODELS if m != "drug-mean" and any(r["model"] == m for r in rows)]
    with figure(FIGURE, size=(8.0, 3.8)) as (_, ax):
        width = 0.8 / len(models)
        colours = {"sample-mean": "#a5b1c2", "additive": "#778ca3", "ridge": "#4b6584",
                   "forest": "#f7b731", "net-both": "#20bf6b", "net-concat": "#0fb9b1",
                   "net-bilinear": "#3867d6"}
        for k, model in enumerate(models):
            means, sds = [], []
            for split in SPLITS:
                v = _numbers(r["per_drug_pearson"] for r in rows
                             if r["split"] == split and r["model"] == model)
                means.append(np.mean(v) if v else np.nan)
                sds.append(np.std(v, ddof=1) if len(v) > 1 else 0.0)
            ax.bar(np.arange(len(SPLITS)) + (k - (len(models) - 1) / 2) * width, means,
                   width, yerr=sds, label=model, color=colours[model],
                   error_kw={"lw": 0.8})
        for j, split in enumerate(SPLITS):
            if split in summary:
                c = summary[split]["ceiling"]["per_drug_pearson"]
                ax.plot([j - 0.42, j + 0.42], [c, c], color="#b42318", lw=1.2,
                        label="noise ceiling" if j == 0 else None)
        ax.set_xticks(np.arange(len(SPLITS)), SPLITS)
        ax.set_ylabel("per-drug Pearson r (test)")
        ax.set_ylim(0, 1.12)
        ax.legend(fontsize=7, frameon=False, ncol=4, loc="upper right")
        ax.set_title("ranking each drug's samples (test pairs, mean ± sd over seeds)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pmt-response-bench"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--report", action="store_true", help="only write the tables and figure")
    args = ap.parse_args()
    if not args.report:
        run(args.workdir, args.seeds, args.splits, args.models)
    report()


if __name__ == "__main__":
    main()
