"""PyHealth side of the real-layout benchmark (benchmarks/ehr/real_layouts.py), run with the
anchor venv's python (benchmarks/.venv-pyhealth: pyhealth 1.1.4 on the CPU torch).

PyHealth does everything its own way here: its MIMIC3Dataset / eICUDataset read the tables,
its task functions (mortality_prediction_*_fn, readmission_prediction_*_fn,
length_of_stay_prediction_*_fn) build the samples, its RNN (GRU) / RETAIN / Transformer train
with its Trainer. Only the patient-level splits (one per seed) and the budget come from the
driver's job file, the same the pmtoolkit side gets. Prints nothing but a log; writes a JSON
file with the sample counts per task and every test prediction (patient, label, probability).

    benchmarks/.venv-pyhealth/bin/python benchmarks/ehr/pyhealth_real_runner.py job.json out.json

Staging (the demo tables are stored gzipped in ../shared/data, read-only): PyHealth 1.1.4
opens ``<root>/<TABLE>.csv`` and, for MIMIC-III, upper-case column names (``SUBJECT_ID``),
while the MIMIC-III demo's columns are lower case; the tables it needs are decompressed into
the job's temporary folder, MIMIC-III's header line upper-cased, the rows byte for byte.

Two things PyHealth 1.1.4 would do that cannot run here, replaced and said so in the output:
- ``pandarallel.initialize()`` would start one worker per core (the machine is shared): it is
  started with one worker;
- ``eICUDataset.parse_diagnosis`` downloads the ICD-9-CM and ICD-10-CM code lists (from
  PyHealth's cloud bucket; offline here) only to label each diagnosis event's vocabulary; the
  label is ``Event.vocabulary``, which the task functions never read (``get_code_list``
  returns the code strings), so a pattern rule labels it instead (ICD-10-CM: a letter other
  than E or V followed by two digits). The samples are the same whatever the label.
"""
import gzip
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
warnings.filterwarnings("ignore", category=FutureWarning)

import torch
from pandarallel import pandarallel

_initialize = pandarallel.initialize
pandarallel.initialize = lambda *a, **k: _initialize(nb_workers=1, progress_bar=False,
                                                       verbose=0)

from pyhealth import medcode
from pyhealth.datasets import MIMIC3Dataset, SampleEHRDataset, eICUDataset, get_dataloader
from pyhealth.models import RETAIN, RNN, Transformer
from pyhealth.tasks import (
    length_of_stay_prediction_eicu_fn,
    length_of_stay_prediction_mimic3_fn,
    mortality_prediction_eicu_fn,
    mortality_prediction_mimic3_fn,
    readmission_prediction_eicu_fn,
    readmission_prediction_mimic3_fn,
)
from pyhealth.trainer import Trainer

logging.getLogger("pyhealth").setLevel(logging.WARNING)
torch.set_num_threads(1)

_ICD10 = re.compile(r"^[A-DF-UW-Z][0-9]{2}")


class _PatternVocabulary:
    """Stands in for medcode.ICD9CM() / ICD10CM() in eICUDataset.parse_diagnosis, whose only
    use there is ``code in vocabulary`` to label Event.vocabulary (see the module docstring)."""

    def __init__(self, icd10: bool):
        self.icd10 = icd10

    def __contains__(self, code) -> bool:
        return bool(_ICD10.match(str(code))) == self.icd10


medcode.ICD9CM = lambda: _PatternVocabulary(False)
medcode.ICD10CM = lambda: _PatternVocabulary(True)

TABLES = {
    "mimic3": {"basic": ["PATIENTS", "ADMISSIONS"],
               "events": ["DIAGNOSES_ICD", "PROCEDURES_ICD", "PRESCRIPTIONS"], "upper": True},
    "eicu": {"basic": ["patient", "hospital"],
             "events": ["diagnosis", "physicalExam", "medication"], "upper": False},
}
TASK_FNS = {
    ("mimic3", "mortality"): mortality_prediction_mimic3_fn,
    ("mimic3", "readmission"): readmission_prediction_mimic3_fn,
    ("mimic3", "length_of_stay"): length_of_stay_prediction_mimic3_fn,
    ("eicu", "mortality"): mortality_prediction_eicu_fn,
    ("eicu", "readmission"): readmission_prediction_eicu_fn,
    ("eicu", "length_of_stay"): length_of_stay_prediction_eicu_fn,
}
FEATURES = ["conditions", "procedures", "drugs"]


