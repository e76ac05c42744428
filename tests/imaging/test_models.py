"""Imaging models: transforms, classifier, segmenter, metrics and Grad-CAM, each against a
known answer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.imaging.io import Image
from tests.imaging.conftest import bright_side, disks

# ---------------------------------------------------------------------------- transforms


def test_prepare_resizes_matches_channels_and_normalises():
    from pmtoolkit.imaging.transforms import match_dims, prepare

    rgb = Image(np.random.default_rng(0).uniform(10, 90, (3, 50, 70)).astype(np.float32),
                (1.0, 1.0))
    out = prepare(rgb, size=(28, 28), in_channels=1, method="minmax")
    assert out.shape == (1, 28, 28) and out.min() == pytest.approx(0) and out.max() == \
        pytest.approx(1)
    grey = prepare(np.full((1, 28, 28), 7.0, np.float32), size=(28, 28), in_channels=3,
                   method="minmax")
    assert grey.shape == (3, 28, 28) and not grey.any()  # a constant image becomes zeros
    z = prepare(rgb, size=(32, 32), in_channels=3, method="zscore")
    assert abs(z.mean()) < 1e-4 and z.std() == pytest.approx(1, abs=1e-3)
    assert match_dims(np.zeros((1, 1, 5, 6)), 2).shape == (1, 5, 6)  # a one-slice volume
    with pytest.raises(BadInputError, match="3-D"):
        prepare(np.zeros((1, 8, 8, 8), np.float32), size=(28, 28), in_channels=1,
                method="minmax")
    with pytest.raises(BadInputError, match="2 channels"):
        prepare(np.zeros((2, 8, 8), np.float32), size=(28, 28), in_channels=1, method="minmax")


def test_random_affine_is_independent_per_image_and_identity_without_probability():
    from pmtoolkit.imaging.transforms import random_affine

    x = torch.zeros(6, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    same = random_affine(x, torch.Generator().manual_seed(0), prob=0.0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    moved = random_affine(x, torch.Generator().manual_seed(0), prob=1.0)
    assert moved.shape == x.shape
    diffs = [(moved[i] - x[i]).abs().sum().item() for i in range(6)]
    assert min(diffs) > 0.5  # every image changed ...
    assert len({round(d, 3) for d in diffs}) == 6  # ... each differently
    # the square's mass is kept up to the ±10 % scaling (nothing falls off a 28-pixel view)
    assert (moved.sum((1, 2, 3)) / 64).min() > 0.7
    vol = random_affine(torch.rand(2, 1, 12, 12, 12), torch.Generator().manual_seed(1))
    assert vol.shape == (2, 1, 12, 12, 12)


def test_resample_changes_spacing_keeping_extent():
    from pmtoolkit.imaging.transforms import resample

    img = Image(np.random.default_rng(0).random((1, 20, 20, 10)).astype(np.float32),
                (1.0, 1.0, 2.0))
    out = resample(img, (2.0, 2.0, 2.0))
    assert out.array.shape == (1, 10, 10, 10) and out.spacing == (2.0, 2.0, 2.0)


# ---------------------------------------------------------------------------- metrics


def test_youden_threshold_matches_brute_force():
    from sklearn.metrics import roc_curve

    from pmtoolkit.core.metrics import youden_threshold

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    t = youden_threshold(y == 1, p)
    fpr, tpr, _ = roc_curve(y, p)
    best_j = (tpr - fpr).max()
    pred = p >= t
    j = (pred & (y == 1)).sum() / (y == 1).sum() + (~pred & (y == 0)).sum() / (y == 0).sum() - 1
    assert j == pytest.approx(best_j)


def test_classification_report_against_sklearn():
    from sklearn.metrics import confusion_matrix, roc_auc_score

    from pmtoolkit.imaging.evaluate import classification_report, expected_calibration_error

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0.001, 0.999)
    probs = np.stack([1 - p1, p1], 1)
    rep = classification_report(y, probs, ["neg", "pos"], threshold=0.4)
    assert rep["auc"] == pytest.approx(roc_auc_score(y, p1))
    tn, fp, fn, tp = confusion_matrix(y, (p1 >= 0.4).astype(int)).ravel()
    assert rep["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert rep["specificity"] == pytest.approx(tn / (tn + fp))
    assert rep["npv"] == pytest.approx(tn / (tn + fn))
    assert rep["confusion"] == [[tn, fp], [fn, tp]]
    assert rep["accuracy"] == pytest.approx(((p1 >= 0.5) == y).mean())
    # ECE by hand: one bin at confidence 0.95 holding one right and one wrong answer
    assert expected_calibration_error(np.array([0, 1]), np.array([[0.95, 0.05], [0.95, 0.05]])
                                      ) == pytest.approx(abs(0.5 - 0.95))
    assert expected_calibration_error(np.array([0, 1]), np.eye(2)) == 0
    multi = classification_report(np.array([0, 1, 2, 2]), np.eye(3)[[0, 1, 2, 1]] * 0.8 + 0.2 / 3,
                                  ["a", "b", "c"])
    assert multi["accuracy"] == 0.75 and multi["confusion"][2] == [0, 1, 1]


def test_segmentation_metrics_hausdorff_matches_brute_force():
    from scipy.spatial.distance import directed_hausdorff

    from pmtoolkit.imaging.evaluate import segmentation_metrics

    a = np.zeros((40, 40), int)
    a[5:20, 5:20] = 1
    b = np.zeros((40, 40), int)
    b[8:25, 6:22] = 1
    b[30:33, 30:33] = 2  # a class only in the prediction: Dice 0, no distance
    m = segmentation_metrics(b, a, ["bg", "x", "y"], spacing=(1.0, 2.0))
    pa, pb = np.argwhere(a == 1) * [1, 2], np.argwhere(b == 1) * [1, 2]
    brute = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
    assert m["x"]["hausdorff"] == pytest.approx(brute, rel=1e-5)
    inter = ((a == 1) & (b == 1)).sum()
    assert m["x"]["dice"] == pytest.approx(2 * inter / ((a == 1).sum() + (b == 1).sum()))
    assert m["x"]["iou"] == pytest.approx(inter / ((a == 1) | (b == 1)).sum())
    assert m["x"]["hausdorff95"] <= m["x"]["hausdorff"]
    assert m["y"]["dice"] == 0 and np.isnan(m["y"]["hausdorff"])


# ---------------------------------------------------------------------------- classifier


@pytest.fixture(scope="module")
def trained_classifier():
    from pmtoolkit.imaging.classifier import fit_classifier
    from pmtoolkit.imaging.config import ImageClassifierConfig

    x, y = bright_side(400)
    names = np.array(["right", "left"])[y]
    config = ImageClassifierConfig(arch="resnet10", width=0.125, epochs=6, batch_size=32, lr=3e-3,
                              device="cpu", patience=0)
    return fit_classifier(list(x), names, config, classes=["right", "left"])


def test_classifier_learns_saves_and_loads(trained_classifier, tmp_path):
    from pmtoolkit.core.metrics import roc_auc
    from pmtoolkit.imaging.classifier import ImageClassifier

    model = trained_classifier
    assert model.classes == ["right", "left"] and 0 < model.threshold < 1
    xt, yt = bright_side(100, seed=9)
    probs = model.predict_proba(list(xt))
    assert probs.shape == (100, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert roc_auc(yt, probs[:, 1]) > 0.95
    model.save(tmp_path / "m.safetensors")
    again = ImageClassifier.load(tmp_path / "m.safetensors")
    assert again.threshold == pytest.approx(model.threshold)
    np.testing.assert_allclose(again.predict_proba(list(xt)), probs, atol=1e-5)
    table = again.predict(list(xt[:3]))
    assert list(table.columns) == ["label", "prob_right", "prob_left"]
    # pictures of another size are resized to the model's grid
    big = np.repeat(np.repeat(xt[:2], 3, axis=2), 3, axis=3)
    assert model.predict_proba(list(big)).shape == (2, 2)


def test_gradcam_points_at_the_evidence(trained_classifier):
    from pmtoolkit.imaging.explain import gradcam

    x, y = bright_side(40, seed=5)
    maps, _, _ = gradcam(trained_classifier, list(x), target="left")
    assert maps.shape == (40, 28, 28) and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    left = maps[:, :, :14].sum((1, 2))
    right = maps[:, :, 14:].sum((1, 2))
    # for images whose blob is on the left, the map of class "left" lies mostly on the left
    assert (left[y == 1] > right[y == 1]).mean() > 0.8


def test_gradcam_png(trained_classifier, tmp_path):
    from pmtoolkit.imaging.explain import gradcam, save_gradcam

    x, _ = bright_side(2, seed=1)
    maps, _, prepared = gradcam(trained_classifier, list(x))
    save_gradcam(prepared[0], maps[0], tmp_path / "cam.png", title="t")
    assert (tmp_path / "cam.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(BadInputError, match="unknown class"):
        gradcam(trained_classifier, list(x), target="middle")


def test_architectures_build_for_2d_and_3d():
    from pmtoolkit.imaging.classifier import build_network
    from pmtoolkit.imaging.config import ImageClassifierConfig

    for arch in ("resnet10", "resnet18", "densenet121"):
        cfg = ImageClassifierConfig(arch=arch, width=0.125, image_size=(32, 32))
        assert build_network(cfg, 3)(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
    cfg3 = ImageClassifierConfig(arch="resnet10", width=0.125, spatial_dims=3,
                                 image_size=(16, 16, 16))
    assert build_network(cfg3, 2)(torch.zeros(1, 1, 16, 16, 16)).shape == (1, 2)
    with pytest.raises(BadInputError, match="at least 32"):
        build_network(ImageClassifierConfig(arch="densenet121"), 2)
    with pytest.raises(BadInputError, match="image_size"):
        build_network(ImageClassifierConfig(spatial_dims=3), 2)


# ---------------------------------------------------------------------------- segmenter


@pytest.fixture(scope="module")
def trained_segmenter():
    from pmtoolkit.imaging.config import SegmenterConfig
    from pmtoolkit.imaging.segment import fit_segmenter

    x, m = disks(24)
    xv, mv = disks(4, seed=7)
    config = SegmenterConfig(channels=(8, 16, 32), num_res_units=1, roi_size=(32, 32),
                             epochs=12, patches_per_image=4, batch_size=16, lr=5e-3,
                             device="cpu", patience=0)
    return fit_segmenter(list(x), list(m), config, classes=["background", "disk", "square"],
                         valid=(list(xv), list(mv)))


def test_segmenter_learns_with_sliding_windows(trained_segmenter, tmp_path):
    from pmtoolkit.imaging.evaluate import segmentation_metrics
    from pmtoolkit.imaging.segment import Segmenter

    model = trained_segmenter
    x, m = disks(4, size=80, seed=11)  # larger than the 32-pixel window: tiles are stitched
    pred = model.segment(x[0])
    assert pred.shape == (80, 80) and pred.dtype == np.uint8
    dice = [segmentation_metrics(model.segment(x[i]), m[i], model.classes)["disk"]["dice"]
            for i in range(4)]
    assert np.mean(dice) > 0.8
    assert model.metadata["metrics"]["val_dice_disk"] > 0.6
    model.save(tmp_path / "s.safetensors")
    again = Segmenter.load(tmp_path / "s.safetensors")
    np.testing.assert_array_equal(again.segment(x[1]), model.segment(x[1]))


def test_2d_segmenter_on_a_volume_goes_slice_by_slice(trained_segmenter, tmp_path):
    from pmtoolkit.imaging.segment import overlay_mask, training_items

    x, m = disks(5, size=48, seed=3)
    volume = Image(np.moveaxis(x[:, 0], 0, -1)[None], (1.0, 1.0, 2.0), "v.nii.gz")
    truth = np.moveaxis(m, 0, -1)
    pred = trained_segmenter.segment(volume)
    assert pred.shape == (48, 48, 5)
    # slice k of the volume, segmented alone, gives the same labels (per-volume z-score and
    # per-slice z-score agree closely on these images)
    assert (pred[..., 2] == trained_segmenter.segment(x[2])).mean() > 0.97
    overlay_mask(volume, pred, tmp_path / "o.png", truth=truth,
                 classes=trained_segmenter.classes)
    assert (tmp_path / "o.png").stat().st_size > 1000
    items = training_items(trained_segmenter, [volume], [truth], slices=[[0, 3]])
    assert len(items) == 2 and items[0]["image"].shape == (1, 48, 48)
    with pytest.raises(BadInputError, match="shape"):
        training_items(trained_segmenter, [volume], [truth[:, :40]])
    with pytest.raises(BadInputError, match="classes"):
        training_items(trained_segmenter, [volume], [truth * 3])


def test_block_split_keeps_a_gap_around_held_out_slices():
    from pmtoolkit.imaging.segment import block_split

    s = block_split(189)
    held = set(s["test"]) | set(s["valid"])
    assert not held & set(s["train"]) and not set(s["test"]) & set(s["valid"])
    assert min(abs(t - h) for t in s["train"] for h in held) == 3
    assert len(s["test"]) == 40 and s["test"][:3] == [16, 17, 18]
    assert block_split(40, test=False)["test"] == []


def test_unet_settings_are_checked():
    from pmtoolkit.imaging.config import SegmenterConfig
    from pmtoolkit.imaging.segment import build_unet

    with pytest.raises(BadInputError, match="divisible"):
        build_unet(SegmenterConfig(roi_size=(90, 90)), 2)
    with pytest.raises(BadInputError, match="roi_size"):
        build_unet(SegmenterConfig(spatial_dims=3), 2)


def test_3d_segmenter_trains_and_tiles_a_larger_volume():
    from pmtoolkit.imaging.config import SegmenterConfig
    from pmtoolkit.imaging.segment import fit_segmenter

    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:24, :24, :24]
    vols, masks = [], []
    for _ in range(3):
        c = rng.integers(8, 16, size=3)
        ball = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= 25
        vols.append((rng.normal(0, 0.2, (1, 24, 24, 24)) + 2.0 * ball).astype(np.float32))
        masks.append(ball.astype(np.int64))
    config = SegmenterConfig(spatial_dims=3, channels=(4, 8), num_res_units=1,
                             roi_size=(16, 16, 16), epochs=2, batch_size=4, device="cpu",
                             patience=0)
    model = fit_segmenter(vols, masks, config, classes=["background", "ball"])
    big = np.zeros((1, 40, 36, 20), np.float32)  # larger than the window along two axes
    assert model.segment(big).shape == (40, 36, 20)
    with pytest.raises(BadInputError, match="3-D model"):
        model.segment(np.zeros((1, 20, 20), np.float32))
