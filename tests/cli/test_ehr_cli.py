"""`pmt ehr` end to end on a small synthetic Synthea export, and bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def synthea(tmp_path_factory):
    """80 patients over 2010-2020; those coded RISK die within a year of it (mostly)."""
    folder = tmp_path_factory.mktemp("synthea")
    rng = np.random.default_rng(0)
    patients, rows = [], []
    for i in range(80):
        pid = f"p{i:03d}"
        risky = i % 4 == 0
        death = None
        t = pd.Timestamp("2010-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        for v in range(int(rng.integers(4, 9))):
            codes = [str(c) for c in rng.integers(100, 130, size=int(rng.integers(1, 4)))]
            if risky and v >= 3:
                codes.append("999")
                death = (t + pd.Timedelta(days=200)) if death is None else death
            for c in codes:
                rows.append((t.strftime("%Y-%m-%d"), None, pid, f"{pid}-e{v}", c, "x"))
            t = t + pd.Timedelta(days=int(rng.integers(60, 200)))
            if death is not None and t >= death:
                break
        patients.append((pid, "1950-01-01", None if death is None else death.strftime("%Y-%m-%d"),
                         "F"))
    rows.append((None, None, "p001", "bad", "123", "no time"))
    pd.DataFrame(patients, columns=["Id", "BIRTHDATE", "DEATHDATE", "GENDER"]).to_csv(
        folder / "patients.csv", index=False)
    pd.DataFrame(rows, columns=["START", "STOP", "PATIENT", "ENCOUNTER", "CODE",
                                "DESCRIPTION"]).to_csv(folder / "conditions.csv", index=False)
    # the data run to 2022 for everyone (an event of a healthy patient)
    return folder


def test_build_train_predict_evaluate_explain(pmt, synthea, tmp_path):
    data = tmp_path / "mort.jsonl.gz"
    result = pmt("ehr", "build", "-i", synthea, "-o", data, "--index", "each_visit", "--min-visits",
                 "1", "--horizon-days", "365")
    assert result.exit_code == 0, result.stderr
    assert "with the outcome" in result.stderr and "excluded" in result.stderr
    assert "1 record(s) rejected: missing or unreadable time" in result.stderr
    header = json.loads(__import__("gzip").open(data, "rt").readline())
    assert header["task"]["kind"] == "mortality" and header["summary"]["positives"] > 5

    run = tmp_path / "gru"
    result = pmt("ehr", "train", "-i", data, "--architecture", "gru", "--epochs", "3",
                 "--embedding-dim", "8",
                 "--hidden-size", "8", "-o", run)
    assert result.exit_code == 0, result.stderr
    assert "test AUROC" in result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"auroc", "auprc", "brier", "sensitivity"} <= set(metrics["test"])

    result = pmt("ehr", "predict", "-i", data, "-m", run / "model.safetensors", "-o", "-",
                 "--part", "test")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("patient_id,index_time,split,label,probability,predicted")

    # risk as of now straight from the events: living patients at their last visit
    result = pmt("ehr", "predict", "-i", synthea, "-m", run / "model.safetensors", "-o",
                 tmp_path / "now.csv")
    assert result.exit_code == 0, result.stderr
    now = pd.read_csv(tmp_path / "now.csv")
    alive = pd.read_csv(synthea / "patients.csv")
    assert set(now["patient_id"]) == set(alive.loc[alive["DEATHDATE"].isna(), "Id"])
    assert now["probability"].between(0, 1).all()

    ev = tmp_path / "ev"
    result = pmt("ehr", "evaluate", "-i", data, "-m", run / "model.safetensors", "-o", ev)
    assert result.exit_code == 0, result.stderr
    for name in ("metrics.json", "roc.png", "calibration.png", "report.html"):
        assert (ev / name).is_file(), name

    ex = tmp_path / "ex"
    result = pmt("ehr", "explain", "-i", data, "-m", run / "model.safetensors", "-o", ex, "--top",
                 "2")
    assert result.exit_code == 0, result.stderr
    contrib = pd.read_csv(ex / "contributions.csv")
    assert {"patient_id", "visit", "days_before", "code", "contribution"} <= set(contrib.columns)
    assert len(list(ex.glob("timeline_*.png"))) == 2 and (ex / "visits.csv").is_file()
    assert contrib.groupby("sample")["patient_id"].first().nunique() == 2  # two patients


def test_next_visit_task_end_to_end(pmt, synthea, tmp_path):
    data = tmp_path / "next.jsonl.gz"
    result = pmt("ehr", "build", "-i", synthea, "-o", data, "--kind", "next_visit", "--index",
                 "each_visit", "--min-visits", "1", "--horizon-days", "365")
    assert result.exit_code == 0, result.stderr
    assert "without a later visit with target codes" in result.stderr
    run = tmp_path / "nv"
    result = pmt("ehr", "train", "-i", data, "--architecture", "logistic", "--epochs", "3", "-o",
                 run)
    assert result.exit_code == 0, result.stderr
    assert "test recall@10" in result.stderr
    result = pmt("ehr", "predict", "-i", data, "-m", run / "model.safetensors", "--part", "test",
                 "-o", "-")
    import io

    top = pd.read_csv(io.StringIO(result.stdout))
    assert list(top.columns) == ["patient_id", "index_time", "split", "rank", "code",
                                 "probability", "observed"]
    assert (top.groupby(["patient_id", "index_time"])["rank"].max() == 10).all()
    ev = tmp_path / "ev"
    result = pmt("ehr", "evaluate", "-i", data, "-m", run / "model.safetensors", "-o", ev)
    assert result.exit_code == 0 and "most frequent codes" in result.stderr
    metrics = json.loads((ev / "metrics.json").read_text())
    assert 0 <= metrics["recall@10"] <= 1 and "baseline_patient_history" in metrics
    assert (ev / "recall_at_k.png").is_file() and (ev / "per_code.csv").is_file()
    ex = tmp_path / "ex"
    result = pmt("ehr", "explain", "-i", data, "-m", run / "model.safetensors", "-o", ex, "--top",
                 "2",
                 "--target", "SNOMED-CT:101")
    assert result.exit_code == 0, result.stderr
    assert set(pd.read_csv(ex / "contributions.csv")["target"]) == {"SNOMED-CT:101"}
    result = pmt("ehr", "explain", "-i", data, "-m", run / "model.safetensors", "-o",
                 tmp_path / "x",
                 "--target", "SNOMED-CT:nope")
    assert result.exit_code == 2 and "does not predict" in result.stderr


def test_bad_input(pmt, synthea, tmp_path):
    result = pmt("ehr", "build", "-i", synthea, "-o", tmp_path / "x.jsonl", "--kind", "onset")
    assert result.exit_code == 2 and "--codes" in result.stderr
    assert not (tmp_path / "x.jsonl").exists()
    (tmp_path / "junk.jsonl").write_text('{"format": "something else"}\n')
    result = pmt("ehr", "train", "-i", tmp_path / "junk.jsonl", "-o", tmp_path / "run")
    assert result.exit_code == 2 and "not a pmtoolkit EHR dataset" in result.stderr
    result = pmt("ehr", "build", "-i", tmp_path, "-o", tmp_path / "y.jsonl")
    assert result.exit_code == 2 and "patients.csv" in result.stderr
    result = pmt("ehr", "build", "-i", synthea / "conditions.csv", "-o", tmp_path / "z.jsonl")
    assert result.exit_code == 2 and "column" in result.stderr


def test_shipped_model_scores_the_shipped_example_patients(pmt, tmp_path):
    """Day one, offline: the shipped RETAIN model on the 40 example patients it never saw."""
    import io

    from pmtoolkit.core import shipped

    folder = shipped.path("synthea_example", "dataset").parent
    result = pmt("ehr", "predict", "-i", folder, "-o", "-")  # --model synthea-mortality by default
    assert result.exit_code == 0, result.stderr
    risk = pd.read_csv(io.StringIO(result.stdout))
    assert len(risk) == 27 and risk["probability"].between(0, 1).all()  # the 27 living
    assert "skipped: 13 deceased patients" in result.stderr
    data = tmp_path / "ex.jsonl.gz"
    assert pmt("ehr", "build", "-i", folder, "-o", data, "--index", "each_visit", "--sizes", "0",
               "0",
               "1").exit_code == 0
    result = pmt("ehr", "evaluate", "-i", data, "-o", tmp_path / "ev")
    assert result.exit_code == 0, result.stderr
    import json

    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["auroc"] > 0.8 and metrics["positives"] == 45


MIMIC3_TABLES = ("ADMISSIONS", "PATIENTS", "DIAGNOSES_ICD", "PROCEDURES_ICD", "PRESCRIPTIONS",
                 "ICUSTAYS")


def test_mimic3_demo_build_and_train(pmt, shared_data, tmp_path):
    """The published MIMIC-III demo end to end: build a PyHealth task, train on it."""
    demo = shared_data / "ehr" / "mimic3_demo"
    data = tmp_path / "d.jsonl"
    result = pmt("ehr", "build", "--format", "mimic3", "-i", demo, "-o", data, "--kind",
                 "in_hospital_mortality", "--index", "each_visit")
    assert result.exit_code == 0, result.stderr
    assert "112 samples of 84 patients, 28 with the outcome" in result.stderr
    assert "1478 record(s) rejected: no NDC (empty or 0)" in result.stderr
    header = json.loads(data.open().readline())
    assert header["layout"] == "mimic3" and header["task"]["kind"] == "in_hospital_mortality"
    same = tmp_path / "inferred.jsonl"  # the layout told from the folder: the same dataset
    assert pmt("ehr", "build", "-i", demo, "-o", same, "--kind", "in_hospital_mortality",
               "--index", "each_visit").exit_code == 0
    assert same.read_text() == data.read_text()
    run = tmp_path / "run"
    result = pmt("ehr", "train", "-i", data, "--architecture", "gru", "--epochs", "1",
                 "--embedding-dim", "8", "--hidden-size", "8", "-o", run)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["n"] > 0 and 0 <= metrics["test"]["auroc"] <= 1


def _mimic3_copy(shared_data, folder):
    import shutil

    folder.mkdir()
    for stem in MIMIC3_TABLES:
        shutil.copy(shared_data / "ehr" / "mimic3_demo" / f"{stem}.csv.gz", folder)
    return folder


def _one_line_error(result, text):
    assert result.exit_code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and text in errors[0], result.stderr


def test_hospital_layout_bad_input(pmt, shared_data, tmp_path):
    import gzip

    folder = _mimic3_copy(shared_data, tmp_path / "m3")
    out = tmp_path / "x.jsonl"
    (folder / "PRESCRIPTIONS.csv.gz").rename(tmp_path / "PRESCRIPTIONS.csv.gz")
    _one_line_error(pmt("ehr", "build", "--format", "mimic3", "-i", folder, "-o", out),
                    "has no PRESCRIPTIONS table")
    data = (tmp_path / "PRESCRIPTIONS.csv.gz").read_bytes()
    (folder / "PRESCRIPTIONS.csv.gz").write_bytes(data[: len(data) // 3])
    _one_line_error(pmt("ehr", "build", "-i", folder, "-o", out), "truncated or not valid gzip")
    (folder / "PRESCRIPTIONS.csv.gz").write_bytes(data)
    frame = pd.read_csv(folder / "DIAGNOSES_ICD.csv.gz", dtype=str).drop(columns="icd9_code")
    with gzip.open(folder / "DIAGNOSES_ICD.csv.gz", "wt") as fh:
        frame.to_csv(fh, index=False)
    _one_line_error(pmt("ehr", "build", "-i", folder, "-o", out), "has no column 'icd9_code'")
    _one_line_error(pmt("ehr", "build", "--format", "eicu", "-i", folder, "-o", out),
                    "has no patient table")
    _one_line_error(pmt("ehr", "build", "--format", "mimic3", "-i", folder / "ADMISSIONS.csv.gz",
                        "-o", out), "--format mimic3 reads a folder")
    assert not out.exists()


def test_unreadable_dates_are_listed_rejects(pmt, shared_data, tmp_path):
    import gzip

    folder = _mimic3_copy(shared_data, tmp_path / "m3")
    adm = pd.read_csv(folder / "ADMISSIONS.csv.gz", dtype=str)
    adm.loc[0, "admittime"] = "2164-13-45 25:00:00"
    adm.loc[1, "dischtime"] = "2126-08-10 00:00:00"  # before its admission
    with gzip.open(folder / "ADMISSIONS.csv.gz", "wt") as fh:
        adm.to_csv(fh, index=False)
    result = pmt("ehr", "build", "-i", folder, "-o", tmp_path / "d.jsonl", "--kind",
                 "readmission", "--index", "each_visit")
    assert result.exit_code == 0, result.stderr
    assert "1 record(s) rejected: missing or unreadable admission start" in result.stderr
    assert "1 record(s) rejected: admission ends before it starts" in result.stderr
    # the events of those two admissions are listed too, none silently dropped
    assert "record(s) rejected: visit not in the visits table" in result.stderr
    result = pmt("ehr", "build", "-i", synthea_folder(tmp_path), "-o", tmp_path / "s.jsonl",
                 "--kind", "readmission")
    _one_line_error(result, "needs admissions")


def synthea_folder(tmp_path):
    folder = tmp_path / "synthea_small"
    folder.mkdir()
    pd.DataFrame({"Id": ["p"], "BIRTHDATE": ["1950-01-01"]}).to_csv(folder / "patients.csv",
                                                                     index=False)
    pd.DataFrame({"START": ["2020-01-01"], "PATIENT": ["p"], "ENCOUNTER": ["e"],
                  "CODE": ["1"]}).to_csv(folder / "conditions.csv", index=False)
    return folder


def test_eicu_demo_without_its_lab_table(pmt, shared_data, tmp_path):
    """--tables names the events a task draws on; only their tables are read or needed."""
    import shutil

    folder = tmp_path / "eicu"
    folder.mkdir()
    for stem in ("patient", "diagnosis", "medication", "treatment"):
        shutil.copy(shared_data / "ehr" / "eicu_demo_subset" / f"{stem}.csv.gz", folder)
    out = tmp_path / "r.jsonl"
    _one_line_error(pmt("ehr", "build", "-i", folder, "-o", out, "--kind", "readmission"),
                    "has no lab table")
    result = pmt("ehr", "build", "-i", folder, "-o", out, "--kind", "readmission", "--index",
                 "each_visit", "--tables", "conditions", "--tables", "procedures", "--tables",
                 "drugs")
    assert result.exit_code == 0, result.stderr
    assert "72 samples of 49 patients, 28 with the outcome" in result.stderr
    assert "1 admissions without codes before the index time" in result.stderr  # labs only
