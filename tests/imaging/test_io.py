import numpy as np
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.imaging.io import (
    check_mask,
    read_image,
    read_images,
    read_labelled_folder,
    read_npz,
)


def test_png_grey_and_rgb(tmp_path):
    from PIL import Image as PILImage

    grey = (np.arange(12, dtype=np.uint8).reshape(3, 4) * 10)
    PILImage.fromarray(grey).save(tmp_path / "g.png")
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 2] = 200
    PILImage.fromarray(rgb).save(tmp_path / "c.jpg", quality=100)
    g = read_image(tmp_path / "g.png")
    assert g.array.shape == (1, 3, 4) and g.ndim == 2
    np.testing.assert_array_equal(g.array[0], grey)
    c = read_image(tmp_path / "c.jpg")
    assert c.array.shape == (3, 3, 4) and c.array[2].mean() > 190


def test_nifti_keeps_spacing_and_4d_becomes_channels(tmp_path):
    import nibabel as nib

    vol = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.diag([2.0, 2.0, 3.0, 1.0])), tmp_path / "v.nii.gz")
    img = read_image(tmp_path / "v.nii.gz")
    assert img.array.shape == (1, 5, 6, 7) and img.spacing == (2.0, 2.0, 3.0)
    np.testing.assert_allclose(img.array[0], vol)
    series = np.zeros((5, 6, 7, 2), np.float32)
    nib.save(nib.Nifti1Image(series, np.eye(4)), tmp_path / "s.nii")
    assert read_image(tmp_path / "s.nii").array.shape == (2, 5, 6, 7)


def test_dicom_file_and_series(shared_data, tmp_path):
    import pydicom

    ct = shared_data / "imaging" / "dicom" / "CT_small.dcm"
    img = read_image(ct)
    ds = pydicom.dcmread(ct)
    assert img.array.shape == (1, 128, 128)
    np.testing.assert_allclose(img.array[0], ds.pixel_array * float(ds.RescaleSlope)
                               + float(ds.RescaleIntercept))
    assert img.spacing == pytest.approx((0.661468, 0.661468))
    # a three-slice series, written out of order: read back sorted along the normal
    folder = tmp_path / "series"
    folder.mkdir()
    base = ds.pixel_array.copy()
    for k, z in enumerate([2.5, 0.0, 5.0]):
        ds.ImagePositionPatient = [0.0, 0.0, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.InstanceNumber = k
        ds.PixelData = (base + int(z * 10)).astype(base.dtype).tobytes()
        ds.save_as(folder / f"slice{k}.dcm")
    (folder / "notes.txt").write_text("not dicom")
    vol = read_image(folder)
    assert vol.array.shape == (1, 3, 128, 128) and vol.spacing[0] == pytest.approx(2.5)
    means = vol.array[0].mean(axis=(1, 2))
    assert means[0] < means[1] < means[2]


def test_medmnist_npz(shared_data):
    x, y = read_npz(shared_data / "imaging" / "pneumoniamnist" / "pneumoniamnist.npz", "test")
    assert x.shape == (624, 1, 28, 28) and y.shape == (624,)
    assert np.bincount(y).tolist() == [234, 390]
    with pytest.raises(BadInputError, match="no 'dev' split.*train, val"):
        read_npz(shared_data / "imaging" / "pneumoniamnist" / "pneumoniamnist.npz", "dev")


def test_bad_files_are_rejected_and_the_batch_goes_on(tmp_path):
    from PIL import Image as PILImage

    good = tmp_path / "good.png"
    PILImage.fromarray(np.zeros((4, 4), np.uint8)).save(good)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    odd = tmp_path / "image.xyz"
    odd.write_text("?")
    images, rejects = read_images([good, corrupt, tmp_path / "missing.png", odd])
    assert images[0] is not None and images[1:] == [None, None, None]
    assert [r.line for r in rejects] == [2, 3, 4]
    assert "cannot read image" in rejects.items[0].reason
    assert "does not exist" in rejects.items[1].reason


def test_label_table_naming_missing_files(tmp_path):
    from PIL import Image as PILImage

    PILImage.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("path,label\na.png,1\nb.png,0\n")
    paths, labels, rejects = read_labelled_folder(tmp_path / "labels.csv")
    assert paths == [tmp_path / "a.png"] and labels == [1]
    assert rejects.items[0].line == 3 and rejects.items[0].reason == "file not found"


def test_mask_shape_must_match(tmp_path):
    from pmtoolkit.imaging.io import Image

    image = Image(np.zeros((1, 4, 4), np.float32), (1.0, 1.0), "img.png")
    with pytest.raises(BadInputError, match=r"mask 'm.png' has shape \(4, 5\)"):
        check_mask(image, Image(np.zeros((1, 4, 5), np.float32), (1.0, 1.0), "m.png"))
