"""What the EHR readers refuse (issue 23): dataset lines that are not samples, event and
patients tables with values that are not what the schema says, column mappings that cannot
be right; and where a training run keeps its resume checkpoint."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError, ConfigError
from pmtoolkit.ehr.events import read_event_table, read_synthea
from pmtoolkit.ehr.tasks import Sample

GOOD = {"patient_id": "p1", "index_time": "2020-01-01 00:00:00", "label": 1,
        "visits": [["A:1", "B:2"], ["A:3"]], "days_before": [40.0, 0.0], "age": 61.5,
        "sex": "F", "split": "train"}


def test_a_sample_reads_back_what_to_dict_wrote():
    s = Sample.from_dict(GOOD)
    assert Sample.from_dict(s.to_dict()) == s
    assert s.index_time == pd.Timestamp("2020-01-01") and s.days_before == [40.0, 0.0]


@pytest.mark.parametrize("change, message", [
    ({"days_before": [40.0]}, "2 visits but 1 'days_before' values"),
    ({"days_before": [0.0, 40.0]}, "must not increase"),
    ({"days_before": [40.0, -1.0]}, "not negative"),
    ({"days_before": [float("nan"), 0.0]}, "list of numbers"),
    ({"days_before": [True, 0.0]}, "list of numbers"),
    ({"days_before": [10 ** 400, 0]}, "list of numbers"),
    ({"visits": []}, "non-empty list"),
    ({"visits": "A:1"}, "not a JSON string"),
    ({"visits": [["A:1"], [1]]}, "visit 1 must be a list of code strings"),
    ({"label": True}, "'label' must be 0 or 1"),
    ({"label": 2}, "'label' must be 0 or 1"),
    ({"label": "1"}, "'label' must be 0 or 1"),
    ({"index_time": 20200101}, "not a date and time"),
    ({"index_time": "yesterday"}, "not a date and time"),
    ({"patient_id": ""}, "'patient_id' must be a non-empty string"),
    ({"patient_id": ["p1"]}, "not a JSON list"),
    ({"age": "sixty"}, "'age' must be a number"),
    ({"sex": 1}, "'sex' must be a string"),
    ({"targets": "A:1"}, "'targets' must be a list"),
])
def test_a_sample_with_a_wrong_field_is_refused_saying_which(change, message):
    with pytest.raises(ValueError, match=None) as err:
        Sample.from_dict({**GOOD, **change})
    assert message in str(err.value)


@pytest.mark.parametrize("value, kind", [([1], "a JSON list"), ("x", "a JSON string"),
                                         (None, "null"), (3, "a number")])
def test_a_line_that_is_not_an_object_is_refused(value, kind):
    with pytest.raises(ValueError, match=f"expected a JSON object, found {kind}"):
        Sample.from_dict(value)


def _header(**task):
    return json.dumps({"format": "pmtoolkit-ehr-dataset/1", "task": task})


def test_load_dataset_keeps_valid_samples_and_lists_the_rest_with_line_numbers(tmp_path):
    from pmtoolkit.ehr.run import load_dataset, read_dataset

    lines = [_header(max_visits=2), json.dumps(GOOD), "", "[1, 2]",
             json.dumps({**GOOD, "split": "elsewhere"}),
             json.dumps({**GOOD, "visits": [["A:1"]] * 3, "days_before": [3.0, 2.0, 1.0]}),
             json.dumps({**GOOD, "split": "test", "patient_id": "p2"}), "{not json"]
    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    data = load_dataset(path)
    assert [s.patient_id for s in data.samples] == ["p1", "p2"]
    assert data.parts == ["train", "test"]
    assert [(r.line, r.reason) for r in data.rejects] == [
        (4, "expected a JSON object, found a JSON list"),
        (5, "'split' must be one of train, valid, test, not 'elsewhere'"),
        (6, "3 visits, more than the task's max_visits 2"), (8, "not JSON")]
    assert [s.patient_id for s in load_dataset(path, split="test").samples] == ["p2"]
    with pytest.raises(BadInputError, match="line 4: expected a JSON object.* and 3 more"):
        read_dataset(path)


@pytest.mark.parametrize("first, error", [
    ("", "not a pmtoolkit EHR dataset"),
    ("[1]", "not a pmtoolkit EHR dataset"),
    (json.dumps({"format": "pmtoolkit-ehr-dataset/1", "task": ["x"]}), "not JSON objects"),
    (json.dumps({"format": "pmtoolkit-ehr-dataset/1", "task": {"max_visits": 0}}),
     "max-visits"),
    (json.dumps({"format": "pmtoolkit-ehr-dataset/1", "task": {"horizon": 3}}), "horizon"),
])
def test_a_dataset_header_is_checked_like_a_config_file(tmp_path, first, error):
    from pmtoolkit.ehr.run import load_dataset

    (tmp_path / "d.jsonl").write_text(first + "\n" + json.dumps(GOOD) + "\n")
    with pytest.raises((BadInputError, ConfigError), match=error):
        load_dataset(tmp_path / "d.jsonl")


def test_build_refuses_an_output_that_is_not_json_lines(tmp_path):
    from pmtoolkit.ehr.config import TaskConfig
    from pmtoolkit.ehr.run import build

    with pytest.raises(BadInputError, match="name it .jsonl or .jsonl.gz"):
        build(tmp_path / "missing", tmp_path / "ds.csv", TaskConfig())


def test_explain_file_names_never_leave_the_output_folder():
    from pmtoolkit.ehr.run import _file_part

    assert _file_part("../../etc/passwd") == "_.._etc_passwd"
    assert _file_part("..") == "patient" and _file_part("p-001.a") == "p-001.a"
    assert "/" not in _file_part("a/" * 100) and len(_file_part("x" * 100)) == 40


# ----------------------------------------------------------------------------- event tables

def _events(tmp_path, **columns):
    frame = pd.DataFrame({"patient_id": ["p1", "p1", "p2"],
                          "time": ["2020-01-01", "2020-02-01", "2020-03-01"],
                          "code": ["1", "2", "3"], "system": ["S", "S", "S"], **columns})
    frame.to_csv(tmp_path / "ev.csv", index=False)
    return tmp_path / "ev.csv"


def test_numbers_as_times_are_rejects_not_nanoseconds_since_1970(tmp_path):
    frame = pd.DataFrame({"patient_id": ["p1", "p1"], "time": [20200131, 45], "code": ["1", "2"],
                          "system": ["S", "S"]})
    frame.to_parquet(tmp_path / "ev.parquet")
    table = read_event_table(tmp_path / "ev.parquet")
    assert table.events["time"].tolist() == [pd.Timestamp("2020-01-31")]
    assert [r.reason for r in table.rejects] == ["missing or unreadable time: ev.parquet"]


def test_an_event_without_a_code_system_is_a_reject(tmp_path):
    table = read_event_table(_events(tmp_path, system=["S", None, "S"]))
    assert len(table.events) == 2
    assert [(r.line, r.reason) for r in table.rejects] == [(3, "no code system: ev.csv")]


def test_patients_with_unreadable_dates_or_listed_twice_are_rejects(tmp_path):
    pd.DataFrame({"patient_id": ["p1", "p2", "p3", "p3"],
                  "birth_date": ["1950-01-01", "45", "1960-01-01", "1960-01-01"],
                  "death_date": ["soon", "", "", "2021-01-01"], "sex": ["F", "M", "F", "F"]}
                 ).to_csv(tmp_path / "pt.csv", index=False)
    table = read_event_table(_events(tmp_path), patients=tmp_path / "pt.csv")
    assert table.patients.empty and table.events.empty
    reasons = {(r.item, r.line): r.reason for r in table.rejects if r.line is not None}
    assert reasons == {("p1", 2): "unreadable death_date 'soon': pt.csv",
                       ("p2", 3): "unreadable birth_date '45': pt.csv",
                       ("p3", 4): "patient id on several lines: pt.csv",
                       ("p3", 5): "patient id on several lines: pt.csv"}


@pytest.mark.parametrize("columns, patients, message", [
    ({"years": "age"}, False, "'years' is not a schema column"),
    ({"value": "lab"}, False, "has no column 'lab' (--column value=lab)"),
    ({"code": "system"}, False, "two columns would be the 'code' column"),
    ({"birth_date": "dob"}, False, "give the patients table with --patients"),
    ({"birth_date": "dob"}, True, "has no column 'dob'"),
])
def test_column_mappings_that_cannot_be_right_are_refused(tmp_path, columns, patients,
                                                          message):
    pd.DataFrame({"patient_id": ["p1", "p2"]}).to_csv(tmp_path / "pt.csv", index=False)
    with pytest.raises(BadInputError) as err:
        read_event_table(_events(tmp_path), columns=columns,
                         patients=tmp_path / "pt.csv" if patients else None)
    assert message in str(err.value)


def test_a_mapping_of_patient_id_serves_both_tables(tmp_path):
    ev = _events(tmp_path)
    pd.read_csv(ev).rename(columns={"patient_id": "subject"}).to_csv(ev, index=False)
    pd.DataFrame({"patient_id": ["p1", "p2"], "birth_date": ["1950-01-01", "1960-01-01"]}
                 ).to_csv(tmp_path / "pt.csv", index=False)
    table = read_event_table(ev, columns={"patient_id": "subject"}, patients=tmp_path / "pt.csv")
    assert len(table.events) == 3 and not table.rejects


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(gzip.compress(p.read_bytes())[:40]), "truncated"),
    (lambda p: p.write_bytes(bytes(range(256)) * 8), "not UTF-8"),
])
def test_a_damaged_synthea_table_is_one_line_naming_it(tmp_path, damage, message):
    pd.DataFrame({"Id": ["p1"], "BIRTHDATE": ["1950-01-01"]}).to_csv(tmp_path / "patients.csv",
                                                                    index=False)
    cond = tmp_path / "conditions.csv.gz"
    cond.write_text("START,PATIENT,CODE\n2020-01-01,p1,1\n" * 50)
    damage(cond)
    with pytest.raises(BadInputError, match=f"conditions.csv.gz.*{message}"):
        read_synthea(tmp_path)


# ----------------------------------------------------------------------------- training

def _samples(n=40):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        label = i % 2
        visits = [[f"C:{rng.integers(5)}"], [f"C:{5 + label}"]]
        out.append(Sample(f"p{i}", pd.Timestamp("2020-01-01"), label, visits, [30.0, 0.0]))
    return out


@pytest.mark.parametrize("samples, config, message", [
    ([], {}, "no training samples"),
    (_samples()[::2], {}, "every training sample has label 0"),
    (_samples(), {"arch": "transformer", "hidden_dim": 10, "heads": 4}, "not divisible"),
    (_samples(), {"epochs": 0}, "epochs"),
    (_samples(), {"dropout": float("nan")}, "not a finite number"),
    (_samples(), {"arch": "lstm", "hidden_dim": 8192, "embedding_dim": 8192, "layers": 64},
     "parameters, more than 200,000,000"),
])
def test_check_training_refuses_before_anything_is_written(samples, config, message):
    from pmtoolkit.ehr.config import RiskModelConfig
    from pmtoolkit.ehr.models import check_training

    with pytest.raises(BadInputError, match=message):
        check_training(samples, RiskModelConfig(**config))


def test_training_keeps_its_resume_checkpoint_where_it_is_told(tmp_path):
    from pmtoolkit.ehr.config import RiskModelConfig
    from pmtoolkit.ehr.models import fit_risk_model

    config = RiskModelConfig(arch="logistic", epochs=6, patience=0, device="cpu")
    samples = _samples()
    fit_risk_model(samples[:30], samples[30:], config, workdir=tmp_path / "logs",
                   checkpoints=tmp_path / "work")
    assert (tmp_path / "work" / "last.ckpt").is_file()
    assert (tmp_path / "logs" / "history.csv").is_file()
    assert not list((tmp_path / "logs").rglob("*.ckpt"))
    model = fit_risk_model(samples[:30], samples[30:], config, workdir=tmp_path / "logs2",
                           checkpoints=tmp_path / "work", resume=True)  # finished: no epochs
    assert model.metadata["metrics"]["epochs_run"] == 6
    # the history comes back from the checkpoint: every epoch once
    assert pd.read_csv(tmp_path / "logs2" / "history.csv")["epoch"].tolist() == list(range(6))
