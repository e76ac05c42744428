"""CNN image classifiers: MONAI's ResNet and DenseNet (2-D or 3-D) behind the one model
contract.

Every image goes through :func:`pmtoolkit.imaging.transforms.prepare` (channels, resize to the
model's ``image_size``, per-image intensity normalisation), so a PNG of any size, a DICOM
slice or a MedMNIST array all meet the network the same way. Training: weighted
cross-entropy (inverse class frequency), a random affine per image on the training device,
AdamW with a cosine schedule, and the weights of the epoch with the best validation ROC-AUC
(macro one-vs-rest for more than two classes). A binary model also stores its decision
threshold, chosen on the validation images by Youden's J (sensitivity + specificity - 1).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import TorchModel
from pmtoolkit.imaging.config import ImageClassifierConfig

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

RESNET_LAYERS = {"resnet10": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


def build_network(config: ImageClassifierConfig, n_classes: int):
    """The MONAI network ``config`` names, with ``n_classes`` outputs (logits)."""
    if config.spatial_dims not in (2, 3):
        raise BadInputError(f"spatial_dims must be 2 or 3, not {config.spatial_dims}")
    if len(config.image_size) != config.spatial_dims:
        raise BadInputError(f"image_size {tuple(config.image_size)} has "
                            f"{len(config.image_size)} values for {config.spatial_dims}-D images")
    from pmtoolkit.imaging.io import check_size

    check_size((config.in_channels, *config.image_size), "image_size", what="network input",
               hint="choose a smaller image_size")
    if config.arch in RESNET_LAYERS:
        from monai.networks.nets import ResNet
        from monai.networks.nets.resnet import get_inplanes

        stem = ({"conv1_t_size": 3, "conv1_t_stride": 1, "no_max_pool": True}
                if config.small_input else {"conv1_t_size": 7, "conv1_t_stride": 2})
        return ResNet("basic", RESNET_LAYERS[config.arch], get_inplanes(),
                      spatial_dims=config.spatial_dims, n_input_channels=config.in_channels,
                      num_classes=n_classes, widen_factor=config.width, **stem)
    if config.arch == "densenet121":
        from monai.networks.nets import DenseNet

        if min(config.image_size) < 32:
            raise BadInputError("densenet121 halves the image five times: image_size must be "
                                "at least 32 along every axis", hint="or use a resnet")
        return DenseNet(spatial_dims=config.spatial_dims, in_channels=config.in_channels,
                        out_channels=n_classes, init_features=max(8, round(64 * config.width)),
                        growth_rate=max(4, round(32 * config.width)),
                        block_config=(6, 12, 24, 16))
    raise BadInputError(f"unknown architecture {config.arch!r}",
                        hint="resnet10, resnet18, resnet34 or densenet121")


def cam_layer(config: ImageClassifierConfig) -> str:
    """The layer whose activations Grad-CAM weighs: the last convolutional stage."""
    return "layer4" if config.arch in RESNET_LAYERS else "class_layers.relu"


class ImageClassifier(TorchModel):
    """A trained image classifier: its class names and, for two classes, the decision
    threshold on the second class's probability."""

    Config = ImageClassifierConfig

    def __init__(self, config: ImageClassifierConfig, network=None, *,
                 classes: list[str] | None = None,
                 threshold: float | None = None):
        self.classes = [str(c) for c in (classes or ["0", "1"])]
        self.threshold = threshold
        super().__init__(config, network)

    @classmethod
    def build_network(cls, config: ImageClassifierConfig, extra: dict[str, Any]):
        return build_network(config, len(extra.get("classes") or ["0", "1"]))

    @classmethod
    def untrained(cls, config: ImageClassifierConfig, extra: dict[str, Any]) -> ImageClassifier:
        return cls(config, cls.build_network(config, extra), classes=extra.get("classes"),
                   threshold=extra.get("threshold"))

    def extra_metadata(self) -> dict[str, Any]:
        return {"classes": self.classes, "threshold": self.threshold, "task": "classify"}

    @property
    def decision_threshold(self) -> float:
        return 0.5 if self.threshold is None else float(self.threshold)

    def check_input(self, image) -> None:
        """Refuse an image this model cannot read faithfully (channels, dimensions, non-finite
        values, a geometry far outside its ``image_size``): see
        :func:`pmtoolkit.imaging.transforms.check_input`."""
        from pmtoolkit.imaging.transforms import check_input

        check_input(image, size=tuple(self.config.image_size),
                    in_channels=self.config.in_channels)

    def prepare(self, images) -> np.ndarray:
        """Images (records, or arrays ``(C, *spatial)``) as network input ``(N, C, *size)``."""
        from pmtoolkit.imaging.transforms import prepare_many

        c = self.config
        return prepare_many(list(images), size=tuple(c.image_size), in_channels=c.in_channels,
                            method=c.normalise)

    def logits(self, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Raw network outputs of a prepared batch."""
        import torch

        from pmtoolkit.core.devices import torch_device

        device = torch_device(self.config.device)
        net = self.network.to(device).eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                out.append(net(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size]))
                               .to(device)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def predict_proba(self, images, *, prepared: bool = False) -> np.ndarray:
        """Class probabilities, ``(N, classes)``."""
        x = images if prepared else self.prepare(images)
        z = self.logits(x)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def labels_from(self, probs: np.ndarray, threshold: float | None = None) -> list[str]:
        """Predicted class names: the second class where its probability reaches the
        threshold (two classes), else the most probable class."""
        if len(self.classes) == 2:
            t = self.decision_threshold if threshold is None else threshold
            return [self.classes[int(p >= t)] for p in probs[:, 1]]
        return [self.classes[i] for i in probs.argmax(axis=1)]

    def predict(self, images) -> pd.DataFrame:
        """One row per image: ``label`` and ``prob_<class>`` for every class."""
        import pandas as pd

        probs = self.predict_proba(images)
        frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in self.classes])
        frame.insert(0, "label", self.labels_from(probs))
        return frame


def _auc(y: np.ndarray, probs: np.ndarray) -> float:
    from pmtoolkit.core.metrics import roc_auc

    if probs.shape[1] == 2:
        return roc_auc(y == 1, probs[:, 1])
    scores = [roc_auc(y == k, probs[:, k]) for k in range(probs.shape[1]) if (y == k).any()]
    return float(np.nanmean(scores)) if scores else float("nan")


def objective(config: ImageClassifierConfig, weights):
    """Class-weighted cross-entropy (``weights``: a tensor per class) on randomly flipped,
    rotated and scaled images when ``config.augment``; validation loss on the whole epoch,
    one-vs-rest ROC-AUC and accuracy."""
    import torch

    from pmtoolkit.core.task import Objective, finite
    from pmtoolkit.imaging.transforms import random_affine

    class ImageObjective(Objective):
        validation_loss = "epoch"
        keep_outputs = True

        def __init__(self):
            super().__init__()
            self.register_buffer("weights", weights)
            self.gen = torch.Generator().manual_seed(config.seed)

        def outputs(self, net, batch):
            x, y = batch
            return net(x), y

        def training_outputs(self, net, batch, step):
            x, y = batch
            if config.augment:
                x = random_affine(x, self.gen)
            return net(x), y

        def loss(self, out, target, step=None):
            return torch.nn.functional.cross_entropy(out, target, weight=self.weights)

        def metrics(self, out, target):
            probs = torch.softmax(torch.from_numpy(out), -1).numpy()
            return {"val_auc": finite(_auc(target, probs), 0.0),
                    "val_accuracy": float((probs.argmax(1) == target).mean())}

    return ImageObjective()


def optimizer(config: ImageClassifierConfig, total_steps: int):
    from pmtoolkit.core.task import Optimizer

    return Optimizer(name="adamw", lr=config.lr, weight_decay=config.weight_decay,
                     schedule="cosine", floor=0.01, total_steps=total_steps)


def encode_labels(labels, classes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Integer codes of ``labels`` and the class names (sorted; integer labels keep their
    numeric order so MedMNIST's 0/1 stay 0/1)."""
    values = np.asarray(labels)
    if classes is None:
        uniq = np.unique(values)
        classes = [str(u) for u in uniq]
    names = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(names)}
    try:
        codes = np.array([index[str(v)] for v in values], dtype=np.int64)
    except KeyError as exc:
        raise BadInputError(f"label {exc.args[0]!r} is not one of the classes {names}") from None
    return codes, names


