"""Settings of drug–target pair models (light to import: the CLI builds its options from
them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    BATCH_SIZE,
    DROPOUT,
    LAYERS,
    LEARNING_RATE,
    WEIGHT_DECAY,
    WIDTH,
    Range,
    training_fields,
)


@dataclass
@training_fields(epochs=100, patience=0, batch_size=None)
class DTIConfig:
    """A pair model: a drug encoder, a protein encoder, and a feed-forward head on the two
    vectors. ``dmpnn``/``gine`` drugs with a ``cnn`` protein is the GraphDTA family;
    DeepDTA's is a SMILES CNN, for which the drug graph stands in (one featurizer)."""

    task: Literal["regression", "classification"] = field(default="regression", metadata={
        "help": "regression (affinity) or binary interaction (0/1 values)"})
    drug_encoder: Literal["dmpnn", "gine"] = field(default="dmpnn", metadata={
        "help": "drug graph encoder (pmtoolkit.chem graphs)"})
    drug_hidden: int = field(default=128, metadata={"range": WIDTH,
        "help": "drug encoder hidden size"})
    drug_depth: int = field(default=3, metadata={"range": LAYERS,
        "help": "drug message-passing steps"})
    protein_encoder: Literal["cnn", "kmer"] = field(default="kmer", metadata={
        "help": "kmer: 1-3-mer composition through a feed-forward layer (cheap; the better "
                "of the two on DAVIS so far); cnn: integer-encoded sequence through 1D "
                "convolutions (DeepDTA)"})
    protein_embedding: int = field(default=64, metadata={"range": WIDTH,
        "help": "amino-acid embedding size (cnn)"})
    protein_filters: tuple[int, int, int] = field(default=(32, 64, 96), metadata={"range": WIDTH,
        "help": "filters of the three convolutions (cnn)"})
    protein_kernel: int = field(default=8, metadata={"range": Range(1, 1000),
        "help": "convolution width (cnn)"})
    protein_pool: int = field(default=1, metadata={"range": Range(1, 100),
        "help": "max-pool width between the convolutions (cnn; 1: none, DeepDTA)"})
    protein_max_length: int = field(default=1000, metadata={"range": Range(1, 100_000),
        "help": "residues kept from the N-terminus (DeepDTA: 1000)"})
    head: tuple[int, ...] = field(default=(1024, 512), metadata={"range": WIDTH,
        "help": "hidden sizes of the feed-forward head on [drug, protein]"})
    dropout: float = field(default=0.3, metadata={"range": DROPOUT, "help": "dropout in the head"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "peak learning rate (cosine decay to a tenth over the run)"})
    weight_decay: float = field(default=0.01, metadata={"range": WEIGHT_DECAY,
        "help": "AdamW weight decay"})
    pairs_per_batch: int = field(default=256, metadata={"range": BATCH_SIZE,
        "help": "training pairs per batch, about: a batch is every training pair between a "
                "group of proteins and a group of drugs, each encoded once"})
    ensemble_size: int = field(default=1, metadata={"range": Range(1, 100),
        "help": "independently seeded models; predictions are their mean, their spread the "
                "uncertainty column"})
