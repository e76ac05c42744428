"""pmtoolkit beside PyHealth 1.1.4 on real hospital record layouts: the MIMIC-III Clinical
Database Demo (100 patients) and PyHealth's own eICU demo subset (100 patients), read as they
are published (../shared/data/ehr/mimic3_demo, eicu_demo_subset).

Each tool builds its own samples from the raw tables:

- PyHealth (benchmarks/ehr/pyhealth_real_runner.py, run in the anchor venv): its
  MIMIC3Dataset / eICUDataset and its task functions mortality_prediction_{mimic3,eicu}_fn,
  readmission_prediction_{mimic3,eicu}_fn, length_of_stay_prediction_{mimic3,eicu}_fn (its
  ten length-of-stay classes made binary: more than 7 days), features conditions, procedures,
  drugs; models RNN (GRU), RETAIN, Transformer trained by its Trainer.
- pmtoolkit: ``pmt ehr build --format mimic3|eicu`` with the matching tasks
  (next_admission_mortality, readmission, length_of_stay), ``--index each_visit --min-age 0
  --tables conditions --tables procedures --tables drugs`` (PyHealth's features, every
  admission, no age limit), ``--readmission-days 15`` on MIMIC-III (PyHealth's window);
  models logistic, GRU, RETAIN, Transformer (pmtoolkit.ehr.models.fit_risk_model).

Both get the SAME patient-level split per seed: drawn here from the raw patients table
(MIMIC-III ``subject_id``, eICU ``uniquepid``), 60/20/20, stratified by whether the patient
died in hospital and whether they had more than one admission (unit stay), so every task's
patients fall on the same side for both tools. Budget, the same for both, fixed before any
test result was seen: embedding and hidden size 64, learning rate 1e-3, batch 16, at most 20
epochs, the best validation epoch by AUPRC where the validation patients hold both outcomes
(pmtoolkit also stops after 5 epochs without improvement), else the last; Transformer 4 heads,
1 layer. Test AUROC / AUPRC from each model's raw scores (pmtoolkit's logits, PyHealth's
sigmoid outputs; ranking only), computed here by the same code for both tools.

Intervals: a bootstrap over test patients (all of a patient's samples together), 1,000
resamples, seeded, the same patient draws for both tools: per seed, and for the mean over
seeds (each resample draws every seed's test patients again and averages the seeds where the
metric is defined).

    bash benchmarks/ehr/setup_anchor_env.sh
    nice -n 19 python benchmarks/ehr/real_layouts.py             # ~15 min on one core
    python benchmarks/ehr/real_layouts.py --report-only

Writes docs/benchmarks/ehr_real.json (every driver run, every seed, every test prediction;
a rerun is appended and marks the earlier ones superseded) and docs/benchmarks/ehr_real.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "ehr"
LAYOUTS = {"mimic3": DATA / "mimic3_demo", "eicu": DATA / "eicu_demo_subset"}
TITLES = {"mimic3": "MIMIC-III demo", "eicu": "eICU demo subset"}
DOCS = ROOT / "docs" / "benchmarks"
RESULTS = DOCS / "ehr_real.json"
VENV_PY = ROOT / "benchmarks" / ".venv-pyhealth" / "bin" / "python"
TASKS = ("mortality", "readmission", "length_of_stay")
PMT_KIND = {"mortality": "next_admission_mortality", "readmission": "readmission",
            "length_of_stay": "length_of_stay"}
PMT_EXTRA = {("mimic3", "readmission"): ["--readmission-days", "15"]}
PMT_COMMON = ["--index", "each_visit", "--min-age", "0", "--tables", "conditions",
              "--tables", "procedures", "--tables", "drugs"]
PMT_MODELS = ("logistic", "gru", "retain", "transformer")
PH_MODELS = ("gru", "retain", "transformer")
BUDGET = {"dim": 64, "lr": 1e-3, "batch_size": 16, "epochs": 20, "heads": 4, "layers": 1,
          "patience_pmtoolkit": 5}
FRACTIONS = (0.6, 0.2, 0.2)
N_BOOT = 1000


# --- the shared split -------------------------------------------------------------------------

def patient_strata(layout: str) -> dict[str, tuple[int, int]]:
    """Every patient of the raw patients table, with (died in hospital, several stays)."""
    import pandas as pd

    src = LAYOUTS[layout]
    if layout == "mimic3":
        pats = pd.read_csv(src / "PATIENTS.csv.gz", usecols=["subject_id"], dtype=str)
        adm = pd.read_csv(src / "ADMISSIONS.csv.gz",
                          usecols=["subject_id", "hadm_id", "hospital_expire_flag"], dtype=str)
        g = adm.groupby("subject_id")
        died = g["hospital_expire_flag"].apply(lambda s: int((s == "1").any()))
        several = g["hadm_id"].nunique().gt(1).astype(int)
        ids = pats["subject_id"]
    else:
        pat = pd.read_csv(src / "patient.csv.gz", dtype=str,
                          usecols=["uniquepid", "patientunitstayid", "hospitaldischargestatus"])
        g = pat.groupby("uniquepid")
        died = g["hospitaldischargestatus"].apply(lambda s: int((s == "Expired").any()))
        several = g["patientunitstayid"].nunique().gt(1).astype(int)
        ids = pd.Series(sorted(pat["uniquepid"].unique()))
    return {p: (int(died.get(p, 0)), int(several.get(p, 0))) for p in sorted(ids)}


def split_patients(strata: dict[str, tuple[int, int]], seed: int) -> dict[str, list[str]]:
    """60/20/20 by patient, stratified by ``strata``'s key, seeded."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for key in sorted(set(strata.values())):
        group = sorted(p for p, k in strata.items() if k == key)
        order = rng.permutation(len(group))
        n_train = round(FRACTIONS[0] * len(group))
        n_valid = round(FRACTIONS[1] * len(group))
        for rank, j in enumerate(order):
            parts["train" if rank < n_train else
                  "valid" if rank < n_train + n_valid else "test"].append(group[j])
    return {k: sorted(v) for k, v in parts.items()}


