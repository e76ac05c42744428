"""Train the shipped brain-tissue segmentation example (data/models/mni-tissue.safetensors,
``--model mni-tissue``): a 2-D U-Net that labels grey and white matter on axial slices of a
T1-weighted MRI at 1 mm, trained on the MNI ICBM152 2009a symmetric template.

Labels come from the template's own tissue probability maps: each voxel takes the most
probable of background (1 - GM - WM, which holds CSF and everything outside the brain), grey
matter and white matter. Axial slices are split in blocks of 8: blocks 2, 7, 12, ... (every
fifth, from the third) are held out for testing, blocks 4, 9, 14, ... validate (early
stopping), and the 2 slices next to a held-out or validation block on either side are left
out of training, so no training slice is an immediate neighbour of a test slice. Test Dice,
IoU and Hausdorff distance on the held-out slices are stored in the model's metrics.

One template is one brain: this is a working example of the segmentation workflow (file
formats, training, sliding windows, overlays), not a tissue segmenter for other scanners.

    python scripts/train_mni_segmenter.py       # ~15 min on one CPU core
    python scripts/update_manifest.py            # then refresh sizes and hashes
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NIFTI = ROOT.parent / "shared" / "data" / "imaging" / "nifti"
T1 = NIFTI / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
GM = NIFTI / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
WM = NIFTI / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"
OUT = ROOT / "data" / "models" / "mni-tissue.safetensors"
CLASSES = ["background", "grey_matter", "white_matter"]


def tissue_labels(gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """The most probable of background, grey matter and white matter, per voxel. nilearn's
    copies of the maps store probabilities as 0-255; they are scaled back to [0, 1]."""
    if max(float(gm.max()), float(wm.max())) > 1.0:
        gm, wm = gm / 255.0, wm / 255.0
    bg = np.clip(1.0 - gm - wm, 0.0, 1.0)
    return np.argmax(np.stack([bg, gm, wm]), axis=0).astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None)
    args = ap.parse_args()

    from pmtoolkit.core.io import sha256_file
    from pmtoolkit.imaging.config import SegmenterConfig
    from pmtoolkit.imaging.io import read_image
    from pmtoolkit.imaging.segment import block_split, fit_segmenter, heldout_metrics

    t1 = read_image(T1)
    labels = tissue_labels(read_image(GM).array[0], read_image(WM).array[0])
    parts = block_split(labels.shape[2])
    config = SegmenterConfig(seed=args.seed, device="cpu", patches_per_image=8, epochs=60,
                             patience=15)
    if args.epochs:
        config.epochs = args.epochs
    t0 = time.perf_counter()
    model = fit_segmenter([t1], [labels], config, classes=CLASSES, valid=([t1], [labels]),
                          train_slices=[parts["train"]], valid_slices=[parts["valid"]])
    test = heldout_metrics(model, t1, labels, parts["test"])
    metrics = dict(model.metadata["metrics"])
    metrics.update({"test_" + k: v for k, v in test.items()})
    metrics.update({
        "training_set": "MNI ICBM152 2009a symmetric T1 template (197x233x189, 1 mm); labels "
                        "argmax(background, GM, WM) of its probability maps; axial slices "
                        f"train {len(parts['train'])}, valid {len(parts['valid'])}, "
                        f"test {len(parts['test'])} (held out in blocks of 8)",
        "test_slices": parts["test"],
        "total_seconds": time.perf_counter() - t0,
    })
    model.save(args.out, metrics=metrics, training_data_sha256=sha256_file(T1), half=True)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
