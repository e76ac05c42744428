"""EHR event tables and task building: importers, exclusions with counts, no look-ahead."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.ehr.events import read_event_table, read_synthea
from pmtoolkit.ehr.tasks import TaskConfig, build_samples, patient_split


def _synthea(folder, *, extra_condition=None):
    """A tiny Synthea export: p1 dies in 2020, p2 gets diabetes (44054006) in 2019, p3 has no
    events, p4 healthy with follow-up to 2021."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "Id": ["p1", "p2", "p3", "p4"],
        "BIRTHDATE": ["1950-01-01", "1960-01-01", "1970-01-01", "1965-01-01"],
        "DEATHDATE": ["2020-06-01", None, None, None],
        "GENDER": ["M", "F", "F", "M"]}).to_csv(folder / "patients.csv", index=False)
    rows = [  # START, STOP, PATIENT, ENCOUNTER, CODE, DESCRIPTION
        ("2015-01-01", None, "p1", "e1", "111", "a"), ("2016-01-01", None, "p1", "e2", "222", "b"),
        ("2019-12-01", None, "p1", "e3", "333", "c"),
        ("2014-01-01", None, "p2", "e4", "111", "a"), ("2016-06-01", None, "p2", "e5", "444", "d"),
        ("2019-03-01", None, "p2", "e6", "44054006", "diabetes"),
        ("2014-05-01", None, "p4", "e7", "111", "a"), ("2015-05-01", None, "p4", "e8", "555", "e"),
        ("2016-05-01", None, "p4", "e9", "555", "e"), ("2021-06-01", None, "p4", "e10", "666", "f"),
        (None, None, "p4", "e11", "777", "no time"),
    ]
    if extra_condition:
        rows.append(extra_condition)
    pd.DataFrame(rows, columns=["START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"]
                 ).to_csv(folder / "conditions.csv", index=False)
    with gzip.open(folder / "immunizations.csv.gz", "wt") as fh:
        pd.DataFrame({"DATE": ["2016-01-01T10:00:00Z"], "PATIENT": ["p1"], "ENCOUNTER": ["e2"],
                      "CODE": ["140"], "DESCRIPTION": ["flu"]}).to_csv(fh, index=False)
    return folder


def test_read_synthea_counts_rejects_and_patients_without_events(tmp_path, caplog):
    caplog.set_level("INFO", logger="pmtoolkit")
    table = read_synthea(_synthea(tmp_path / "s"))
    s = table.summary()
    assert s == {"patients": 4, "patients_with_events": 3, "events": 11, "codes": 8,
                 "visits": 10, "deaths": 1, "rejected": 1}
    assert table.reject_counts() == {"missing or unreadable time": 1}
    assert set(table.events["system"]) == {"SNOMED-CT", "CVX"}
    assert table.events["time"].dt.tz is None
    assert "1 without" in caplog.text and "missing or unreadable time" in caplog.text
    with pytest.raises(BadInputError, match="patients.csv"):
        read_synthea(tmp_path)


def test_mortality_and_onset_labels_and_exclusions(tmp_path):
    table = read_synthea(_synthea(tmp_path / "s"))
    mort = build_samples(table, TaskConfig(kind="mortality", horizon_days=365,
                                           index="each_visit", min_visits=1, min_age=None))
    by = {(s.patient_id, s.index_time.year): s.label for s in mort.samples}
    assert by[("p1", 2019)] == 1 and by[("p1", 2016)] == 0
    # p4's 2021 visit has under a year of follow-up before the data end: excluded, counted
    assert ("p4", 2021) not in by
    assert mort.excluded["index visits with follow-up shorter than the horizon"] >= 1
    assert mort.excluded["no events"] == 1
    onset = build_samples(table, TaskConfig(kind="onset", codes=("44054006",),
                                            horizon_days=3 * 365, index="each_visit",
                                            min_visits=1, min_age=None))
    got = {(s.patient_id, s.index_time.year): s.label for s in onset.samples}
    assert got[("p2", 2016)] == 1 and got[("p2", 2014)] == 0
    assert ("p2", 2019) not in got  # at the onset: not at risk
    assert onset.excluded["index visits after the onset (not at risk)"] == 1
    # p1 dies before the 3-year horizon without the outcome: unknown, excluded
    assert onset.excluded["index visits with death before the horizon (outcome unknown)"] >= 1
    with pytest.raises(BadInputError, match="--codes"):
        build_samples(table, TaskConfig(kind="onset"))


