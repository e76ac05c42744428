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


def _channel_rule(c: int, in_channels: int, source: str) -> str:
    """How ``c`` channels become the model's ``in_channels``: ``same``, ``grey`` (colour
    averaged) or ``repeat`` (grey repeated); any other mismatch is an error."""
    if c == in_channels:
        return "same"
    if in_channels == 1 and c in (3, 4):
        return "grey"
    if in_channels == 3 and c == 1:
        return "repeat"
    raise BadInputError(f"'{source}' has {c} channels; the model takes {in_channels}")


def match_channels(arr: np.ndarray, in_channels: int, source: str = "image") -> np.ndarray:
    """``arr`` (C, *spatial) with ``in_channels`` channels: colour averaged to grey, grey
    repeated to three channels; any other mismatch is an error."""
    rule = _channel_rule(arr.shape[0], in_channels, source)
    if rule == "grey":
        return arr[:3].mean(axis=0, keepdims=True)
    if rule == "repeat":
        return np.repeat(arr, 3, axis=0)
    return arr


def _squeezed_axis(spatial: tuple[int, ...], spatial_dims: int, source: str) -> int | None:
    """The spatial axis a ``spatial_dims``-D model drops (a one-slice volume for a 2-D model),
    None when the dimensions already match; an error when they cannot."""
    if len(spatial) == spatial_dims:
        return None
    if len(spatial) == 3 and spatial_dims == 2 and 1 in spatial:
        return list(spatial).index(1)
    raise BadInputError(f"'{source}' is {len(spatial)}-D (shape {tuple(spatial)}); the model "
                        f"takes {spatial_dims}-D images")


def match_dims(arr: np.ndarray, spatial_dims: int, source: str = "image") -> np.ndarray:
    """Drop singleton spatial axes of a 3-D array for a 2-D model (a one-slice volume)."""
    axis = _squeezed_axis(tuple(arr.shape[1:]), spatial_dims, source)
    return arr if axis is None else np.squeeze(arr, axis=1 + axis)


#: A side shorter than this fraction of the model's grid (its ``image_size``, or a
#: segmenter's ``roi_size``) is refused: resizing it up by more than 4x (or padding a
#: segmenter's window to more than 15/16 of its area) invents what the network was trained to
#: read, and the answer would look as confident as any other (a 1x1 picture came out
#: "pneumonia, 0.9999").
MIN_SIDE_FRACTION = 0.25
#: A classifier resizes every image onto its grid: an image whose physical shape differs from
#: the grid's by more than this factor (a 4:1 strip on a square grid) would be squashed into
#: anatomy the network never saw, and is refused.
MAX_ASPECT_DISTORTION = 3.0


def check_geometry(spatial: tuple[int, ...], spacing: tuple[float, ...] | None,
                   grid: tuple[int, ...], source: str = "image", *,
                   aspect: bool = True) -> None:
    """Refuse an image far outside a model's grid: a side under :data:`MIN_SIDE_FRACTION` of
    the grid's along that axis, or (with ``aspect``) a physical aspect ratio (sides times voxel
    spacing) more than :data:`MAX_ASPECT_DISTORTION` away from the grid's."""
    need = [math.ceil(MIN_SIDE_FRACTION * g) for g in grid]
    if any(s < n for s, n in zip(spatial, need)):
        raise BadInputError(f"'{source}' is {'x'.join(map(str, spatial))} pixels, too small "
                            f"for a model of {'x'.join(map(str, grid))}: each side needs at "
                            f"least {'x'.join(map(str, need))} (a quarter of the model's)",
                            hint="use a model trained on images of this size")
    if not aspect or len(spatial) < 2:
        return
    spacing = spacing if spacing is not None else (1.0,) * len(spatial)
    stretch = [n * s / g for n, s, g in zip(spatial, spacing, grid)]
    if max(stretch) > MAX_ASPECT_DISTORTION * min(stretch):
        raise BadInputError(f"'{source}' ({'x'.join(map(str, spatial))} pixels) would be "
                            f"stretched {max(stretch) / min(stretch):.1f}-fold onto the model's "
                            f"{'x'.join(map(str, grid))} grid (at most "
                            f"{MAX_ASPECT_DISTORTION:g})", hint="crop it to the region of "
                            "interest first")


def check_input(image, *, size: tuple[int, ...], in_channels: int) -> None:
    """Refuse, from its shape alone, an image a classifier of this ``size`` and
    ``in_channels`` cannot read faithfully: non-finite values, channels or dimensions it
    cannot match, or a geometry far outside its grid (:func:`check_geometry`)."""
    from pmtoolkit.imaging.io import Image, check_values

    arr, source = as_array(image)
    check_values(arr, source)
    _channel_rule(arr.shape[0], in_channels, source)
    spatial = tuple(arr.shape[1:])
    spacing = tuple(image.spacing) if isinstance(image, Image) else None
    axis = _squeezed_axis(spatial, len(size), source)
    if axis is not None:
        spatial = spatial[:axis] + spatial[axis + 1:]
        spacing = None if spacing is None else spacing[:axis] + spacing[axis + 1:]
    check_geometry(spatial, spacing, tuple(size), source)


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
    """One image as a classifier's input: ``(in_channels, *size)`` float32 (after
    :func:`check_input`)."""
    from monai.transforms import Resize

    check_input(image, size=size, in_channels=in_channels)
    arr, source = as_array(image)
    arr = match_dims(match_channels(arr, in_channels, source), len(size), source)
    if tuple(arr.shape[1:]) != tuple(size):
        mode = "bilinear" if len(size) == 2 else "trilinear"
        down = any(s > t for s, t in zip(arr.shape[1:], size))
        arr = np.asarray(Resize(spatial_size=tuple(size), mode=mode, anti_aliasing=down)(arr))
    return normalise(arr.astype(np.float32, copy=False), method)


def prepare_many(images, **kwargs) -> np.ndarray:
    """:func:`prepare` for each image (a record, an array, or a file path, read with
    :func:`~pmtoolkit.imaging.io.read_image`), stacked: ``(N, in_channels, *size)``."""
    import os

    from pmtoolkit.imaging.io import read_image

    size = tuple(kwargs["size"])
    if not images:
        return np.zeros((0, kwargs["in_channels"], *size), np.float32)
    return np.stack([prepare(read_image(im) if isinstance(im, (str, os.PathLike)) else im,
                             **kwargs) for im in images])


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
