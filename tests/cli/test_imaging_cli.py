"""`pmt imaging` end to end on tiny image sets, the shipped models, and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.imaging.conftest import bright_side, disks

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples" / "imaging"
TINY = ["--architecture", "resnet10", "--width", "0.125", "--epochs", "3", "--batch-size", "16"]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """60 PNGs (left / right blob) with labels.csv, and one corrupt PNG."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("pictures")
    x, y = bright_side(60, seed=2)
    rows = []
    for i in range(len(x)):
        name = f"img{i:02d}.png"
        Image.fromarray(x[i, 0].astype(np.uint8)).save(folder / name)
        rows.append({"path": name, "label": ["right", "left"][y[i]]})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    """Two small NIfTI volumes of disks with their label masks, and pairs.csv."""
    import nibabel as nib

    folder = tmp_path_factory.mktemp("volumes")
    rows = []
    for k in range(2):
        x, m = disks(6, size=32, seed=k)
        nib.save(nib.Nifti1Image(np.moveaxis(x[:, 0], 0, -1), np.eye(4)), folder / f"v{k}.nii.gz")
        nib.save(nib.Nifti1Image(np.moveaxis(m, 0, -1).astype(np.uint8), np.eye(4)),
                 folder / f"v{k}_mask.nii.gz")
        rows.append({"image": f"v{k}.nii.gz", "mask": f"v{k}_mask.nii.gz"})
    pd.DataFrame(rows).to_csv(folder / "pairs.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def classifier_run(pictures, tmp_path_factory):
    from click.testing import CliRunner
    from pmtoolkit.cli.main import cli

    out = tmp_path_factory.mktemp("runs") / "cls"
    result = CliRunner().invoke(cli, ["imaging", "train", "-i", str(pictures / "labels.csv"),
                                      "-o", str(out), *TINY], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out, result.stderr


def test_train_predict_evaluate_explain(pmt, pictures, classifier_run, tmp_path):
    out, stderr = classifier_run
    assert "validation AUC" in stderr
    assert {"model.safetensors", "metrics.json", "config.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "config.json").read_text())["model"]["arch"] == "resnet10"
    model = out / "model.safetensors"
    images = [pictures / "img00.png", pictures / "broken.png", pictures / "img01.png"]

    result = pmt("imaging", "predict", "-m", model, *images, "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.stderr
    assert "2 of 3 images predicted; 1 rejected" in result.stderr
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == ["path", "label", "prob_left", "prob_right"]
    assert len(table) == 3 and table["label"].isna().tolist() == [False, True, False]
    assert np.allclose(table.loc[[0, 2], ["prob_left", "prob_right"]].sum(1), 1)
    rejected = pd.read_csv(tmp_path / "p.rejected.csv")
    assert rejected["path"].tolist() == [str(images[1])] and rejected["line"].tolist() == [2]
    # --on-invalid error stops on the corrupt picture with one line
    result = pmt("imaging", "predict", "-m", model, *images, "-o", tmp_path / "q.csv",
                 "--on-invalid", "error")
    assert result.exit_code == 2 and "broken.png" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2 and not (tmp_path / "q.csv").exists()
    # stdout for pipelines
    result = pmt("imaging", "predict", "-m", model, images[0], "-o", "-")
    assert result.exit_code == 0 and result.stdout.startswith("path,label,prob_left")

    ev = tmp_path / "eval"
    result = pmt("imaging", "evaluate", "-m", model, "-i", pictures / "labels.csv", "-o", ev)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["n"] == 60 and 0 <= metrics["auc"] <= 1
    assert {"sensitivity", "specificity", "threshold", "ece", "confusion"} <= set(metrics)
    for name in ("roc.png", "calibration.png", "confusion.png", "report.html",
                 "predictions.csv"):
        assert (ev / name).is_file(), name
    result = pmt("imaging", "evaluate", "-m", model, "-i", pictures / "labels.csv",
                 "--threshold", "youden", "-o", tmp_path / "eval2")
    assert "optimistic" in json.loads((tmp_path / "eval2" / "metrics.json").read_text())[
        "threshold_source"]

    cams = tmp_path / "cams"
    result = pmt("imaging", "explain", "-m", model, *images, "-o", cams, "--target", "left")
    assert result.exit_code == 0, result.stderr
    assert (cams / "img00_gradcam.png").is_file() and (cams / "img01_gradcam.png").is_file()
    assert pd.read_csv(cams / "explanations.csv")["explained_class"].tolist() == ["left"] * 2
    assert (cams / "rejected.csv").is_file()
    result = pmt("imaging", "explain", "-m", model, images[0], "-o", tmp_path / "c2",
                 "--target", "middle")
    assert result.exit_code == 2 and "unknown class" in result.stderr
    assert not (tmp_path / "c2").exists()


def test_label_table_naming_a_missing_file(pmt, pictures, tmp_path):
    table = tmp_path / "labels.csv"
    rows = pd.read_csv(pictures / "labels.csv")
    rows["path"] = [str(pictures / p) for p in rows["path"]]
    rows.loc[3, "path"] = str(pictures / "nowhere.png")
    rows.to_csv(table, index=False)
    result = pmt("imaging", "train", "-i", table, "-o", tmp_path / "run", *TINY)
    assert result.exit_code == 2
    assert "line 5" in result.stderr and "nowhere.png" in result.stderr
    assert not (tmp_path / "run").exists()
    result = pmt("imaging", "train", "-i", table, "-o", tmp_path / "run", *TINY[:4],
                 "--epochs", "1", *TINY[6:], "--on-invalid", "skip")
    assert result.exit_code == 0, result.stderr
    assert "nowhere.png" in (tmp_path / "run" / "rejected.csv").read_text()


def test_segment_train_segment_and_evaluate(pmt, volumes, tmp_path):
    import nibabel as nib

    run = tmp_path / "seg"
    result = pmt("imaging", "train", "--task", "segment", "-i", volumes / "pairs.csv",
                 "--classes", "background,disk,square", "--channels", "8", "--channels", "16",
                 "--roi-size", "16", "--roi-size", "16", "--epochs", "2", "-o", run)
    assert result.exit_code == 0, result.stderr
    assert "validation Dice" in result.stderr  # slice blocks of the volumes validate
    model = run / "model.safetensors"
    out = tmp_path / "masks"
    result = pmt("imaging", "segment", "-m", model, volumes / "v0.nii.gz",
                 volumes / "missing.nii.gz", "-o", out)
    assert result.exit_code == 0, result.stderr
    mask = nib.load(out / "v0_mask.nii.gz")
    assert mask.shape == (32, 32, 6) and np.asarray(mask.dataobj).max() <= 2
    assert (out / "v0_overlay.png").is_file()
    vol = pd.read_csv(out / "volumes.csv")
    assert {"voxels_disk", "mm3_square"} <= set(vol.columns)
    assert "missing.nii.gz" in (out / "rejected.csv").read_text()
    result = pmt("imaging", "evaluate", "-m", model, "-i", volumes / "pairs.csv",
                 "-o", tmp_path / "ev")
    assert result.exit_code == 0, result.stderr
    per = pd.read_csv(tmp_path / "ev" / "per_image.csv")
    assert {"dice", "iou", "hausdorff95", "hausdorff"} <= set(per.columns)
    assert (tmp_path / "ev" / "report.html").is_file()
    # a classifier's settings are refused for a segmenter
    result = pmt("imaging", "train", "--task", "segment", "-i", volumes / "pairs.csv",
                 "--architecture", "resnet10", "-o", tmp_path / "x")
    assert result.exit_code == 2 and "--architecture" in result.stderr


def test_mask_shape_mismatch(pmt, volumes, tmp_path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((30, 32, 6), np.uint8), np.eye(4)), tmp_path / "bad.nii.gz")
    pairs = pd.read_csv(volumes / "pairs.csv")
    pairs["image"] = [str(volumes / p) for p in pairs["image"]]
    pairs["mask"] = [str(volumes / p) for p in pairs["mask"]]
    pairs.loc[1, "mask"] = str(tmp_path / "bad.nii.gz")
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    result = pmt("imaging", "train", "--task", "segment", "-i", tmp_path / "pairs.csv",
                 "--channels", "8", "--channels", "16", "--roi-size", "16", "--roi-size", "16",
                 "--epochs", "1", "-o", tmp_path / "run")
    assert result.exit_code == 2
    assert "line 3" in result.stderr and "(30, 32, 6)" in result.stderr
    assert not (tmp_path / "run").exists()


def test_shipped_models_offline(pmt, tmp_path):
    pngs = sorted(EXAMPLES.glob("*.png"))
    result = pmt("imaging", "predict", "--model", "pneumonia", *pngs, "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == ["path", "label", "prob_normal", "prob_pneumonia"]
    truth = ["pneumonia" if "pneumonia" in Path(p).name else "normal" for p in table["path"]]
    assert (table["label"] == truth).mean() >= 0.75
    result = pmt("imaging", "segment", "-m", "mni-tissue", EXAMPLES / "mni_t1.nii.gz",
                 "-o", tmp_path / "seg")
    assert result.exit_code == 0, result.stderr
    vol = pd.read_csv(tmp_path / "seg" / "volumes.csv")
    # tissue volumes within 5 % of the template's own labels (1 mm voxels: mm³ = voxels)
    import nibabel as nib

    truth = np.asarray(nib.load(EXAMPLES / "mni_tissue.nii.gz").dataobj)
    for k, name in ((1, "grey_matter"), (2, "white_matter")):
        assert vol[f"mm3_{name}"][0] == pytest.approx((truth == k).sum(), rel=0.05)
    mask = np.asarray(nib.load(tmp_path / "seg" / "mni_t1_mask.nii.gz").dataobj)
    assert mask.shape == truth.shape and ((mask == 1) == (truth == 1)).mean() > 0.95
    result = pmt("imaging", "predict", "--model", "mni-tissue", pngs[0], "-o", tmp_path / "x.csv")
    assert result.exit_code == 2 and "not a model for --task classify" in result.stderr


# --------------------------------------------------------------------------------- resume

def _interrupt_at_epoch(factory, epoch: int):
    """A training-module factory whose module stops like SIGTERM does when ``epoch`` (0-based)
    starts, i.e. after the checkpoint written at the end of the epoch before."""
    import signal

    from pmtoolkit.core.errors import Interrupted

    def make(*args, **kwargs):
        module = factory(*args, **kwargs)

        def on_train_epoch_start():
            if module.current_epoch == epoch:
                raise Interrupted(signal.SIGTERM)

        module.on_train_epoch_start = on_train_epoch_start
        return module

    return make


@pytest.mark.parametrize("task", ["classify", "segment"])
def test_interrupted_training_resumes(pmt, pictures, volumes, tmp_path, monkeypatch, task):
    from pmtoolkit.core import task as core_task

    out = tmp_path / "run"
    if task == "classify":
        args = ["-i", pictures / "labels.csv", *TINY[:4], "--epochs", "7", *TINY[6:],
                "--patience", "0"]
        sub = "classifier"
    else:
        args = ["--task", "segment", "-i", volumes / "pairs.csv", "--channels", "8",
                "--channels", "16", "--roi-size", "16", "--roi-size", "16", "--epochs", "7",
                "--patience", "0"]
        sub = "segmenter"
    command = ["imaging", "train", *args, "-o", out]
    factory = core_task.task_module  # the one LightningModule every domain trains with
    monkeypatch.setattr(core_task, "task_module", _interrupt_at_epoch(factory, 5))
    result = pmt(*command)
    assert result.exit_code == 143 and "pmt: error: interrupted" in result.stderr
    assert (out / "work" / sub / "last.ckpt").is_file()  # written after epoch 5
    assert not (out / "model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if ".pmt-tmp-" in p.name]
    monkeypatch.setattr(core_task, "task_module", factory)

    result = pmt(*command)
    assert result.exit_code == 2 and "holds an interrupted run" in result.stderr
    other = [("8" if a == "7" and b == "--epochs" else a) for b, a in zip(["", *command], command)]
    result = pmt(*other, "--resume")
    assert result.exit_code == 2 and "other settings (model.epochs: 7 then, 8 now)" in \
        result.stderr
    result = pmt(*command, "--resume")
    assert result.exit_code == 0, result.stderr
    assert "resuming from" in result.stderr
    assert (out / "model.safetensors").is_file() and not (out / "work").exists()
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 7
    history = pd.read_csv(out / "training" / "history.csv")
    assert history["epoch"].tolist() == list(range(7))  # kept across the interruption


@pytest.mark.slow
def test_sigterm_stops_training_and_resume_finishes_it(pictures, tmp_path):
    """The real signal, in a subprocess: SIGTERM after the first checkpoint."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    command = [sys.executable, "-m", "pmtoolkit.cli", "imaging", "train", "-i",
               str(pictures / "labels.csv"), *TINY[:4], "--epochs", "20", *TINY[6:],
               "--patience", "0", "--device", "cpu", "-o", str(out)]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("work/**/last.ckpt")):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        stderr = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert "pmt: error: interrupted" in stderr.splitlines()
    assert (out / "work").is_dir() and not (out / "model.safetensors").exists()
    assert not [p for p in tmp_path.rglob("*") if ".pmt-tmp-" in p.name]

    done = subprocess.run([*command, "--resume"], check=False, stderr=subprocess.PIPE,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stderr
    assert (out / "model.safetensors").is_file() and not (out / "work").exists()
