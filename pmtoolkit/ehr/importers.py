"""Hospital record layouts as one :class:`~pmtoolkit.ehr.events.EventTable`, with its visits.

Each importer reads a folder of CSV tables (``.csv`` or ``.csv.gz``; file and column names
in any case) the way the layout's owners publish them, and returns the events (one row per
coded event), the patients and a **visits** table: one row per admission (per unit stay in
eICU) with ``visit_id``, ``patient_id``, ``start``, ``end`` and ``died`` (death in
hospital during that stay), which the admission tasks of :mod:`pmtoolkit.ehr.tasks` need.

- :func:`read_mimic3`: MIMIC-III (ADMISSIONS, PATIENTS, DIAGNOSES_ICD, PROCEDURES_ICD,
  PRESCRIPTIONS, ICUSTAYS);
- :func:`read_mimic4`: the hosp module of MIMIC-IV (admissions, patients, diagnoses_icd,
  procedures_icd, prescriptions);
- :func:`read_eicu`: eICU-CRD (patient, diagnosis, medication, treatment, lab);
- :func:`read_omop`: the OMOP CDM v5.4 (person, visit_occurrence, condition_occurrence,
  drug_exposure, procedure_occurrence, death).

Event tables are named by what they hold, the same in every layout (``conditions``,
``procedures``, ``drugs``, ``icustays``, ``labs``), so one task setting (``--tables``,
``--target-tables``) works on all of them; each code keeps its vocabulary as its ``system``
(``ICD9CM``, ``ICD10CM``, ``ICD9PROC``, ``ICD10PCS``, ``NDC``, ``HICL``, ``OMOP`` concept
ids ...). No look-ahead is built in: a diagnosis or procedure without a time of its own is
known when its admission ends (its discharge time), and a date without a time at the end of
its day (never after its admission's end). Tables are read in chunks, keeping only the columns
used. A row that cannot be used is a reject naming its file, line and reason; a missing table
or column is a one-line error. ``tables`` (event table names) reads only the tables giving
those events besides the patients and visits: a site without a lab export, or a task on
diagnoses and drugs, needs and reads no lab table.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.core.io import Reject, Rejects
from pmtoolkit.ehr.events import EventTable, _events_frame, _patients, _to_time

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: what ``pmt ehr build --format`` accepts
LAYOUTS = ("mimic3", "mimic4", "eicu", "omop", "synthea", "events")
#: rows read at a time from an event table
CHUNK_ROWS = 200_000

#: the tables each layout needs: file stem -> required columns (lower case)
MIMIC3_TABLES: dict[str, tuple[str, ...]] = {
    "ADMISSIONS": ("subject_id", "hadm_id", "admittime", "dischtime", "hospital_expire_flag"),
    "PATIENTS": ("subject_id", "gender", "dob"),
    "DIAGNOSES_ICD": ("subject_id", "hadm_id", "icd9_code"),
    "PROCEDURES_ICD": ("subject_id", "hadm_id", "icd9_code"),
    "PRESCRIPTIONS": ("subject_id", "hadm_id", "startdate", "ndc"),
    "ICUSTAYS": ("subject_id", "hadm_id", "intime", "first_careunit"),
}
MIMIC4_TABLES: dict[str, tuple[str, ...]] = {
    "admissions": ("subject_id", "hadm_id", "admittime", "dischtime", "hospital_expire_flag"),
    "patients": ("subject_id", "gender", "anchor_age", "anchor_year"),
    "diagnoses_icd": ("subject_id", "hadm_id", "icd_code", "icd_version"),
    "procedures_icd": ("subject_id", "hadm_id", "icd_code", "icd_version", "chartdate"),
    "prescriptions": ("subject_id", "hadm_id", "starttime", "ndc"),
}
EICU_TABLES: dict[str, tuple[str, ...]] = {
    "patient": ("patientunitstayid", "patienthealthsystemstayid", "uniquepid", "gender", "age",
                "hospitaldischargeyear", "hospitaladmitoffset", "hospitaldischargeoffset",
                "hospitaldischargestatus", "unitdischargeoffset"),
    "diagnosis": ("patientunitstayid", "diagnosisoffset", "diagnosisstring", "icd9code"),
    "medication": ("patientunitstayid", "drugstartoffset", "drugname", "drughiclseqno"),
    "treatment": ("patientunitstayid", "treatmentoffset", "treatmentstring"),
    "lab": ("patientunitstayid", "labresultoffset", "labname", "labresult"),
}
OMOP_TABLES: dict[str, tuple[str, ...]] = {
    "person": ("person_id", "year_of_birth"),
    "visit_occurrence": ("visit_occurrence_id", "person_id", "visit_start_date",
                         "visit_end_date"),
    "condition_occurrence": ("person_id", "condition_concept_id", "condition_start_date",
                             "visit_occurrence_id"),
    "drug_exposure": ("person_id", "drug_concept_id", "drug_exposure_start_date",
                      "visit_occurrence_id"),
    "procedure_occurrence": ("person_id", "procedure_concept_id", "procedure_date",
                             "visit_occurrence_id"),
    "death": ("person_id", "death_date"),
}
LAYOUT_TABLES = {"mimic3": MIMIC3_TABLES, "mimic4": MIMIC4_TABLES, "eicu": EICU_TABLES,
                 "omop": OMOP_TABLES}
LAYOUT_NAMES = {"mimic3": "MIMIC-III", "mimic4": "MIMIC-IV", "eicu": "eICU",
                "omop": "OMOP CDM"}
#: the event tables each layout's tables give (the other tables are read always)
EVENT_TABLES: dict[str, dict[str, str]] = {
    "mimic3": {"DIAGNOSES_ICD": "conditions", "PROCEDURES_ICD": "procedures",
               "PRESCRIPTIONS": "drugs", "ICUSTAYS": "icustays"},
    "mimic4": {"diagnoses_icd": "conditions", "procedures_icd": "procedures",
               "prescriptions": "drugs"},
    "eicu": {"diagnosis": "conditions", "medication": "drugs", "treatment": "procedures",
             "lab": "labs"},
    "omop": {"condition_occurrence": "conditions", "drug_exposure": "drugs",
             "procedure_occurrence": "procedures"},
}

_END_OF_DAY = np.timedelta64(86_399, "s")


# --------------------------------------------------------------------------- reading

def _find(root: Path, stem: str) -> Path | None:
    """``stem.csv`` or ``stem.csv.gz`` in ``root``, in any case of letters."""
    wanted = {f"{stem}.csv".lower(), f"{stem}.csv.gz".lower()}
    hits = sorted(p for p in root.iterdir() if p.is_file() and p.name.lower() in wanted)
    return hits[0] if hits else None


def _tables(folder: str | os.PathLike, layout: str, tables=None) -> tuple[Path, dict[str, Path]]:
    """The folder of a layout (MIMIC-IV: also its ``hosp/``) and the path of each table to
    read: all, or those giving the event tables named in ``tables`` (``conditions``, ``drugs``
    ...) besides the patients and visits; a missing one is a one-line error naming every table
    the layout needs."""
    root = Path(folder)
    if not root.is_dir():
        raise MissingInputError(f"{LAYOUT_NAMES[layout]} folder '{root}' does not exist")
    if layout == "mimic4" and _find(root, "admissions") is None and (root / "hosp").is_dir():
        root = root / "hosp"
    events = EVENT_TABLES[layout]
    if tables:
        unknown = sorted(set(tables) - set(events.values()))
        if unknown:
            raise BadInputError(f"a {LAYOUT_NAMES[layout]} folder has no {unknown[0]} events",
                                hint="its event tables: " + ", ".join(events.values()))
    specs = [stem for stem in LAYOUT_TABLES[layout]
             if not tables or stem not in events or events[stem] in tables]
    paths = {stem: _find(root, stem) for stem in specs}
    missing = [stem for stem, p in paths.items() if p is None]
    if missing:
        raise BadInputError(
            f"'{root}' has no {missing[0]} table ({missing[0]}.csv or .csv.gz): a "
            f"{LAYOUT_NAMES[layout]} folder needs {', '.join(specs)}")
    return root, paths  # type: ignore[return-value]


def _chunks(path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = (), *,
            layout: str) -> Iterator[pd.DataFrame]:
    """A table in chunks of :data:`CHUNK_ROWS` rows of text (column names lower-cased; index:
    the line numbers), only ``columns`` (each required) and those of ``optional`` present."""
    from pmtoolkit.core.io import iter_table

    first = True
    fmt = "tsv" if _delimiter(path) == "\t" else "csv"
    for chunk in iter_table(path, fmt=fmt, dtype=str, chunksize=CHUNK_ROWS):
        chunk.columns = [str(c).strip().lower() for c in chunk.columns]
        if first:
            missing = [c for c in columns if c not in chunk.columns]
            if missing:
                raise BadInputError(
                    f"'{path}' has no column {missing[0]!r}: a {LAYOUT_NAMES[layout]} "
                    f"{path.name.split('.')[0]} table needs {', '.join(columns)}")
            first = False
        yield chunk[list(columns) + [c for c in optional if c in chunk.columns]]


def _selected(paths: dict[str, Path], stem: str, specs: dict[str, tuple[str, ...]],
              optional: tuple[str, ...] = (), *, layout: str) -> Iterator[pd.DataFrame]:
    """The chunks of table ``stem`` when it is to be read (see :func:`_tables`), else none."""
    if stem in paths:
        yield from _chunks(paths[stem], specs[stem], optional, layout=layout)


def _whole(path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = (), *,
           layout: str) -> pd.DataFrame:
    import pandas as pd

    parts = list(_chunks(path, columns, optional, layout=layout))
    if not parts:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(parts) if len(parts) > 1 else parts[0]


def _times(values: pd.Series) -> pd.Series:
    """Timestamps from text (ISO 8601 fast, anything else as :func:`_to_time` reads it);
    unreadable become NaT. The de-identified far-future dates (years 2100-2200) parse."""
    import pandas as pd

    t = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601").dt.tz_localize(None)
    given = values.notna() & (values.astype(str).str.strip() != "")
    retry = t.isna() & given
    if retry.any():
        t = t.copy()
        t[retry] = _to_time(values[retry]).to_numpy()
    return t


def _text(values: pd.Series) -> pd.Series:
    """Stripped text, empty for a missing value."""
    return values.fillna("").astype(str).str.strip()


def _reject_rows(rejects: Rejects, path: Path, frame: pd.DataFrame, reason: np.ndarray,
                 item: pd.Series) -> np.ndarray:
    """Record the rows with a reason as rejects of ``path`` (line = the frame's index); the
    mask of the rows kept."""
    bad = reason != ""
    for line, it, why in zip(frame.index[bad], item[bad], reason[bad]):
        rejects.items.append(Reject(str(it), int(line), str(why), file=path.name))
    return ~bad


class _Reasons:
    """The first reason each row of a chunk cannot be used."""

    def __init__(self, n: int):
        self.why = np.full(n, "", dtype=object)

    def mark(self, mask, reason: str) -> None:
        self.why[(self.why == "") & np.asarray(mask, dtype=bool)] = reason


# --------------------------------------------------------------------------- visits

def _check_visits(frame: pd.DataFrame, path: Path, patients: pd.DataFrame, rejects: Rejects,
                  *, what: str) -> pd.DataFrame:
    """Visits (``visit_id``, ``patient_id``, ``start``, ``end``, ``died``; index: lines)
    that can be used: one line per visit id, a known patient, readable times, an end not before
    the start, a start not before the patient's birth. The rest are rejects."""
    r = _Reasons(len(frame))
    vid, pid = _text(frame["visit_id"]), _text(frame["patient_id"])
    r.mark(pid == "", "no patient id")
    r.mark(vid == "", f"no {what} id")
    r.mark(vid.duplicated(keep=False) & (vid != ""), f"{what} id on several lines")
    known = patients.set_index("patient_id")
    r.mark(~pid.isin(known.index), "patient not in the patients table (or rejected there)")
    r.mark(frame["start"].isna(), f"missing or unreadable {what} start")
    r.mark(frame["end"].isna(), f"missing or unreadable {what} end")
    r.mark((frame["end"] < frame["start"]).to_numpy(), f"{what} ends before it starts")
    birth = pid.map(known["birth_date"]) if len(known) else frame["start"]
    before_birth = (frame["start"].dt.normalize() < birth.dt.normalize()).to_numpy()
    r.mark(before_birth, f"{what} before the patient's birth")
    keep = _reject_rows(rejects, path, frame, r.why, pid + " " + vid)
    out = frame.loc[keep].copy()
    out["visit_id"], out["patient_id"] = vid[keep], pid[keep]
    return out


def _visits_frame(visits: pd.DataFrame) -> pd.DataFrame:
    """The visits table an EventTable keeps, in patient and time order."""
    cols = ["visit_id", "patient_id", "start", "end", "died"]
    cols += [c for c in ("hospital_stay", "ended_in_death") if c in visits]
    return (visits[cols].reset_index(drop=True).sort_values(["patient_id", "start", "visit_id"], kind="stable")
            .reset_index(drop=True))


def _flag(values: pd.Series) -> np.ndarray:
    return _text(values).isin(["1", "1.0", "True", "true", "Y"]).to_numpy()


# --------------------------------------------------------------------------- events

def _visit_events(chunk: pd.DataFrame, path: Path, visits: pd.DataFrame, rejects: Rejects, *,
                  table: str, system, code: pd.Series, time: pd.Series | None = None,
                  date_only: bool = False, cap_at_end: bool = False,
                  value=None, description=None, pid_col: str = "subject_id",
                  vid_col: str = "hadm_id", need_visit: bool = True,
                  no_code: str = "no code", patients: pd.DataFrame | None = None
                  ) -> pd.DataFrame:
    """The events of one chunk of a table whose rows name their visit: each checked against
    the visits (known, same patient), with a code, a vocabulary and a time; ``time`` None:
    the visit's end (a discharge diagnosis is known at discharge). ``date_only``: a date is
    known at the end of its day, and never after its visit's end (``cap_at_end``, too).
    Without ``need_visit``, a row may name no visit; its patient is then checked against
    ``patients``."""
    import pandas as pd

    n = len(chunk)
    r = _Reasons(n)
    pid = _text(chunk[pid_col])
    vid = _text(chunk[vid_col]) if vid_col in chunk else pd.Series([""] * n, index=chunk.index)
    code = _text(code)
    system = (pd.Series([system] * n, index=chunk.index) if isinstance(system, str)
              else _text(system))
    r.mark(pid == "", "no patient id")
    if need_visit:
        r.mark(vid == "", "no visit id")
    has_visit = vid != ""
    if patients is not None:
        r.mark(~has_visit & ~pid.isin(patients["patient_id"]),
               "patient not in the patients table (or rejected there)")
    known = vid.isin(visits.index)
    r.mark(has_visit & ~known, "visit not in the visits table (or rejected there)")
    owner = vid.map(visits["patient_id"])
    r.mark(has_visit & known & (owner != pid), "patient differs from its visit's")
    r.mark(code == "", no_code)
    r.mark(system == "", "unknown code vocabulary")
    end = vid.map(visits["end"])
    if time is None:
        when = end
    else:
        when = time + pd.Timedelta(_END_OF_DAY) if date_only else time
        if date_only or cap_at_end:
            capped = has_visit & known & (when > end)
            when = when.where(~capped, end)
    r.mark(when.isna(), "missing or unreadable time")
    keep = _reject_rows(rejects, path, chunk, r.why, pid + " " + vid + " " + code)
    frame = _events_frame(
        patient_id=pid[keep].to_numpy(), time=when[keep].to_numpy(),
        code=code[keep].to_numpy(), system=system[keep].to_numpy(),
        value=(np.nan if value is None else pd.to_numeric(value[keep], errors="coerce")
               .to_numpy()),
        visit_id=vid[keep].where(vid[keep] != "", None).to_numpy(), table=table,
        description=None if description is None else description[keep].to_numpy())
    return frame


def _finish(frames: list, patients: pd.DataFrame, visits: pd.DataFrame, rejects: Rejects,
            root: Path, layout: str) -> EventTable:
    import pandas as pd

    frames = [f for f in frames if len(f)]
    events = pd.concat(frames, ignore_index=True) if frames else _events_frame()
    events = events.sort_values(["patient_id", "time"], kind="stable").reset_index(drop=True)
    table = EventTable(events, patients.reset_index(drop=True), rejects,
                       source=f"{LAYOUT_NAMES[layout]} {root}", visits=_visits_frame(visits))
    table.log_summary()
    return table


def _descriptions(root: Path, stem: str, layout: str) -> dict[str, str]:
    """Code -> title from a MIMIC dictionary table (D_ICD_DIAGNOSES, D_ICD_PROCEDURES) when
    the folder holds it."""
    path = _find(root, stem)
    if path is None:
        return {}
    d = _whole(path, ("icd9_code", "short_title"), ("long_title",), layout=layout)
    title = d["long_title"] if "long_title" in d else d["short_title"]
    return dict(zip(_text(d["icd9_code"]), title.fillna("")))


# --------------------------------------------------------------------------- MIMIC

def read_mimic3(folder: str | os.PathLike, *, tables=None) -> EventTable:
    """A MIMIC-III folder (v1.4 or its demo): admissions are the visits; diagnoses
    (``ICD9CM``) and procedures (``ICD9PROC``) are timed at their admission's discharge,
    prescriptions (``NDC``; ``0`` or empty is a reject) at the end of their start date (at
    most the discharge), ICU stays (``MIMIC3-careunit``: the first care unit) at their
    ``intime``. ``died``: ``hospital_expire_flag``; a patient's death date: ``dod``."""
    layout = "mimic3"
    root, paths = _tables(folder, layout, tables)
    rejects = Rejects(source=str(root), item_name="record")
    raw = _whole(paths["PATIENTS"], MIMIC3_TABLES["PATIENTS"], ("dod",), layout=layout)
    patients = _patients(raw.rename(columns={"subject_id": "patient_id", "dob": "birth_date",
                                             "dod": "death_date", "gender": "sex"}),
                         paths["PATIENTS"].name, rejects)
    visits = _mimic_admissions(paths["ADMISSIONS"], patients, rejects, layout)
    diag_names = _descriptions(root, "D_ICD_DIAGNOSES", layout)
    proc_names = _descriptions(root, "D_ICD_PROCEDURES", layout)
    frames = []
    for stem, table, system, names in (("DIAGNOSES_ICD", "conditions", "ICD9CM", diag_names),
                                       ("PROCEDURES_ICD", "procedures", "ICD9PROC", proc_names)):
        for c in _selected(paths, stem, MIMIC3_TABLES, layout=layout):
            code = _text(c["icd9_code"])
            frames.append(_visit_events(c, paths[stem], visits, rejects, table=table,
                                        system=system, code=code,
                                        description=code.map(names)))
    path = paths.get("PRESCRIPTIONS")
    for c in _selected(paths, "PRESCRIPTIONS", MIMIC3_TABLES, ("drug",), layout=layout):
        ndc = _text(c["ndc"]).replace("0", "")
        frames.append(_visit_events(c, path, visits, rejects, table="drugs", system="NDC",
                                    code=ndc, time=_times(c["startdate"]), date_only=True,
                                    description=c.get("drug"), no_code="no NDC (empty or 0)"))
    path = paths.get("ICUSTAYS")
    for c in _selected(paths, "ICUSTAYS", MIMIC3_TABLES, layout=layout):
        frames.append(_visit_events(c, path, visits, rejects, table="icustays",
                                    system="MIMIC3-careunit", code=c["first_careunit"],
                                    time=_times(c["intime"]), cap_at_end=True))
    return _finish(frames, patients, visits, rejects, root, layout)


def _mimic_admissions(path: Path, patients: pd.DataFrame, rejects: Rejects,
                      layout: str) -> pd.DataFrame:
    import pandas as pd

    specs = MIMIC3_TABLES["ADMISSIONS"]
    a = _whole(path, specs, ("deathtime",), layout=layout)
    frame = pd.DataFrame({"visit_id": a["hadm_id"], "patient_id": a["subject_id"],
                          "start": _times(a["admittime"]), "end": _times(a["dischtime"])},
                         index=a.index)
    died = _flag(a["hospital_expire_flag"])
    if "deathtime" in a:  # a death time without the flag is a death in hospital too
        died |= _text(a["deathtime"]).to_numpy() != ""
    frame["died"] = died
    visits = _check_visits(frame, path, patients, rejects, what="admission")
    return visits.set_index("visit_id", drop=False)


def read_mimic4(folder: str | os.PathLike, *, tables=None) -> EventTable:
    """The hosp module of MIMIC-IV (the folder, or the folder holding ``hosp/``): admissions
    are the visits; diagnoses (``icd_version`` 9 -> ``ICD9CM``, 10 -> ``ICD10CM``) are timed
    at discharge, procedures (``ICD9PROC`` / ``ICD10PCS``) at the end of their ``chartdate``,
    prescriptions (``NDC``) at their ``starttime``. A patient's birth is 1 January of
    ``anchor_year - anchor_age`` (MIMIC-IV gives no birth date); death date: ``dod``."""
    import pandas as pd

    layout = "mimic4"
    root, paths = _tables(folder, layout, tables)
    rejects = Rejects(source=str(root), item_name="record")
    raw = _whole(paths["patients"], MIMIC4_TABLES["patients"], ("dod",), layout=layout)
    year = pd.to_numeric(raw["anchor_year"], errors="coerce") - pd.to_numeric(
        raw["anchor_age"], errors="coerce")
    # an unreadable anchor stays text, so that the patient is a reject naming it
    birth = [f"{int(y):04d}-01-01" if not pd.isna(y) else f"anchor_year {a!r}, anchor_age {b!r}"
             for y, a, b in zip(year, raw["anchor_year"], raw["anchor_age"])]
    patients = _patients(pd.DataFrame({
        "patient_id": raw["subject_id"], "birth_date": birth,
        "death_date": raw.get("dod"), "sex": raw["gender"]}, index=raw.index),
        paths["patients"].name, rejects)
    visits = _mimic_admissions(paths["admissions"], patients, rejects, layout)
    frames = []
    for stem, table, systems in (("diagnoses_icd", "conditions", ("ICD9CM", "ICD10CM")),
                                 ("procedures_icd", "procedures", ("ICD9PROC", "ICD10PCS"))):
        for c in _selected(paths, stem, MIMIC4_TABLES, layout=layout):
            version = _text(c["icd_version"])
            system = version.map({"9": systems[0], "10": systems[1]}).fillna("")
            time = _times(c["chartdate"]) if stem == "procedures_icd" else None
            frames.append(_visit_events(c, paths[stem], visits, rejects, table=table,
                                        system=system, code=c["icd_code"], time=time,
                                        date_only=time is not None))
    path = paths.get("prescriptions")
    for c in _selected(paths, "prescriptions", MIMIC4_TABLES, ("drug",), layout=layout):
        ndc = _text(c["ndc"]).replace("0", "")
        frames.append(_visit_events(c, path, visits, rejects, table="drugs", system="NDC",
                                    code=ndc, time=_times(c["starttime"]), cap_at_end=True,
                                    description=c.get("drug"), no_code="no NDC (empty or 0)"))
    return _finish(frames, patients, visits, rejects, root, layout)


# --------------------------------------------------------------------------- eICU

_ICD9 = re.compile(r"^(V\d{2}|E\d{3}|\d{3})(\.\d{1,2})?$")
_ICD10 = re.compile(r"^[A-Z]\d{2}(\.[0-9A-Z]{1,4})?$")


def _eicu_codes(text: str) -> list[tuple[str, str]]:
    """``(system, code)`` of an eICU ``icd9code`` cell (``"253.2, E23.0"``: the ICD-9-CM code,
    then the ICD-10-CM one), dots removed as MIMIC writes codes; a part that is neither is
    ``("", part)``, an unknown vocabulary."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    out = []
    for i, p in enumerate(parts):
        p = p.upper()
        if len(parts) == 2:  # the documented pair: ICD-9-CM first
            system = "ICD9CM" if i == 0 else "ICD10CM"
            ok = (_ICD9 if i == 0 else _ICD10).match(p)
        else:
            system = "ICD9CM" if _ICD9.match(p) else "ICD10CM" if _ICD10.match(p) else ""
            ok = bool(system)
        out.append((system if ok else "", p.replace(".", "")))
    return out


def read_eicu(folder: str | os.PathLike, *, tables=None) -> EventTable:
    """An eICU-CRD folder (v2.0 or its demo): unit stays (``patientunitstayid``) are the
    visits, ``uniquepid`` the patient. eICU gives times as minutes from each unit admission
    and only the year of hospital discharge, so visit times are built on one timeline: a
    hospital stay (``patienthealthsystemstayid``) is admitted on 1 January of its
    ``hospitaldischargeyear`` at 00:00, or one day after the patient's previous hospital
    discharge if that is later (stays in order of year, then id); a unit stay starts
    ``-hospitaladmitoffset`` minutes after its hospital admission and ends
    ``unitdischargeoffset`` minutes after its start; an event is its offset after its unit
    admission. Durations within a hospital stay are exact; gaps between hospital stays are not
    known. ``died``: ``hospitaldischargestatus`` is ``Expired`` (death in hospital, after this
    unit or during it; ``ended_in_death``: ``unitdischargestatus`` is ``Expired``); the
    patient's death date is that hospital discharge. Birth: the first
    unit admission minus ``age`` years (``> 89``: unknown). Diagnoses: ``icd9code``
    (``ICD9CM`` and ``ICD10CM``, dots removed), else ``diagnosisstring``
    (``eICU-diagnosis``); drugs: ``drughiclseqno`` (``HICL``), else ``drugname``
    (``eICU-drug``; cancelled orders are rejects); treatments (``eICU-treatment``, table
    ``procedures``); labs (``eICU-lab``, with the result as value)."""
    import pandas as pd

    layout = "eicu"
    root, paths = _tables(folder, layout, tables)
    rejects = Rejects(source=str(root), item_name="record")
    patients, visits = _eicu_stays(paths["patient"], rejects)
    frames = []

    def minutes(values: pd.Series) -> pd.Series:
        return pd.to_numeric(values, errors="coerce")

    def at(c: pd.DataFrame, offset: str) -> pd.Series:
        start = _text(c["patientunitstayid"]).map(visits["start"])
        return start + pd.to_timedelta(minutes(c[offset]), unit="min")

    def with_pid(c: pd.DataFrame) -> pd.DataFrame:
        c = c.copy()
        c["uniquepid"] = _text(c["patientunitstayid"]).map(visits["patient_id"]).fillna("?")
        return c

    path = paths.get("diagnosis")
    for c in _selected(paths, "diagnosis", EICU_TABLES, layout=layout):
        rows = []
        for line, icd, text in zip(c.index, _text(c["icd9code"]), _text(c["diagnosisstring"])):
            if icd:
                rows += [(line, s, code, text) for s, code in _eicu_codes(icd)]
            else:
                rows.append((line, "eICU-diagnosis" if text else "", text, text))
        lines = [r[0] for r in rows]
        x = with_pid(c.loc[lines])
        x.index = lines
        frames.append(_visit_events(
            x, path, visits, rejects, table="conditions",
            system=pd.Series([r[1] for r in rows], index=x.index),
            code=pd.Series([r[2] for r in rows], index=x.index), time=at(x, "diagnosisoffset"),
            description=pd.Series([r[3] for r in rows], index=x.index),
            pid_col="uniquepid", vid_col="patientunitstayid"))
    path = paths.get("medication")
    for c in _selected(paths, "medication", EICU_TABLES, ("drugordercancelled",),
                       layout=layout):
        c = with_pid(c)
        hicl = pd.to_numeric(c["drughiclseqno"], errors="coerce")
        hicl_text = hicl.map(lambda v: "" if pd.isna(v) or v == 0 else str(int(v)))
        system = np.where(hicl_text != "", "HICL", np.where(_text(c["drugname"]) != "",
                                                            "eICU-drug", ""))
        code = hicl_text.where(hicl_text != "", _text(c["drugname"]))
        if "drugordercancelled" in c:  # a cancelled order was never given
            cancelled = _text(c["drugordercancelled"]).str.lower() == "yes"
            bad = pd.Series(np.where(cancelled, "order cancelled", ""), index=c.index)
            keep = _reject_rows(rejects, path, c, bad.to_numpy(),
                                c["uniquepid"] + " " + _text(c["patientunitstayid"]))
            c, system, code = c.loc[keep], system[keep], code[keep]
        frames.append(_visit_events(
            c, path, visits, rejects, table="drugs", system=pd.Series(system, index=c.index),
            code=code, time=at(c, "drugstartoffset"), description=c["drugname"],
            pid_col="uniquepid", vid_col="patientunitstayid"))
    for stem, table, system, col, offset, value in (
            ("treatment", "procedures", "eICU-treatment", "treatmentstring", "treatmentoffset",
             None),
            ("lab", "labs", "eICU-lab", "labname", "labresultoffset", "labresult")):
        path = paths.get(stem)
        for c in _selected(paths, stem, EICU_TABLES, layout=layout):
            c = with_pid(c)
            frames.append(_visit_events(
                c, path, visits, rejects, table=table, system=system, code=c[col],
                time=at(c, offset), value=None if value is None else c[value],
                pid_col="uniquepid", vid_col="patientunitstayid"))
    return _finish(frames, patients, visits, rejects, root, layout)


def _eicu_stays(path: Path, rejects: Rejects) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients and unit stays of an eICU patient table, on the timeline of
    :func:`read_eicu`."""
    import pandas as pd

    layout = "eicu"
    p = _whole(path, EICU_TABLES["patient"], ("unitvisitnumber", "unitdischargestatus"),
               layout=layout)
    num = {c: pd.to_numeric(p[c], errors="coerce") for c in
           ("hospitaldischargeyear", "hospitaladmitoffset", "hospitaldischargeoffset",
            "unitdischargeoffset")}
    r = _Reasons(len(p))
    pid, vid = _text(p["uniquepid"]), _text(p["patientunitstayid"])
    hsid = _text(p["patienthealthsystemstayid"])
    r.mark(pid == "", "no patient id (uniquepid)")
    r.mark(vid == "", "no unit stay id")
    r.mark(vid.duplicated(keep=False) & (vid != ""), "unit stay id on several lines")
    r.mark(hsid == "", "no hospital stay id")
    year = num["hospitaldischargeyear"]
    r.mark(year.isna() | (year < 1900) | (year > 2200), "missing or unreadable "
           "hospitaldischargeyear")
    for col in ("hospitaladmitoffset", "hospitaldischargeoffset", "unitdischargeoffset"):
        r.mark(num[col].isna(), f"missing or unreadable {col}")
    r.mark(num["unitdischargeoffset"] < 0, "unit stay ends before it starts")
    r.mark(num["hospitaldischargeoffset"] < num["hospitaladmitoffset"],
           "hospital discharge before hospital admission")
    r.mark(num["hospitaladmitoffset"] > 0, "hospital admission after the unit admission")
    keep = _reject_rows(rejects, path, p, r.why, pid + " " + vid)
    p = p.loc[keep]
    num = {k: v[keep] for k, v in num.items()}
    pid, vid, hsid = pid[keep], vid[keep], hsid[keep]
    stays = pd.DataFrame({"patient_id": pid, "hospital_stay": hsid,
                          "year": num["hospitaldischargeyear"].astype(int),
                          "span": num["hospitaldischargeoffset"] - num["hospitaladmitoffset"]})
    # one anchor (hospital admission) per hospital stay, stays of a patient one after another
    first = (stays.groupby(["patient_id", "hospital_stay"], sort=False)
             .agg(year=("year", "min"), span=("span", "max")).reset_index())
    first["order"] = pd.to_numeric(first["hospital_stay"], errors="coerce")
    first = first.sort_values(["patient_id", "year", "order", "hospital_stay"], kind="stable")
    anchors = {}
    last_end: dict[str, pd.Timestamp] = {}
    for row in first.itertuples(index=False):
        t = pd.Timestamp(year=int(row.year), month=1, day=1)
        prev = last_end.get(row.patient_id)
        if prev is not None and prev + pd.Timedelta(days=1) > t:
            t = prev + pd.Timedelta(days=1)
        anchors[(row.patient_id, row.hospital_stay)] = t
        last_end[row.patient_id] = t + pd.Timedelta(minutes=float(row.span))
    anchor = pd.Series([anchors[(a, b)] for a, b in zip(pid, hsid)], index=p.index,
                       dtype="datetime64[ns]")
    start = anchor - pd.to_timedelta(num["hospitaladmitoffset"], unit="min")
    end = start + pd.to_timedelta(num["unitdischargeoffset"], unit="min")
    hosp_end = start + pd.to_timedelta(num["hospitaldischargeoffset"], unit="min")
    died = _text(p["hospitaldischargestatus"]).str.lower() == "expired"
    # a unit stay of a hospital stay that ended in death need not end in death itself
    in_unit = (_text(p["unitdischargestatus"]).str.lower() == "expired"
               if "unitdischargestatus" in p else died)
    visits = pd.DataFrame({"visit_id": vid, "patient_id": pid, "start": start, "end": end,
                           "died": died.to_numpy(), "hospital_stay": hsid,
                           "ended_in_death": in_unit.to_numpy()}, index=p.index)
    age = pd.to_numeric(p["age"], errors="coerce")
    order = visits.assign(age=age, death=hosp_end.where(died)).sort_values(["patient_id",
                                                                            "start"])
    people = order.groupby("patient_id", sort=True).agg(
        start=("start", "first"), age=("age", "first"), death=("death", "min"))
    sex = p.assign(patient_id=pid).groupby("patient_id")["gender"].first()
    birth = people["start"] - pd.to_timedelta(people["age"] * 365.25, unit="D")
    patients = pd.DataFrame({"patient_id": people.index, "birth_date": birth.to_numpy(),
                             "death_date": people["death"].to_numpy(),
                             "sex": sex.reindex(people.index).to_numpy()})
    return patients, visits.set_index("visit_id", drop=False)


# --------------------------------------------------------------------------- OMOP

#: OMOP gender concepts (the rest keep their concept id)
_OMOP_SEX = {"8507": "M", "8532": "F"}


def read_omop(folder: str | os.PathLike, *, tables=None) -> EventTable:
    """An OMOP CDM v5.4 folder (one CSV per table, comma- or tab-separated): visit
    occurrences are the visits, the person the patient. Codes are the standard concept ids
    (``*_concept_id``; concept 0, "no matching concept", is a reject), written with their
    vocabulary and code (``SNOMED:44054006``, ``RxNorm:1503297``) when the folder holds the
    vocabulary's CONCEPT table, else as ``OMOP:<concept id>``; the event table names are
    ``conditions``, ``drugs``, ``procedures``. Times: ``*_datetime`` when given, else the
    date at the end of its day; a condition of a visit is timed no earlier than the visit's
    end (diagnoses are coded by discharge; a site's ETL often dates them at admission).
    ``died``: the person's ``death_date`` falls within the visit (start date to end date).
    Birth: ``birth_datetime``, else ``year_of_birth`` with ``month_of_birth`` and
    ``day_of_birth`` (1 when missing)."""
    import pandas as pd

    layout = "omop"
    root, paths = _tables(folder, layout, tables)
    rejects = Rejects(source=str(root), item_name="record")
    raw = _whole(paths["person"], OMOP_TABLES["person"],
                 ("month_of_birth", "day_of_birth", "birth_datetime", "gender_concept_id"),
                 layout=layout)
    parts = [_text(raw.get(c, pd.Series("", index=raw.index))) for c in
             ("year_of_birth", "month_of_birth", "day_of_birth")]
    ymd = parts[0] + "-" + parts[1].where(parts[1] != "", "1").str.zfill(2) + "-" + \
        parts[2].where(parts[2] != "", "1").str.zfill(2)
    ymd = ymd.where(parts[0] != "", "")
    birth = _text(raw["birth_datetime"]) if "birth_datetime" in raw else ymd
    birth = birth.where(birth != "", ymd)
    d = _whole(paths["death"], OMOP_TABLES["death"], ("death_datetime",), layout=layout)
    death = d.assign(person_id=_text(d["person_id"]), when=_times(d["death_date"]))
    r = _Reasons(len(death))
    r.mark(~death["person_id"].isin(set(_text(raw["person_id"]))), "person not in person")
    r.mark(death["when"].isna(), "missing or unreadable death_date")
    keep = _reject_rows(rejects, paths["death"], death, r.why, death["person_id"])
    death = death[keep].groupby("person_id")["when"].min()
    sex = _text(raw["gender_concept_id"]) if "gender_concept_id" in raw else None
    patients = _patients(pd.DataFrame({
        "patient_id": raw["person_id"], "birth_date": birth,
        "death_date": None,
        "sex": None if sex is None else sex.map(lambda v: _OMOP_SEX.get(v, v or None))},
        index=raw.index), paths["person"].name, rejects)
    patients["death_date"] = patients["patient_id"].map(death).to_numpy()
    v = _whole(paths["visit_occurrence"], OMOP_TABLES["visit_occurrence"],
               ("visit_start_datetime", "visit_end_datetime"), layout=layout)
    start_day = _times(v["visit_start_date"])
    end_day = _times(v["visit_end_date"])
    start = _times(v["visit_start_datetime"]) if "visit_start_datetime" in v else start_day
    end = _times(v["visit_end_datetime"]) if "visit_end_datetime" in v else end_day
    start = start.where(start.notna(), start_day)
    end = end.where(end.notna(), end_day + pd.Timedelta(_END_OF_DAY))
    frame = pd.DataFrame({"visit_id": v["visit_occurrence_id"], "patient_id": v["person_id"],
                          "start": start, "end": end}, index=v.index)
    dday = _text(v["person_id"]).map(death)
    frame["died"] = ((dday >= start_day) & (dday <= end_day)).to_numpy()
    visits = _check_visits(frame, paths["visit_occurrence"], patients, rejects,
                           what="visit").set_index("visit_id", drop=False)
    frames = []
    for stem, table, concept, date in (
            ("condition_occurrence", "conditions", "condition_concept_id",
             "condition_start_date"),
            ("drug_exposure", "drugs", "drug_concept_id", "drug_exposure_start_date"),
            ("procedure_occurrence", "procedures", "procedure_concept_id", "procedure_date")):
        stamp = date.replace("_date", "_datetime")
        path = paths.get(stem)
        for c in _selected(paths, stem, OMOP_TABLES, (stamp,), layout=layout):
            day = _times(c[date])
            exact = _times(c[stamp]) if stamp in c else pd.Series(pd.NaT, index=c.index)
            time = exact.where(exact.notna(), day + pd.Timedelta(_END_OF_DAY))
            if table == "conditions":
                vend = _text(c["visit_occurrence_id"]).map(visits["end"])
                time = time.where(~(vend > time), vend)
            code = _text(c[concept]).replace("0", "")
            frames.append(_visit_events(c, path, visits, rejects, table=table, system="OMOP",
                                        code=code, time=time, pid_col="person_id",
                                        vid_col="visit_occurrence_id", need_visit=False,
                                        no_code=f"no {concept} (empty or 0)",
                                        patients=patients))
    concepts = _find(root, "concept")
    if concepts is not None:
        frames = _vocabularies(frames, concepts)
    return _finish(frames, patients, visits, rejects, root, layout)


def _vocabularies(frames: list, path: Path) -> list:
    """OMOP events with each concept id found in the CONCEPT table replaced by its
    vocabulary (system), code and name (read in chunks, keeping only the concepts used)."""
    import pandas as pd

    used = set().union(*(set(f["code"]) for f in frames)) if frames else set()
    found = []
    for c in _chunks(path, ("concept_id", "vocabulary_id", "concept_code"), ("concept_name",),
                     layout="omop"):
        ids = _text(c["concept_id"])
        hit = ids.isin(used)
        if hit.any():
            found.append(c[hit].assign(concept_id=ids[hit]))
    if not found:
        return frames
    known = pd.concat(found).drop_duplicates("concept_id").set_index("concept_id")
    out = []
    for f in frames:
        f = f.copy()
        hit = f["code"].isin(known.index)
        ids = f.loc[hit, "code"]
        f.loc[hit, "system"] = ids.map(known["vocabulary_id"]).to_numpy()
        if "concept_name" in known:
            f.loc[hit, "description"] = ids.map(known["concept_name"]).to_numpy()
        f.loc[hit, "code"] = ids.map(_text(known["concept_code"])).to_numpy()
        out.append(f)
    return out


# --------------------------------------------------------------------------- any layout

def detect_layout(source: str | os.PathLike) -> str:
    """The layout of a folder from the tables it holds (a file: ``events``); a folder that
    matches none is a one-line error naming what each layout needs."""
    p = Path(source)
    if not p.exists():
        raise MissingInputError(f"events '{p}' do not exist")
    if p.is_file():
        return "events"
    roots = [p] + ([p / "hosp"] if (p / "hosp").is_dir() else [])
    for root in roots:
        diag = _find(root, "diagnoses_icd")
        if diag is not None and _find(root, "admissions") is not None:
            return "mimic4" if "icd_version" in _header(diag) else "mimic3"
    if _find(p, "patient") is not None and _find(p, "diagnosis") is not None:
        return "eicu"
    if _find(p, "person") is not None and _find(p, "visit_occurrence") is not None:
        return "omop"
    if _find(p, "patients") is not None:
        return "synthea"
    raise BadInputError(
        f"cannot tell the record layout of '{p}': expected ADMISSIONS, PATIENTS and "
        "DIAGNOSES_ICD (mimic3, or mimic4 with icd_version), patient and diagnosis (eicu), "
        "person and visit_occurrence (omop), or patients.csv(.gz) with conditions, "
        "medications ... (synthea)", hint="name it with --format")


def _first_line(path: Path) -> str:
    from pmtoolkit.core.io import open_text

    with open_text(path) as fh:
        return fh.readline()


def _delimiter(path: Path) -> str:
    """Tab for a table whose header has tabs and no commas (OMOP vocabularies from Athena are
    tab-separated in files named .csv), else comma."""
    line = _first_line(path)
    return "\t" if "\t" in line and "," not in line else ","


def _header(path: Path) -> list[str]:
    line = _first_line(path)
    sep = "\t" if "\t" in line and "," not in line else ","
    return [c.strip().strip('"').lower() for c in line.split(sep)]


READERS = {"mimic3": read_mimic3, "mimic4": read_mimic4, "eicu": read_eicu,
           "omop": read_omop}
