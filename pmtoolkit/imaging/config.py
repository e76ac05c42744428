"""Settings of the imaging models (light to import: the CLI builds its options from them, and
a TOML file given with ``--config`` uses the same names)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    DROPOUT,
    LEARNING_RATE,
    WEIGHT_DECAY,
    WIDTH,
    Range,
    training_fields,
)


@dataclass
@training_fields(epochs=30, patience=10, batch_size=128, metric="validation AUC",
                 items="images")
class ImageClassifierConfig:
    """A CNN image classifier (MONAI's ResNet or DenseNet, 2-D or 3-D): every image is resized
    to ``image_size`` and scaled to [0, 1] (or z-scored), then the network; training uses
    cross-entropy with class weights, random affine augmentation, AdamW with a cosine schedule,
    and keeps the epoch of best validation ROC-AUC."""

    arch: Literal["resnet10", "resnet18", "resnet34", "densenet121"] = field(
        default="resnet18", metadata={"help": "network (MONAI): ResNet-10/18/34 or DenseNet-121"})
    width: float = field(default=0.25, metadata={"range": Range(0, 8, min_open=True),
        "help": "channel width relative to the published network (1.0: ResNet-18 with 64-512 "
                "channels, 11 M weights; 0.25: 0.7 M weights, 10x faster on a CPU)"})
    spatial_dims: int = field(default=2, metadata={"range": Range(2, 3),
        "help": "2 for pictures and slices, 3 for volumes"})
    image_size: tuple[int, ...] = field(default=(28, 28), metadata={"range": Range(8, 4096),
        "help": "every image is resized to this (one number per spatial axis)"})
    in_channels: int = field(default=1, metadata={"range": Range(1, 64),
        "help": "input channels: 1 (colour pictures are averaged to grey) or 3 (grey repeated)"})
    small_input: bool = field(default=True, metadata={
        "help": "a 3x3 stride-1 first convolution without max-pooling (the CIFAR / MedMNIST "
                "ResNet for images of 28-64 pixels); --no-small-input: the ImageNet stem"})
    normalise: Literal["minmax", "zscore"] = field(default="minmax", metadata={
        "help": "intensity normalisation per image: scale to [0, 1] (minmax) or zero mean, "
                "unit variance (zscore)"})
    augment: bool = field(default=True, metadata={
        "help": "random rotation (±10°), scaling (±10%) and shift (±5%) of training images"})
    class_weights: bool = field(default=True, metadata={
        "help": "weight the loss by inverse class frequency (for imbalanced classes)"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "AdamW learning rate (cosine decay)"})
    weight_decay: float = field(default=1e-4, metadata={"range": WEIGHT_DECAY,
        "help": "AdamW weight decay"})


@dataclass
@training_fields(epochs=40, patience=10, batch_size=16, metric="validation Dice",
                 items="patches")
class SegmenterConfig:
    """A U-Net segmenter (MONAI's residual U-Net), trained on random patches with Dice +
    cross-entropy loss and applied with sliding-window inference, so images larger than the
    patch (or than memory) are segmented tile by tile. A 2-D model segments a volume slice by
    slice along ``slice_axis``."""

    spatial_dims: int = field(default=2, metadata={"range": Range(2, 3),
        "help": "2 (slices) or 3 (volumes)"})
    in_channels: int = field(default=1, metadata={"range": Range(1, 64), "help": "input channels"})
    channels: tuple[int, ...] = field(default=(16, 32, 64, 128), metadata={"range": WIDTH,
        "help": "feature channels of the U-Net levels"})
    num_res_units: int = field(default=2, metadata={"range": Range(0, 16),
        "help": "residual units per level"})
    dropout: float = field(default=0.0, metadata={"range": DROPOUT, "help": "dropout in the U-Net"})
    roi_size: tuple[int, ...] = field(default=(96, 96), metadata={"range": Range(8, 4096),
        "help": "training patch and sliding-window tile (one number per spatial axis)"})
    overlap: float = field(default=0.25, metadata={"range": Range(0, 1, max_open=True),
        "help": "overlap of sliding-window tiles"})
    slice_axis: int = field(default=2, metadata={"range": Range(0, 2),
        "help": "2-D models on volumes: the spatial axis slices are taken along (2: axial "
                "for RAS NIfTI)"})
    normalise: Literal["zscore", "minmax"] = field(default="zscore", metadata={
        "help": "intensity normalisation per image (zscore over non-zero voxels, or [0, 1])"})
    augment: bool = field(default=True, metadata={
        "help": "random flips and intensity scaling / shifting of training patches"})
    lambda_dice: float = field(default=1.0, metadata={"range": Range(0, 1000),
        "help": "weight of the Dice loss"})
    lambda_ce: float = field(default=1.0, metadata={"range": Range(0, 1000),
        "help": "weight of the cross-entropy loss"})
    class_weights: bool = field(default=False, metadata={
        "help": "weight cross-entropy by inverse voxel frequency of each class"})
    patches_per_image: int = field(default=4, metadata={"range": Range(1, 10_000),
        "help": "random patches drawn from each training image per epoch"})
    lr: float = field(default=2e-3, metadata={"range": LEARNING_RATE,
        "help": "AdamW learning rate (cosine decay)"})
    weight_decay: float = field(default=1e-5, metadata={"range": WEIGHT_DECAY,
        "help": "AdamW weight decay"})