# --- metrics ----------------------------------------------------------------------------------

def auroc(y, s) -> float | None:
    from pmtoolkit.core.metrics import roc_auc
    v = roc_auc(np.asarray(y), np.asarray(s, float)) if len(y) else float("nan")
    return None if not np.isfinite(v) else float(v)


def auprc(y, s) -> float | None:
    from pmtoolkit.core.metrics import pr_auc
    v = pr_auc(np.asarray(y), np.asarray(s, float)) if len(y) else float("nan")
    return None if not np.isfinite(v) else float(v)


METRICS = {"auroc": auroc, "auprc": auprc}


def _by_patient(run: dict, test_patients: list[str]) -> list[np.ndarray]:
    """Indices of the run's test samples of each test patient of the split (none for a
    patient without samples in this task)."""
    pts = np.array(run["patients"], dtype=object)
    return [np.flatnonzero(pts == p) for p in test_patients]


def boot_draws(test_patients: list[str], seed: int) -> np.ndarray:
    """The bootstrap's patient draws of one seed's test part: the same for every tool and
    model (a paired bootstrap)."""
    rng = np.random.default_rng(10_000 + seed)
    return rng.integers(0, len(test_patients), size=(N_BOOT, len(test_patients)))


def boot_metric(run: dict, test_patients: list[str], draws: np.ndarray, name: str
                ) -> np.ndarray:
    """The metric on each resample of test patients (nan where undefined)."""
    groups = _by_patient(run, test_patients)
    y, s = np.array(run["labels"]), np.array(run["scores"], float)
    out = np.full(len(draws), np.nan)
    for b, d in enumerate(draws):
        idx = np.concatenate([groups[i] for i in d]) if len(d) else np.array([], int)
        v = METRICS[name](y[idx], s[idx])
        out[b] = np.nan if v is None else v
    return out


def interval(values: np.ndarray) -> dict:
    ok = values[np.isfinite(values)]
    if len(ok) < 0.5 * len(values):  # mostly undefined: no interval
        return {"lo": None, "hi": None, "defined": len(ok)}
    return {"lo": float(np.percentile(ok, 2.5)), "hi": float(np.percentile(ok, 97.5)),
            "defined": len(ok)}


