"""Prediction tasks over an :class:`~pmtoolkit.ehr.events.EventTable`: labelled samples built
without look-ahead.

A sample is one patient at one **index time** (the last event of an index visit): its history
is every event at or before the index time — never later — grouped into visits (by visit id,
else by day), the most recent ``max_visits`` kept; its label looks only after the index time:

- ``mortality``: death within ``horizon_days`` after the index time;
- ``onset``: the first event of a code in ``codes`` within ``horizon_days`` after the index
  time; patients who already had one at or before the index time are not at risk and are
  excluded;
- ``next_visit``: the codes (of ``target_tables``, optionally only ``codes``) of the next
  visit after the index time that has any, if it begins within ``horizon_days`` (Doctor AI's
  task); a multi-label sample whose ``targets`` list them.

A sample whose outcome cannot be known is excluded, and counted: follow-up shorter than the
horizon without the outcome (the data end, or, for onset, death first). Which visits serve as
index visits is ``index``: one ``random_visit`` per patient (seeded; the default, so every
patient weighs the same), ``each_visit``, or the ``last_visit`` with full follow-up.

Admission tasks (PyHealth's, on the visits table of a hospital layout,
:mod:`pmtoolkit.ehr.importers`) make one candidate sample per admission (unit stay in eICU);
the history is again every event at or before the index time:

- ``in_hospital_mortality``: index time ``observation_hours`` after admission; label: the
  stay's ``died`` (MIMIC ``hospital_expire_flag``, eICU ``hospitaldischargestatus`` Expired,
  OMOP a death date within the visit); stays that ended by the index time are excluded;
- ``length_of_stay``: the same index time; label: whole days from admission to discharge
  more than ``los_days`` (PyHealth's ``LengthOfStayGreaterThanX``, floor of the days);
- ``readmission``: index time the discharge; label: the next admission starts less than
  ``readmission_days`` after it (eICU: the next unit stay belongs to the same hospital
  stay, PyHealth's ICU readmission); admissions ending in death and the last admission of
  a patient (nothing to label it with, as PyHealth drops it) are excluded;
- ``next_admission_mortality``: index time the discharge; label: the next admission's
  ``died`` (PyHealth's ``mortality_prediction``); the same exclusions as readmission.

PyHealth's within-stay tasks read the whole stay's diagnoses, which are coded at discharge;
here a stay's diagnoses are known at its discharge and so are not in the history of its own
within-stay sample.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.ehr.config import TaskConfig

if TYPE_CHECKING:
    import pandas as pd

    from pmtoolkit.ehr.events import EventTable

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """One patient at one index time."""

    patient_id: str
    index_time: pd.Timestamp
    label: int
    visits: list[list[str]]  # tokens "SYSTEM:CODE", oldest visit first
    days_before: list[float]  # days from each visit to the index time
    age: float | None = None
    sex: str | None = None
    targets: list[str] | None = None  # next_visit: the codes to predict

    def to_dict(self) -> dict[str, Any]:
        d = {"patient_id": self.patient_id, "index_time": str(self.index_time),
             "label": self.label, "visits": self.visits, "days_before": self.days_before,
             "age": self.age, "sex": self.sex}
        if self.targets is not None:
            d["targets"] = self.targets
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Sample:
        """A sample as :meth:`to_dict` writes it (a dataset line). Anything else is a
        ValueError saying what is wrong: not a JSON object, a missing or mistyped field,
        ``visits`` and ``days_before`` of different lengths, days negative or not in time
        order (oldest visit first, so never increasing)."""
        import pandas as pd

        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, found {_json_kind(d)}")  # noqa: TRY004
        for key in ("patient_id", "index_time", "label", "visits", "days_before"):
            if key not in d:
                raise ValueError(f"no {key!r}")
        pid = d["patient_id"]
        if isinstance(pid, bool) or not isinstance(pid, (str, int)) or not str(pid).strip():
            raise ValueError(f"'patient_id' must be a non-empty string, not {_json_kind(pid)}")
        when = d["index_time"]
        try:
            t = pd.Timestamp(when) if isinstance(when, str) else pd.NaT
        except (ValueError, OverflowError):
            t = pd.NaT
        if pd.isna(t):
            raise ValueError(f"'index_time' {when!r} is not a date and time")
        label = d["label"]
        if not _is_number(label) or label not in (0, 1):
            raise ValueError(f"'label' must be 0 or 1, not {label!r}")
        visits, days = d["visits"], d["days_before"]
        if not isinstance(visits, list) or not visits:
            raise ValueError(f"'visits' must be a non-empty list of visits, not "
                             f"{_json_kind(visits)}")
        for k, visit in enumerate(visits):
            if not isinstance(visit, list) or not all(isinstance(c, str) for c in visit):
                raise ValueError(f"visit {k} must be a list of code strings")
        if not isinstance(days, list) or not all(_is_number(x) for x in days):
            raise ValueError("'days_before' must be a list of numbers")
        if len(days) != len(visits):
            raise ValueError(f"{len(visits)} visits but {len(days)} 'days_before' values")
        x = np.asarray(days, dtype=float)
        if not np.isfinite(x).all() or (x < 0).any():
            raise ValueError("'days_before' must be finite and not negative")
        if (np.diff(x) > 0).any():
            k = int(np.flatnonzero(np.diff(x) > 0)[0])
            raise ValueError(f"'days_before' must not increase (visits oldest first): "
                             f"{days[k]} then {days[k + 1]}")
        age, sex, targets = d.get("age"), d.get("sex"), d.get("targets")
        if age is not None and not (_is_number(age) and 0 <= age <= 200):
            raise ValueError(f"'age' must be a number of years or null, not {age!r}")
        if sex is not None and not isinstance(sex, str):
            raise ValueError(f"'sex' must be a string or null, not {_json_kind(sex)}")
        if targets is not None and not (isinstance(targets, list)
                                        and all(isinstance(c, str) for c in targets)):
            raise ValueError("'targets' must be a list of code strings or null")
        return cls(str(pid), t, int(label), visits, [float(v) for v in x],
                   None if age is None else float(age), sex, targets)


def _is_number(v: Any) -> bool:
    """A finite JSON number (not a boolean)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer beyond any float
        return False