def stage(layout: str, source: str, root: str) -> None:
    """The tables PyHealth reads, as ``root/<TABLE>.csv`` (see the module docstring)."""
    spec = TABLES[layout]
    for table in spec["basic"] + spec["events"]:
        with gzip.open(os.path.join(source, f"{table}.csv.gz"), "rb") as src, \
                open(os.path.join(root, f"{table}.csv"), "wb") as dst:
            header = src.readline()
            dst.write(header.upper() if spec["upper"] else header)
            shutil.copyfileobj(src, dst)


def read(layout: str, root: str):
    spec = TABLES[layout]
    cls = MIMIC3Dataset if layout == "mimic3" else eICUDataset
    return cls(root=root, tables=spec["events"], code_mapping={}, dev=False,
               refresh_cache=True)


def patient_of(layout: str, pid: str) -> str:
    """The real patient of a PyHealth sample: eICUDataset 1.1.4 makes each hospital stay a
    "patient" (``uniquepid+patienthealthsystemstayid``); the split is by ``uniquepid``."""
    return pid.split("+")[0] if layout == "eicu" else pid


def samples_of(base, layout: str, task: str) -> list:
    ds = base.set_task(TASK_FNS[(layout, task)])
    rows = []
    for s in ds.samples:
        s = dict(s)
        if task == "length_of_stay":  # categorize_los: 8 = 8-14 days, 9 = over 14 days
            s["los_category"] = s["label"]
            s["label"] = int(s["label"] >= 8)
        s["patient"] = patient_of(layout, s["patient_id"])
        rows.append(s)
    return rows


def visit_order(base) -> dict:
    """How many consecutive visits of a "patient", in the order PyHealth 1.1.4 indexes them
    (``patient[i]``, the order of ``groupby(HADM_ID / patientunitstayid)``: by id), go back
    in time (the next one admitted before this one)."""
    pairs = backward = 0
    for p in base.patients.values():
        for i in range(len(p) - 1):
            pairs += 1
            backward += p[i + 1].encounter_time < p[i].encounter_time
    return {"consecutive_pairs": pairs, "next_admitted_earlier": backward}


def in_time_order(base, layout: str, tasks) -> dict:
    """Counts of the same task functions with each patient's visits put in time order (the
    fix proposed in PyHealth issue #306): a diagnostic only, no model trains on
    them. Reorders ``base`` in place, so it runs after the shipped samples are built."""
    for p in base.patients.values():
        ids = sorted(p.visits, key=lambda v: (p.visits[v].encounter_time, v))
        p.index_to_visit_id = dict(enumerate(ids))
    out = {}
    for task in tasks:
        rows = [s for p in base.patients.values() for s in TASK_FNS[(layout, task)](p)]
        y = [int(s["label"] >= 8) if task == "length_of_stay" else s["label"] for s in rows]
        out[task] = {"samples": len(rows), "positives": int(sum(y))}
    return out


def sub(rows: list, name: str) -> SampleEHRDataset:
    keep = [{k: s[k] for k in ("patient_id", "visit_id", "label", *FEATURES)} for s in rows]
    return SampleEHRDataset(samples=keep, dataset_name="pyhealth", task_name=name)


