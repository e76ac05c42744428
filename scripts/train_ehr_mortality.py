"""Train the shipped EHR risk model (data/models/synthea-mortality.safetensors, ``--model
synthea-mortality``) and write the example patients (data/examples/ehr/synthea/) it has never
seen.

Task: death within 365 days of a visit, every visit of an adult with two or more visits as an
index (the benchmark's ``mortality`` task, benchmarks/ehr/run.py), on the Synthea cohort in
../shared/data/ehr/synthea (543 synthetic patients). Patients are split 70/10/20 by
:func:`pmtoolkit.ehr.tasks.patient_split` with seed 0, stratified by outcome: the model trains on
the first part, stops early, calibrates (Platt scaling) and picks its Youden threshold on the
second; its test metrics (third part) are stored in the model (``pmt info``). The example
patients are drawn from the test part only — every one who died there, then others in id
order up to ``--patients`` — and written as a Synthea CSV export of their own rows (patients,
conditions, medications, immunizations, careplans, allergies, devices; gzip without a
timestamp, so reruns give the same bytes).

Model: RETAIN (Choi et al. 2016), the library defaults (64-d embeddings and hidden state,
time encoding, positive weighting), whose attention gives each code's contribution exactly;
weights stored as float16.

    python scripts/train_ehr_mortality.py        # ~2 min on one CPU core
    python scripts/update_manifest.py            # then refresh sizes and hashes
"""
from __future__ import annotations

import argparse
import gzip
import io
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYNTHEA = ROOT.parent / "shared" / "data" / "ehr" / "synthea"
OUT = ROOT / "data" / "models" / "synthea-mortality.safetensors"
EXAMPLES = ROOT / "data" / "examples" / "ehr" / "synthea"
TABLES = ("conditions", "medications", "immunizations", "careplans", "allergies", "devices")


def write_examples(source: Path, out: Path, patients: list[str]) -> dict[str, int]:
    """The chosen patients' rows of each Synthea table, as reproducible .csv.gz files."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    wanted = set(patients)
    rows = {}
    for stem in ("patients", *TABLES):
        frame = pd.read_csv(source / f"{stem}.csv.gz", dtype=str, keep_default_na=False)
        key = "Id" if stem == "patients" else "PATIENT"
        frame = frame[frame[key].isin(wanted)]
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
            gz.write(frame.to_csv(index=False).encode())
        (out / f"{stem}.csv.gz").write_bytes(buf.getvalue())
        rows[stem] = len(frame)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthea", type=Path, default=SYNTHEA)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--examples", type=Path, default=EXAMPLES)
    ap.add_argument("--patients", type=int, default=40, help="example patients to write")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np

    from pmtoolkit.core.config import to_dict
    from pmtoolkit.core.io import sha256_file
    from pmtoolkit.ehr.config import RiskModelConfig, TaskConfig
    from pmtoolkit.ehr.evaluate import risk_metrics
    from pmtoolkit.ehr.events import read_synthea
    from pmtoolkit.ehr.models import fit_risk_model
    from pmtoolkit.ehr.tasks import build_samples, patient_split

    t0 = time.perf_counter()
    task = TaskConfig(kind="mortality", horizon_days=365, index="each_visit")
    table = read_synthea(args.synthea)
    samples = build_samples(table, task)
    split = patient_split(samples, (0.7, 0.1, 0.2), seed=args.seed)
    parts = {k: [samples.samples[i] for i in v] for k, v in split.items()}
    config = RiskModelConfig(arch="retain", seed=args.seed, device="cpu")
    model = fit_risk_model(parts["train"], parts["valid"], config, task=to_dict(task))
    y = np.array([s.label for s in parts["test"]])
    test = risk_metrics(y, model.predict_proba(parts["test"]), model.threshold)
    metrics = dict(model.metadata["metrics"])
    metrics.update({f"test_{k}": test[k] for k in ("auroc", "auprc", "brier", "ece",
                                                   "sensitivity", "specificity", "ppv",
                                                   "npv")})
    test_patients = sorted({s.patient_id for s in parts["test"]})
    died = sorted({s.patient_id for s in parts["test"] if s.label})
    chosen = died + [p for p in test_patients if p not in died]
    chosen = sorted(chosen[:args.patients])
    metrics.update({
        "training_set": f"Synthea (../shared/data/ehr/synthea, 543 patients), mortality within "
                        f"365 d at each visit: {len(samples)} samples of "
                        f"{len(set(samples.patients))} patients; seed-{args.seed} patient split "
                        f"train {len(parts['train'])} / valid {len(parts['valid'])} / test "
                        f"{len(parts['test'])} samples ({int(y.sum())} test positives)",
        "example_patients": f"{len(chosen)} test patients ({len(set(died) & set(chosen))} "
                            "died) in data/examples/ehr/synthea",
        "total_seconds": time.perf_counter() - t0,
    })
    rows = write_examples(args.synthea, args.examples, chosen)
    model.save(args.out, metrics=metrics,
               training_data_sha256=sha256_file(args.synthea / "patients.csv.gz"), half=True)
    print(f"test AUROC {test['auroc']:.3f} AUPRC {test['auprc']:.3f} Brier {test['brier']:.4f} "
          f"threshold {model.threshold:.3f}; examples: {rows}; {args.out} "
          f"{args.out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
