"""Medical imaging: readers of NIfTI, DICOM, pictures and MedMNIST arrays into one image
record, image classifiers, U-Net segmentation and Grad-CAM explanations.

``load("pneumonia").predict(paths)`` classifies image files with the shipped classifier;
``load("mni-tissue")`` is the shipped segmenter. Names load lazily."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "Image": "io", "read_image": "io", "read_images": "io", "read_npz": "io",
    "ImageClassifierConfig": "config", "SegmenterConfig": "config",
    "ImageClassifier": "classifier", "fit_classifier": "classifier",
    "Segmenter": "segment", "fit_segmenter": "segment",
    "gradcam": "explain",
    "load": "run", "train_file": "run", "evaluate_file": "run",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