def train_one(arch, parts, job, seed, out_dir):
    train = sub(parts["train"], "train")
    common = {"dataset": train, "feature_keys": FEATURES, "label_key": "label",
              "mode": "binary", "embedding_dim": job["dim"]}
    build = {"gru": lambda: RNN(rnn_type="GRU", hidden_dim=job["dim"], **common),
             "retain": lambda: RETAIN(**common),
             "transformer": lambda: Transformer(heads=job["heads"], num_layers=job["layers"],
                                                **common)}
    torch.manual_seed(seed)
    model = build[arch]()
    loader = get_dataloader(train, batch_size=job["batch_size"], shuffle=True)
    # the best validation epoch (PR-AUC), where the validation patients hold both outcomes;
    # else the last epoch (pmtoolkit likewise cannot stop early then)
    both = len({s["label"] for s in parts["valid"]}) == 2
    valid = get_dataloader(sub(parts["valid"], "valid"), batch_size=job["batch_size"],
                           shuffle=False) if both else None
    trainer = Trainer(model=model, metrics=["roc_auc", "pr_auc"], device="cpu",
                      output_path=out_dir, exp_name=f"{arch}-{seed}")
    t0 = time.perf_counter()
    trainer.train(train_dataloader=loader, val_dataloader=valid, epochs=job["epochs"],
                  monitor="pr_auc" if both else None, optimizer_params={"lr": job["lr"]})
    seconds = time.perf_counter() - t0
    test = parts["test"]
    # the model's tokenizers were fit on the training samples (its `dataset`); a test code
    # never seen there is its <unk> token
    y_true, y_prob, _ = trainer.inference(get_dataloader(sub(test, "test"),
                                                         batch_size=256, shuffle=False))
    return {"arch": arch, "seed": seed, "train_seconds": seconds, "early_stopping": both,
            "patients": [s["patient"] for s in test],
            "labels": [int(v) for v in y_true.ravel()],
            "scores": [float(v) for v in y_prob.ravel()]}


def main() -> int:
    with open(sys.argv[1]) as fh:
        job = json.load(fh)
    torch.manual_seed(0)
    result = {"substitutions": [
        "pandarallel started with one worker",
        ("eICU diagnosis vocabulary label (Event.vocabulary) by pattern instead of PyHealth's "
        "downloaded ICD-9-CM / ICD-10-CM lists; not read by the task functions")]}
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        stage(job["layout"], job["source"], root)
        base = read(job["layout"], root)
        result["read_seconds"] = time.perf_counter() - t0
        result["base"] = {"patients": len(base.patients),
                          "visits": sum(len(p) for p in base.patients.values())}
        result["tasks"] = {}
        shipped = {task: samples_of(base, job["layout"], task) for task in job["tasks"]}
        result["visit_order"] = visit_order(base)
        in_time = in_time_order(base, job["layout"], job["tasks"])
        for task in job["tasks"]:
            rows = shipped[task]
            counts = {"samples": len(rows), "positives": sum(s["label"] for s in rows),
                      "patients": len({s["patient"] for s in rows}),
                      "pyhealth_patients": len({s["patient_id"] for s in rows}),
                      "visits_in_time_order": in_time[task]}
            if task == "length_of_stay":
                counts["los_categories"] = {str(c): sum(s["los_category"] == c for s in rows)
                                            for c in range(10)}
            runs = []
            for seed_key, split in job["splits"].items():
                seed = int(seed_key)
                side = {p: part for part, ps in split.items() for p in ps}
                parts = {k: [s for s in rows if side.get(s["patient"]) == k]
                         for k in ("train", "valid", "test")}
                missing = sorted({s["patient"] for s in rows} - set(side))
                if missing:
                    raise SystemExit(f"patients not in the split: {missing[:5]}")
                if len({s["label"] for s in parts["train"]}) < 2 or not parts["test"]:
                    runs.append({"seed": seed, "skipped": "train lacks an outcome class or "
                                                           "no test samples"})
                    continue
                for arch in job["models"]:
                    with tempfile.TemporaryDirectory() as out:
                        r = train_one(arch, parts, job, seed, out)
                    r.update(n_train=len(parts["train"]), n_valid=len(parts["valid"]))
                    runs.append(r)
                    print(f"{job['layout']} {task} seed {seed} {arch}: "
                          f"{r['train_seconds']:.1f} s", file=sys.stderr, flush=True)
            result["tasks"][task] = {"counts": counts, "runs": runs}
    with open(sys.argv[2], "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