# --- the two tools ----------------------------------------------------------------------------

def pmt_build(layout: str, task: str, workdir: Path) -> tuple[Path, dict, float]:
    out = workdir / f"{layout}-{task}.jsonl.gz"
    cmd = ["pmt", "ehr", "build", "--format", layout, "-i", str(LAYOUTS[layout]), "-o",
           str(out), "--kind", PMT_KIND[task], *PMT_COMMON, *PMT_EXTRA.get((layout, task), [])]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode:
        sys.exit(f"pmt ehr build failed ({' '.join(cmd)}):\n{r.stderr[-3000:]}")
    return out, {"command": " ".join(["pmt", *cmd[1:]]).replace(str(ROOT.parent), ".."),
                 "stdout": r.stdout.strip()}, time.perf_counter() - t0


def pmt_runs(path: Path, splits: dict, models) -> tuple[dict, list]:
    import torch

    from pmtoolkit.ehr.config import RiskModelConfig
    from pmtoolkit.ehr.models import fit_risk_model
    from pmtoolkit.ehr.run import read_dataset

    torch.set_num_threads(1)
    header, samples, _ = read_dataset(path)
    counts = {"samples": len(samples), "positives": sum(s.label for s in samples),
              "patients": len({s.patient_id for s in samples}),
              "excluded": header["summary"]["excluded"]}
    runs = []
    for seed, split in splits.items():
        side = {p: k for k, ps in split.items() for p in ps}
        missing = {s.patient_id for s in samples} - set(side)
        if missing:
            sys.exit(f"pmtoolkit patients not in the split: {sorted(missing)[:5]}")
        parts = {k: [s for s in samples if side[s.patient_id] == k]
                 for k in ("train", "valid", "test")}
        if len({s.label for s in parts["train"]}) < 2 or not parts["test"]:
            runs.append({"seed": int(seed), "skipped": "train lacks an outcome class or no "
                                                      "test samples"})
            continue
        for arch in models:
            config = RiskModelConfig(arch=arch, seed=int(seed), device="cpu",
                                     epochs=BUDGET["epochs"], lr=BUDGET["lr"],
                                     embedding_dim=BUDGET["dim"], hidden_dim=BUDGET["dim"],
                                     heads=BUDGET["heads"], layers=BUDGET["layers"],
                                     batch_size=BUDGET["batch_size"],
                                     patience=BUDGET["patience_pmtoolkit"])
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as work:
                model = fit_risk_model(parts["train"], parts["valid"], config, workdir=work)
            seconds = time.perf_counter() - t0
            z = model.logits(parts["test"]).ravel()
            runs.append({"arch": arch, "seed": int(seed), "train_seconds": seconds,
                         "epochs_run": model.metadata["metrics"]["epochs_run"],
                         "early_stopping": len({s.label for s in parts["valid"]}) == 2,
                         "n_train": len(parts["train"]), "n_valid": len(parts["valid"]),
                         "patients": [s.patient_id for s in parts["test"]],
                         "labels": [s.label for s in parts["test"]],
                         "scores": [float(v) for v in z]})
            print(f"  pmtoolkit {path.name} seed {seed} {arch}: {seconds:.1f} s", flush=True)
    return counts, runs


