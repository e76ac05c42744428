"""Settings of multimodal fusion models (light to import: CLI options and TOML keys come from
them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    DROPOUT,
    LEARNING_RATE,
    WEIGHT_DECAY,
    WIDTH,
    training_fields,
)


@dataclass
@training_fields(epochs=60, patience=10, batch_size=64, items="patients")
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
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"range": WEIGHT_DECAY,
        "help": "AdamW weight decay"})
