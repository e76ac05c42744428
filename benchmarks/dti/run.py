"""Drug-target affinity benchmark: pmtoolkit beside DeepPurpose and the published DeepDTA and
GraphDTA rows, on DAVIS (pKd) and KIBA.

Settings: ``setting1`` (DeepDTA's protocol: train on the five training folds, report the
held-out test fold), ``cold_drug`` and ``cold_target`` (pmtoolkit pair splits 80/10/10 of whole
drugs or proteins; the numbers users need for new chemistry or new targets). Seeds 0..2 (the
model seed, and the split seed of the cold splits). Every model trains from its command line
on the same pairs and the same split; time = the whole training command on this machine.

    bash benchmarks/dti/setup_anchor_env.sh              # once: DeepPurpose's own venv
    python benchmarks/dti/run.py                         # everything (hours on 2 cores)
    python benchmarks/dti/run.py --datasets davis --settings setting1 --seeds 0 --models pmt

Every finished run is appended to a journal, so an interrupted benchmark resumes; results:
docs/benchmarks/dti.md, dti.json and dti.png.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "dti"
ANCHOR_PY = ROOT / "benchmarks" / ".venv-deeppurpose" / "bin" / "python"
RUNNER = ROOT / "benchmarks" / "dti" / "deeppurpose_runner.py"
DOCS = ROOT / "docs" / "benchmarks"

#: our models: name -> extra `pmt dti train` options
OURS = {
    "pmt": [],                                       # defaults: graph drug + k-mer protein
    "pmt-cnn": ["--protein-encoder", "cnn"],         # graph drug + protein CNN (GraphDTA-like)
    "pmt-ens5": ["--ensemble-size", "5"],            # five seeds averaged
}
#: the DeepPurpose anchor's models: name -> (drug encoding, target encoding). CNN-CNN is
#: DeepDTA (a 1000-residue protein CNN per pair: ~8 min an epoch on one core, so only a few
#: epochs fit); Morgan-AAC (Morgan bits + amino-acid composition through MLPs) is the cheap
#: model of the same spirit as pmtoolkit's k-mer default
ANCHORS = {"deeppurpose": ("CNN", "CNN"), "deeppurpose-morgan-aac": ("Morgan", "AAC")}
#: published setting-1 test rows (CI, MSE), as the papers report them
PUBLISHED = {
    ("davis", "DeepDTA (Öztürk et al. 2018)"): (0.878, 0.261),
    ("davis", "GraphDTA GIN (Nguyen et al. 2021)"): (0.893, 0.229),
    ("kiba", "DeepDTA (Öztürk et al. 2018)"): (0.863, 0.194),
    ("kiba", "GraphDTA GIN (Nguyen et al. 2021)"): (0.891, 0.139),
}


@functools.lru_cache(maxsize=None)
def _benchmark(dataset: str):
    from pmtoolkit.dti.data import load_benchmark

    return load_benchmark(SHARED / dataset)


def prepare(dataset: str, setting: str, seed: int, workdir: Path) -> tuple[Path, Path]:
    """The pairs CSV (once per dataset) and this run's split file, shared by every tool."""
    import pandas as pd

    from pmtoolkit.dti.splits import pair_split, setting1_split

    bench = _benchmark(dataset)
    folder = workdir / dataset
    folder.mkdir(parents=True, exist_ok=True)
    pairs = folder / "pairs.csv"
    if not pairs.exists():
        d = bench.data
        pd.DataFrame({"smiles": [d.drugs[i] for i in d.drug_index],
                      "sequence": [d.proteins[i] for i in d.protein_index],
                      "value": d.y}).to_csv(pairs, index=False)
    split = setting1_split(bench, -1) if setting == "setting1" else \
        pair_split(bench.data, setting, (0.8, 0.1, 0.1), seed)
    path = folder / f"split_{setting}_{seed}.json"
    split.save(path)
    return pairs, path


