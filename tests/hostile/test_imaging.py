"""Hostile and broken images through ``pmt imaging`` (issue 23).

Each case once went wrong: one NaN voxel made ``segment`` write an all-background mask with
exit 0; a 3-D volume went into the 2-D classifier under ``--on-invalid error``; a run where
nothing could be read exited 0 and named a temporary folder for its rejects; a 1x1 picture
came out "pneumonia, 0.9999"; headers claiming terabytes were allocated. Now an image a model
cannot take is a reject with its reason (``--on-invalid skip``) or a one-line error with exit
code 2 (``--on-invalid error``, or when nothing is left), and nothing half-written remains."""
from __future__ import annotations

import gzip
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest

from tests.imaging.test_checks import nifti_header, npy_header, png_header


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import nibabel as nib
    import pydicom
    from PIL import Image
    from pydicom.data import get_testdata_file

    d = tmp_path_factory.mktemp("hostile-images")
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(32, 32, 6)).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), d / "good.nii.gz")
    vol[3, 3, 3] = np.nan
    nib.save(nib.Nifti1Image(vol, np.eye(4)), d / "nan.nii.gz")
    picture = rng.integers(0, 255, (28, 28)).astype(np.uint8)
    Image.fromarray(picture).save(d / "good.png")
    with_nan = picture.astype(np.float32)
    with_nan[5, 5] = np.nan
    np.save(d / "nan.npy", with_nan)
    Image.fromarray(with_nan, mode="F").save(d / "nan.tif")
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns that NaN is no valid decimal string
        ds.RescaleSlope = "NaN"
    ds.save_as(d / "nan.dcm")
    np.savez(d / "nan.npz", test_images=np.stack([with_nan, with_nan]),
             test_labels=np.array([0, 1]))
    np.save(d / "volume.npy", rng.normal(size=(20, 30, 40)).astype(np.float32))
    Image.fromarray(np.full((1, 1), 100, np.uint8)).save(d / "tiny.png")
    Image.fromarray(np.full((28, 200), 100, np.uint8)).save(d / "strip.png")
    # broken and binary files
    data = (d / "good.nii.gz").read_bytes()
    (d / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    (d / "random.png").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    (d / "text.dcm").write_text("this is not a DICOM file\n" * 20)
    np.save(d / "objects.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    (d / "empty.png").write_bytes(b"")
    (d / "empty.nii.gz").write_bytes(b"")
    (d / "notzip.npz").write_bytes(b"just some bytes")
    with zipfile.ZipFile(d / "objects.npz", "w") as zf:
        np.save(d / "member.npy", np.array([None, {}], dtype=object), allow_pickle=True)
        zf.write(d / "member.npy", "train_images.npy")
        zf.write(d / "member.npy", "train_labels.npy")
    # hostile sizes: headers claiming far more than the file holds
    nifti_header(d / "huge.nii.gz", (100_000, 100_000, 100_000), nifti2=True)
    nifti_header(d / "huge.nii", (30_000, 30_000, 30_000))
    npy_header(d / "huge.npy", (100_000, 100_000, 100_000))
    (d / "huge.png").write_bytes(png_header(100_000, 100_000))
    with zipfile.ZipFile(d / "huge.npz", "w") as zf:
        npy_header(d / "member.npy", (10 ** 9, 28, 28), descr="|u1")
        zf.write(d / "member.npy", "train_images.npy")
        npy_header(d / "member.npy", (10 ** 9,), descr="|u1")
        zf.write(d / "member.npy", "train_labels.npy")
    (d / "member.npy").unlink()
    assert gzip.decompress((d / "huge.nii.gz").read_bytes())  # a valid gzip, a hostile header
    return d


def refused(result, output, *needles) -> str:
    """Exit 2, one ``pmt: error:`` line naming ``needles``, no traceback, nothing written."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("pmt: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert not output.exists()
    assert not [p for p in output.parent.iterdir() if ".pmt-tmp-" in p.name]
    return errors[0]


# -------------------------------------------------------------------- silent wrong results

def test_a_nan_voxel_is_a_reject_not_a_background_mask(pmt, files, tmp_path):
    out = tmp_path / "masks"
    result = pmt("imaging", "segment", "-m", "mni-tissue", files / "nan.nii.gz",
                 files / "good.nii.gz", "-o", out)
    assert result.exit_code == 0, result.stderr
    rejected = pd.read_csv(out / "rejected.csv")
    assert rejected["path"].tolist() == [str(files / "nan.nii.gz")]
    assert "1 NaN or infinite value" in rejected["reason"][0]
    assert f"rejects written to {out / 'rejected.csv'}" in result.stderr  # the final path
    assert pd.read_csv(out / "volumes.csv")["image"].tolist() == [str(files / "good.nii.gz")]
    result = pmt("imaging", "segment", "-m", "mni-tissue", files / "good.nii.gz",
                 files / "nan.nii.gz", "-o", tmp_path / "e", "--on-invalid", "error")
    refused(result, tmp_path / "e", "nan.nii.gz", "NaN")


@pytest.mark.parametrize("name", ["nan.npy", "nan.tif", "nan.dcm"])
def test_non_finite_values_from_every_reader(pmt, files, tmp_path, name):
    result = pmt("imaging", "predict", files / "good.png", files / name, "-o",
                 tmp_path / "p.csv", "--on-invalid", "error")
    refused(result, tmp_path / "p.csv", name, "NaN or infinite")
    result = pmt("imaging", "predict", files / "good.png", files / name, "-o",
                 tmp_path / "q.csv")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(tmp_path / "q.csv")
    assert table["label"].notna().tolist() == [True, False]
    assert "NaN or infinite" in pd.read_csv(tmp_path / "q.rejected.csv")["reason"][0]


def test_non_finite_values_in_an_npz(pmt, files, tmp_path):
    result = pmt("imaging", "evaluate", "-m", "pneumonia", "-i", files / "nan.npz",
                 "-o", tmp_path / "ev")
    refused(result, tmp_path / "ev", "test_images[0]", "NaN or infinite")


def test_a_volume_into_a_2d_classifier_is_refused(pmt, files, tmp_path):
    result = pmt("imaging", "predict", files / "good.png", files / "volume.npy", "-o",
                 tmp_path / "p.csv", "--on-invalid", "error")
    refused(result, tmp_path / "p.csv", "line 2", "volume.npy", "is 3-D")
    result = pmt("imaging", "explain", files / "volume.npy", files / "good.png", "-o",
                 tmp_path / "cams", "--on-invalid", "error")
    refused(result, tmp_path / "cams", "volume.npy", "is 3-D")


def test_nothing_processed_is_an_error_naming_the_first_reject(pmt, files, tmp_path):
    for command in (["segment", "-m", "mni-tissue"], ["predict"], ["explain"]):
        out = tmp_path / command[0]
        result = pmt("imaging", *command, files / "random.png", files / "cut.nii.gz",
                     "-o", out)
        refused(result, out, "(all 2 rejected)", "line 1", "random.png")


def test_images_far_outside_the_models_geometry(pmt, files, tmp_path):
    result = pmt("imaging", "predict", files / "tiny.png", files / "strip.png",
                 files / "good.png", "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(tmp_path / "p.csv")
    assert table["label"].isna().tolist() == [True, True, False]
    assert table["prob_pneumonia"].isna().tolist() == [True, True, False]
    reasons = pd.read_csv(tmp_path / "p.rejected.csv")["reason"].tolist()
    assert "1x1 pixels, too small for a model of 28x28" in reasons[0]
    assert "stretched 7.1-fold" in reasons[1]
    result = pmt("imaging", "predict", files / "tiny.png", "-o", tmp_path / "e.csv",
                 "--on-invalid", "error")
    refused(result, tmp_path / "e.csv", "tiny.png", "too small")
    # the same rule refuses such images for training (the default --on-invalid error)
    pd.DataFrame({"path": [files / "good.png", files / "tiny.png"] * 4,
                  "label": ["a", "b"] * 4}).to_csv(tmp_path / "labels.csv", index=False)
    result = pmt("imaging", "train", "-i", tmp_path / "labels.csv", "-o", tmp_path / "run")
    refused(result, tmp_path / "run", "tiny.png", "too small")


# ------------------------------------------------------------------ broken and binary files

@pytest.mark.parametrize("name, reason", [
    ("cut.nii.gz", "cannot read image"),
    ("random.png", "cannot identify image file"),
    ("text.dcm", "not a DICOM file"),
    ("objects.npy", "Python objects"),
    ("empty.png", "empty file"),
    ("empty.nii.gz", "empty file"),
])
def test_broken_files_are_one_line_errors(pmt, files, tmp_path, name, reason):
    result = pmt("imaging", "predict", files / "good.png", files / name, "-o",
                 tmp_path / "p.csv", "--on-invalid", "error")
    refused(result, tmp_path / "p.csv", name, reason)
    result = pmt("imaging", "segment", "-m", "mni-tissue", files / name, "-o",
                 tmp_path / "masks", "--on-invalid", "error")
    refused(result, tmp_path / "masks", name, reason)


@pytest.mark.parametrize("name, reason", [
    ("notzip.npz", "not an NPZ file"),
    ("objects.npz", "Python objects"),
    ("huge.npz", "GiB"),
    ("good.png", "table format"),  # -i is an NPZ by its suffix, else a table of images
])
def test_broken_npz_files(pmt, files, tmp_path, name, reason):
    result = pmt("imaging", "train", "-i", files / name, "-o", tmp_path / "run")
    refused(result, tmp_path / "run", name, reason)


@pytest.mark.parametrize("name", ["huge.nii.gz", "huge.nii", "huge.npy", "huge.png"])
def test_headers_claiming_huge_images_are_refused(pmt, files, tmp_path, name):
    result = pmt("imaging", "predict", files / name, "-o", tmp_path / "p.csv",
                 "--on-invalid", "error")
    line = refused(result, tmp_path / "p.csv", name)
    assert "GiB" in line or "decompression bomb" in line


# ------------------------------------------------------------------------------ options

@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "half"])
def test_threshold_must_be_a_probability(pmt, files, tmp_path, value):
    result = pmt("imaging", "evaluate", "-m", "pneumonia", "-i", files / "nan.npz",
                 "--threshold", value, "-o", tmp_path / "ev")
    refused(result, tmp_path / "ev", "--threshold")


def test_explain_names_the_layers_it_has(pmt, files, tmp_path):
    result = pmt("imaging", "explain", files / "good.png", "--layer", "nope", "-o",
                 tmp_path / "cams")
    refused(result, tmp_path / "cams", "no layer 'nope'", "layer4")