def _json_kind(v: Any) -> str:
    """What a JSON value is, for a message: 'a JSON list', 'a JSON string', ..."""
    kinds = ((bool, "true/false"), (str, "a JSON string"), (list, "a JSON list"),
             (dict, "a JSON object"), ((int, float), "a number"))
    if v is None:
        return "null"
    return next((name for t, name in kinds if isinstance(v, t)), type(v).__name__)


@dataclass
class Samples:
    """The samples of a task and the count of what was excluded, and why."""

    samples: list[Sample]
    excluded: Counter
    config: TaskConfig

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    @property
    def patients(self) -> np.ndarray:
        return np.array([s.patient_id for s in self.samples], dtype=object)

    def summary(self) -> dict[str, Any]:
        y = self.labels
        return {"samples": len(y), "positives": int(y.sum()),
                "patients": len(set(self.patients)), "excluded": dict(self.excluded)}


def token(system: str, code: str) -> str:
    return f"{system}:{code}"


def _code_matcher(codes: tuple[str, ...]):
    if not codes:
        raise BadInputError("an onset task needs --codes (the outcome's codes)")
    full = {c for c in codes if ":" in c}
    bare = {c for c in codes if ":" not in c}

    def match(systems: np.ndarray, values: np.ndarray) -> np.ndarray:
        tok = np.char.add(np.char.add(systems.astype(str), ":"), values.astype(str))
        return np.isin(values.astype(str), list(bare)) | np.isin(tok, list(full))

    return match


#: tasks over events and death dates (any source)
EVENT_TASKS = ("mortality", "onset", "next_visit")
#: tasks over admissions (the visits table of a hospital layout), as PyHealth defines them
ADMISSION_TASKS = ("in_hospital_mortality", "next_admission_mortality", "readmission",
                   "length_of_stay")
