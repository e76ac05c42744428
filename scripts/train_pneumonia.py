"""Train the shipped chest X-ray classifier (data/models/pneumonia.safetensors, ``--model
pneumonia``) on PneumoniaMNIST (MedMNIST v2, 28×28 grey paediatric chest X-rays, normal vs
pneumonia) from ../shared/data/imaging/pneumoniamnist/pneumoniamnist.npz.

The recipe is the library default (:class:`pmtoolkit.imaging.config.ImageClassifierConfig`): a
ResNet-18 at a quarter of the published width (0.7 M weights), MedMNIST's 28-pixel stem,
class-weighted cross-entropy, random affine augmentation, 30 epochs at most, the epoch of best
validation AUC, the decision threshold by Youden's J on the validation split. The test split's
AUC and accuracy are stored in the model's metrics (``pmt info``). Weights are float16.

Note: this copy's training split holds 388 normal and 3,494 pneumonia images (the official
one 1,214 and 3,494); validation and test splits are the official ones.

    python scripts/train_pneumonia.py          # ~10 min on one CPU core
    python scripts/update_manifest.py           # then refresh sizes and hashes
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NPZ = ROOT.parent / "shared" / "data" / "imaging" / "pneumoniamnist" / "pneumoniamnist.npz"
OUT = ROOT / "data" / "models" / "pneumonia.safetensors"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, default=NPZ)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from pmtoolkit.core.io import sha256_file
    from pmtoolkit.imaging.classifier import fit_classifier
    from pmtoolkit.imaging.config import ImageClassifierConfig
    from pmtoolkit.imaging.evaluate import evaluate_classifier
    from pmtoolkit.imaging.io import read_npz

    x, y = read_npz(args.npz, "train")
    xv, yv = read_npz(args.npz, "val")
    xt, yt = read_npz(args.npz, "test")
    names = ["normal", "pneumonia"]
    t0 = time.perf_counter()
    config = ImageClassifierConfig(seed=args.seed, device="cpu")
    model = fit_classifier(list(x), [names[i] for i in y], config,
                           valid=(list(xv), [names[i] for i in yv]), classes=names)
    test = evaluate_classifier(model, list(xt), [names[i] for i in yt])
    metrics = dict(model.metadata["metrics"])
    metrics.update({
        "test_auc": test["auc"], "test_accuracy": test["accuracy"],
        "test_accuracy_at_threshold": test["accuracy_at_threshold"],
        "test_sensitivity": test["sensitivity"], "test_specificity": test["specificity"],
        "training_set": "PneumoniaMNIST (MedMNIST v2) 28x28: train 3,882 images (388 normal), "
                        "val 524, test 624 (234 normal, 390 pneumonia)",
        "total_seconds": time.perf_counter() - t0,
    })
    model.save(args.out, metrics=metrics, training_data_sha256=sha256_file(args.npz), half=True)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
