"""Electronic health records as one event table, whatever the source.

The schema (:data:`EVENT_COLUMNS`) is one row per clinical event:

- ``patient_id`` (str), ``time`` (timestamp, timezone-naive UTC), ``code`` (str) and
  ``system`` (str: the code system, e.g. ``SNOMED-CT``, ``RxNorm``, ``CVX``, ``ICD10``);
- ``value`` (float, optional: a measurement), ``visit_id`` (str, optional: the encounter the
  event belongs to; events without one are grouped into visits by day), ``table`` (str: which
  source table it came from), ``description`` (str, optional).

A patients table (:data:`PATIENT_COLUMNS`) holds ``patient_id``, ``birth_date``,
``death_date`` (empty while alive) and ``sex``.

Importers: :func:`read_synthea` (a Synthea CSV export folder: conditions, medications,
immunizations, care plans, allergies, devices, with ENCOUNTER ids as visits) and
:func:`read_event_table` (any CSV/TSV/Parquet event table with those columns, names mappable);
hospital layouts (MIMIC-III, MIMIC-IV, eICU, OMOP), which also give a table of admissions,
are read by :mod:`pmtoolkit.ehr.importers`.
Nothing is dropped silently: events without a time, a patient or a code are counted and kept as
rejects with their table and line, and :class:`EventTable` logs what it holds (patients with
and without events included).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.core.io import Rejects

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

EVENT_COLUMNS = ("patient_id", "time", "code", "system", "value", "visit_id", "table",
                 "description")
PATIENT_COLUMNS = ("patient_id", "birth_date", "death_date", "sex")

#: Synthea CSV tables: file stem -> (time column, code system, kind of event)
SYNTHEA_TABLES: dict[str, tuple[str, str]] = {
    "conditions": ("START", "SNOMED-CT"),
    "medications": ("START", "RxNorm"),
    "immunizations": ("DATE", "CVX"),
    "careplans": ("START", "SNOMED-CT"),
    "allergies": ("START", "SNOMED-CT"),
    "devices": ("START", "SNOMED-CT"),
    "procedures": ("START", "SNOMED-CT"),
    "observations": ("DATE", "LOINC"),
}


@dataclass
class EventTable:
    """Events and patients of one cohort, with the records that could not be used."""

    events: pd.DataFrame
    patients: pd.DataFrame
    rejects: Rejects = field(default_factory=lambda: Rejects(source="events", item_name="record"))
    source: str = ""
    #: admissions (unit stays in eICU) of a hospital layout: ``visit_id``, ``patient_id``,
    #: ``start``, ``end``, ``died`` (in hospital), optionally ``hospital_stay``
    #: (:mod:`pmtoolkit.ehr.importers`); None for Synthea and plain event tables
    visits: pd.DataFrame | None = None

    @property
    def end(self) -> pd.Timestamp:
        """The last time anything was recorded: the end of follow-up for everyone alive."""
        import pandas as pd

        times = [self.events["time"].max()]
        if "death_date" in self.patients:
            times.append(self.patients["death_date"].max())
        times = [t for t in times if t is not None and not pd.isna(t)]
        return max(times) if times else pd.Timestamp.now()

    def summary(self) -> dict[str, int]:
        with_events = set(self.events["patient_id"].unique())
        return {"patients": len(self.patients),
                "patients_with_events": int(self.patients["patient_id"].isin(with_events).sum()),
                "events": len(self.events),
                "codes": int(self.events[["system", "code"]].drop_duplicates().shape[0]),
                "visits": (len(self.visits) if self.visits is not None
                           else int(self.events["visit_id"].nunique())),
                "deaths": int(self.patients["death_date"].notna().sum()),
                "rejected": len(self.rejects)}

    def log_summary(self) -> None:
        s = self.summary()
        log.info("%s: %d patients (%d with events, %d without), %d events of %d codes in %d "
                 "visits, %d deaths; %d record(s) rejected", self.source or "events",
                 s["patients"], s["patients_with_events"], s["patients"] - s["patients_with_events"],
                 s["events"], s["codes"], s["visits"], s["deaths"], s["rejected"])
        for reason, n in self.reject_counts().items():
            log.warning("%d record(s) rejected: %s", n, reason)

    def reject_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.rejects:
            key = r.reason.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        return counts


def _to_time(values) -> pd.Series:
    """Timestamps (UTC, made naive) from strings or datetimes; unparseable become NaT. Numbers
    are read as text (``20200131`` is a date; ``45`` is not), never as nanoseconds since
    1970."""
    import pandas as pd

    values = pd.Series(values)
    if pd.api.types.is_numeric_dtype(values) or values.dtype == object:
        # numbers, or text with numbers among it: each as the text it was written as
        values = values.map(lambda v: v if v is None or isinstance(v, str) or pd.isna(v)
                            else str(v))
    t = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return t.dt.tz_localize(None)


def _patients(frame: pd.DataFrame, source: str, rejects: Rejects) -> pd.DataFrame:
    """A patients table (schema columns; index: line numbers) with parsed dates. A patient
    without an id, with a birth or death date that is given but is not a date, or listed
    on several lines is a reject (its events then have no patient, and are rejects too):
    guessing would give them a wrong age or outcome."""
    import pandas as pd

    n = len(frame)
    ids = frame["patient_id"]
    text = ids.astype(str).str.strip()
    out = pd.DataFrame({"patient_id": text.to_numpy()}, index=frame.index)
    reason = np.where(ids.isna().to_numpy() | (text == "").to_numpy(), "no patient id", "")
    for col in ("birth_date", "death_date"):
        raw = frame[col] if col in frame else pd.Series([None] * n, index=frame.index)
        out[col] = _to_time(raw).to_numpy()
        given = raw.notna().to_numpy() & (raw.astype(str).str.strip() != "").to_numpy()
        unreadable = given & out[col].isna().to_numpy()
        reason = np.where((reason == "") & unreadable,
                          [f"unreadable {col} {v!r}" for v in raw], reason)
    repeated = text.duplicated(keep=False).to_numpy() & (reason == "")
    reason = np.where(repeated, "patient id on several lines", reason)
    out["sex"] = (frame["sex"].where(frame["sex"].isna(), frame["sex"].astype(str))
                  if "sex" in frame else None)
    bad = reason != ""
    for line, pid, why in zip(frame.index[bad], text[bad], reason[bad]):
        rejects.add(pid, int(line), f"{why}: {source}")
    return out.loc[~bad].reset_index(drop=True)


def _clean(frame: pd.DataFrame, table: str, rejects: Rejects, *, line_offset: int = 2
           ) -> pd.DataFrame:
    """Drop (into ``rejects``, with table and line) events without patient, time or code."""
    bad_reason = np.full(len(frame), "", dtype=object)
    for col, reason in (("patient_id", "no patient id"), ("time", "missing or unreadable time"),
                        ("code", "no code"), ("system", "no code system")):
        miss = frame[col].isna().to_numpy()
        if col != "time":
            miss |= (frame[col].astype(str).str.strip() == "").to_numpy()
        bad_reason[(bad_reason == "") & miss] = reason
    bad = bad_reason != ""
    for i in np.flatnonzero(bad):
        rejects.add(f"{table}: {frame['patient_id'].iloc[i]} {frame['code'].iloc[i]}",
                    int(i) + line_offset, f"{bad_reason[i]}: {table}")
    return frame.loc[~bad].reset_index(drop=True)


def _events_frame(**cols) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(cols)
    for c in EVENT_COLUMNS:
        if c not in frame:
            frame[c] = np.nan if c == "value" else None
    return frame[list(EVENT_COLUMNS)]


def read_synthea(folder: str | os.PathLike, *, tables: tuple[str, ...] | None = None
                 ) -> EventTable:
    """A Synthea CSV export (``patients.csv`` plus event tables, ``.csv`` or ``.csv.gz``) as
    an :class:`EventTable`; ENCOUNTER ids become visit ids. ``tables``: which event tables
    to read (default: every one of :data:`SYNTHEA_TABLES` present)."""
    import pandas as pd

    from pmtoolkit.core.io import read_table

    root = Path(folder)
    if not root.is_dir():
        raise MissingInputError(f"Synthea folder '{root}' does not exist")

    def find(stem: str) -> Path | None:
        for name in (f"{stem}.csv", f"{stem}.csv.gz"):
            if (root / name).is_file():
                return root / name
        return None

    patients_file = find("patients")
    if patients_file is None:
        raise BadInputError(f"'{root}' has no patients.csv(.gz)",
                            hint="point at the csv/ folder of a Synthea export")
    raw = read_table(patients_file, dtype=str, fmt="csv")
    for col in ("Id", "BIRTHDATE"):
        if col not in raw:
            raise BadInputError(f"'{patients_file}' has no {col} column: not a Synthea export")
    rejects = Rejects(source=str(root), item_name="record")
    patients = _patients(raw.rename(columns={"Id": "patient_id", "BIRTHDATE": "birth_date",
                                             "DEATHDATE": "death_date", "GENDER": "sex"}),
                         patients_file.name, rejects)
    wanted = tables if tables is not None else tuple(SYNTHEA_TABLES)
    unknown = [t for t in wanted if t not in SYNTHEA_TABLES]
    if unknown:
        raise BadInputError(f"unknown Synthea table(s) {unknown}",
                            hint="tables: " + ", ".join(SYNTHEA_TABLES))
    frames = []
    for stem in wanted:
        path = find(stem)
        if path is None:
            if tables is not None:
                raise BadInputError(f"'{root}' has no {stem}.csv(.gz)")
            continue
        time_col, system = SYNTHEA_TABLES[stem]
        t = read_table(path, dtype=str, fmt="csv").reset_index(drop=True)
        missing = [c for c in (time_col, "PATIENT", "CODE") if c not in t]
        if missing:
            raise BadInputError(f"'{path}' lacks column(s) {missing}: not a Synthea {stem} table")
        value = pd.to_numeric(t["VALUE"], errors="coerce") if stem == "observations" else np.nan
        frame = _events_frame(
            patient_id=t["PATIENT"], time=_to_time(t[time_col]), code=t["CODE"].str.strip(),
            system=system, value=value, visit_id=t.get("ENCOUNTER"), table=stem,
            description=t.get("DESCRIPTION"))
        frames.append(_clean(frame, stem, rejects))
    events = (pd.concat(frames, ignore_index=True) if frames else _events_frame())
    known = set(patients["patient_id"])
    orphan = ~events["patient_id"].isin(known)
    for i in np.flatnonzero(orphan.to_numpy()):
        rejects.add(f"{events['table'].iloc[i]}: {events['patient_id'].iloc[i]}", None,
                    "patient not in patients table")
    events = events.loc[~orphan.to_numpy()].sort_values(["patient_id", "time"], kind="stable")
    table = EventTable(events.reset_index(drop=True), patients, rejects, source=str(root))
    table.log_summary()
    return table


def read_event_table(path: str | os.PathLike, *, patients: str | os.PathLike | None = None,
                     columns: dict[str, str] | None = None, system: str | None = None
                     ) -> EventTable:
    """A plain event table (CSV/TSV/Parquet, ``.gz`` too) with the schema's columns, named
    as in :data:`EVENT_COLUMNS` or mapped by ``columns`` (schema name -> your column).
    ``system`` fills a missing ``system`` column. ``patients``: an optional table with
    ``patient_id``, ``birth_date``, ``death_date``, ``sex`` (mapped the same way); without
    it the patients are those with events, and nobody has a death date."""
    import pandas as pd

    from pmtoolkit.core.io import read_table

    mapping = {k: v for k, v in (columns or {}).items()}
    schema = dict.fromkeys(EVENT_COLUMNS + PATIENT_COLUMNS)
    unknown = [k for k in mapping if k not in schema]
    if unknown:
        raise BadInputError(f"--column {unknown[0]}=…: {unknown[0]!r} is not a schema column",
                            hint="schema columns: " + ", ".join(schema))
    frame = read_table(path)
    renamed = _mapped(frame, mapping, EVENT_COLUMNS, path)
    required = ["patient_id", "time", "code"] + ([] if system else ["system"])
    missing = [c for c in required if c not in renamed]
    if missing:
        raise BadInputError(f"'{path}' has no column(s) {missing}",
                            hint="columns: " + ", ".join(map(str, frame.columns))
                            + "; map yours with --column schema=yours")
    if "system" not in renamed:
        renamed["system"] = system
    renamed["time"] = _to_time(renamed["time"])
    for c in ("patient_id", "code", "system", "visit_id", "table"):
        if c in renamed:
            renamed[c] = renamed[c].where(renamed[c].isna(), renamed[c].astype(str))
    if "value" in renamed:
        value = pd.to_numeric(renamed["value"], errors="coerce")
        text = int((value.isna() & renamed["value"].notna()).sum())
        if text:
            log.warning("%s: %d value(s) that are not numbers read as missing", path, text)
        renamed["value"] = value
    if "table" not in renamed:
        renamed["table"] = Path(path).name
    events = _events_frame(**{c: renamed[c].to_numpy() for c in EVENT_COLUMNS
                              if c in renamed})
    rejects = Rejects(source=str(path), item_name="record")
    events = _clean(events, Path(path).name, rejects)
    if patients is not None:
        table = read_table(patients)
        p = _mapped(table, mapping, PATIENT_COLUMNS, patients)
        if "patient_id" not in p:
            raise BadInputError(f"'{patients}' has no patient_id column",
                                hint="columns: " + ", ".join(map(str, table.columns)))
        pt = _patients(p, Path(patients).name, rejects)
        orphan = ~events["patient_id"].isin(set(pt["patient_id"]))
        for i in np.flatnonzero(orphan.to_numpy()):
            rejects.add(events["patient_id"].iloc[i], None, "patient not in patients table")
        events = events.loc[~orphan.to_numpy()]
    else:
        unmapped = [k for k in mapping if k in PATIENT_COLUMNS and k != "patient_id"]
        if unmapped:
            raise BadInputError(f"--column {unmapped[0]}=… maps a column of the patients "
                                "table", hint="give the patients table with --patients")
        ids = pd.unique(events["patient_id"])
        pt = pd.DataFrame({"patient_id": ids, "birth_date": pd.NaT, "death_date": pd.NaT,
                           "sex": None})
    events = events.sort_values(["patient_id", "time"], kind="stable").reset_index(drop=True)
    table = EventTable(events, pt, rejects, source=str(path))
    table.log_summary()
    return table


def _mapped(frame: pd.DataFrame, mapping: dict[str, str], names: tuple[str, ...],
            path) -> pd.DataFrame:
    """``frame`` with the user's columns renamed to the schema's ``names``: a mapped column
    must exist, and two columns must not end up with one name."""
    own = {k: v for k, v in mapping.items() if k in names}
    # (a mapping for both tables, like patient_id=subject, may be needless in one)
    absent = [(k, v) for k, v in own.items() if v not in frame.columns and k not in frame]
    if absent:
        k, v = absent[0]
        raise BadInputError(f"'{path}' has no column {v!r} (--column {k}={v})",
                            hint="columns: " + ", ".join(map(str, frame.columns)))
    renamed = frame.rename(columns={v: k for k, v in own.items() if v in frame.columns})
    twice = renamed.columns[renamed.columns.duplicated()]
    if len(twice):
        raise BadInputError(f"'{path}': two columns would be the {twice[0]!r} column",
                            hint=f"it has a {twice[0]!r} column already; map only one")
    return renamed
