"""Image preparation through MONAI: channel matching, resampling to a model's grid, intensity
normalisation, and training-time augmentation, for 2-D and 3-D images alike.

- :func:`prepare` turns one :class:`~pmtoolkit.imaging.io.Image` (or array) into what a
  classifier eats: ``(in_channels, *image_size)`` float32 (MONAI ``Resize`` with
  anti-aliasing, then ``ScaleIntensity`` or ``NormalizeIntensity``).
- :func:`normalise` is the intensity step alone (segmentation keeps the image's own grid).
- :func:`resample` changes voxel spacing (MONAI ``Spacing``), e.g. to bring scans of different
  resolution onto one grid before a 3-D model.
- :func:`random_affine` augments a whole batch at once with MONAI's ``AffineTransform`` layer
  (one random rotation, scale and shift per image), on the training device: per-image
  dictionary transforms cost ~2 ms each on a CPU, more than a small CNN's step.
- :func:`segmentation_augment` is the per-patch MONAI dictionary pipeline of the U-Net
  (random crop, flips, intensity scale and shift).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from pmtoolkit.core.errors import BadInputError

if TYPE_CHECKING:
    import torch

    from pmtoolkit.imaging.io import Image


def as_array(image) -> tuple[np.ndarray, str]:
    """``(array, source name)`` of an :class:`~pmtoolkit.imaging.io.Image` or an array."""
    from pmtoolkit.imaging.io import Image

    if isinstance(image, Image):
        return image.array, image.source or "image"
    return np.asarray(image, dtype=np.float32), "image"


def match_channels(arr: np.ndarray, in_channels: int, source: str = "image") -> np.ndarray:
    """``arr`` (C, *spatial) with ``in_channels`` channels: colour averaged to grey, grey
    repeated to three channels; any other mismatch is an error."""
    c = arr.shape[0]
    if c == in_channels:
        return arr
    if in_channels == 1 and c in (3, 4):
        return arr[:3].mean(axis=0, keepdims=True)
    if in_channels == 3 and c == 1:
        return np.repeat(arr, 3, axis=0)
    raise BadInputError(f"'{source}' has {c} channels; the model takes {in_channels}")


def match_dims(arr: np.ndarray, spatial_dims: int, source: str = "image") -> np.ndarray:
    """Drop singleton spatial axes of a 3-D array for a 2-D model (a one-slice volume)."""
    spatial = arr.ndim - 1
    if spatial == spatial_dims:
        return arr
    if spatial == 3 and spatial_dims == 2 and 1 in arr.shape[1:]:
        axis = 1 + list(arr.shape[1:]).index(1)
        return np.squeeze(arr, axis=axis)
    raise BadInputError(f"'{source}' is {spatial}-D (shape {arr.shape[1:]}); the model "
                        f"takes {spatial_dims}-D images")


def normalise(arr: np.ndarray, method: str, *, nonzero: bool = False) -> np.ndarray:
    """Per-image intensity normalisation with MONAI: ``minmax`` scales to [0, 1] (a constant
    image becomes 0), ``zscore`` to zero mean and unit variance (over non-zero voxels with
    ``nonzero``, as for skull-stripped MRI)."""
    from monai.transforms import NormalizeIntensity, ScaleIntensity

    if method == "minmax":
        lo, hi = float(arr.min()), float(arr.max())
        if hi <= lo:
            return np.zeros_like(arr, dtype=np.float32)
        t = ScaleIntensity(minv=0.0, maxv=1.0)
    elif method == "zscore":
        t = NormalizeIntensity(nonzero=nonzero)
    else:
        raise BadInputError(f"unknown normalisation {method!r}", hint="minmax or zscore")
    return np.asarray(t(arr), dtype=np.float32)


def prepare(image, *, size: tuple[int, ...], in_channels: int, method: str) -> np.ndarray:
    """One image as a classifier's input: ``(in_channels, *size)`` float32."""
    from monai.transforms import Resize

    arr, source = as_array(image)
    arr = match_dims(match_channels(arr, in_channels, source), len(size), source)
    if tuple(arr.shape[1:]) != tuple(size):
        mode = "bilinear" if len(size) == 2 else "trilinear"
        down = any(s > t for s, t in zip(arr.shape[1:], size))
        arr = np.asarray(Resize(spatial_size=tuple(size), mode=mode, anti_aliasing=down)(arr))
    return normalise(arr.astype(np.float32, copy=False), method)