#: admission tasks predicted some hours into the stay (the others at discharge)
_WITHIN_STAY = ("in_hospital_mortality", "length_of_stay")


def _indexed(candidates: list, index: str, rng) -> list:
    """The index visits kept of a patient's eligible ones: one at random, the last, or all."""
    if index == "random_visit":
        return [candidates[int(rng.integers(len(candidates)))]]
    if index == "last_visit":
        return candidates[-1:]
    return candidates


def _min_visits(config: TaskConfig, table: EventTable | None = None) -> int:
    """``min_visits``, or its default: 1 for admission tasks and hospital layouts (one
    admission is a history), else 2."""
    if config.min_visits is not None:
        return config.min_visits
    hospital = table is not None and table.visits is not None
    return 1 if config.kind in ADMISSION_TASKS or hospital else 2


def build_samples(table: EventTable, config: TaskConfig | None = None) -> Samples:
    """Labelled samples of ``config``'s task from ``table`` (see the module docstring)."""
    import pandas as pd

    config = config or TaskConfig()
    if config.kind not in EVENT_TASKS + ADMISSION_TASKS:
        raise BadInputError(f"unknown task {config.kind!r}",
                            hint=", ".join(EVENT_TASKS + ADMISSION_TASKS))
    if config.kind in ADMISSION_TASKS:
        return _admission_samples(table, config)
    if config.horizon_days <= 0:
        raise BadInputError("horizon_days must be positive")
    match = _code_matcher(tuple(config.codes)) if config.kind == "onset" else None
    targets_by_patient = _target_visits(table, config) if config.kind == "next_visit" else {}
    events = table.events
    if config.tables:
        unknown = sorted(set(config.tables) - set(events["table"].unique()))
        if unknown:
            raise BadInputError(f"no events from table(s) {unknown}",
                                hint="tables: " + ", ".join(sorted(events["table"].unique())))
        events = events[events["table"].isin(config.tables)]
    end = table.end
    horizon = pd.Timedelta(days=config.horizon_days)
    rng = np.random.default_rng(config.seed)
    excluded: Counter = Counter()
    samples: list[Sample] = []
    people = table.patients.set_index("patient_id")
    grouped = dict(tuple(events.groupby("patient_id", sort=True)))
    for pid in people.index:
        ev = grouped.get(pid)
        if ev is None or ev.empty:
            excluded["no events"] += 1
            continue
        death = people.at[pid, "death_date"]
        birth = people.at[pid, "birth_date"]
        times = ev["time"].to_numpy()
        systems = ev["system"].to_numpy()
        codes = ev["code"].to_numpy()
        history, firsts = _visits(ev)
        onset = None
        if match is not None:
            hit = match(systems, codes)
            onset = pd.Timestamp(times[hit].min()) if hit.any() else None
        candidates = []
        later = targets_by_patient.get(pid, ([], []))
        for k, (_, last, _, _) in enumerate(history):
            t = pd.Timestamp(last)
            if k + 1 < _min_visits(config, table):
                continue
            reason = _exclusion(config, t, death, onset, end, horizon, birth)
            if reason is None and config.kind == "next_visit":
                nxt = _next_targets(later, t, horizon)
                reason = None if nxt else "index visits without a later visit with target " \
                                          "codes within the horizon"
            if reason:
                excluded[reason] += 1
                continue
            candidates.append(t)
        if not candidates:
            excluded["patients without an eligible index visit"] += 1
            continue
        for t in _indexed(candidates, config.index, rng):
            if config.kind == "mortality":
                label = int(not pd.isna(death) and death <= t + horizon)
            elif config.kind == "onset":
                label = int(onset is not None and onset <= t + horizon)
            else:
                label = 1
            sample = _sample(pid, t, history, firsts, config, label, birth,
                             people.at[pid, "sex"])
            if config.kind == "next_visit":
                sample.targets = _next_targets(later, t, horizon)
            samples.append(sample)
    out = Samples(samples, excluded, config)
    s = out.summary()
    log.info("%s task (%d days): %d samples of %d patients, %d positive; excluded: %s",
             config.kind, config.horizon_days, s["samples"], s["patients"], s["positives"],
             ", ".join(f"{n} {r}" for r, n in excluded.most_common()) or "none")
    return out


