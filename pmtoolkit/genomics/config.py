"""Settings of DNA sequence models (light to import: the CLI builds its options from them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    DROPOUT,
    LAYERS,
    LEARNING_RATE,
    WEIGHT_DECAY,
    WIDTH,
    Range,
    training_fields,
)


@dataclass
@training_fields(epochs=30, patience=5, batch_size=128, items="sequences")
class SequenceModelConfig:
    """A convolutional model of fixed-length DNA windows, with one output per target.

    ``basset``: three convolution + max-pool stages and a dense head (DeepSEA / Basset);
    ``dilated``: a convolution stem, then residual blocks whose dilation doubles each block
    (Basenji-style), average-pooled, then the dense head; ``local``: unpadded convolutions
    summed over positions, for variant effects (``fit_effects``)."""

    architecture: Literal["basset", "dilated", "local"] = field(default="basset", metadata={
        "help": "basset: conv/pool stages + dense head; dilated: residual dilated CNN; local: "
                "unpadded convolutions summed over positions (variant-effect models)"})
    task: Literal["binary", "multiclass", "regression"] = field(default="binary", metadata={
        "help": "binary: one sigmoid per target (multi-label); multiclass: one softmax over "
                "the targets; regression: real-valued targets"})
    window: int = field(default=200, metadata={"range": Range(8, 100_000),
        "help": "input length in bases; variants are scored on windows of this length"})
    filters: tuple[int, ...] = field(default=(128, 160, 192), metadata={"range": WIDTH,
        "help": "channels of the convolution stages (basset) or stem + blocks (dilated: "
                "first = stem, last = blocks)"})
    kernels: tuple[int, ...] = field(default=(15, 9, 5), metadata={"range": Range(1, 1001),
        "help": "kernel width of each stage (basset) or of the stem and blocks (dilated)"})
    pools: tuple[int, ...] = field(default=(4, 4, 4), metadata={"range": Range(1, 100),
        "help": "max-pool width after each stage (basset; 1: none)"})
    blocks: int = field(default=4, metadata={"range": LAYERS,
        "help": "residual blocks (dilated), dilation 1, 2, 4, ..."})
    hidden: int = field(default=256, metadata={"range": WIDTH,
        "help": "dense layer size of the head"})
    dropout: float = field(default=0.3, metadata={"range": DROPOUT,
        "help": "dropout before the output layer"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "peak learning rate (cosine decay to a tenth over the run)"})
    weight_decay: float = field(default=0.01, metadata={"range": WEIGHT_DECAY,
        "help": "AdamW weight decay"})
    augment_rc: bool = field(default=True, metadata={
        "help": "train on random reverse complements as well (strand symmetry)"})
    max_shift: int = field(default=0, metadata={"range": Range(0, 1000),
        "help": "random shifts of up to this many bases in training (0: none)"})
    effect_loss: Literal["mse", "pearson"] = field(default="mse", metadata={
        "help": "effect training (fit_effects): mse on the effects, or pearson: one minus "
                "the correlation within batches drawn from one element (scale-free), then "
                "the output rescaled to the effects' units"})
