"""Settings of property models and of the split they are trained on (light to import: the
CLI builds its options from these dataclasses)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    DROPOUT,
    FRACTION,
    LAYERS,
    LEARNING_RATE,
    SEED,
    WIDTH,
    Range,
    training_fields,
)

TREE_ARCHITECTURES = ("forest", "boost")


@dataclass
@training_fields(epochs=50, patience=0, batch_size=64, items="molecules")
class PropertyConfig:
    """Hyper-parameters of a property model; defaults follow chemprop v2 where it has one."""

    task: Literal["regression", "classification"] = field(default="regression", metadata={
        "help": "regression, or binary classification (one or more 0/1 targets)"})
    architecture: Literal["dmpnn", "gine", "attentivefp", "forest", "boost"] = field(
        default="dmpnn", metadata={"help": "model family: dmpnn, gine, attentivefp (graph "
                                           "networks), forest or boost (trees)"})
    hidden_size: int = field(default=300, metadata={"range": WIDTH,
        "help": "message-passing hidden size"})
    depth: int = field(default=3, metadata={"range": LAYERS, "help": "message-passing steps"})
    dropout: float = field(default=0.0, metadata={"range": DROPOUT, "help": "dropout probability"})
    aggregation: Literal["mean", "sum", "norm"] = field(default="norm", metadata={
        "help": "how atom vectors become a molecule vector"})
    ffn_hidden_size: int = field(default=300, metadata={"range": WIDTH,
        "help": "feed-forward hidden size"})
    ffn_layers: int = field(default=1, metadata={"range": LAYERS,
        "help": "feed-forward hidden layers"})
    features: Literal["none", "rdkit2d"] = field(default="none", metadata={
        "help": "extra molecule features appended to the learned vector"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE, "help": "peak learning rate"})
    warmup_epochs: float = field(default=2.0, metadata={"range": Range(0, 100_000),
        "help": "linear warm-up from lr/10 to lr, then exponential decay to lr/10"})
    ensemble_size: int = field(default=1, metadata={"range": Range(1, 100),
        "help": "independently seeded models; their spread is the uncertainty"})
    n_estimators: int = field(default=500, metadata={"range": Range(1, 100_000),
        "help": "trees per forest, or boosting rounds (forest, boost)"})
    min_samples_leaf: int = field(default=0, metadata={"range": Range(0, 10**6),
        "help": "fewest training molecules per leaf; 0: 1 for forest, 20 for boost"})
    boost_lr: float = field(default=0.05, metadata={"range": Range(0, 10, min_open=True),
        "help": "learning rate (shrinkage) of gradient boosting (boost)"})


@dataclass
class SplitConfig:
    split: Literal["random", "scaffold", "balanced_scaffold", "stratified"] = field(
        default="balanced_scaffold", metadata={
        "help": "random, scaffold, balanced_scaffold or stratified"})
    sizes: tuple[float, float, float] = field(default=(0.8, 0.1, 0.1), metadata={"range": FRACTION,
        "help": "train, validation and test fractions"})
    split_seed: int = field(default=0, metadata={"range": SEED,
        "help": "seed of the split (separate from the model seed)"})