def pyhealth(layout: str, splits: dict, models, tasks) -> dict:
    if not VENV_PY.exists():
        sys.exit("PyHealth venv missing: bash benchmarks/ehr/setup_anchor_env.sh")
    with tempfile.TemporaryDirectory() as work:
        job = Path(work) / "job.json"
        out = Path(work) / "out.json"
        job.write_text(json.dumps({"layout": layout, "source": str(LAYOUTS[layout]),
                                   "tasks": list(tasks), "splits": splits,
                                   "models": list(models), **BUDGET}))
        env = {**os.environ, "HOME": work, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        t0 = time.perf_counter()
        r = subprocess.run([str(VENV_PY), str(ROOT / "benchmarks" / "ehr" /
                                              "pyhealth_real_runner.py"), str(job), str(out)],
                           capture_output=True, text=True, check=False, env=env, cwd=work)
        if r.returncode:
            sys.exit(f"PyHealth runner failed:\n{r.stderr[-4000:]}")
        result = json.loads(out.read_text())
        result["seconds"] = time.perf_counter() - t0
    return result


def versions() -> dict:
    from importlib.metadata import version

    import torch
    ph = subprocess.run([str(VENV_PY), "-c", ("from importlib.metadata import version as v; "
                         "import json; print(json.dumps({k: v(k) for k in ('pyhealth', "
                         "'torch', 'pandas', 'numpy', 'scikit-learn')}))")],
                        capture_output=True, text=True, check=False) if VENV_PY.exists() else None
    return {"pmtoolkit": version("pmtoolkit"), "torch": torch.__version__,
            "python": platform.python_version(),
            "git": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True, check=False).stdout.strip(),
            "pyhealth_venv": json.loads(ph.stdout) if ph and ph.returncode == 0 else None}


def run(args) -> dict:
    record = {"started": dt.datetime.now().isoformat(timespec="seconds"),
              "versions": versions(), "budget": BUDGET, "fractions": FRACTIONS,
              "bootstrap_resamples": N_BOOT, "seeds": args.seeds, "layouts": {}}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        for layout in args.layouts:
            strata = patient_strata(layout)
            splits = {str(s): split_patients(strata, s) for s in args.seeds}
            entry = {"patients": len(strata), "splits": splits, "tasks": {}}
            print(f"{layout}: PyHealth ...", flush=True)
            ph = pyhealth(layout, splits, PH_MODELS, args.tasks)
            entry["pyhealth"] = {k: ph[k] for k in ("substitutions", "read_seconds", "base",
                                                    "visit_order", "seconds")}
            for task in args.tasks:
                path, build, seconds = pmt_build(layout, task, Path(work))
                counts, runs = pmt_runs(path, splits, PMT_MODELS)
                entry["tasks"][task] = {
                    "pmtoolkit": {"build": build, "build_seconds": seconds, "counts": counts,
                                  "runs": runs},
                    "pyhealth 1.1.4": ph["tasks"][task]}
            record["layouts"][layout] = entry
    record["seconds"] = time.perf_counter() - t_all
    add_metrics(record)
    return record


def add_metrics(record: dict) -> None:
    """Test metrics, per-seed intervals and the seed-mean intervals of every run."""
    for entry in record["layouts"].values():
        for task in entry["tasks"].values():
            for tool in task.values():
                runs = [r for r in tool["runs"] if "skipped" not in r]
                for r in runs:
                    test = entry["splits"][str(r["seed"])]["test"]
                    draws = boot_draws(test, r["seed"])
                    r["n_test"] = len(r["labels"])
                    r["test_positives"] = int(sum(r["labels"]))
                    for name, fn in METRICS.items():
                        r[name] = fn(r["labels"], r["scores"])
                        r[f"{name}_ci"] = interval(boot_metric(r, test, draws, name))
                tool["summary"] = {}
                for arch in sorted({r["arch"] for r in runs}):
                    sel = [r for r in runs if r["arch"] == arch]
                    s = {}
                    for name in METRICS:
                        vals = [r[name] for r in sel if r[name] is not None]
                        per_seed = []
                        for r in sel:
                            test = entry["splits"][str(r["seed"])]["test"]
                            per_seed.append(boot_metric(r, test, boot_draws(test, r["seed"]),
                                                        name))
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", RuntimeWarning)
                            stack = np.vstack(per_seed)
                            mean = np.where(np.isfinite(stack).any(0),
                                            np.nanmean(np.where(np.isfinite(stack), stack,
                                                                np.nan), 0), np.nan)
                        s[name] = {"seeds": len(sel), "defined": len(vals),
                                   "mean": statistics.mean(vals) if vals else None,
                                   "sd": statistics.stdev(vals) if len(vals) > 1 else None,
                                   "ci_mean_over_seeds": interval(mean)}
                    tool["summary"][arch] = s


# --- results file and report ------------------------------------------------------------------

def load_results() -> list[dict]:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else []


