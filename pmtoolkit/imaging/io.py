"""Readers of medical images into one record, :class:`Image`: a float32 array shaped
``(channels, *spatial)`` with its voxel spacing, whatever the file format.

Formats: NIfTI (``.nii``, ``.nii.gz``; 4-D series become channels), DICOM (a single ``.dcm``
file, or a folder holding one series, ordered along the slice normal), PNG/JPEG (grey or RGB),
NPY, and the MedMNIST NPZ layout (``{split}_images`` / ``{split}_labels``). DICOM values are
rescaled to physical units (slope and intercept: Hounsfield units for CT).

Bad files never stop a batch: :func:`read_images` returns the images it could read (``None``
where it could not, so results stay aligned with the inputs) and a list of rejects with each
file's reason; :func:`read_image` raises a one-line error for a single file. Every reader's
output passes one check (:func:`check_image`): numbers only, finite (one NaN voxel would
silently turn a segmentation into background), positive voxel spacing, no empty axis. A file
whose header claims more than :data:`MAX_IMAGE_BYTES` is refused from its header, before
anything is allocated.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError, MissingInputError, first_line
from pmtoolkit.core.io import Rejects

log = logging.getLogger(__name__)

NIFTI = (".nii", ".nii.gz")
DICOM = (".dcm", ".dicom")
PICTURE = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

#: The most one image may take in memory as float32, as every image is held: 2 GiB (a
#: 512 x 512 x 2048 CT volume, or 23,000 x 23,000 grey pixels). Files whose header claims more
#: are refused before reading, so a hostile header cannot exhaust memory.
MAX_IMAGE_BYTES = 2 * 1024 ** 3


@dataclass
class Image:
    """One image: ``array`` is float32 ``(channels, *spatial)``; ``spacing`` is the size of a
    pixel or voxel along each spatial axis (mm where the format says so, else 1)."""

    array: np.ndarray
    spacing: tuple[float, ...]
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[1:])

    @property
    def ndim(self) -> int:
        """2 for a picture or slice, 3 for a volume."""
        return self.array.ndim - 1


def _suffix(p: Path) -> str:
    name = p.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else p.suffix.lower()


def read_image(path: str | os.PathLike) -> Image:
    """Read one image file (or a DICOM series folder); a one-line error if it cannot."""
    p = Path(path)
    if not p.exists():
        raise MissingInputError(f"image '{p}' does not exist")
    suffix = "" if p.is_dir() else _suffix(p)
    readers = {**dict.fromkeys(NIFTI, _read_nifti), **dict.fromkeys(DICOM, _read_dicom_file),
               **dict.fromkeys(PICTURE, _read_picture), ".npy": _read_npy}
    reader = _read_dicom_series if p.is_dir() else readers.get(suffix)
    if reader is None:
        raise BadInputError(f"cannot tell the image format of '{p}'",
                            hint="use .nii(.gz), .dcm or a DICOM folder, .png/.jpg, or .npy")
    if p.is_file() and p.stat().st_size == 0:
        raise BadInputError(f"image '{p}' is an empty file")
    try:
        image = reader(p)
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault here
        raise BadInputError(f"cannot read image '{p}': {first_line(exc)}") from None
    check_image(image)
    return image


def check_size(shape, source: str | os.PathLike, what: str = "image",
               limit: int = MAX_IMAGE_BYTES, hint: str = "crop or downsample it first") -> None:
    """Refuse an image of ``shape`` (as a header claims it) above ``limit`` bytes as float32
    (default :data:`MAX_IMAGE_BYTES`), before anything is allocated."""
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise BadInputError(f"'{source}' claims a negative size {tuple(dims)}")
    n = math.prod(dims)  # Python integers: a hostile header cannot overflow this
    if n * 4 > limit:
        raise BadInputError(f"'{source}' claims {'x'.join(map(str, dims))} values "
                            f"({n * 4 / 1024 ** 3:,.1f} GiB as float32); pmtoolkit reads "
                            f"{what}s of up to {limit // 1024 ** 3} GiB", hint=hint)


def check_values(arr: np.ndarray, source: str | os.PathLike) -> None:
    """Refuse anything but real, finite numbers."""
    if arr.dtype.kind not in "biuf":
        raise BadInputError(f"'{source}' holds {arr.dtype} values, not real numbers")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        n = int(arr.size - np.isfinite(arr).sum())
        raise BadInputError(f"'{source}' holds {n:,} NaN or infinite value(s)",
                            hint="fix or mask them in the file; pmtoolkit does not guess them")


def check_image(image: Image) -> None:
    """The one check every reader's output passes: ``(channels, *spatial)`` with 2 or 3
    spatial axes, none empty; real, finite values; a positive, finite spacing per axis."""
    arr, source = image.array, image.source or "image"
    if arr.ndim not in (3, 4) or 0 in arr.shape:
        raise BadInputError(f"'{source}' has shape {tuple(arr.shape[1:])}: expected a 2-D or "
                            "3-D image with no empty axis")
    check_values(arr, source)
    if len(image.spacing) != image.ndim or not all(
            math.isfinite(s) and s > 0 for s in image.spacing):
        raise BadInputError(f"'{source}' has voxel spacing {tuple(image.spacing)}; each axis "
                            "needs a positive size", hint="fix the header (NIfTI pixdim, "
                            "DICOM PixelSpacing)")


def read_images(paths, *, rejects: Rejects | None = None) -> tuple[list[Image | None], Rejects]:
    """Read many images; unreadable ones are ``None`` (aligned with ``paths``) and listed in
    the returned rejects, with the 1-based position of the path as its line."""
    rejects = rejects if rejects is not None else Rejects(source="images", item_name="path")
    out: list[Image | None] = []
    for i, path in enumerate(paths, start=1):
        try:
            out.append(read_image(path))
        except BadInputError as exc:
            rejects.add(path, i, exc.message)
            out.append(None)
    return out, rejects


def _npy_header(fh, source: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an NPY header, read without loading the array."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise BadInputError(f"'{source}' is an NPY file of version {version}; numeric images "
                            "are versions 1.0 and 2.0")
    if dtype.kind not in "biuf":
        what = "Python objects" if dtype.hasobject else str(dtype)
        raise BadInputError(f"'{source}' holds {what}, not real numbers",
                            hint="pmtoolkit reads numeric arrays only and never unpickles")
    return tuple(int(d) for d in shape), dtype


def _read_npy(p: Path) -> Image:
    with p.open("rb") as fh:  # refuse objects and hostile shapes before loading
        shape, _ = _npy_header(fh, p)
    check_size(shape, p)
    return _from_array(np.load(p, allow_pickle=False), p)


def _from_array(arr: np.ndarray, p: Path) -> Image:
    """An NPY array as an image: 2-D, 3-D, or channels first (1, 3 or 4 channels)."""
    arr = np.asarray(arr)
    if arr.ndim in (2, 3) and not (arr.ndim == 3 and arr.shape[0] in (1, 3, 4)
                                      and min(arr.shape[1:]) > 4):
        arr = arr[None]  # a plain 2-D picture or 3-D volume gets one channel
    if arr.ndim not in (3, 4):
        raise BadInputError(f"'{p}' has shape {arr.shape}: expected a 2-D or 3-D image")
    check_values(arr, p)
    return Image(arr.astype(np.float32, copy=False), (1.0,) * (arr.ndim - 1), str(p))


def _read_nifti(p: Path) -> Image:
    import nibabel as nib

    img = nib.load(str(p))
    if img.get_data_dtype().kind not in "biuf":
        raise BadInputError(f"'{p}' holds {img.get_data_dtype()} voxels, not real numbers")
    check_size(img.shape, p)  # from the header: refused before the voxels are read
    arr = np.asarray(img.dataobj, dtype=np.float32)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    if arr.ndim == 4:  # a series (time, modalities): channels first
        return Image(np.moveaxis(arr, -1, 0), zooms, str(p), {"affine": img.affine})
    if arr.ndim not in (2, 3):
        raise BadInputError(f"'{p}' is a {arr.ndim}-D NIfTI: expected 2-D, 3-D or 4-D")
    return Image(arr[None], zooms[:arr.ndim], str(p), {"affine": img.affine})


def _dcmread(p: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(p))
    except InvalidDicomError:
        raise BadInputError(f"'{p}' is not a DICOM file (no DICOM header)") from None


def _dicom_dims(ds) -> tuple[int, int, int, int]:
    """``(frames, rows, columns, samples)`` as the header claims them."""
    return (int(ds.get("NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns),
            int(ds.get("SamplesPerPixel", 1) or 1))


def _pixels(ds) -> np.ndarray:
    """Rescaled pixel values, channels first: ``(samples, [frames,] rows, columns)``."""
    arr = ds.pixel_array.astype(np.float32)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    arr = arr * slope + intercept
    return np.moveaxis(arr, -1, 0) if _dicom_dims(ds)[3] > 1 else arr[None]


def _read_dicom_file(p: Path) -> Image:
    ds = _dcmread(p)
    if "PixelData" not in ds:
        raise BadInputError(f"'{p}' is a DICOM file without pixel data")
    check_size(_dicom_dims(ds), p)
    arr = _pixels(ds)
    row, col = (float(v) for v in getattr(ds, "PixelSpacing", (1.0, 1.0)))
    if arr.ndim == 4:  # multi-frame: frames are slices
        thick = float(getattr(ds, "SliceThickness", 1.0) or 1.0)
        return Image(arr, (thick, row, col), str(p), {"modality": ds.get("Modality")})
    return Image(arr, (row, col), str(p), {"modality": ds.get("Modality")})


def _read_dicom_series(folder: Path) -> Image:
    """The slices of one DICOM series, ordered along the slice normal (by
    ImagePositionPatient projected on the orientation's normal, else InstanceNumber)."""
    import pydicom

    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(str(f))
        except Exception:  # noqa: BLE001 - non-DICOM files in a series folder are skipped
            log.info("skipping %s: not a DICOM file", f)
            continue
        if "PixelData" in ds:
            slices.append(ds)
    if not slices:
        raise BadInputError(f"folder '{folder}' holds no DICOM images")
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in slices}
    if len(series) > 1:
        raise BadInputError(f"folder '{folder}' mixes {len(series)} DICOM series",
                            hint="give one folder per series")
    dims = {_dicom_dims(ds) for ds in slices}
    if len(dims) > 1:
        raise BadInputError(f"folder '{folder}': slices differ in shape {sorted(dims)}")
    frames, rows, cols, samples = dims.pop()
    if frames > 1:
        raise BadInputError(f"folder '{folder}' holds multi-frame files",
                            hint="give each multi-frame file on its own")
    check_size((len(slices), rows, cols, samples), folder)

    def position(ds) -> float:
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            o = np.asarray(ds.ImageOrientationPatient, float)
            return float(np.dot(np.cross(o[:3], o[3:]), np.asarray(ds.ImagePositionPatient,
                                                                   float)))
        return float(ds.get("InstanceNumber", 0) or 0)

    slices.sort(key=position)
    vol = np.stack([_pixels(ds) for ds in slices], axis=1)
    row, col = (float(v) for v in getattr(slices[0], "PixelSpacing", (1.0, 1.0)))
    if len(slices) > 1:
        gaps = np.diff([position(ds) for ds in slices])
        step = float(np.median(np.abs(gaps))) or float(getattr(slices[0], "SliceThickness", 1))
    else:
        step = float(getattr(slices[0], "SliceThickness", 1.0) or 1.0)
    return Image(vol, (step, row, col), str(folder),
                 {"modality": slices[0].get("Modality"), "slices": len(slices)})


