"""Hospital record layouts (MIMIC-III, MIMIC-IV, eICU, OMOP) -> events, visits and rejects;
admission tasks built on them without look-ahead. Tiny fixtures written from each layout's
published schema, and the MIMIC-III and eICU demo files of ../shared/data."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.ehr.config import TaskConfig
from pmtoolkit.ehr.importers import (
    detect_layout,
    read_eicu,
    read_mimic3,
    read_mimic4,
    read_omop,
)
from pmtoolkit.ehr.tasks import build_samples, patient_split


def _write(path: Path, rows: list[tuple], columns: list[str]) -> Path:
    frame = pd.DataFrame(rows, columns=columns)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", newline="") as fh:
            frame.to_csv(fh, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _mimic3(folder: Path) -> Path:
    """Upper-case file and column names as full MIMIC-III has them. P1: three admissions
    (A1 11 days, A2 13 days after A1's discharge, A3 a year later ending in death); P2: one
    short stay, one discharged before admitted (a reject), one with an unreadable admission
    time (a reject), one before her birth (a reject); P3 over 89 (birth moved 300 years back); P9 is not in PATIENTS."""
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "PATIENTS.csv", [
        (1, "P1", "M", "2100-01-01 00:00:00", "2150-03-10 00:00:00", 1),
        (2, "P2", "F", "2080-05-05 00:00:00", None, 0),
        (3, "P3", "F", "1850-01-01 00:00:00", None, 0)],
        ["ROW_ID", "SUBJECT_ID", "GENDER", "DOB", "DOD", "EXPIRE_FLAG"])
    _write(folder / "ADMISSIONS.csv.gz", [
        (1, "P1", "A1", "2149-01-01 10:00:00", "2149-01-12 12:00:00", None, 0),
        (2, "P1", "A2", "2149-01-25 08:00:00", "2149-02-01 09:00:00", None, 0),
        (3, "P1", "A3", "2150-03-01 08:00:00", "2150-03-10 05:00:00", "2150-03-10 05:00:00", 1),
        (4, "P2", "B1", "2130-06-01 08:00:00", "2130-06-04 08:00:00", None, 0),
        (5, "P2", "B2", "2131-06-05 08:00:00", "2131-06-04 08:00:00", None, 0),
        (6, "P3", "C1", "2150-01-01 08:00:00", "2150-01-05 08:00:00", None, 0),
        (7, "P9", "D1", "2150-01-01 08:00:00", "2150-01-05 08:00:00", None, 0),
        (8, "P2", "E1", "not a date", "2132-01-05 08:00:00", None, 0),
        (9, "P2", "F1", "2070-01-01 08:00:00", "2070-01-03 08:00:00", None, 0)],
        ["ROW_ID", "SUBJECT_ID", "HADM_ID", "ADMITTIME", "DISCHTIME", "DEATHTIME",
         "HOSPITAL_EXPIRE_FLAG"])
    _write(folder / "DIAGNOSES_ICD.csv", [
        (1, "P1", "A1", 1, "0389"), (2, "P1", "A1", 2, "4019"), (3, "P1", "A2", 1, "4280"),
        (4, "P1", "A3", 1, "99591"), (5, "P2", "B1", 1, "V5861"), (6, "P3", "C1", 1, "486"),
        (7, "P2", "B2", 1, "4019"), (8, "P1", "A1", 3, None)],
        ["ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"])
    _write(folder / "PROCEDURES_ICD.csv", [(1, "P1", "A1", 1, "3893")],
           ["ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"])
    _write(folder / "PRESCRIPTIONS.csv", [
        (1, "P1", "A1", "2149-01-02 00:00:00", "Heparin", "00006494300"),
        (2, "P1", "A1", "2149-01-02 00:00:00", "Flush", "0"),
        (3, "P1", "A1", "2149-01-12 00:00:00", "Furosemide", "00054829725"),
        (4, "P1", "A2", "2149-01-25 00:00:00", "Metoprolol", "51079080120"),
        (5, "P1", "A2", "2149-01-29 00:00:00", "Digoxin", "00115981101"),
        (6, "P2", "B1", "2130-06-01 00:00:00", "Insulin", "00002831501"),
        (7, "P3", "C1", "2150-01-01 00:00:00", "Aspirin", "63739043201")],
        ["ROW_ID", "SUBJECT_ID", "HADM_ID", "STARTDATE", "DRUG", "NDC"])
    _write(folder / "ICUSTAYS.csv", [
        (1, "P1", "A1", "I1", "2149-01-01 11:00:00", "MICU")],
        ["ROW_ID", "SUBJECT_ID", "HADM_ID", "ICUSTAY_ID", "INTIME", "FIRST_CAREUNIT"])
    return folder


def test_mimic3_events_visits_vocabularies_and_rejects(tmp_path):
    table = read_mimic3(_mimic3(tmp_path / "m3"))
    v = table.visits.set_index("visit_id")
    assert list(v.index) == ["A1", "A2", "A3", "B1", "C1"]
    assert v["died"].tolist() == [False, False, True, False, False]
    ev = table.events
    assert set(zip(ev["table"], ev["system"])) == {
        ("conditions", "ICD9CM"), ("procedures", "ICD9PROC"), ("drugs", "NDC"),
        ("icustays", "MIMIC3-careunit")}
    assert "0389" in set(ev["code"])  # leading zeros kept: codes are read as text
    # a diagnosis has no time of its own: known at its admission's discharge
    dx = ev[(ev["table"] == "conditions") & (ev["visit_id"] == "A1")]
    assert (dx["time"] == pd.Timestamp("2149-01-12 12:00")).all()
    # a prescription date is known at the end of its day, and never after its discharge
    rx = ev[ev["table"] == "drugs"].set_index("code")["time"]
    assert rx["00006494300"] == pd.Timestamp("2149-01-02 23:59:59")
    assert rx["00054829725"] == pd.Timestamp("2149-01-12 12:00")
    reasons = {(r.file, r.line): r.reason for r in table.rejects}
    assert reasons[("ADMISSIONS.csv.gz", 6)] == "admission ends before it starts"
    assert reasons[("ADMISSIONS.csv.gz", 8)].startswith("patient not in the patients table")
    assert reasons[("ADMISSIONS.csv.gz", 9)] == "missing or unreadable admission start"
    assert reasons[("ADMISSIONS.csv.gz", 10)] == "admission before the patient's birth"
    assert reasons[("DIAGNOSES_ICD.csv", 8)].startswith("visit not in the visits table")
    assert reasons[("DIAGNOSES_ICD.csv", 9)] == "no code"
    assert reasons[("PRESCRIPTIONS.csv", 3)] == "no NDC (empty or 0)"
    assert len(table.rejects) == 7
    s = table.summary()
    assert (s["patients"], s["visits"], s["events"]) == (3, 5, 14)


def test_admission_tasks_labels_and_no_look_ahead(tmp_path):
    table = read_mimic3(_mimic3(tmp_path / "m3"))

    def samples(kind, **kw):
        built = build_samples(table, TaskConfig(kind=kind, index="each_visit", **kw))
        return {(s.patient_id, str(s.index_time)): s for s in built.samples}, built

    mort, built = samples("in_hospital_mortality")
    assert {k: s.label for k, s in mort.items()} == {
        ("P1", "2149-01-03 10:00:00"): 0, ("P1", "2149-01-27 08:00:00"): 0,
        ("P1", "2150-03-03 08:00:00"): 1, ("P2", "2130-06-03 08:00:00"): 0,
        ("P3", "2150-01-03 08:00:00"): 0}
    # 48 h into A2: A1's codes (known at its discharge) and A2's first drug, never A2's
    # diagnosis (coded at discharge) nor its drug of 29 January
    a2 = mort[("P1", "2149-01-27 08:00:00")]
    assert a2.visits == [["MIMIC3-careunit:MICU", "NDC:00006494300", "ICD9CM:0389",
                          "ICD9CM:4019", "ICD9PROC:3893", "NDC:00054829725"],
                         ["NDC:51079080120"]]
    assert mort[("P3", "2150-01-03 08:00:00")].age is None  # MIMIC's 300-year shift
    assert round(a2.age, 1) == 49.1
    los, _ = samples("length_of_stay")
    assert [s.label for s in los.values()] == [1, 0, 1, 0, 0]  # 11, 7.0, 8.9, 3, 4 days
    read, built = samples("readmission")
    assert {k: s.label for k, s in read.items()} == {
        ("P1", "2149-01-12 12:00:00"): 1, ("P1", "2149-02-01 09:00:00"): 0}
    assert built.excluded["admissions ending in death (no next admission)"] == 1
    assert built.excluded["last admissions (no next admission to label them)"] == 2
    # at discharge, the admission's own diagnoses are history
    assert "ICD9CM:4280" in read[("P1", "2149-02-01 09:00:00")].visits[-1]
    # a visit longer than max_codes_per_visit keeps its latest codes: the discharge diagnosis
    cut, _ = samples("readmission", max_codes_per_visit=2)
    assert cut[("P1", "2149-02-01 09:00:00")].visits[-1] == ["NDC:00115981101", "ICD9CM:4280"]
    dx, _ = samples("next_visit")  # Doctor AI's: the next admission's diagnoses
    assert {k: s.targets for k, s in dx.items()} == {("P1", "2149-01-12 12:00:00"):
                                                     ["ICD9CM:4280"]}
    nxt, _ = samples("next_admission_mortality")
    assert [s.label for s in nxt.values()] == [0, 1]
    longer, _ = samples("readmission", readmission_days=400)
    assert [s.label for s in longer.values()] == [1, 1]
    late, _ = samples("in_hospital_mortality", observation_hours=24 * 5)
    assert ("P2", "2130-06-06 08:00:00") not in late  # B1 lasted 3 days: ended, excluded
    with pytest.raises(BadInputError, match="needs admissions"):
        from pmtoolkit.ehr.events import EventTable

        build_samples(EventTable(table.events, table.patients),
                      TaskConfig(kind="readmission"))


def test_chunked_reading_gives_the_same_table(tmp_path, monkeypatch):
    """Tables read two rows at a time: the same events, visits and rejects (lines too)."""
    from pmtoolkit.ehr import importers

    folder = _mimic3(tmp_path / "m3")
    whole = read_mimic3(folder)
    monkeypatch.setattr(importers, "CHUNK_ROWS", 2)
    chunked = read_mimic3(folder)
    pd.testing.assert_frame_equal(chunked.events, whole.events)
    pd.testing.assert_frame_equal(chunked.visits, whole.visits)
    assert chunked.rejects.items == whole.rejects.items


def _mimic4(folder: Path) -> Path:
    hosp = folder / "hosp"
    hosp.mkdir(parents=True)
    _write(hosp / "patients.csv.gz", [
        ("10000032", "F", "52", "2180", "2019 - 2021", "2180-09-09"),
        ("10000084", "M", "72", "2160", "2017 - 2019", None)],
        ["subject_id", "gender", "anchor_age", "anchor_year", "anchor_year_group", "dod"])
    _write(hosp / "admissions.csv.gz", [
        ("10000032", "22595853", "2180-05-06 22:23:00", "2180-05-07 17:15:00", None, "0"),
        ("10000032", "22841357", "2180-06-26 18:27:00", "2180-06-27 18:49:00", None, "0"),
        ("10000084", "23052089", "2160-11-21 01:56:00", "2160-11-25 14:52:00", None, "0")],
        ["subject_id", "hadm_id", "admittime", "dischtime", "deathtime",
         "hospital_expire_flag"])
    _write(hosp / "diagnoses_icd.csv.gz", [
        ("10000032", "22595853", "1", "5723", "9"), ("10000032", "22841357", "1", "K766", "10"),
        ("10000084", "23052089", "1", "G3183", "10"), ("10000084", "23052089", "2", "X1", "11")],
        ["subject_id", "hadm_id", "seq_num", "icd_code", "icd_version"])
    _write(hosp / "procedures_icd.csv.gz", [
        ("10000032", "22595853", "1", "2180-05-07", "5491", "9"),
        ("10000084", "23052089", "1", "2160-11-22", "0QS734Z", "10")],
        ["subject_id", "hadm_id", "seq_num", "chartdate", "icd_code", "icd_version"])
    _write(hosp / "prescriptions.csv.gz", [
        ("10000032", "22595853", "2180-05-07 00:00:00", "Furosemide", "00054829725"),
        ("10000084", "23052089", "2160-11-21 08:00:00", "Donepezil", "")],
        ["subject_id", "hadm_id", "starttime", "drug", "ndc"])
    return folder


def test_mimic4_icd_versions_and_anchor_births(tmp_path):
    folder = _mimic4(tmp_path / "m4")
    assert detect_layout(folder) == "mimic4"
    table = read_mimic4(folder)
    systems = dict(zip(table.events["code"], table.events["system"]))
    assert systems["5723"] == "ICD9CM" and systems["K766"] == "ICD10CM"
    assert systems["5491"] == "ICD9PROC" and systems["0QS734Z"] == "ICD10PCS"
    reasons = sorted(r.reason for r in table.rejects)
    assert reasons == ["no NDC (empty or 0)", "unknown code vocabulary"]
    births = table.patients.set_index("patient_id")["birth_date"]
    assert births["10000032"] == pd.Timestamp("2128-01-01")
    assert table.patients.set_index("patient_id").at["10000032", "death_date"] == \
        pd.Timestamp("2180-09-09")
    read = build_samples(table, TaskConfig(kind="readmission", index="each_visit"))
    assert [s.label for s in read.samples] == [0]  # 50 days later: not within 30


def _eicu(folder: Path) -> Path:
    """u1 has two unit stays in one hospital stay (h1, 2015) and a second hospital stay in
    2015 (h2); u2 has one stay, expired in hospital."""
    folder.mkdir(parents=True)
    cols = ["patientunitstayid", "patienthealthsystemstayid", "uniquepid", "gender", "age",
            "hospitaldischargeyear", "hospitaladmitoffset", "hospitaldischargeoffset",
            "hospitaldischargestatus", "unitdischargeoffset", "unitvisitnumber"]
    _write(folder / "patient.csv.gz", [
        ("101", "h1", "u1", "Female", "70", "2015", "-60", "10000", "Alive", "3000", "1"),
        ("102", "h1", "u1", "Female", "70", "2015", "-5000", "4940", "Alive", "1440", "2"),
        ("103", "h2", "u1", "Female", "70", "2015", "0", "2000", "Alive", "1500", "1"),
        ("201", "h3", "u2", "Male", "> 89", "2014", "-30", "12000", "Expired", "11000", "1"),
        ("301", "h4", "u3", "Male", "40", "2014", "0", "100", "Alive", "-5", "1")], cols)
    _write(folder / "diagnosis.csv.gz", [
        ("1", "101", "30", "endocrine|pituitary|hypopituitarism", "253.2, E23.0"),
        ("2", "101", "40", "surgery|s/p head and neck cancer surgery", None),
        ("3", "102", "10", "cardiovascular|shock", "785.50"),
        ("4", "201", "20", "pulmonary|respiratory failure", "518.81, J96.00"),
        ("5", "201", "25", "weird", "abc")],
        ["diagnosisid", "patientunitstayid", "diagnosisoffset", "diagnosisstring",
         "icd9code"])
    _write(folder / "medication.csv.gz", [
        ("1", "101", "5", "WARFARIN SODIUM 5 MG PO TABS", "2812", "No"),
        ("2", "101", "7", "DILTIAZEM", "182", "Yes"),
        ("3", "201", "9", "Propofol", None, "No")],
        ["medicationid", "patientunitstayid", "drugstartoffset", "drugname", "drughiclseqno",
         "drugordercancelled"])
    _write(folder / "treatment.csv.gz", [
        ("1", "101", "50", "cardiovascular|arrhythmias|anticoagulant")],
        ["treatmentid", "patientunitstayid", "treatmentoffset", "treatmentstring"])
    _write(folder / "lab.csv.gz", [
        ("1", "101", "-100", "BUN", "31.0"), ("2", "999", "5", "BUN", "20")],
        ["labid", "patientunitstayid", "labresultoffset", "labname", "labresult"])
    return folder


def test_eicu_timeline_codes_and_rejects(tmp_path):
    folder = _eicu(tmp_path / "eicu")
    assert detect_layout(folder) == "eicu"
    table = read_eicu(folder)
    v = table.visits.set_index("visit_id")
    h1 = pd.Timestamp("2015-01-01")  # hospital admission of h1
    assert v.at["101", "start"] == h1 + pd.Timedelta(minutes=60)
    assert v.at["101", "end"] == h1 + pd.Timedelta(minutes=3060)
    assert v.at["102", "start"] == h1 + pd.Timedelta(minutes=5000)
    # h2 follows h1's discharge (10,060 minutes after h1's admission) by a day
    assert v.at["103", "start"] == h1 + pd.Timedelta(minutes=10060) + pd.Timedelta(days=1)
    assert v["died"].to_dict() == {"101": False, "102": False, "103": False, "201": True}
    ev = table.events
    dx = ev[ev["table"] == "conditions"]
    assert set(zip(dx["system"], dx["code"])) == {
        ("ICD9CM", "2532"), ("ICD10CM", "E230"), ("ICD9CM", "78550"), ("ICD9CM", "51881"),
        ("ICD10CM", "J9600"), ("eICU-diagnosis", "surgery|s/p head and neck cancer surgery")}
    first = dx[dx["code"] == "2532"]["time"].iloc[0]
    assert first == v.at["101", "start"] + pd.Timedelta(minutes=30)
    lab = ev[ev["table"] == "labs"].iloc[0]
    assert lab["value"] == 31.0 and lab["time"] < v.at["101", "start"]
    reasons = {(r.file, r.line): r.reason for r in table.rejects}
    assert reasons == {("patient.csv.gz", 6): "unit stay ends before it starts",
                       ("diagnosis.csv.gz", 6): "unknown code vocabulary",
                       ("medication.csv.gz", 3): "order cancelled",
                       ("lab.csv.gz", 3): "visit not in the visits table (or rejected there)"}
    people = table.patients.set_index("patient_id")
    assert pd.isna(people.at["u2", "birth_date"])  # "> 89": unknown
    assert people.at["u2", "death_date"] == v.at["201", "start"] + pd.Timedelta(minutes=12000)
    read = build_samples(table, TaskConfig(kind="readmission", index="each_visit"))
    # 101 -> 102 is a unit readmission in hospital stay h1; 102 -> 103 a new hospital stay
    assert [s.label for s in read.samples] == [1, 0]


def _omop(folder: Path) -> Path:
    folder.mkdir(parents=True)
    _write(folder / "person.csv", [
        ("1", "8507", "1950", "3", "4", None), ("2", "8532", "1980", None, None, None)],
        ["person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth",
         "birth_datetime"])
    _write(folder / "visit_occurrence.csv", [
        ("11", "1", "9201", "2020-01-01", "2020-01-10", "2020-01-01 08:00:00", None),
        ("12", "1", "9201", "2020-01-20", "2020-01-22", None, None),
        ("21", "2", "9203", "2021-05-05", "2021-05-05", None, None),
        ("22", "2", "9201", "2021-05-06", "2021-05-01", None, None)],
        ["visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date",
         "visit_end_date", "visit_start_datetime", "visit_end_datetime"])
    _write(folder / "condition_occurrence.csv", [
        ("1", "1", "201826", "2020-01-01", None, "11"),
        ("2", "1", "0", "2020-01-02", None, "11"),
        ("3", "2", "4329847", "2021-05-05", None, "21"),
        ("4", "2", "320128", "2019-01-01", None, None),
        ("5", "7", "320128", "2019-01-01", None, None)],
        ["condition_occurrence_id", "person_id", "condition_concept_id",
         "condition_start_date", "condition_start_datetime", "visit_occurrence_id"])
    _write(folder / "drug_exposure.csv", [
        ("1", "1", "1503297", "2020-01-02", "2020-01-02 09:30:00", "11"),
        ("2", "1", "1503297", "2020-01-20", None, "12")],
        ["drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date",
         "drug_exposure_start_datetime", "visit_occurrence_id"])
    _write(folder / "procedure_occurrence.csv", [("1", "1", "4301351", "2020-01-03", "11")],
           ["procedure_occurrence_id", "person_id", "procedure_concept_id", "procedure_date",
            "visit_occurrence_id"])
    _write(folder / "death.csv", [("2", "2021-05-05", "32817")],
           ["person_id", "death_date", "death_type_concept_id"])
    return folder


def test_omop_concepts_times_and_death_in_visit(tmp_path):
    folder = _omop(tmp_path / "omop")
    assert detect_layout(folder) == "omop"
    table = read_omop(folder)
    v = table.visits.set_index("visit_id")
    assert list(v.index) == ["11", "12", "21"]
    assert v["died"].tolist() == [False, False, True]
    ev = table.events.set_index("code")
    assert set(table.events["system"]) == {"OMOP"}
    # a condition of a visit is known at the visit's end; a drug at its own time
    assert ev.at["201826", "time"] == pd.Timestamp("2020-01-10 23:59:59")
    drugs = table.events[table.events["table"] == "drugs"]["time"].tolist()
    assert drugs == [pd.Timestamp("2020-01-02 09:30"), pd.Timestamp("2020-01-20 23:59:59")]
    assert pd.isna(ev.at["320128", "visit_id"])  # a condition outside any visit is kept
    reasons = sorted((r.file, r.reason) for r in table.rejects)
    assert reasons == [("condition_occurrence.csv", "no condition_concept_id (empty or 0)"),
                       ("condition_occurrence.csv",
                        "patient not in the patients table (or rejected there)"),
                       ("visit_occurrence.csv", "visit ends before it starts")]
    people = table.patients.set_index("patient_id")
    assert people.at["1", "birth_date"] == pd.Timestamp("1950-03-04")
    # with the vocabulary's CONCEPT table (tab-separated, as Athena writes it): named codes
    pd.DataFrame({"concept_id": ["201826", "1503297", "999"],
                  "concept_name": ["Type 2 diabetes mellitus", "metformin", "unused"],
                  "vocabulary_id": ["SNOMED", "RxNorm", "X"],
                  "concept_code": ["44054006", "6809", "1"]}).to_csv(
        folder / "CONCEPT.csv", sep="\t", index=False)
    named = read_omop(folder).events
    assert set(zip(named["system"], named["code"])) >= {("SNOMED", "44054006"),
                                                        ("RxNorm", "6809")}
    assert "OMOP:4329847" in set(named["system"] + ":" + named["code"])  # not in CONCEPT
    assert "Type 2 diabetes mellitus" in set(named["description"])
    assert people.at["2", "death_date"] == pd.Timestamp("2021-05-05")
    assert people["sex"].tolist() == ["M", "F"]


def test_missing_table_column_truncated_gzip_and_unknown_layout(tmp_path):
    folder = _mimic3(tmp_path / "m3")
    (folder / "ICUSTAYS.csv").rename(folder / "ICU_STAYS.csv")
    with pytest.raises(BadInputError, match="has no ICUSTAYS table .*needs ADMISSIONS"):
        read_mimic3(folder)
    (folder / "ICU_STAYS.csv").rename(folder / "ICUSTAYS.csv")
    frame = pd.read_csv(folder / "PRESCRIPTIONS.csv").drop(columns="NDC")
    frame.to_csv(folder / "PRESCRIPTIONS.csv", index=False)
    with pytest.raises(BadInputError, match="has no column 'ndc'"):
        read_mimic3(folder)
    eicu = _eicu(tmp_path / "eicu")
    data = (eicu / "lab.csv.gz").read_bytes()
    (eicu / "lab.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match="truncated or not valid gzip"):
        read_eicu(eicu)
    # the events a task draws on need only their own tables: no lab table read, or needed
    (eicu / "lab.csv.gz").unlink()
    some = read_eicu(eicu, tables=("conditions", "drugs"))
    assert set(some.events["table"]) == {"conditions", "drugs"} and len(some.visits) == 4
    with pytest.raises(BadInputError, match="has no lab table"):
        read_eicu(eicu)
    with pytest.raises(BadInputError, match="no icustays events"):
        read_eicu(eicu, tables=("icustays",))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="cannot tell the record layout"):
        detect_layout(tmp_path / "empty")


def test_mimic3_demo(shared_data):
    """The MIMIC-III demo as published: 100 patients, 129 admissions, 40 deaths in hospital
    (SOURCES.md); every diagnosis and procedure row kept, prescriptions without an NDC
    listed."""
    demo = shared_data / "ehr" / "mimic3_demo"
    table = read_mimic3(demo)
    assert detect_layout(demo) == "mimic3"
    s = table.summary()
    assert (s["patients"], s["visits"], int(table.visits["died"].sum())) == (100, 129, 40)
    counts = table.events.groupby("table").size().to_dict()
    assert counts == {"conditions": 1761, "procedures": 506, "drugs": 8920, "icustays": 136}
    assert table.reject_counts() == {"no NDC (empty or 0)": 1478}
    assert table.events["time"].min() > pd.Timestamp("2100-01-01")  # far-future dates parse
    assert (table.visits.groupby("patient_id").size() > 1).sum() == 14  # readmitted patients
    built = build_samples(table, TaskConfig(kind="in_hospital_mortality", index="each_visit"))
    assert built.summary()["samples"] == 112 and built.summary()["positives"] == 28
    split = patient_split(built, seed=0)
    sides = [set(built.patients[i]) for i in split.values()]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def test_eicu_demo(shared_data):
    demo = shared_data / "ehr" / "eicu_demo_subset"
    table = read_eicu(demo)
    assert detect_layout(demo) == "eicu"
    s = table.summary()
    assert (s["patients"], s["visits"]) == (100, 174)
    assert int(table.visits["died"].sum()) == 9  # unit stays of hospital stays that expired
    assert set(table.events["table"]) == {"conditions", "drugs", "procedures", "labs"}
    assert table.reject_counts().keys() <= {"order cancelled", "no code"}
    v = table.visits
    assert (v["end"] >= v["start"]).all()
    # unit stays of one hospital stay never overlap on the built timeline
    for _, stays in v.groupby("hospital_stay"):
        stays = stays.sort_values("start")
        assert (stays["start"].to_numpy()[1:] >= stays["end"].to_numpy()[:-1]).all()
    # a unit stay ends in death only when the unit says so (unitdischargestatus), not when
    # its hospital stay does later: those stays keep their readmission samples
    read = build_samples(table, TaskConfig(kind="readmission", index="each_visit")).summary()
    assert (read["samples"], read["positives"]) == (73, 29)
    assert read["excluded"]["admissions ending in death (no next admission)"] == 5
    assert np.isin(table.events["system"].unique(),
                   ["ICD9CM", "ICD10CM", "eICU-diagnosis", "HICL", "eICU-drug",
                    "eICU-treatment", "eICU-lab"]).all()