def _admission_samples(table: EventTable, config: TaskConfig) -> Samples:
    """Samples of an admission task (see the module docstring): one candidate per admission,
    its history every event at or before the index time (earlier admissions, and the
    current one's events so far), its label from the visits table."""
    import pandas as pd

    if table.visits is None:
        raise BadInputError(f"task {config.kind} needs admissions: records of a hospital "
                            "layout", hint="build from --format mimic3, mimic4, eicu or omop")
    events = table.events
    if config.tables:
        unknown = sorted(set(config.tables) - set(events["table"].unique()))
        if unknown:
            raise BadInputError(f"no events from table(s) {unknown}",
                                hint="tables: " + ", ".join(sorted(events["table"].unique())))
        events = events[events["table"].isin(config.tables)]
    observe = pd.Timedelta(hours=config.observation_hours)
    window = pd.Timedelta(days=config.readmission_days)
    rng = np.random.default_rng(config.seed)
    people = table.patients.set_index("patient_id")
    grouped = dict(tuple(events.groupby("patient_id", sort=True)))
    excluded: Counter = Counter()
    samples: list[Sample] = []
    same_stay = "hospital_stay" in table.visits
    for pid, stays in table.visits.groupby("patient_id", sort=True):
        rows = list(stays.itertuples(index=False))
        ev = grouped.get(pid)
        history, firsts = (_visits(ev) if ev is not None and len(ev)
                           else ([], np.array([], dtype="datetime64[ns]")))
        birth, death = people.at[pid, "birth_date"], people.at[pid, "death_date"]
        chosen = []
        for k, v in enumerate(rows):
            nxt = rows[k + 1] if k + 1 < len(rows) else None
            reason, t, label = _admission_label(config, v, nxt, observe, window, same_stay)
            if reason is None and config.min_age is not None and not pd.isna(birth) \
                    and _years(t, birth) < config.min_age:
                reason = "admissions under the minimum age"
            if reason is None and not pd.isna(death) and death < t.normalize():
                reason = "admissions after the patient's death date"
            sample = None
            if reason is None:
                sample = _sample(pid, t, history, firsts, config, label, birth,
                                 people.at[pid, "sex"])
                if not sample.visits:
                    reason = "admissions without codes before the index time"
                elif len(sample.visits) < _min_visits(config):
                    reason = "admissions with fewer visits of history than min_visits"
            if reason:
                excluded[reason] += 1
                continue
            chosen.append(sample)
        if not chosen:
            excluded["patients without an eligible admission"] += 1
            continue
        samples.extend(_indexed(chosen, config.index, rng))
    for pid in set(people.index) - set(table.visits["patient_id"]):
        excluded["patients without admissions"] += 1
    out = Samples(samples, excluded, config)
    s = out.summary()
    log.info("%s task: %d samples of %d patients, %d positive; excluded: %s", config.kind,
             s["samples"], s["patients"], s["positives"],
             ", ".join(f"{n} {r}" for r, n in excluded.most_common()) or "none")
    return out


def _admission_label(config: TaskConfig, v, nxt, observe, window, same_stay: bool):
    """``(exclusion reason or None, index time, label)`` of admission ``v`` (``nxt``: the
    patient's next admission or None)."""
    if config.kind in _WITHIN_STAY:
        t = v.start + observe
        if v.end <= t:
            return "stays ended before the observation time", t, 0
        if config.kind == "in_hospital_mortality":
            return None, t, int(v.died)
        return None, t, int((v.end - v.start).days > config.los_days)
    t = v.end
    if getattr(v, "ended_in_death", v.died):
        return "admissions ending in death (no next admission)", t, 0
    if nxt is None:
        return "last admissions (no next admission to label them)", t, 0
    if config.kind == "next_admission_mortality":
        return None, t, int(nxt.died)
    if same_stay:  # eICU: an ICU readmission is a next unit stay of the same hospital stay
        return None, t, int(nxt.hospital_stay == v.hospital_stay)
    return None, t, int(nxt.start - v.end < window)


