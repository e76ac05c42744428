"""Hostile input to `pmt ehr`, `pmt fusion` and `pmt response` (issue 23): dataset lines that
are not samples, visits and days of different lengths, truncated and binary files, wrong
output suffixes, repeated KEY=VALUE keys, non-finite embeddings, features and responses,
absurd sizes. Each is exit 2 with one `pmt: error:` line, and nothing written: no output, no
hidden temporary file. And `pmt ehr train` stopped by SIGTERM continues with --resume."""
from __future__ import annotations

import csv
import json
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import strategies as S
from tests.hostile.helpers import (
    FUZZ,
    binary,
    fuzz_run,
    refused,
    start_pmt,
    truncated_gz,
    wait_for,
)

#: the outputs the cases below name: none may exist afterwards
OUTPUTS = {"out", "run", "ds.csv", "ds.jsonl", "m.safetensors", "m.safetensors.work",
           "pred.csv"}


def _refused(result, folder: Path, *needles):
    return refused(result, folder, *needles, leftover=lambda p: p.name in OUTPUTS)


# --------------------------------------------------------------------------- pmt ehr

@pytest.fixture(scope="module")
def ehr(tmp_path_factory):
    """A 40-patient event table (those coded 999 die within a year), the dataset built from
    it, and an untrained logistic risk model knowing its codes."""
    from pmtoolkit.ehr.config import RiskModelConfig, TaskConfig
    from pmtoolkit.ehr.models import RiskModel
    from pmtoolkit.ehr.run import build

    folder = tmp_path_factory.mktemp("ehr")
    rng = np.random.default_rng(0)
    rows, patients = [], []
    for i in range(40):
        pid, death = f"p{i:03d}", None
        t = pd.Timestamp("2010-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        for v in range(int(rng.integers(4, 8))):
            codes = [str(c) for c in rng.integers(100, 120, size=2)]
            if i % 4 == 0 and v >= 3:
                codes.append("999")
                death = death or t + pd.Timedelta(days=200)
            rows += [(pid, t.strftime("%Y-%m-%d"), c, "SNOMED-CT", f"{pid}-{v}") for c in codes]
            t += pd.Timedelta(days=int(rng.integers(60, 200)))
            if death is not None and t >= death:
                break
        patients.append((pid, "1950-01-01", death.strftime("%Y-%m-%d") if death else "", "F"))
    pd.DataFrame(rows, columns=["patient_id", "time", "code", "system", "visit_id"]).to_csv(
        folder / "events.csv", index=False)
    pd.DataFrame(patients, columns=["patient_id", "birth_date", "death_date", "sex"]).to_csv(
        folder / "patients.csv", index=False)
    build(folder / "events.csv", folder / "data.jsonl", TaskConfig(index="each_visit",
                                                                   min_visits=1),
          patients=str(folder / "patients.csv"))
    lines = (folder / "data.jsonl").read_text().splitlines()
    config = RiskModelConfig(arch="logistic", device="cpu")
    tokens = sorted({c for line in lines[1:] for v in json.loads(line)["visits"] for c in v})
    RiskModel.untrained(config, {"tokens": ["<pad>", "<unk>", *tokens]}).save(
        folder / "model.safetensors")
    return {"folder": folder, "header": lines[0], "samples": lines[1:],
            "model": folder / "model.safetensors"}


def _sample(ehr, **change) -> str:
    d = json.loads(ehr["samples"][0])
    d.update(change)
    return json.dumps(d)


def _dataset(ehr, folder: Path, first: str, name: str = "bad.jsonl") -> Path:
    """A dataset whose first sample line is ``first`` (line 2), the others valid."""
    path = folder / name
    path.write_text("\n".join([ehr["header"], first, *ehr["samples"][1:]]) + "\n")
    return path


def _multi_visit(ehr) -> dict:
    return next(d for d in map(json.loads, ehr["samples"]) if len(d["visits"]) >= 2)


BAD_LINES = {
    "visits and days differ": (lambda e: json.dumps({**_multi_visit(e), "days_before":
                                                     _multi_visit(e)["days_before"][:-1]}),
                               "visits but"),
    "a JSON list": (lambda e: "[1, 2, 3]", "found a JSON list"),
    "a JSON string": (lambda e: '"hello"', "found a JSON string"),
    "not JSON": (lambda e: "{patient_id: p1", "not JSON"),
    "label as text": (lambda e: _sample(e, label="yes"), "'label' must be 0 or 1"),
    "unparseable time": (lambda e: _sample(e, index_time="soon"), "not a date and time"),
    "negative days": (lambda e: _sample(e, days_before=[-3.0] * len(
        json.loads(e["samples"][0])["visits"])), "not negative"),
    "days increasing": (lambda e: json.dumps({**_multi_visit(e), "days_before": sorted(
        [1.0 + k for k in range(len(_multi_visit(e)["visits"]))])}), "must not increase"),
    "visits as text": (lambda e: _sample(e, visits="abc"), "'visits' must be"),
    "codes as numbers": (lambda e: _sample(e, visits=[[1, 2]], days_before=[3.0]),
                         "list of code strings"),
    "more visits than the task keeps": (lambda e: _sample(e, visits=[["X:1"]] * 51,
                                                          days_before=[1.0] * 51),
                                        "more than the task's max_visits"),
    "deeply nested": (lambda e: "[" * 100_000 + "]" * 100_000, "line 2"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_ehr_train_refuses_a_dataset_line_that_is_not_a_sample(pmt, ehr, tmp_path, case):
    make, needle = BAD_LINES[case]
    data = _dataset(ehr, tmp_path, make(ehr))
    _refused(pmt("ehr", "train", "-i", data, "-o", tmp_path / "run", "--epochs", 1), tmp_path,
             "line 2", needle)


@pytest.mark.parametrize("command", ["evaluate", "explain", "predict"])
def test_ehr_scoring_commands_refuse_invalid_lines_under_on_invalid_error(pmt, ehr, tmp_path,
                                                                          command):
    data = _dataset(ehr, tmp_path, "[1, 2, 3]")
    out = tmp_path / ("pred.csv" if command == "predict" else "out")
    _refused(pmt("ehr", command, "-i", data, "-m", ehr["model"], "-o", out, "--on-invalid",
                 "error"),
             tmp_path, "line 2", "found a JSON list")


def test_ehr_predict_skips_invalid_lines_and_lists_them(pmt, ehr, tmp_path):
    data = _dataset(ehr, tmp_path, "[1, 2, 3]")
    result = pmt("ehr", "predict", "-i", data, "-m", ehr["model"], "-o", tmp_path / "risk.csv")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "risk.csv")) == len(ehr["samples"]) - 1
    rejected = pd.read_csv(tmp_path / "risk.rejected.csv")
    assert rejected["line"].tolist() == [2]


@pytest.mark.parametrize("case", ["truncated-gz", "binary", "no header", "header a list"])
def test_ehr_train_refuses_a_file_that_is_not_a_dataset(pmt, ehr, tmp_path, case):
    text = "\n".join([ehr["header"], *ehr["samples"]]) + "\n"
    if case == "truncated-gz":
        data, needle = truncated_gz(tmp_path / "d.jsonl.gz", text), "truncated"
    elif case == "binary":
        data, needle = binary(tmp_path / "d.jsonl"), "not UTF-8"
    else:
        data, needle = tmp_path / "d.jsonl", "not a pmtoolkit EHR dataset"
        first = "[1]" if case == "header a list" else ehr["samples"][0]
        data.write_text("\n".join([first, *ehr["samples"]]) + "\n")
    _refused(pmt("ehr", "train", "-i", data, "-o", tmp_path / "run"), tmp_path, str(data.name),
             needle)


@pytest.mark.parametrize("args, needle", [
    (["-o", "{tmp}/ds.csv"], "name it .jsonl or .jsonl.gz"),
    (["-o", "{tmp}/ds.jsonl", "--column", "code=code", "--column", "code=visit_id"],
     "'code' is given twice"),
    (["-o", "{tmp}/ds.jsonl", "--column", "age=years"], "'age' is not a schema column"),
    (["-o", "{tmp}/ds.jsonl", "--column", "value=nothere"], "no column 'nothere'"),
    (["-o", "{tmp}/ds.jsonl", "--column", "code=time"], "two columns would be the 'code'"),
    (["-o", "{tmp}/ds.jsonl", "--sizes", "2", "0", "0"], "--sizes"),
    (["-o", "{tmp}/ds.jsonl", "--split-seed", "-1"], "--split-seed"),
])
def test_ehr_build_refuses_bad_options(pmt, ehr, tmp_path, args, needle):
    args = [a.format(tmp=tmp_path) for a in args]
    _refused(pmt("ehr", "build", "-i", ehr["folder"] / "events.csv", *args), tmp_path, needle)


@pytest.mark.parametrize("case", ["truncated-gz", "binary", "times as numbers"])
def test_ehr_build_refuses_unreadable_event_tables(pmt, ehr, tmp_path, case):
    text = (ehr["folder"] / "events.csv").read_text()
    if case == "truncated-gz":
        events, needle = truncated_gz(tmp_path / "ev.csv.gz", text), "truncated"
    elif case == "binary":
        events, needle = binary(tmp_path / "ev.csv"), "not UTF-8"
    else:  # numbers are not nanoseconds since 1970: every event is a reject
        frame = pd.read_csv(ehr["folder"] / "events.csv")
        frame["time"] = np.arange(len(frame))
        events, needle = tmp_path / "ev.csv", "missing or unreadable time"
        frame.to_csv(events, index=False)
    _refused(pmt("ehr", "build", "-i", events, "-o", tmp_path / "ds.jsonl"), tmp_path, needle)


@pytest.mark.parametrize("args, needle", [
    (["explain", "-i", "{data}", "-m", "{model}", "-o", "{tmp}/out", "--top", "0"], "--top"),
    (["explain", "-i", "{data}", "-m", "{model}", "-o", "{tmp}/out", "--top", "1000000000"],
     "--top"),
    (["evaluate", "-i", "{data}", "-m", "{model}", "-o", "{tmp}/out", "--threshold", "2"],
     "--threshold"),
    (["train", "-i", "{data}", "-o", "{tmp}/run", "--epochs", "1000000000"], "--epochs"),
    (["train", "-i", "{data}", "-o", "{tmp}/run", "--hidden-size", "1000000"], "--hidden-size"),
    (["train", "-i", "{data}", "-o", "{tmp}/run", "--architecture", "transformer",
      "--hidden-size", "10",
      "--heads", "4"], "not divisible"),
    (["train", "-i", "{data}", "-o", "{tmp}/run", "--device", "cuda:7"], "cuda"),
    (["train", "-i", "{data}", "-o", "{tmp}/run", "--architecture", "lstm", "--hidden-size", "8192",
      "--embedding-dim", "8192", "--layers", "64"], "parameters, more than"),
])
def test_ehr_numbers_out_of_range_are_refused(pmt, ehr, tmp_path, args, needle):
    data = _dataset(ehr, tmp_path, ehr["samples"][0], "data.jsonl")
    args = [a.format(data=data, model=ehr["model"], tmp=tmp_path) for a in args]
    _refused(pmt("ehr", *args), tmp_path, needle)


# --------------------------------------------------------------------------- pmt fusion

@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    """Two modalities' embedding tables of 40 patients (b: 30 of them), their outcomes, and an
    untrained model over both."""
    from pmtoolkit.fusion.config import FusionConfig
    from pmtoolkit.fusion.model import FusionModel

    folder = tmp_path_factory.mktemp("emb")
    rng = np.random.default_rng(0)
    ids = [f"q{i}" for i in range(40)]
    y = np.tile([0, 1], 20)
    pd.DataFrame({"patient_id": ids, "e0": rng.normal(size=40) + y,
                  "e1": rng.normal(size=40)}).to_csv(folder / "a.csv", index=False)
    pd.DataFrame({"patient_id": ids[:30], "f0": rng.normal(size=30)}).to_csv(
        folder / "b.csv", index=False)
    pd.DataFrame({"patient_id": ids, "outcome": y}).to_csv(folder / "y.csv", index=False)
    config = FusionConfig(hidden_dim=4, device="cpu")
    FusionModel.untrained(config, {"modalities": ["a", "b"], "dims": [2, 1],
                              "scale": {"a": [[0, 0], [1, 1]], "b": [[0], [1]]}}).save(
        folder / "model.safetensors")
    return folder


def _edited(embeddings, tmp_path, name, edit) -> Path:
    frame = pd.read_csv(embeddings / name)
    edit(frame)
    frame.to_csv(tmp_path / name, index=False)
    return tmp_path / name


@pytest.mark.parametrize("case, needle", [
    ("repeated modality", "'a' is given twice"),
    ("infinite value", "line 5: patient 'q3'"),
    ("missing value", "line 5: patient 'q3'"),
    ("beyond float32", "out-of-range value in 'e1'"),
    ("text column", "'e1' is not numeric"),
    ("no patient id", "line 5: no patient_id"),
    ("patient twice", "appears twice"),
    ("other patient ids", "have an outcome in"),
    ("outcome as text", "outcome 'yes'"),
    ("outcome repeated", "appears twice"),
    ("hidden width", "--hidden-size"),
    ("network too large", "parameters, more than"),
])
def test_fusion_train_refuses_bad_tables(pmt, embeddings, tmp_path, case, needle):
    a, outcomes = embeddings / "a.csv", embeddings / "y.csv"
    extra = []

    def cell(value, column="e1"):
        return lambda f: f.__setitem__(column, f[column].astype(object).where(
            f.index != 3, value))

    if case == "repeated modality":
        extra = ["--modality", f"a={embeddings / 'b.csv'}"]
    elif case in ("infinite value", "missing value", "beyond float32", "text column"):
        value = {"infinite value": np.inf, "missing value": np.nan, "beyond float32": 1e300,
                 "text column": "x"}[case]
        a = _edited(embeddings, tmp_path, "a.csv", cell(value))
    elif case == "no patient id":
        a = _edited(embeddings, tmp_path, "a.csv", cell(None, "patient_id"))
    elif case == "patient twice":
        a = _edited(embeddings, tmp_path, "a.csv", cell("q0", "patient_id"))
    elif case == "other patient ids":
        a = _edited(embeddings, tmp_path, "a.csv",
                    lambda f: f.__setitem__("patient_id", "z" + f["patient_id"]))
    elif case == "outcome as text":
        outcomes = _edited(embeddings, tmp_path, "y.csv", cell("yes", "outcome"))
    elif case == "outcome repeated":
        outcomes = _edited(embeddings, tmp_path, "y.csv", cell("q0", "patient_id"))
    elif case == "hidden width":
        extra = ["--hidden-size", "100000"]
    else:  # a gate of (2 x 8192)^2 weights
        extra = ["--modality", f"b={embeddings / 'b.csv'}", "--hidden-size", "8192"]
    result = pmt("fusion", "train", "--modality", f"a={a}", *extra, "--outcomes", outcomes,
                 "-o", tmp_path / "m.safetensors", "--epochs", 1)
    _refused(result, tmp_path, needle)


def test_fusion_train_refuses_a_leftover_interrupted_run_without_resume(pmt, embeddings,
                                                                        tmp_path):
    from pmtoolkit.core.io import work_dir

    work_dir(tmp_path / "m.safetensors.work", {"earlier": "run"})
    args = ["fusion", "train", "--modality", f"a={embeddings / 'a.csv'}", "--outcomes",
            embeddings / "y.csv", "-o", tmp_path / "m.safetensors", "--epochs", 1,
            "--device", "cpu"]
    result = pmt(*args)
    assert result.exit_code == 2 and "holds an interrupted run" in result.stderr
    result = pmt(*args, "--resume")  # other settings than the interrupted run's
    assert result.exit_code == 2 and "started with other settings" in result.stderr
    assert not (tmp_path / "m.safetensors").exists()
    result = pmt(*args, "--overwrite")  # starts over; the finished model replaces the work
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


@pytest.mark.parametrize("case, needle", [
    ("output is an input", "is also the a table"),
    ("repeated modality", "'a' is given twice"),
    ("features of another encoder", "1 feature columns, the model's a embeddings have 2"),
])
def test_fusion_predict_refuses(pmt, embeddings, tmp_path, case, needle):
    a = tmp_path / "pred_a.csv"
    a.write_bytes((embeddings / ("b.csv" if "encoder" in case else "a.csv")).read_bytes())
    out = a if case == "output is an input" else tmp_path / "pred.csv"
    extra = ["--modality", f"a={embeddings / 'a.csv'}"] if case == "repeated modality" else []
    result = pmt("fusion", "predict", "-m", embeddings / "model.safetensors", "--modality",
                 f"a={a}", *extra, "-o", out, "--overwrite")
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and "Traceback" not in result.output
    assert a.read_bytes() == (embeddings / ("b.csv" if "encoder" in case else "a.csv")
                              ).read_bytes()
    assert not (tmp_path / "pred.csv").exists()


@pytest.mark.parametrize("args, needle", [
    (["simulate", "-o", "{tmp}/out", "--weight", "ehr=1", "--weight", "ehr=2"], "given twice"),
    (["simulate", "-o", "{tmp}/out", "--missing", "imaging=0.1", "--missing", "imaging=0.2"],
     "given twice"),
    (["simulate", "-o", "{tmp}/out", "--weight", "ehr=nan"], "a number in [-100, 100]"),
    (["simulate", "-o", "{tmp}/out", "--weight", "ehr=1e300"], "a number in [-100, 100]"),
    (["simulate", "-o", "{tmp}/out", "--missing", "ehr=nan"], "a share in [0, 1)"),
    (["simulate", "-o", "{tmp}/out", "--patients", "1000000000"], "--patients"),
    (["simulate", "-o", "{tmp}/out", "--interaction", "1e9"], "--interaction"),
    (["simulate", "-o", "{tmp}/out", "--seed", "-1"], "--seed"),
    (["run", "-i", "{tmp}", "-o", "{tmp}/out", "--epochs", "0"], "--epochs"),
    (["run", "-i", "{tmp}", "-o", "{tmp}/out", "--hidden-size", "2048"], "--hidden-size"),
    (["run", "-i", "{tmp}", "-o", "{tmp}/out", "--weight-decay", "1e9"], "--weight-decay"),
])
def test_fusion_simulate_and_run_refuse_bad_numbers(pmt, tmp_path, args, needle):
    result = pmt("fusion", *[a.format(tmp=tmp_path) for a in args])
    _refused(result, tmp_path, needle)


def test_fusion_run_refuses_a_cohort_with_text_outcomes(pmt, tmp_path):
    pd.DataFrame({"patient_id": ["a", "b"], "outcome": ["0", "maybe"]}).to_csv(
        tmp_path / "outcomes.csv", index=False)
    _refused(pmt("fusion", "run", "-i", tmp_path, "-o", tmp_path / "out", "--epochs", 1), tmp_path,
             "line 3", "outcome 'maybe'")


# --------------------------------------------------------------------------- pmt response

@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """8 samples x 5 drugs, every pair measured, and a features table."""
    folder = tmp_path_factory.mktemp("panel")
    rng = np.random.default_rng(1)
    samples, drugs = [f"s{i}" for i in range(8)], [f"d{j}" for j in range(5)]
    pd.DataFrame({"drug_id": drugs, "smiles": ["CCO", "c1ccccc1O", "CC(=O)O", "CCN",
                                               "c1ccncc1"]}).to_csv(folder / "drugs.csv",
                                                                    index=False)
    pd.DataFrame([(s, d, float(rng.normal())) for s in samples for d in drugs],
                 columns=["sample_id", "drug_id", "response"]).to_csv(
        folder / "responses.csv", index=False)
    features = pd.DataFrame(rng.normal(size=(8, 6)), columns=[f"g{k}" for k in range(6)])
    features.insert(0, "sample_id", samples)
    features.to_csv(folder / "features.csv", index=False)
    return folder


TINY = ["--sample-hidden", "8", "--drug-hidden", "8", "--head", "8", "--fingerprint-bits",
        "64", "--epochs", "1", "--device", "cpu"]


@pytest.mark.parametrize("case, needle", [
    ("infinite feature", "sample 's2' has a missing, infinite or out-of-range value"),
    ("feature beyond float32", "out-of-range value of feature 'g3'"),
    ("infinite response", "line 6: no finite number in 'response'"),
    ("responses overflowing", "not all finite numbers"),
    ("truncated responses", "truncated"),
    ("binary drugs table", "not UTF-8"),
    ("h5ad that is not HDF5", "features.h5ad"),
    ("sizes above 1", "--sizes"),
    ("split seed below 0", "--split-seed"),
    ("network too large", "parameters, more than"),
])
def test_response_train_refuses(pmt, panel, tmp_path, case, needle):
    files = {"-i": panel / "responses.csv", "-d": panel / "drugs.csv",
             "--features": panel / "features.csv"}
    extra = []
    if case in ("infinite feature", "feature beyond float32"):
        frame = pd.read_csv(panel / "features.csv")
        frame.loc[2, "g3"] = np.inf if case == "infinite feature" else 1e300
        files["--features"] = tmp_path / "features.csv"
        frame.to_csv(files["--features"], index=False)
    elif case in ("infinite response", "responses overflowing"):
        frame = pd.read_csv(panel / "responses.csv")
        if case == "infinite response":
            frame.loc[4, "response"] = np.inf
        else:  # finite, but their spread is not
            frame["response"] = np.where(frame.index % 2, 1e300, -1e300)
        files["-i"] = tmp_path / "responses.csv"
        frame.to_csv(files["-i"], index=False)
    elif case == "truncated responses":
        files["-i"] = truncated_gz(tmp_path / "r.csv.gz",
                                    (panel / "responses.csv").read_text() * 20)
    elif case == "binary drugs table":
        files["-d"] = binary(tmp_path / "drugs.csv")
    elif case == "h5ad that is not HDF5":
        files["--features"] = tmp_path / "features.h5ad"
        files["--features"].write_bytes(b"not an HDF5 file" * 64)
    elif case == "sizes above 1":
        extra = ["--sizes", "2", "0", "0"]
    elif case == "network too large":  # a head of six 8192 x 8192 layers
        extra = [x for _ in range(6) for x in ("--head", "8192")]
    else:
        extra = ["--split-seed", "-1"]
    args = [x for k, v in files.items() for x in (k, v)]
    _refused(pmt("response", "train", *args, "-o", tmp_path / "run", *TINY, *extra),
             tmp_path, needle)


@pytest.mark.parametrize("args, needle", [
    (["--samples", "20000", "--genes", "100000"], "samples x genes must be at most"),
    (["--module-strength", "100"], "--module-strength"),
])
def test_response_simulate_refuses_absurd_sizes(pmt, tmp_path, args, needle):
    _refused(pmt("response", "simulate", "-o", tmp_path / "out", *args), tmp_path, needle)


# --------------------------------------------------------------------------- stop and resume

def test_ehr_training_stopped_by_sigterm_resumes(pmt, ehr, tmp_path):
    out = tmp_path / "run"
    data = _dataset(ehr, tmp_path, ehr["samples"][0], "data.jsonl")
    args = ["ehr", "train", "-i", data, "-o", out, "--architecture", "logistic", "--epochs", 60,
            "--patience", 0, "--device", "cpu"]
    proc = start_pmt(args, tmp_path)
    wait_for(out / "work" / "last.ckpt", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "pmt: error: interrupted"
    assert sorted(p.name for p in out.iterdir()) == ["work"]  # the checkpoint, nothing else
    assert not [p for p in tmp_path.rglob("*") if ".pmt-tmp" in p.name]

    result = pmt(*args)  # without --resume: refused, nothing touched
    assert result.exit_code == 2 and "holds an interrupted run" in result.stderr
    result = pmt(*args[:-6], "--epochs", 61, *args[-4:], "--resume")
    assert result.exit_code == 2 and "started with other settings" in result.stderr

    result = pmt(*args, "--resume")
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.stderr
    with open(out / "training" / "history.csv") as fh:
        epochs = [int(r["epoch"]) for r in csv.DictReader(fh)]
    assert epochs == list(range(60))  # the epochs before the stop are kept, none twice
    assert (out / "model.safetensors").is_file() and not (out / "work").exists()


# --------------------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(10**30), 10**30)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)


@FUZZ
@given(field=st.sampled_from(["patient_id", "index_time", "label", "visits", "days_before",
                              "age", "sex", "targets", "split", "format", None]),
       value=json_values, damage=st.data())
def test_ehr_predict_on_hostile_datasets(pmt, ehr, field, value, damage):
    lines = [json.loads(x) for x in [ehr["header"], *ehr["samples"][:5]]]
    if field == "format":
        lines[0]["format"] = value
    elif field is not None:
        lines[1][field] = value
    text = "\n".join(json.dumps(x) for x in lines) + "\n"
    data = damage.draw(S.corrupt(text.encode()))
    fuzz_run(pmt, ["ehr", "predict", "-i", "{dir}/d.jsonl", "-m", ehr["model"], "-o",
                  "{dir}/out.csv"], {"d.jsonl": data}, "out.csv")


@FUZZ
@given(events=S.table(("patient_id", "time", "code", "system", "visit_id"),
                      {"time": st.sampled_from(["2020-01-01", "2021-06-30T10:00:00Z",
                                                "20200131", "45"]),
                       "patient_id": st.sampled_from(["p1", "p2"])}),
       patients=S.table(("patient_id", "birth_date", "death_date", "sex"),
                        {"patient_id": st.sampled_from(["p1", "p2"]),
                         "birth_date": st.sampled_from(["1950-01-01", ""]),
                         "death_date": st.sampled_from(["2020-06-01", ""])}))
def test_ehr_build_on_hostile_event_tables(pmt, events, patients):
    fuzz_run(pmt, ["ehr", "build", "-i", "{dir}/ev.csv", "--patients", "{dir}/pt.csv", "-o",
                  "{dir}/out.jsonl", "--min-visits", "1", "--min-age", "0"],
            {"ev.csv": events, "pt.csv": patients}, "out.jsonl")


@FUZZ
@given(table=S.table(("patient_id", "e0", "e1"), {"patient_id": st.sampled_from(
    [f"q{i}" for i in range(40)])}))
def test_fusion_predict_on_hostile_embedding_tables(pmt, embeddings, table):
    fuzz_run(pmt, ["fusion", "predict", "-m", embeddings / "model.safetensors", "--modality",
                  "a={dir}/a.csv", "-o", "{dir}/out.csv"], {"a.csv": table}, "out.csv")


@FUZZ
@given(features=S.table(("sample_id", "g0", "g1"), {"sample_id": st.sampled_from(
    [f"s{i}" for i in range(8)])}))
def test_response_train_on_hostile_feature_tables(pmt, panel, features):
    fuzz_run(pmt, ["response", "train", "-i", panel / "responses.csv", "-d",
                  panel / "drugs.csv", "--features", "{dir}/f.csv", "-o", "{dir}/out", *TINY,
                  "--baselines", "none"], {"f.csv": features}, "out")


@pytest.mark.slow
def test_fusion_experiment_stopped_by_sigterm_resumes_every_network(pmt, tmp_path):
    """pmt fusion run -i trains four encoders and the fusion heads; stopped after the first
    encoders' checkpoints, --resume continues those and trains the rest."""
    assert pmt("fusion", "simulate", "-o", tmp_path / "cohort", "--patients", 200, "--seed",
               1).exit_code == 0
    out = tmp_path / "run"
    args = ["fusion", "run", "-i", tmp_path / "cohort", "-o", out, "--epochs", 6, "--fusion",
            "gated"]
    proc = start_pmt(args, tmp_path)
    end = time.monotonic() + 300
    while not (out / "work" / "expression" / "last.ckpt").exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"no expression checkpoint: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert sorted(p.name for p in out.iterdir()) == ["work"]
    result = pmt(*args, "--resume")
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.stderr and (out / "models" / "gated.safetensors").is_file()
    assert not (out / "work").exists()
