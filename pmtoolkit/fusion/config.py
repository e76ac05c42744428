"""Settings of multimodal fusion models (light to import: CLI options and TOML keys come from
them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    BATCH_SIZE,
    DROPOUT,
    EPOCHS,
    LEARNING_RATE,
    PATIENCE,
    SEED,
    WEIGHT_DECAY,
    WIDTH,
)


@dataclass
class FusionConfig:
    """A model over per-modality embeddings (one vector per patient and modality, from
    pmtoolkit's own encoders), any of which may be missing.

    ``concat``: the projected embeddings side by side, a missing one replaced by a learned
    placeholder, then an MLP; ``attention``: a learned query token attends over the present
    modalities' tokens; ``gated``: a gated multimodal unit, a sigmoid gate per modality and
    feature computed from all present modalities. Training drops whole modalities at random
    (``modality_dropout``) so the model learns to predict without them."""

    fusion: Literal["concat", "attention", "gated"] = field(default="gated", metadata={
        "help": "how modalities are combined"})
    hidden_dim: int = field(default=64, metadata={"range": WIDTH,
        "help": "width of each modality's projection"})
    dropout: float = field(default=0.2, metadata={"range": DROPOUT, "help": "dropout in the head"})
    modality_dropout: float = field(default=0.2, metadata={"range": DROPOUT,
        "help": "training: chance of hiding each present modality of a patient (missing-data "
                "robustness; at least one stays)"})
    task: Literal["binary", "regression"] = field(default="binary", metadata={
        "help": "binary outcome (logistic loss) or a continuous one (squared error)"})
    epochs: int = field(default=60, metadata={"range": EPOCHS, "help": "maximum training epochs"})
    patience: int = field(default=10, metadata={"range": PATIENCE,
        "help": "stop after this many epochs without a better validation loss (0: never)"})
    batch_size: int = field(default=64, metadata={"range": BATCH_SIZE,
        "help": "patients per batch"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"range": WEIGHT_DECAY,
        "help": "AdamW weight decay"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
