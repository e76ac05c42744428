"""Write the imaging examples that ship in data/examples/imaging/:

- four chest X-rays of the PneumoniaMNIST *test* split as 28×28 PNG (two normal, two
  pneumonia: test images 0..623, the first two of each class) and ``labels.csv`` (path,
  label) for ``pmt imaging predict | evaluate | explain``;
- the MNI ICBM152 2009a symmetric T1 template (a byte-for-byte copy) and its tissue labels
  (0 background, 1 grey matter, 2 white matter: the most probable class of the template's
  probability maps, as scripts/train_mni_segmenter.py trains on) with ``mni_pairs.csv``
  (image, mask) for ``pmt imaging segment | evaluate``.

    python scripts/make_imaging_examples.py
    python scripts/update_manifest.py
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "imaging"
OUT = ROOT / "data" / "examples" / "imaging"


def main() -> int:
    import nibabel as nib
    from PIL import Image

    from pmtoolkit.imaging.io import read_npz

    sys_path = ROOT / "scripts"
    import sys

    sys.path.insert(0, str(sys_path))
    from train_mni_segmenter import GM, T1, WM, tissue_labels

    OUT.mkdir(parents=True, exist_ok=True)
    x, y = read_npz(SHARED / "pneumoniamnist" / "pneumoniamnist.npz", "test")
    rows = []
    for label, name in ((0, "normal"), (1, "pneumonia")):
        for k, i in enumerate(np.flatnonzero(y == label)[:2], start=1):
            file = f"{name}_{k}.png"
            Image.fromarray(x[i, 0].astype(np.uint8)).save(OUT / file)
            rows.append((file, name))
    with open(OUT / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["path", "label"])
        w.writerows(rows)

    shutil.copyfile(T1, OUT / "mni_t1.nii.gz")
    gm, wm = nib.load(str(GM)), nib.load(str(WM))
    labels = tissue_labels(np.asarray(gm.dataobj, np.float32), np.asarray(wm.dataobj, np.float32))
    img = nib.Nifti1Image(labels, gm.affine)
    img.header.set_data_dtype(np.uint8)
    nib.save(img, str(OUT / "mni_tissue.nii.gz"))
    with open(OUT / "mni_pairs.csv", "w", newline="") as fh:
        fh.write("image,mask\nmni_t1.nii.gz,mni_tissue.nii.gz\n")
    for f in sorted(OUT.iterdir()):
        print(f"{f.stat().st_size:>10,}  {f.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