def _target_visits(table: EventTable, config: TaskConfig) -> dict[str, tuple[list, list]]:
    """next_visit: per patient, the first times of the visits holding target codes (all
    tables, not only those the history draws on) and each one's sorted target tokens."""
    events = table.events
    unknown = sorted(set(config.target_tables) - set(events["table"].unique()))
    if not config.target_tables or unknown:
        raise BadInputError(f"no events from target table(s) {unknown or '(none given)'}",
                            hint="tables: " + ", ".join(sorted(events["table"].unique())))
    events = events[events["table"].isin(config.target_tables)]
    if config.codes:
        events = events[_code_matcher(tuple(config.codes))(events["system"].to_numpy(),
                                                           events["code"].to_numpy())]
    out = {}
    for pid, ev in events.groupby("patient_id", sort=False):
        history, firsts = _visits(ev)
        out[pid] = (firsts, [sorted(set(h[2])) for h in history])
    return out


def _next_targets(later: tuple[list, list], t, horizon) -> list[str]:
    """The target tokens of the first target visit beginning after ``t``, within the horizon
    (empty when there is none)."""
    firsts, tokens = later
    if len(firsts) == 0:
        return []
    k = int(np.searchsorted(firsts, np.datetime64(t), side="right"))
    if k >= len(firsts) or firsts[k] > np.datetime64(t + horizon):
        return []
    return tokens[k]


def _visits(ev: pd.DataFrame) -> tuple[list[tuple], np.ndarray]:
    """One patient's visits in time order, each ``(first time, last time, tokens, times)``
    with its ``SYSTEM:CODE`` tokens in time order, and the array of first times. Events
    without a visit id form a visit per day; ties of first and last time are broken by the
    visit id, so the order never depends on the order of the input rows."""
    times = ev["time"].to_numpy()
    tokens = np.char.add(np.char.add(ev["system"].to_numpy().astype(str), ":"),
                         ev["code"].to_numpy().astype(str))
    visit = ev["visit_id"].astype(object).where(ev["visit_id"].notna(),
                                                ev["time"].dt.strftime("day:%Y-%m-%d"))
    order: dict[Any, list[int]] = {}
    for i, v in enumerate(visit.to_numpy()):
        order.setdefault(v, []).append(i)
    keyed = sorted(order.items(), key=lambda kv: (times[kv[1]].min(), times[kv[1]].max(),
                                                  str(kv[0])))
    history = []
    for _, idx in keyed:
        ii = sorted(idx, key=lambda i: times[i])
        history.append((times[ii].min(), times[ii].max(), [str(tokens[i]) for i in ii],
                        times[ii]))
    return history, np.array([h[0] for h in history])


def _exclusion(config, t, death, onset, end, horizon, birth) -> str | None:
    import pandas as pd

    if config.min_age is not None and not pd.isna(birth) \
            and _years(t, birth) < config.min_age:
        return "index visits under the minimum age"
    if not pd.isna(death) and death <= t:
        return "index visits at or after death"
    if config.kind == "next_visit":
        return None  # the next visit is looked for by the caller
    if config.kind == "mortality":
        died = not pd.isna(death) and death <= t + horizon
        if not died and end < t + horizon:
            return "index visits with follow-up shorter than the horizon"
        return None
    if onset is not None and onset <= t:
        return "index visits after the onset (not at risk)"
    if onset is not None and onset <= t + horizon:
        return None
    if not pd.isna(death) and death <= t + horizon:
        return "index visits with death before the horizon (outcome unknown)"
    if end < t + horizon:
        return "index visits with follow-up shorter than the horizon"
    return None


