"""Settings of SMILES generators (light to import: the CLI builds its options from them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    BATCH_SIZE,
    DROPOUT,
    EPOCHS,
    LAYERS,
    LEARNING_RATE,
    SEED,
    WIDTH,
    Range,
)


@dataclass
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
    epochs: int = field(default=10, metadata={"range": EPOCHS, "help": "training epochs"})
    epoch_size: int = field(default=0, metadata={"range": Range(0, 10**9),
        "help": "SMILES per epoch, a slice of each pass over the data (0: all of them); "
                "big sets are validated and checkpointed more often"})
    batch_size: int = field(default=128, metadata={"range": BATCH_SIZE,
        "help": "SMILES per training batch"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "learning rate (cosine decay to a tenth of it over the run)"})
    gradient_clip: float = field(default=1.0, metadata={"range": Range(0, None, min_open=True),
        "help": "clip the gradient norm"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "model seed"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