def save(record: dict) -> None:
    history = load_results()
    for old in history:
        old.setdefault("superseded_by", record["started"])
    history.append(record)
    DOCS.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(history, indent=1))


def _f(v, nd=3) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def _cell(s: dict) -> str:
    if not s["defined"]:
        return f"undefined (0/{s['seeds']})"
    ci = s["ci_mean_over_seeds"]
    sd = f" ± {s['sd']:.3f}" if s["sd"] is not None else ""
    band = f" [{_f(ci['lo'], 2)}, {_f(ci['hi'], 2)}]" if ci["lo"] is not None else " [–]"
    n = f" (n={s['defined']}/{s['seeds']})" if s["defined"] < s["seeds"] else ""
    return f"{s['mean']:.3f}{sd}{band}{n}"


def report(record: dict) -> str:
    v = record["versions"]
    ph = v.get("pyhealth_venv") or {}
    lines = [
        "# pmtoolkit beside PyHealth on real record layouts (MIMIC-III demo, eICU subset)", "",
        (f"Written by `benchmarks/ehr/real_layouts.py` (run of {record['started']}, "
        f"{record['seconds'] / 60:.1f} min on one nice'd CPU core) from "
        "[`ehr_real.json`](ehr_real.json), which holds every seed, split, test prediction and "
        "interval. pmtoolkit "
        f"{v['pmtoolkit']} (git {v['git']}), torch {v['torch']}; PyHealth "
        f"{ph.get('pyhealth', '?')} in its own venv (torch {ph.get('torch', '?')}, pandas "
        f"{ph.get('pandas', '?')}, scikit-learn {ph.get('scikit-learn', '?')}; "
        "`benchmarks/ehr/setup_anchor_env.sh`)."), "",
        "```bash",
        "bash benchmarks/ehr/setup_anchor_env.sh",
        "nice -n 19 python benchmarks/ehr/real_layouts.py",
        "```", "",
        "## What a cohort of 100 patients can and cannot show", "",
        ("**It can show** that both tools read the published MIMIC-III and eICU table layouts end "
        "to end and build the same named tasks, and how many samples and positives each "
        "task definition yields — the counts below are exact and reproducible, and their "
        "differences are explained by the definitions. **It cannot rank models or tools.** "
        "A test part is 20 patients; the mortality tasks have 0-2 positive test samples per "
        "seed, so AUROC is undefined in most seeds and the bootstrap intervals, where they "
        "exist, span most of [0, 1]. Differences between rows below are not evidence that one "
        "model or tool predicts better; none of these figures says how a model would do on "
        "a hospital's full export. The point of the exercise is the one-command path: "
        "`pmt ehr build --format mimic3|eicu -i EXPORT_DIR -o dataset.jsonl.gz --kind ...` "
        "runs unchanged on a full MIMIC-III or eICU export."), "",
        "## Protocol", "",
        (f"- Splits: one per seed ({', '.join(map(str, record['seeds']))}), by patient, drawn "
        "by the driver from the raw patients table (MIMIC-III `subject_id`, eICU `uniquepid`), "
        f"{'/'.join(str(int(f * 100)) for f in record['fractions'])} train/valid/test, "
        "stratified by (died in hospital, more than one admission / unit stay); the same "
        "patient lists go to both tools (PyHealth's eICU \"patients\" are hospital stays, "
        "`uniquepid+patienthealthsystemstayid`; they are mapped back to `uniquepid`). Test "
        "metrics are on each tool's own samples of the test patients."),
        (f"- Budget, the same for both and fixed before any test result: embedding and hidden "
        f"size {record['budget']['dim']}, learning rate {record['budget']['lr']}, batch "
        f"{record['budget']['batch_size']}, at most {record['budget']['epochs']} epochs, the "
        "best validation epoch by AUPRC where the validation patients hold both outcomes "
        f"(pmtoolkit also stops after {record['budget']['patience_pmtoolkit']} epochs without "
        "improvement), else the last epoch; Transformer "
        f"{record['budget']['heads']} heads, {record['budget']['layers']} layer. Each tool "
        "keeps its own recipe otherwise (PyHealth: Adam, dropout 0.5, its tokenizers; "
        "pmtoolkit: AdamW with weight decay 1e-4, dropout 0.3, positive weighting, a time "
        "encoding). PyHealth 1.1.4 has no logistic regression."),
        ("- Metrics: AUROC and AUPRC of each model's raw scores on the test samples (pmtoolkit's "
        "logits, before calibration; PyHealth's sigmoid outputs), computed by the driver with "
        "the same code for both tools. AUROC is undefined when the test samples hold one "
        "outcome only, AUPRC when they hold no positive; the tables give mean ± sd over the "
        "seeds where it is defined, with n = defined / seeds when some are not."),
        (f"- Intervals: [2.5 %, 97.5 %] of a bootstrap over test patients ({record['bootstrap_resamples']} "
        "resamples, all of a patient's samples together, the same draws for every tool and "
        "model) **of the mean over seeds**: each resample redraws every seed's test patients "
        "and averages the seeds where the metric is defined; `[–]` where it is undefined in "
        "more than half of the resamples. Per-seed intervals are in the JSON. The intervals "
        "carry the sampling of test patients only, not the spread between seeds' training "
        "runs (the ± sd), and the seeds' test parts overlap; read both."),
        ("- Before the full run, the driver was tried once on the MIMIC-III demo with seed 0 "
        "(nothing written); nothing in the budget, the splits or the models was changed "
        "after it."),
        ("- Staging: PyHealth 1.1.4 opens `ROOT/<TABLE>.csv` and, for MIMIC-III, upper-case "
        "column names, while the demo's columns are lower case: its runner decompresses the "
        "tables it reads into a temporary folder and upper-cases MIMIC-III's header line, "
        "rows byte for byte. pmtoolkit reads the gzipped tables in place. Two PyHealth parts "
        "that cannot run here were replaced, and only these: pandarallel runs one worker; "
        "eICU's diagnosis parser labels each event's vocabulary by looking the code up in "
        "ICD-9-CM / ICD-10-CM lists it downloads from PyHealth's cloud bucket (offline here), "
        "so a pattern rule labels it instead — the task functions read only the codes "
        "(`get_code_list`), not that label, so the samples do not depend on it."), ""]
    lines += ["## Samples per task and tool", "",
              ("| dataset | task | PyHealth 1.1.4 function | samples | positives | patients "
              "| the same, visits in time order | pmtoolkit `--kind` | samples | positives "
              "| patients |"),
              "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    fn = {"mortality": "mortality_prediction_{}_fn", "readmission":
          "readmission_prediction_{}_fn", "length_of_stay": "length_of_stay_prediction_{}_fn"}
    for layout, entry in record["layouts"].items():
        for task, t in entry["tasks"].items():
            a, b = t["pyhealth 1.1.4"]["counts"], t["pmtoolkit"]["counts"]
            kind = PMT_KIND[task] + (" (15 days)" if (layout, task) in PMT_EXTRA else "")
            name = fn[task].format(layout) + (" (> 7 days)" if task == "length_of_stay" else "")
            fixed = a.get("visits_in_time_order", {})
            lines.append(f"| {TITLES[layout]} | {task} | `{name}` | {a['samples']} | "
                         f"{a['positives']} | {a['patients']} | {fixed.get('samples', '?')} / "
                         f"{fixed.get('positives', '?')} | {kind} | {b['samples']} | "
                         f"{b['positives']} | {b['patients']} |")
    lines += ["", ("Patients are real patients (eICU `uniquepid`) for both tools. \"The same, "
              "visits in time order\": PyHealth's own task function on its own dataset with "
              "each patient's visits put in time order (the fix of PyHealth issue #306), "
              "samples / positives; a diagnostic, no model is trained on them.")]
    for layout, entry in record["layouts"].items():
        vo = entry["pyhealth"].get("visit_order")
        if vo:
            lines.append(f"On the {TITLES[layout]}, {vo['next_admitted_earlier']} of the "
                         f"{vo['consecutive_pairs']} consecutive visit pairs in PyHealth 1.1.4's "
                         "order (`patient[i]`, `patient[i + 1]`) have the second visit admitted "
                         "before the first.")
    lines += [""]
    lines += notes(record)
    for layout, entry in record["layouts"].items():
        lines += [f"## {TITLES[layout]}: test AUROC / AUPRC", "",
                  (f"{entry['patients']} patients; test parts of "
                  f"{statistics.mean(len(s['test']) for s in entry['splits'].values()):.0f} "
                  "patients. mean ± sd over seeds [bootstrap 95 % interval of the seed mean]."),
                  ""]
        for task, t in entry["tasks"].items():
            pos = {tool: [(r["n_test"], r["test_positives"]) for r in x["runs"]
                          if "skipped" not in r and r["arch"] == "gru"]
                   for tool, x in t.items()}
            desc = "; ".join(f"{tool}: test samples / positives per seed "
                             + ", ".join(f"{n}/{p}" for n, p in v) for tool, v in pos.items())
            skipped = {tool: sorted({r["seed"] for r in x["runs"] if "skipped" in r})
                       for tool, x in t.items()}
            skip = "; ".join(f"{tool} seeds {v} not run (train lacks an outcome or no test "
                             "samples)" for tool, v in skipped.items() if v)
            lines += [f"### {task}", "", desc + "." + (f" {skip}." if skip else ""), "",
                      "| model | tool | AUROC | AUPRC |", "|---|---|---|---|"]
            for arch in PMT_MODELS:
                for tool in ("pmtoolkit", "pyhealth 1.1.4"):
                    s = t[tool].get("summary", {}).get(arch)
                    if s:
                        lines.append(f"| {arch} | {tool} | {_cell(s['auroc'])} | "
                                     f"{_cell(s['auprc'])} |")
            lines.append("")
    lines += ["## Every seed", "",
              ("| dataset | task | tool | model | seed | test n / pos | AUROC [95 % CI] "
              "| AUPRC [95 % CI] | epochs |"), "|---|---|---|---|---:|---|---|---|---:|"]
    for layout, entry in record["layouts"].items():
        for task, t in entry["tasks"].items():
            for tool, x in t.items():
                for r in x["runs"]:
                    if "skipped" in r:
                        lines.append(f"| {TITLES[layout]} | {task} | {tool} | – | {r['seed']} "
                                     f"| – | {r['skipped']} | | |")
                        continue
                    cells = []
                    for name in METRICS:
                        ci = r[f"{name}_ci"]
                        band = f" [{_f(ci['lo'], 2)}, {_f(ci['hi'], 2)}]" \
                            if ci["lo"] is not None else ""
                        cells.append(_f(r[name]) + band)
                    lines.append(f"| {TITLES[layout]} | {task} | {tool} | {r['arch']} | "
                                 f"{r['seed']} | {r['n_test']} / {r['test_positives']} | "
                                 f"{cells[0]} | {cells[1]} | "
                                 f"{r.get('epochs_run', record['budget']['epochs'])} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--dry-run", action="store_true",
                    help="run and print the report without writing the results files")
    args = ap.parse_args()
    if args.report_only:
        history = [r for r in load_results() if "superseded_by" not in r]
        if not history:
            sys.exit(f"no current run in {RESULTS}")
        record = history[-1]
    else:
        record = run(args)
        if not args.dry_run:
            save(record)
    text = report(record)
    if not args.dry_run:
        (DOCS / "ehr_real.md").write_text(text)
    print(text)
    return 0