def _years(t, birth) -> float:
    """Years from ``birth`` to ``t``, also beyond the 292 years a pandas Timedelta holds
    (MIMIC-III's shifted births of the very old)."""
    import pandas as pd

    return float((pd.Timestamp(t).to_pydatetime() - pd.Timestamp(birth).to_pydatetime()).days
                 / 365.25)


def _sample(pid, t, history, firsts, config, label, birth, sex) -> Sample:
    """The sample at index time ``t``: the visits that began at or before ``t``, each cut to
    its events at or before ``t`` (nothing later is ever read)."""
    import pandas as pd

    t64 = np.datetime64(t)
    n = int(np.searchsorted(firsts, t64, side="right"))
    visits, days = [], []
    for first, last, toks, ts in history[max(0, n - config.max_visits):n]:
        if last > t64:  # a visit still open at the index time: only its past events
            toks = [tok for tok, tt in zip(toks, ts) if tt <= t64]
        # the latest codes: a discharge diagnosis outweighs the hundredth drug order before it
        visits.append(toks[-config.max_codes_per_visit:])
        days.append(float((t64 - first) / np.timedelta64(1, "D")))
    age = None if pd.isna(birth) else _years(t, birth)
    if age is not None and age > 150:  # MIMIC-III moves the birth of those over 89 300 years back
        age = None
    return Sample(str(pid), t, label, visits, days, age, None if sex is None else str(sex))


def patient_split(samples: Samples, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Sample indices of train / valid / test, split by patient (every sample of a patient on
    one side), stratified by whether a patient has any positive sample."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise BadInputError(f"split fractions {fractions} must be three non-negative numbers "
                            "summing to 1")
    pids = samples.patients
    y = samples.labels
    positive = {p for p, lab in zip(pids, y) if lab}
    rng = np.random.default_rng(seed)
    side: dict[str, str] = {}
    for group in (sorted(set(pids) & positive), sorted(set(pids) - positive)):
        order = rng.permutation(len(group))
        n_train = round(fractions[0] * len(group))
        n_valid = round(fractions[1] * len(group))
        for rank, j in enumerate(order):
            side[group[j]] = ("train" if rank < n_train else
                              "valid" if rank < n_train + n_valid else "test")
    parts = np.array([side[p] for p in pids])
    return {name: np.flatnonzero(parts == name) for name in ("train", "valid", "test")}


def current_samples(table: EventTable, config: TaskConfig | None = None) -> Samples:
    """One unlabelled sample per living patient, indexed at their last visit: what a model
    scores for "risk as of now". The history is built as for training (``max_visits``,
    ``max_codes_per_visit``, ``tables``); labels are -1 (unknown). Patients with a death
    date, without events or with fewer than ``min_visits`` visits are counted and skipped."""
    import pandas as pd

    config = config or TaskConfig()
    events = table.events
    if config.tables:
        events = events[events["table"].isin(config.tables)]
    people = table.patients.set_index("patient_id")
    grouped = dict(tuple(events.groupby("patient_id", sort=True)))
    excluded: Counter = Counter()
    samples = []
    for pid in people.index:
        ev = grouped.get(pid)
        if ev is None or ev.empty:
            excluded["no events"] += 1
            continue
        if not pd.isna(people.at[pid, "death_date"]):
            excluded["deceased patients"] += 1
            continue
        history, firsts = _visits(ev)
        if len(history) < _min_visits(config, table):
            excluded["patients with fewer visits than min_visits"] += 1
            continue
        t = pd.Timestamp(max(h[1] for h in history))
        samples.append(_sample(pid, t, history, firsts, config, -1,
                               people.at[pid, "birth_date"], people.at[pid, "sex"]))
    log.info("%d patients scored as of their last visit; skipped: %s", len(samples),
             ", ".join(f"{n} {r}" for r, n in excluded.most_common()) or "none")
    return Samples(samples, excluded, config)
