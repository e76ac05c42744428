"""Settings of SMILES generators (light to import: the CLI builds its options from them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    DROPOUT,
    LAYERS,
    LEARNING_RATE,
    WIDTH,
    Range,
    training_fields,
)


@dataclass
@training_fields(epochs=10, patience=0, batch_size=128, items="SMILES")
class GeneratorConfig:
    """Hyper-parameters of a recurrent SMILES generator and of its training."""

    cell: Literal["gru", "lstm"] = field(default="gru", metadata={"help": "recurrent cell"})
    embedding_size: int = field(default=64, metadata={"range": WIDTH,
        "help": "token embedding size"})
    hidden_size: int = field(default=256, metadata={"range": WIDTH,
        "help": "recurrent hidden size"})
    layers: int = field(default=3, metadata={"range": LAYERS, "help": "stacked recurrent layers"})
    dropout: float = field(default=0.0, metadata={"range": DROPOUT,
        "help": "dropout between recurrent layers"})
    max_length: int = field(default=128, metadata={"range": Range(3, 10_000),
        "help": "longest sequence in tokens, start and end included; longer SMILES are "
                "rejected in training and cut off in sampling"})
    epoch_size: int = field(default=0, metadata={"range": Range(0, 10**9),
        "help": "SMILES per epoch, a slice of each pass over the data (0: all of them); "
                "big sets are validated and checkpointed more often"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "learning rate (cosine decay to a tenth of it over the run)"})
    gradient_clip: float = field(default=1.0, metadata={"range": Range(0, None, min_open=True),
        "help": "clip the gradient norm"})
