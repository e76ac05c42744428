"""The checks between image files and models: values, sizes from headers, geometry."""
from __future__ import annotations

import gzip
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.imaging.io import (
    MAX_IMAGE_BYTES,
    Image,
    check_image,
    check_size,
    read_image,
    read_npz,
)


def png_header(width: int, height: int, colour: int = 0) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def nifti_header(path, shape, *, nifti2: bool = False) -> None:
    """A NIfTI file whose header claims ``shape`` float32 voxels, followed by a few bytes."""
    import nibabel as nib

    header = (nib.Nifti2Header if nifti2 else nib.Nifti1Header)()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float32)
    blob = header.binaryblock + b"\0" * 4 + b"\0" * 256
    path.write_bytes(gzip.compress(blob) if str(path).endswith(".gz") else blob)


def npy_header(path, shape, descr: str = "<f4") -> None:
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": descr, "fortran_order": False,
                                                  "shape": tuple(shape)})
        fh.write(b"\0" * 256)


def peak_bytes(fn) -> int:
    """Peak memory (as tracemalloc sees it; numpy reports its arrays there) while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("make", [
    lambda p: nifti_header(p / "big.nii.gz", (1024, 1024, 640)),  # 2.5 GiB: would allocate
    lambda p: nifti_header(p / "big.nii", (1024, 1024, 640)),
    lambda p: nifti_header(p / "big.nii.gz", (100_000, 100_000, 100_000), nifti2=True),
    lambda p: npy_header(p / "big.npy", (1024, 1024, 640)),
    lambda p: npy_header(p / "big.npy", (100_000, 100_000, 100_000)),
    lambda p: (p / "big.png").write_bytes(png_header(100_000, 100_000)),
], ids=["nii.gz-2.5GiB", "nii-2.5GiB", "nifti2-1e15", "npy-2.5GiB", "npy-1e15", "png-1e10"])
def test_a_header_claiming_a_huge_image_is_refused_before_allocating(tmp_path, make):
    make(tmp_path)
    path = next(tmp_path.iterdir())

    def read():
        with pytest.raises(BadInputError, match=r"GiB|exceeds limit|decompression bomb"):
            read_image(path)

    assert peak_bytes(read) < 64 * 1024 ** 2


def test_a_dicom_header_claiming_a_huge_image_is_refused(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000
    ds.save_as(tmp_path / "huge.dcm")
    with pytest.raises(BadInputError, match=r"1000x65535x65535x1 values .* GiB"):
        read_image(tmp_path / "huge.dcm")


def test_an_npz_split_claiming_a_huge_array_is_refused(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "big.npz", "w") as zf:
        for key, shape in (("train_images", (100_000, 4096, 4096)), ("train_labels", (5,))):
            npy_header(tmp_path / "member.npy", shape)
            zf.write(tmp_path / "member.npy", f"{key}.npy")
    with pytest.raises(BadInputError, match=r"train_images' claims .* GiB"):
        read_npz(tmp_path / "big.npz", "train")


def test_check_size_limit():
    check_size((MAX_IMAGE_BYTES // 4,), "ok")
    with pytest.raises(BadInputError, match="up to 2 GiB"):
        check_size((MAX_IMAGE_BYTES // 4 + 1,), "one too many")
    with pytest.raises(BadInputError, match="negative"):
        check_size((-1, 5), "neg")


def test_every_reader_refuses_non_finite_values(tmp_path):
    import nibabel as nib
    import pydicom
    from PIL import Image as PILImage
    from pydicom.data import get_testdata_file

    vol = np.ones((8, 8, 4), np.float32)
    vol[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "a.nii.gz")
    arr = np.ones((8, 8), np.float32)
    arr[0, 0] = np.inf
    np.save(tmp_path / "b.npy", arr)
    PILImage.fromarray(arr, mode="F").save(tmp_path / "c.tif")
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with pytest.warns(UserWarning):  # pydicom says NaN is no valid DS; it is still written
        ds.RescaleSlope = "NaN"
    ds.save_as(tmp_path / "d.dcm")
    for name, n in (("a.nii.gz", 1), ("b.npy", 1), ("c.tif", 1), ("d.dcm", 128 * 128)):
        with pytest.raises(BadInputError, match=f"{n:,} NaN or infinite"):
            read_image(tmp_path / name)
    x = np.zeros((3, 8, 8), np.float32)
    x[2, 1, 1] = np.nan
    np.savez(tmp_path / "e.npz", train_images=x, train_labels=np.array([0, 1, 0]))
    with pytest.raises(BadInputError, match=r"train_images\[2\]' holds 1 NaN"):
        read_npz(tmp_path / "e.npz", "train")


@pytest.mark.parametrize("name, content, match", [
    ("empty.png", b"", "empty file"),
    ("random.png", bytes(range(256)) * 8, "cannot identify image file"),
    ("text.dcm", b"this is a text file\n" * 20, "not a DICOM file"),
    ("cut.nii.gz", None, "cannot read image"),
    ("objects.npy", None, "Python objects"),
    ("strings.npy", None, "<U3, not real numbers"),
    ("complex.nii", None, "complex64 voxels"),
], ids=lambda value: value if isinstance(value, str) and "." in value else "")
def test_corrupt_and_binary_files_are_one_line_errors(tmp_path, name, content, match):
    import nibabel as nib

    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    elif name == "cut.nii.gz":
        nib.save(nib.Nifti1Image(np.random.default_rng(0).normal(size=(16, 16, 8))
                                 .astype(np.float32), np.eye(4)), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif name == "objects.npy":
        np.save(path, np.array([1, "a", None], dtype=object), allow_pickle=True)
    elif name == "strings.npy":
        np.save(path, np.array(["abc", "def"]))
    else:
        nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.complex64), np.eye(4)), path)
    with pytest.raises(BadInputError, match=match) as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_npz_that_is_not_a_zip_and_bad_labels(tmp_path):
    (tmp_path / "a.npz").write_bytes(b"PK not really")
    with pytest.raises(BadInputError, match="not an NPZ file"):
        read_npz(tmp_path / "a.npz", "train")
    x = np.zeros((2, 8, 8), np.uint8)
    np.savez(tmp_path / "b.npz", train_images=x, train_labels=np.array([0, -1]))
    with pytest.raises(BadInputError, match="class indices"):
        read_npz(tmp_path / "b.npz", "train")
    np.savez(tmp_path / "c.npz", train_images=x, train_labels=np.array([0.5, 1.0]))
    with pytest.raises(BadInputError, match="class indices"):
        read_npz(tmp_path / "c.npz", "train")
    np.savez(tmp_path / "d.npz", train_images=np.zeros((2, 8, 8), object),
             train_labels=np.array([0, 1]))
    with pytest.raises(BadInputError, match="Python objects"):
        read_npz(tmp_path / "d.npz", "train")


def test_check_image_spacing_and_empty_axes():
    check_image(Image(np.zeros((1, 4, 4), np.float32), (1.0, 0.5), "ok"))
    with pytest.raises(BadInputError, match="voxel spacing"):
        check_image(Image(np.zeros((1, 4, 4, 4), np.float32), (1.0, 0.0, 1.0), "flat"))
    with pytest.raises(BadInputError, match="no empty axis"):
        check_image(Image(np.zeros((1, 0, 4), np.float32), (1.0, 1.0), "empty"))


def test_nifti_with_a_nan_pixdim_is_refused(tmp_path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), tmp_path / "z.nii")
    data = bytearray((tmp_path / "z.nii").read_bytes())
    data[84:88] = struct.pack("<f", float("nan"))  # pixdim[2] (nibabel itself turns 0 into 1)
    (tmp_path / "z.nii").write_bytes(bytes(data))
    with pytest.raises(BadInputError, match="voxel spacing"):
        read_image(tmp_path / "z.nii")


# ----------------------------------------------------------------------------- geometry

def test_geometry_rule_for_classifiers():
    from pmtoolkit.imaging.transforms import check_input

    def check(shape, spacing=None, size=(28, 28)):
        arr = np.zeros(shape, np.float32)
        image = Image(arr, spacing or (1.0,) * (arr.ndim - 1), "x")
        check_input(image, size=size, in_channels=1)

    check((1, 28, 28))
    check((1, 7, 7))  # a quarter of the grid is the smallest
    check((1, 1000, 1000))  # larger is fine: down-sampling is how MedMNIST was made
    check((1, 28, 84))  # 3:1 is the widest
    check((3, 300, 400))  # a 4:3 colour photo
    check((1, 40, 160), (4.0, 1.0))  # 4:1 in pixels, square in millimetres
    check((1, 28, 28, 1))  # a one-slice volume
    with pytest.raises(BadInputError, match="1x1 pixels, too small .* at least 7x7"):
        check((1, 1, 1))
    with pytest.raises(BadInputError, match="6x28 pixels, too small"):
        check((1, 6, 28))
    with pytest.raises(BadInputError, match=r"stretched 3\.6-fold"):
        check((1, 28, 100))
    with pytest.raises(BadInputError, match=r"stretched 4\.0-fold"):
        check((1, 40, 40), (4.0, 1.0))
    with pytest.raises(BadInputError, match="3-D"):
        check((1, 20, 30, 40))
    with pytest.raises(BadInputError, match="2 channels"):
        check((2, 28, 28))
    with pytest.raises(BadInputError, match="NaN"):
        check_input(np.full((1, 28, 28), np.nan), size=(28, 28), in_channels=1)
    # a 3-D model: each axis against its own size
    check((1, 16, 16, 8), (1.0, 1.0, 2.0), size=(16, 16, 16))
    with pytest.raises(BadInputError, match="too small"):
        check((1, 16, 16, 3), size=(16, 16, 16))


def test_segmenter_refuses_images_much_smaller_than_its_window():
    from pmtoolkit.imaging.config import SegmenterConfig
    from pmtoolkit.imaging.segment import Segmenter

    model = Segmenter.untrained(SegmenterConfig(channels=(4, 8), roi_size=(32, 32)),
                           {"classes": ["background", "x"]})
    assert model.prepare(np.ones((1, 8, 8), np.float32)).shape == (1, 8, 8)
    assert model.prepare(np.ones((1, 8, 8, 2), np.float32)).shape == (1, 8, 8, 2)  # slices
    with pytest.raises(BadInputError, match="too small"):
        model.prepare(np.ones((1, 7, 40), np.float32))
    with pytest.raises(BadInputError, match="NaN"):
        model.prepare(np.full((1, 40, 40), np.inf, np.float32))


def test_fit_checks_config_ranges_and_network_input_size():
    from pmtoolkit.core.errors import ConfigError
    from pmtoolkit.imaging.classifier import build_network, fit_classifier
    from pmtoolkit.imaging.config import ImageClassifierConfig, SegmenterConfig
    from pmtoolkit.imaging.segment import build_unet, fit_segmenter

    x = np.zeros((4, 1, 28, 28), np.float32)
    with pytest.raises(ConfigError, match="lr"):
        fit_classifier(x, [0, 1, 0, 1], ImageClassifierConfig(lr=-1.0))
    with pytest.raises(ConfigError, match="image-size"):
        fit_classifier(x, [0, 1, 0, 1], ImageClassifierConfig(image_size=(2, 2)))
    with pytest.raises(ConfigError, match="overlap"):
        fit_segmenter(x, np.zeros((4, 28, 28)), SegmenterConfig(overlap=1.0),
                      classes=["a", "b"])
    with pytest.raises(BadInputError, match="image_size.*GiB"):
        build_network(ImageClassifierConfig(spatial_dims=3, image_size=(4096, 4096, 4096)), 2)
    with pytest.raises(BadInputError, match="roi_size.*GiB"):
        build_unet(SegmenterConfig(spatial_dims=3, roi_size=(4096, 4096, 4096)), 2)


def test_colour_dicom_becomes_channels(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    rgb = np.zeros((ds.Rows, ds.Columns, 3), np.uint8)
    rgb[..., 1] = 200
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = rgb.tobytes()
    ds.save_as(tmp_path / "rgb.dcm")
    image = read_image(tmp_path / "rgb.dcm")
    assert image.array.shape == (3, 128, 128) and image.ndim == 2
    assert image.array[1].min() == 200 and image.array[0].max() == 0