def notes(record: dict) -> list[str]:
    """Why the counts differ: read from both tools' code (PyHealth 1.1.4's
    pyhealth/datasets/{mimic3,eicu}.py and pyhealth/tasks/*.py; pmtoolkit/ehr/tasks.py) and
    checked against the demo tables."""
    return [
        "## Why the task definitions give different samples", "",
        ("Checked by reading both tools' code (PyHealth 1.1.4: `pyhealth/datasets/mimic3.py`, "
        "`eicu.py`, `pyhealth/tasks/*.py`) and recounting from the raw demo tables; "
        "pmtoolkit's counts match a direct count from the tables (e.g. MIMIC-III readmission: "
        "8 admissions followed by another within 15 days of discharge)."), "",
        ("1. **PyHealth 1.1.4 orders a patient's visits by id, not by time.** "
        "`MIMIC3Dataset` adds admissions in the order of `groupby(\"HADM_ID\")`, `eICUDataset` "
        "unit stays in the order of `groupby(\"patientunitstayid\")` — both sorted by id — "
        "and the next-visit tasks take `patient[i + 1]` as the next visit. MIMIC-III's "
        "`hadm_id` is random with respect to time, so on the MIMIC-III demo 16 of the 27 "
        "readmission / mortality samples pair an admission with an earlier one. Readmission's "
        "label is `(next.encounter_time - visit.encounter_time).days < 15`, true for every "
        "negative gap: 17 of 27 positive, against 2 of 26 with the visits in time order. "
        "Mortality's label is the \"next\" admission's `hospital_expire_flag`: 1 positive "
        "against 5 in time order. The eICU subset's unit stays within a hospital stay are "
        "misordered the same way (readmission 13 samples / 11 positive as shipped, 16 / 14 in "
        "time order; mortality 13 / 2 against 16 / 1). This is PyHealth issue #306 (closed upstream; newer "
        "PyHealth 2.x readers are not usable here: 1.1.5+ import torchvision, which has no CPU "
        "build for torch 2.13). **PyHealth's mortality and readmission figures below "
        "(both datasets) are therefore scored against these labels, and mean little**; pmtoolkit sorts "
        "a patient's admissions by admission time (ties by id)."),
        ("2. **What a visit needs.** PyHealth keeps a visit only if it has diagnoses, "
        "procedures and drugs (MIMIC: DIAGNOSES_ICD, PROCEDURES_ICD, PRESCRIPTIONS with any "
        "NDC, `0` included; eICU: diagnosis with an ICD code, physicalExam, medication). "
        "pmtoolkit needs any code known at the index time; it rejects NDC `0`, reads eICU "
        "`treatment` as procedures (it does not read physicalExam) and drops cancelled eICU "
        "orders. On the eICU subset 4 of the 9 unit stays of more than 7 days have no "
        "medication rows, so PyHealth's length of stay has 5 positives, pmtoolkit's 9."),
        ("3. **Which history.** PyHealth's sample is the current visit's codes only; "
        "pmtoolkit's is every code known at the index time: earlier admissions and, for "
        "within-stay tasks, the current stay's codes so far."),
        ("4. **Look-ahead in length of stay.** PyHealth's `length_of_stay_prediction_*_fn` "
        "labels a visit by its own length and gives the model the whole stay's diagnoses, "
        "procedures and drugs — diagnoses are coded at discharge, when the length is known. "
        "pmtoolkit predicts at 48 hours from what is known then (drugs started, earlier "
        "admissions) and excludes stays over by then (14 MIMIC-III admissions, 106 eICU unit "
        "stays). PyHealth's ten classes are made binary here (classes 8-9: more than 7 whole "
        "days), which is pmtoolkit's label. The tasks are different questions; the AUROCs "
        "are not comparable."),
        ("5. **Readmission.** PyHealth: the next visit is *admitted* within 15 days (MIMIC) / "
        "5 days (eICU) of this visit's *admission*. pmtoolkit: admitted within 15 days of this "
        "visit's *discharge* (MIMIC; `--readmission-days 15`), and in eICU the next unit stay "
        "belonging to the same hospital stay (ICU readmission; eICU does not give the days "
        "between hospital stays); admissions ending in death are excluded."),
        ("6. **eICU \"patients\" and mortality.** `eICUDataset` makes each hospital stay a "
        "patient (`uniquepid+patienthealthsystemstayid`), so PyHealth's next-visit tasks pair "
        "unit stays within one hospital stay only (13 samples); pmtoolkit follows a patient's "
        "unit stays across hospital stays (73 samples). PyHealth's eICU mortality label is the "
        "next unit stay's `unitdischargestatus` (death in the unit); pmtoolkit's is its "
        "`hospitaldischargestatus` (death in hospital)."),
        ("7. **Age.** Neither tool restricts age here (`--min-age 0`; pmtoolkit's default is "
        "18)."), ""]


if __name__ == "__main__":
    raise SystemExit(main())