def prepare_many(images, **kwargs) -> np.ndarray:
    """:func:`prepare` for each image, stacked: ``(N, in_channels, *size)``."""
    size = tuple(kwargs["size"])
    if not images:
        return np.zeros((0, kwargs["in_channels"], *size), np.float32)
    return np.stack([prepare(im, **kwargs) for im in images])


def resample(image: Image, spacing: tuple[float, ...], *, mode: str = "bilinear") -> Image:
    """``image`` on a grid of the given voxel ``spacing`` (MONAI ``Spacing``; use
    ``mode='nearest'`` for label masks)."""
    from monai.data import MetaTensor
    from monai.transforms import Spacing

    from pmtoolkit.imaging.io import Image

    nd = image.ndim
    if len(spacing) != nd:
        raise BadInputError(f"spacing {spacing} has {len(spacing)} values; the image is {nd}-D")
    affine = np.diag([*image.spacing, 1.0]).astype(np.float64)
    src = MetaTensor(image.array, affine=affine)
    out = Spacing(pixdim=tuple(spacing), mode=mode)(src)
    return Image(np.asarray(out, dtype=np.float32), tuple(float(s) for s in spacing),
                 image.source, dict(image.meta))


def random_affine(x: torch.Tensor, generator: torch.Generator, *, rotate: float = 10.0,
                  scale: float = 0.1, shift: float = 0.05, prob: float = 0.8) -> torch.Tensor:
    """A batch ``(N, C, *spatial)`` with an independent random affine per image (with
    probability ``prob``): rotation up to ``rotate`` degrees (about every axis in 3-D), scaling
    by up to ±``scale`` and shifts up to ±``shift`` of the field of view; zeros outside. Uses
    MONAI's batched ``AffineTransform`` in normalised coordinates."""
    import torch
    from monai.networks.layers import AffineTransform

    n, nd = x.shape[0], x.ndim - 2
    g = generator

    def uniform(*shape, lim):
        return (torch.rand(*shape, generator=g) * 2 - 1) * lim

    theta = torch.eye(nd + 1).repeat(n, 1, 1)
    angles = uniform(n, 1 if nd == 2 else 3, lim=math.radians(rotate))
    rot = torch.eye(nd).repeat(n, 1, 1)
    for k in range(angles.shape[1]):
        a, b = [(0, 1), (0, 2), (1, 2)][k]
        r = torch.eye(nd).repeat(n, 1, 1)
        c, s = torch.cos(angles[:, k]), torch.sin(angles[:, k])
        r[:, a, a], r[:, a, b], r[:, b, a], r[:, b, b] = c, -s, s, c
        rot = rot @ r
    zoom = 1.0 + uniform(n, 1, 1, lim=scale)
    theta[:, :nd, :nd] = rot * zoom
    theta[:, :nd, nd] = uniform(n, nd, lim=2 * shift)  # normalised coordinates span 2
    keep = torch.rand(n, generator=g) >= prob
    theta[keep] = torch.eye(nd + 1)
    layer = AffineTransform(normalized=True, reverse_indexing=False, padding_mode="zeros",
                            align_corners=False)
    return layer(x, theta[:, :nd].to(x.device, x.dtype))


def segmentation_augment(roi_size: tuple[int, ...], *, augment: bool):
    """MONAI dictionary transforms over ``{'image': (C, *S), 'label': (1, *S)}``: pad to
    ``roi_size`` where smaller, a random ``roi_size`` crop, and (with ``augment``) a random
    flip along each axis and random intensity scaling / shifting."""
    from monai.transforms import (
        Compose,
        RandFlipd,
        RandScaleIntensityd,
        RandShiftIntensityd,
        RandSpatialCropd,
        SpatialPadd,
    )

    steps = [SpatialPadd(keys=("image", "label"), spatial_size=tuple(roi_size)),
             RandSpatialCropd(keys=("image", "label"), roi_size=tuple(roi_size),
                              random_size=False)]
    if augment:
        steps += [RandFlipd(keys=("image", "label"), spatial_axis=a, prob=0.5)
                  for a in range(len(roi_size))]
        steps += [RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
                  RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5)]
    return Compose(steps)