def _read_picture(p: Path) -> Image:
    from PIL import Image as PILImage

    with PILImage.open(p) as im:
        width, height = im.size
        check_size((len(im.getbands()), height, width), p)  # before decoding the pixels
        im.load()
        if im.mode in ("RGB", "RGBA", "P", "CMYK"):
            arr = np.asarray(im.convert("RGB"), dtype=np.float32)
            return Image(np.moveaxis(arr, -1, 0), (1.0, 1.0), str(p))
        arr = np.asarray(im.convert("F") if im.mode not in ("L", "I;16", "I", "F")
                         else im, dtype=np.float32)
    return Image(arr[None], (1.0, 1.0), str(p))


#: The most one split of an NPZ may take as float32 (it is held in memory whole): 16 GiB.
MAX_NPZ_BYTES = 8 * MAX_IMAGE_BYTES


def read_npz(path: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of one split of a MedMNIST-layout NPZ: images ``(N, 1 or 3, H, W)``
    float32 in [0, 255], labels ``(N,)`` int64 (or ``(N, K)`` for multi-label sets). The
    arrays' headers are checked (numbers, size) before they are read; an image with a NaN or
    infinite value is an error naming it."""
    import zipfile

    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"NPZ file '{p}' does not exist")
    if not zipfile.is_zipfile(p):
        raise BadInputError(f"'{p}' is not an NPZ file (not a zip archive)")
    key_x, key_y = f"{split}_images", f"{split}_labels"
    try:
        with np.load(p, allow_pickle=False) as data:
            if key_x not in data.files or key_y not in data.files:
                splits = sorted({k.rsplit("_", 1)[0] for k in data.files
                                 if k.endswith("_images")})
                raise BadInputError(f"'{p}' has no {split!r} split", hint="splits: "
                                    + (", ".join(splits) or "none (not MedMNIST layout)"))
            for key in (key_x, key_y):
                with data.zip.open(f"{key}.npy") as fh:
                    shape, _ = _npy_header(fh, f"{p}:{key}")
                check_size(shape, f"{p}:{key}", what="NPZ split", limit=MAX_NPZ_BYTES)
            x, y = data[key_x], data[key_y]
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip and numpy raise several types for a bad file
        raise BadInputError(f"cannot read '{p}': {first_line(exc)}") from None
    if x.ndim not in (3, 4) or 0 in x.shape[1:]:
        raise BadInputError(f"'{p}': {key_x} has shape {x.shape}; expected (N, H, W) or "
                            "(N, H, W, channels)")
    if len(x) != len(y):
        raise BadInputError(f"'{p}': {len(x)} {split} images but {len(y)} labels")
    for i in range(len(x)):
        check_values(x[i], f"{p}:{key_x}[{i}]")
    if y.ndim not in (1, 2) or y.dtype.kind not in "biuf" or (len(y) and (
            not np.isfinite(y).all() or (y != np.round(y)).any() or y.min() < 0)):
        raise BadInputError(f"'{p}': {key_y} must hold class indices (whole numbers from 0)")
    x = x[:, None] if x.ndim == 3 else np.moveaxis(x, -1, 1)
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    return x.astype(np.float32), y.astype(np.int64)


def read_labelled_folder(table: str | os.PathLike, *, root: str | os.PathLike | None = None,
                         path_column: str = "path", label_column: str = "label",
                         rejects: Rejects | None = None) -> tuple[list[Path], list[Any], Rejects]:
    """Image paths and labels from a CSV/TSV (paths relative to ``root``, by default the
    table's folder). Rows naming a missing file are rejects (with their line); the others are
    returned in order."""
    from pmtoolkit.core.io import read_table

    frame = read_table(table, columns=[path_column, label_column])
    base = Path(root) if root is not None else Path(table).parent
    rejects = rejects if rejects is not None else Rejects(source=str(table), item_name="path")
    paths, labels = [], []
    for i, (path, label) in enumerate(zip(frame[path_column], frame[label_column]), start=2):
        full = Path(str(path))
        full = full if full.is_absolute() else base / full
        if not full.exists():
            rejects.add(path, i, "file not found")
            continue
        if label is None or (isinstance(label, float) and np.isnan(label)):
            rejects.add(path, i, f"no {label_column}")
            continue
        paths.append(full)
        labels.append(label)
    return paths, labels, rejects


def check_mask(image: Image, mask: Image) -> None:
    """A mask must cover its image voxel for voxel."""
    if image.spatial_shape != mask.spatial_shape:
        raise BadInputError(f"mask '{mask.source}' has shape {mask.spatial_shape}, its image "
                            f"'{image.source}' {image.spatial_shape}",
                            hint="resample the mask onto the image grid")