def run_ours(model: str, dataset: str, setting: str, seed: int, split: Path, epochs: int,
             workdir: Path) -> dict:
    out = workdir / dataset / f"{model}_{setting}_{seed}"
    cmd = [sys.executable, "-m", "pmtoolkit.cli.main", "-q", "dti", "train",
           "-i", str(SHARED / dataset), "--split-file", str(split), "--seed", str(seed),
           "--epochs", str(epochs), "-o", str(out), "--overwrite", *OURS[model]]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    test = json.loads((out / "metrics.json").read_text())["test"]
    return {"model": f"pmtoolkit {model}", "seconds": seconds, "ci": test["ci"],
            "mse": test["mse"]}


def run_deeppurpose(model: str, dataset: str, setting: str, seed: int, pairs: Path,
                    split: Path, epochs: int, workdir: Path) -> dict:
    out = workdir / dataset / f"{model}_{setting}_{seed}.json"
    drug, target = ANCHORS[model]
    cmd = [str(ANCHOR_PY), str(RUNNER), "--data", str(pairs), "--split", str(split),
           "--drug-encoding", drug, "--target-encoding", target,
           "--epochs", str(epochs), "--seed", str(seed), "--out", str(out),
           "--workdir", str(workdir / dataset / f"{model}_{setting}_{seed}")]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    from pmtoolkit.dti.model import pair_metrics

    r = json.loads(out.read_text())
    test = pair_metrics(r["y_test"], r["pred_test"])  # the metrics pmtoolkit's runs report
    return {"model": f"{r['tool']} {r['model']}, {r['epochs']} epochs",
            "seconds": r["train_seconds"],
            "ci": test["ci"], "mse": test["mse"]}


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["setting"], r["model"]), []).append(r)
    out = []
    for (dataset, setting, model), rs in groups.items():
        entry = {"dataset": dataset, "setting": setting, "model": model, "n_seeds": len(rs),
                 "seconds": statistics.fmean(r["seconds"] for r in rs),
                 "threads": max(r.get("threads", 2) for r in rs)}
        for k in ("ci", "mse"):
            vals = [r[k] for r in rs]
            entry[k] = statistics.fmean(vals)
            entry[f"{k}_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(entry)
    return out


def write_docs(summary: list[dict], rows: list[dict], command: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}", "command": command}
    (DOCS / "dti.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": rows},
                                              indent=2) + "\n")
    lines = ["# Drug-target affinity: pmtoolkit beside DeepPurpose, DeepDTA and GraphDTA", "",
             f"Measured on {meta['machine']}; `{command}` (runs journaled across sessions in "
             "docs/benchmarks/dti_runs.jsonl). setting1 = DeepDTA's folds (train on the five "
             "training folds, test on the test fold); cold_drug / cold_target = whole drugs / "
             "proteins held out (80/10/10 of the pairs). Published rows are the papers' own "
             "setting-1 figures, not rerun here.", "",
             "| dataset | setting | model | seeds | CI ↑ | MSE ↓ | train time (s) | threads |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for s in sorted(summary, key=lambda s: (s["dataset"], s["setting"], s["model"])):
        lines.append(f"| {s['dataset']} | {s['setting']} | {s['model']} | {s['n_seeds']} | "
                     f"{s['ci']:.3f} ± {s['ci_sd']:.3f} | {s['mse']:.3f} ± {s['mse_sd']:.3f} | "
                     f"{s['seconds']:.0f} | {s['threads']} |")
    for (dataset, name), (ci, mse) in PUBLISHED.items():
        lines.append(f"| {dataset} | setting1 | {name}, published | – | {ci:.3f} | {mse:.3f} "
                     "| GPU, not comparable | |")
    lines += ["", "![CI by dataset, setting and model](dti.png)", ""]
    (DOCS / "dti.md").write_text("\n".join(lines))
    _plot(summary, DOCS / "dti.png")


def _short(model: str) -> str:
    """A tick label: 'DeepPurpose 0.1.5 Morgan-AAC, 100 epochs' -> 'DP Morgan-AAC'."""
    model = model.split(",")[0]
    if model.startswith("DeepPurpose"):
        return "DP " + model.split(" ", 2)[-1]
    return model.replace("pmtoolkit ", "")


def _plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(s["dataset"], s["setting"]) for s in summary})
    models = sorted({s["model"] for s in summary})
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.4), dpi=120,
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (dataset, setting) in zip(axes[0], panels):
        items = {s["model"]: s for s in summary
                 if s["dataset"] == dataset and s["setting"] == setting}
        for i, m in enumerate(models):
            if m in items:
                ax.bar(i, items[m]["ci"], yerr=items[m]["ci_sd"], capsize=3,
                       color=colors[i % len(colors)])
        for (ds, name), (ci, _) in PUBLISHED.items():
            if ds == dataset and setting == "setting1":
                ax.axhline(ci, lw=0.8, ls="--", color="#777777")
        ax.set_ylim(0.5, 1.0)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels([_short(m) for m in models], rotation=40, ha="right", fontsize=7)
        ax.set_title(f"{dataset}, {setting}", fontsize=9)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0][0].set_ylabel("test CI")
    fig.suptitle("dashed: DeepDTA and GraphDTA, published setting-1 CI", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["davis", "kiba"])
    ap.add_argument("--settings", nargs="+", default=["setting1", "cold_drug", "cold_target"],
                    choices=["setting1", "cold_drug", "cold_target", "cold_pair"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["pmt", "deeppurpose"],
                    choices=[*OURS, *ANCHORS])
    ap.add_argument("--epochs", type=int, default=100, help="pmtoolkit epochs on DAVIS")
    ap.add_argument("--kiba-epochs", type=int, default=100,
                    help="pmtoolkit epochs on KIBA (30 epochs underfit: test CI 0.826, "
                         "training loss still falling)")
    ap.add_argument("--deeppurpose-epochs", type=int, default=100)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pmt-dti"))
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if set(args.models) & set(ANCHORS) and not args.report_only and not ANCHOR_PY.exists():
        ap.error("DeepPurpose's venv is missing: run bash benchmarks/dti/setup_anchor_env.sh")
    args.workdir.mkdir(parents=True, exist_ok=True)
    journal = DOCS / "dti_runs.jsonl"
    done = {}
    if journal.exists():
        for line in journal.read_text().splitlines():
            r = json.loads(line)
            done[(r["dataset"], r["setting"], r["model_key"], r["seed"])] = r
    if not args.report_only:
        for dataset in args.datasets:
            for setting in args.settings:
                for seed in args.seeds:
                    pairs, split = prepare(dataset, setting, seed, args.workdir)
                    for model in args.models:
                        key = (dataset, setting, model, seed)
                        if key in done:
                            continue
                        if model in ANCHORS:
                            r = run_deeppurpose(model, dataset, setting, seed, pairs, split,
                                                args.deeppurpose_epochs, args.workdir)
                        else:
                            epochs = args.kiba_epochs if dataset == "kiba" else args.epochs
                            r = run_ours(model, dataset, setting, seed, split, epochs,
                                         args.workdir)
                        r.update(dataset=dataset, setting=setting, seed=seed, model_key=model,
                                 threads=int(os.environ.get("OMP_NUM_THREADS",
                                                            os.cpu_count() or 1)))
                        done[key] = r
                        DOCS.mkdir(parents=True, exist_ok=True)
                        with open(journal, "a") as fh:
                            fh.write(json.dumps(r) + "\n")
                        print(f"{dataset} {setting} seed {seed} {r['model']}: CI {r['ci']:.3f} "
                              f"MSE {r['mse']:.3f} ({r['seconds']:.0f} s)", file=sys.stderr,
                              flush=True)
    rows = list(done.values())
    if rows:
        write_docs(summarise(rows), rows, " ".join(["python", *sys.argv]))
        print((DOCS / "dti.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