def test_history_never_sees_events_after_the_index_time(tmp_path):
    """A planted event after the index time changes no history (and so no prediction)."""
    config = TaskConfig(kind="mortality", horizon_days=365, index="each_visit", min_visits=1,
                        min_age=None)
    before = build_samples(read_synthea(_synthea(tmp_path / "a")), config)
    # a fatal-looking code for p1 one month after its 2016 visit, in a visit of its own
    planted = read_synthea(_synthea(tmp_path / "b", extra_condition=(
        "2016-02-01", None, "p1", "e99", "999", "planted future event")))
    after = build_samples(planted, config)
    planted_at = pd.Timestamp("2016-02-01")
    old = {(s.patient_id, s.index_time): s for s in before.samples}
    earlier = [s for s in after.samples if s.index_time < planted_at]
    assert earlier and len(earlier) == sum(1 for k in old if k[1] < planted_at)
    for s in earlier:  # identical histories (and labels) for every index time before it
        ref = old[(s.patient_id, s.index_time)]
        assert (s.visits, s.days_before, s.label) == (ref.visits, ref.days_before, ref.label)
    later = [s for s in after.samples if s.patient_id == "p1" and s.index_time >= planted_at]
    assert any("SNOMED-CT:999" in v for s in later for v in s.visits)  # seen once it happened
    # the index time of a visit is its last event: here the 10:00 immunization of visit e2
    p1_2016 = [s for s in after.samples if s.patient_id == "p1"
               and s.index_time == pd.Timestamp("2016-01-01 10:00")]
    assert p1_2016 and all("SNOMED-CT:999" not in v for v in p1_2016[0].visits)
    # the same visit's immunization (same day, 10:00) is in the history of that index time
    assert "CVX:140" in p1_2016[0].visits[-1]


def test_truncation_and_patient_split():
    from pmtoolkit.ehr.events import EventTable

    rng = np.random.default_rng(0)
    rows = []
    for p in range(40):
        for v in range(12):
            for c in range(3):
                rows.append((f"p{p}", pd.Timestamp("2000-01-01") + pd.Timedelta(days=30 * v + c),
                             f"c{rng.integers(20)}", "X", np.nan, f"p{p}v{v}", "t", ""))
    events = pd.DataFrame(rows, columns=["patient_id", "time", "code", "system", "value",
                                         "visit_id", "table", "description"])
    patients = pd.DataFrame({"patient_id": [f"p{p}" for p in range(40)],
                             "birth_date": pd.Timestamp("1950-01-01"),
                             "death_date": [pd.Timestamp("2000-11-01") if p % 4 == 0 else pd.NaT
                                            for p in range(40)], "sex": "F"})
    table = EventTable(events, patients)
    samples = build_samples(table, TaskConfig(index="each_visit", max_visits=4,
                                              max_codes_per_visit=2, min_visits=1))
    assert max(len(s.visits) for s in samples.samples) == 4
    assert max(len(v) for s in samples.samples for v in s.visits) == 2
    assert all(s.days_before == sorted(s.days_before, reverse=True) for s in samples.samples)
    split = patient_split(samples, seed=1)
    sides = {k: set(samples.patients[v]) for k, v in split.items()}
    assert not (sides["train"] & sides["test"]) and not (sides["train"] & sides["valid"])
    assert sum(len(v) for v in split.values()) == len(samples)
    pos = {p for p, y in zip(samples.patients, samples.labels) if y}
    assert len(pos & sides["test"]) == 2  # 10 dying patients, 20 % of them in test


def test_plain_event_table_with_column_mapping(tmp_path):
    pd.DataFrame({"pid": ["a", "a", "b"], "when": ["2020-01-01", "bad", "2020-02-01"],
                  "icd": ["I10", "E11", "I10"]}).to_csv(tmp_path / "ev.csv", index=False)
    table = read_event_table(tmp_path / "ev.csv", columns={"patient_id": "pid", "time": "when",
                                                           "code": "icd"}, system="ICD10")
    assert len(table.events) == 2 and len(table.rejects) == 1
    assert [r.line for r in table.rejects] == [3]
    with pytest.raises(BadInputError, match="system"):
        read_event_table(tmp_path / "ev.csv", columns={"patient_id": "pid", "time": "when",
                                                       "code": "icd"})


def test_next_visit_targets_are_the_next_diagnosed_visit(tmp_path):
    """p4's visits: 111 (2014), 555 (2015), 555 (2016), 666 (2021); an immunisation-only visit
    of p1 (e2 also holds a condition) never becomes a target; a visit's own codes never are."""
    table = read_synthea(_synthea(tmp_path / "s"))
    nv = build_samples(table, TaskConfig(kind="next_visit", horizon_days=365 * 3,
                                         index="each_visit", min_visits=1, min_age=None))
    got = {(s.patient_id, str(s.index_time.date())): s.targets for s in nv.samples}
    assert got[("p4", "2014-05-01")] == ["SNOMED-CT:555"]
    assert got[("p4", "2015-05-01")] == ["SNOMED-CT:555"]
    assert ("p4", "2016-05-01") not in got  # the next diagnosis is 5 years later
    assert got[("p1", "2015-01-01")] == ["SNOMED-CT:222"]  # not CVX:140 of the same visit
    assert all(s.label == 1 for s in nv.samples)
    assert nv.excluded["index visits without a later visit with target codes within the " +
                       "horizon"] >= 3
    # the history is unchanged by the task: the 2015 sample of p4 sees 111 and 555 only
    s = next(s for s in nv.samples if s.patient_id == "p4" and s.index_time.year == 2015)
    assert s.visits == [["SNOMED-CT:111"], ["SNOMED-CT:555"]]
    only = build_samples(table, TaskConfig(kind="next_visit", horizon_days=365 * 3,
                                           index="each_visit", min_visits=1, min_age=None,
                                           codes=("222",)))
    assert [s.targets for s in only.samples] == [["SNOMED-CT:222"]]
    with pytest.raises(BadInputError, match="target table"):
        build_samples(table, TaskConfig(kind="next_visit", target_tables=("nope",)))