def fit_classifier(train_images, train_labels, config: ImageClassifierConfig | None = None, *,
                   valid: tuple[Any, Any] | None = None, valid_fraction: float = 0.1,
                   classes: list[str] | None = None, workdir: str | Path | None = None,
                   checkpoints: str | Path | None = None,
                   resume: bool = False) -> ImageClassifier:
    """Train a classifier on images (records, arrays, or an ``(N, C, *S)`` array) and their
    labels. ``valid`` gives validation images and labels; without it a stratified
    ``valid_fraction`` of the training images decides early stopping and the threshold.

    Logs go to ``workdir`` (default: a temporary folder); the resume checkpoint to
    ``checkpoints/classifier`` (default: inside ``workdir``), from which ``resume`` continues
    an interrupted run."""
    import torch

    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    config = config or ImageClassifierConfig()
    check_ranges(config, source="image classifier config")
    y, classes = encode_labels(train_labels, classes)
    if len(classes) < 2:
        raise BadInputError(f"the labels hold one class ({classes[0]!r}); need two or more")
    from pmtoolkit.core.seeds import seed_everything

    seed_everything(config.seed)  # the initial weights depend on the seed alone
    model = ImageClassifier.untrained(config, {"classes": classes})
    x = model.prepare(train_images)
    if valid is not None:
        xv = model.prepare(valid[0])
        yv, _ = encode_labels(valid[1], classes)
    else:
        rng = np.random.default_rng(config.seed)
        val_mask = np.zeros(len(y), bool)
        for k in range(len(classes)):
            idx = rng.permutation(np.flatnonzero(y == k))
            val_mask[idx[: round(valid_fraction * len(idx))]] = True
        x, xv, y, yv = x[~val_mask], x[val_mask], y[~val_mask], y[val_mask]
    counts = np.bincount(y, minlength=len(classes)).astype(np.float32)
    if (counts == 0).any():
        missing = [c for c, n in zip(classes, counts) if n == 0]
        raise BadInputError(f"no training images of class {', '.join(missing)}")
    weights = (len(y) / (len(classes) * counts)) if config.class_weights \
        else np.ones(len(classes), np.float32)

    gen = torch.Generator().manual_seed(config.seed)
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(np.asarray(x)), torch.from_numpy(y)),
        batch_size=config.batch_size, shuffle=True, generator=gen, drop_last=len(y) > config.batch_size)
    val = None
    if len(yv):
        val = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.from_numpy(np.asarray(xv)), torch.from_numpy(yv)),
            batch_size=256, shuffle=False)
    steps = max(1, len(train)) * config.epochs
    cfg = train_config(config, monitor="val_auc", mode="max", validating=bool(val),
                       resume=resume)
    log.info("training %s (%s weights) on %d images, validating on %d", config.arch,
             f"{sum(p.numel() for p in model.network.parameters()):,}", len(y), len(yv))
    start = time.perf_counter()
    result = train_network(model.network,
                           objective(config, torch.tensor(weights, dtype=torch.float32)),
                           train, val, optimizer=optimizer(config, steps), config=cfg,
                           workdir=workdir,
                           checkpoint_dir=Path(checkpoints) / "classifier" if checkpoints
                           else None)
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"train_seconds": seconds, "epochs_run": result.epochs_run,
                               "n_train": len(y), "n_valid": len(yv),
                               "images_per_second": len(y) * max(1, result.epochs_run) / seconds}
    if len(yv):
        pv = model.predict_proba(np.asarray(xv), prepared=True)
        metrics["val_auc"] = _auc(yv, pv)
        if len(classes) == 2:
            from pmtoolkit.core.metrics import youden_threshold

            model.threshold = youden_threshold(yv == 1, pv[:, 1])
            metrics["threshold"] = model.threshold
    model.metadata = {"metrics": metrics}
    return model
