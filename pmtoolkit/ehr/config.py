"""Settings of EHR tasks and risk models (light to import: CLI options and TOML keys come
from them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    DROPOUT,
    LAYERS,
    LEARNING_RATE,
    SEED,
    WEIGHT_DECAY,
    WIDTH,
    Range,
    training_fields,
)


@dataclass
@training_fields(epochs=30, patience=5, batch_size=64, metric="validation AUPRC",
                 items="samples")
class RiskModelConfig:
    """A risk model over a patient's visits (each visit a set of codes).

    ``logistic``: logistic regression on the bag of codes seen (the baseline); ``gru`` /
    ``lstm``: a recurrent network over visit embeddings (Doctor AI's family); ``retain``: two
    reverse-time attention RNNs, over visits and over embedding dimensions (Choi et al. 2016),
    whose attention gives each code's contribution exactly; ``transformer``: self-attention
    over visits with a time encoding. Visit embedding: the sum of its codes' embeddings."""

    arch: Literal["logistic", "gru", "lstm", "retain", "transformer"] = field(
        default="gru", metadata={"help": "model"})
    embedding_dim: int = field(default=64, metadata={"range": WIDTH, "help": "code embedding size"})
    hidden_dim: int = field(default=64, metadata={"range": WIDTH,
        "help": "recurrent / attention width"})
    layers: int = field(default=1, metadata={"range": LAYERS,
        "help": "recurrent or transformer layers"})
    heads: int = field(default=4, metadata={"range": Range(1, 64),
        "help": "transformer attention heads"})
    dropout: float = field(default=0.3, metadata={"range": DROPOUT,
        "help": "dropout on embeddings and outputs"})
    min_code_count: int = field(default=1, metadata={"range": Range(1, 10**9),
        "help": "codes seen in fewer training samples share the unknown token"})
    time_encoding: bool = field(default=True, metadata={
        "help": "give the network each visit's log days before the index time"})
    pos_weight: bool = field(default=True, metadata={
        "help": "weight positive samples by negatives / positives in the loss (imbalance)"})
    calibration: Literal["platt", "temperature", "isotonic", "none"] = field(
        default="platt", metadata={
            "help": "calibrate probabilities on the validation samples: platt (sigmoid(a z + "
                    "b) of the logit z; undoes the shift of positive weighting), temperature "
                    "(z / T only), isotonic, or none"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"range": WEIGHT_DECAY,
        "help": "AdamW weight decay"})


@dataclass
class TaskConfig:
    """What to predict, from which history."""

    kind: Literal["mortality", "onset", "next_visit", "in_hospital_mortality",
                  "next_admission_mortality", "readmission", "length_of_stay"] = field(
        default="mortality", metadata={
            "help": "mortality: death within the horizon; onset: first code of --codes within "
                    "it; next_visit: the codes of the next visit (within the horizon) that has "
                    "codes of --target-tables (diagnoses by default), a multi-label task. "
                    "Admission tasks (MIMIC, eICU, OMOP): in_hospital_mortality: death in "
                    "hospital during the stay, predicted --observation-hours after admission; "
                    "next_admission_mortality: death during the next admission, predicted at "
                    "discharge (PyHealth's mortality_prediction); readmission: a next admission "
                    "within --readmission-days of discharge, predicted at discharge; "
                    "length_of_stay: a stay of more than --los-days whole days, predicted "
                    "--observation-hours after admission"})
    horizon_days: int = field(default=365, metadata={"range": Range(1, 36_500),
        "help": "days after the index time"})
    codes: tuple[str, ...] = field(default=(), metadata={
        "help": "onset: the outcome's codes (CODE or SYSTEM:CODE), e.g. 44054006 for type 2 "
                "diabetes in SNOMED-CT"})
    index: Literal["random_visit", "each_visit", "last_visit"] = field(
        default="random_visit", metadata={
            "help": "index visits per patient: one at random (seeded), each, or the last with "
                    "full follow-up"})
    min_visits: int | None = field(default=None, metadata={"range": Range(1, 100_000),
        "help": "visits of history required at the index time (default: 2; admission "
                "tasks and hospital layouts: 1, the current admission's events so far "
                "counting as a visit)"})
    min_age: float | None = field(default=18.0, metadata={"range": Range(0, 150),
        "help": "minimum age in years at the index time (none: any age)"})
    max_visits: int = field(default=50, metadata={"range": Range(1, 100_000),
        "help": "keep the most recent visits of a history (truncation)"})
    max_codes_per_visit: int = field(default=64, metadata={"range": Range(1, 100_000),
        "help": "keep at most this many codes of a visit (its latest, in time order)"})
    tables: tuple[str, ...] = field(default=(), metadata={
        "help": "event tables the history draws on (default: all; a hospital layout reads only "
                "the tables giving them): conditions, procedures, drugs, icustays, labs ..."})
    target_tables: tuple[str, ...] = field(default=("conditions",), metadata={
        "help": "next_visit: the event tables whose codes are predicted (with --codes: only "
                "those codes)"})
    observation_hours: float = field(default=48.0, metadata={"range": Range(0, 8760),
        "help": "hours after admission at which in_hospital_mortality and length_of_stay are "
                "predicted (stays ended by then are excluded)"})
    readmission_days: int = field(default=30, metadata={"range": Range(1, 36_500),
        "help": "a next admission starting less than this many days after discharge is a "
                "readmission"})
    los_days: int = field(default=7, metadata={"range": Range(0, 36_500),
        "help": "length_of_stay is positive when the stay lasts more than this many whole "
                "days"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "seed of the random index visit"})
