"""U-Net segmentation behind the one model contract: MONAI's residual U-Net, Dice +
cross-entropy loss, random-patch training and sliding-window inference.

Training draws ``patches_per_image`` random ``roi_size`` patches from every training image
per epoch (MONAI dictionary transforms: pad, crop, flips, intensity jitter); validation
segments whole images with sliding windows, exactly as inference does, and the epoch with the
best mean foreground Dice is kept. Inference tiles an image of any size with overlapping
``roi_size`` windows (Gaussian-weighted blending) and stitches the class probabilities on the
CPU, so only one batch of tiles is ever on the accelerator. A 2-D model segments a volume
slice by slice along ``slice_axis``; intensities are normalised per whole image first, the
same in training and inference.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import TorchModel
from pmtoolkit.imaging.config import SegmenterConfig

if TYPE_CHECKING:
    import torch


log = logging.getLogger(__name__)


def build_unet(config: SegmenterConfig, n_classes: int):
    from monai.networks.nets import UNet

    if config.spatial_dims not in (2, 3):
        raise BadInputError(f"spatial_dims must be 2 or 3, not {config.spatial_dims}")
    if len(config.roi_size) != config.spatial_dims:
        raise BadInputError(f"roi_size {tuple(config.roi_size)} has {len(config.roi_size)} "
                            f"values for a {config.spatial_dims}-D model")
    from pmtoolkit.imaging.io import check_size

    check_size((config.in_channels, *config.roi_size), "roi_size", what="network input",
               hint="choose a smaller roi_size")
    if len(config.channels) < 2:
        raise BadInputError("a U-Net needs at least two levels of channels")
    factor = 2 ** (len(config.channels) - 1)
    if any(r % factor for r in config.roi_size):
        raise BadInputError(f"roi_size {tuple(config.roi_size)} must be divisible by {factor} "
                            f"for {len(config.channels)} U-Net levels")
    return UNet(spatial_dims=config.spatial_dims, in_channels=config.in_channels,
                out_channels=n_classes, channels=tuple(config.channels),
                strides=(2,) * (len(config.channels) - 1), num_res_units=config.num_res_units,
                dropout=config.dropout)


class Segmenter(TorchModel):
    """A trained segmenter: its class names (index 0 is the background)."""

    Config = SegmenterConfig

    def __init__(self, config: SegmenterConfig, network=None, *,
                 classes: list[str] | None = None):
        self.classes = [str(c) for c in (classes or ["background", "foreground"])]
        super().__init__(config, network)

    @classmethod
    def build_network(cls, config: SegmenterConfig, extra: dict[str, Any]):
        return build_unet(config, len(extra.get("classes") or ["background", "foreground"]))

    @classmethod
    def untrained(cls, config: SegmenterConfig, extra: dict[str, Any]) -> Segmenter:
        return cls(config, cls.build_network(config, extra), classes=extra.get("classes"))

    def extra_metadata(self) -> dict[str, Any]:
        return {"classes": self.classes, "task": "segment"}

    # -- input ---------------------------------------------------------------------------
    def prepare(self, image) -> np.ndarray:
        """``(C, *spatial)`` float32 with the model's channels and normalisation."""
        from pmtoolkit.imaging.io import check_values
        from pmtoolkit.imaging.transforms import (
            as_array,
            check_geometry,
            match_channels,
            normalise,
        )

        arr, source = as_array(image)
        check_values(arr, source)
        spatial = arr.ndim - 1
        if spatial not in (self.config.spatial_dims, 3) or \
                (self.config.spatial_dims == 3 and spatial != 3):
            raise BadInputError(f"'{source}' is {spatial}-D; this {self.config.spatial_dims}-D "
                                "model segments "
                                + ("2-D images or volumes slice by slice"
                                   if self.config.spatial_dims == 2 else "volumes"))
        windowed = arr.shape[1:]
        if spatial > self.config.spatial_dims:  # slice by slice: the slice axis is not tiled
            windowed = tuple(n for a, n in enumerate(windowed) if a != self.config.slice_axis)
        # no resizing here (sliding windows on the image's own grid): only too small is refused
        check_geometry(tuple(windowed), None, tuple(self.config.roi_size), source, aspect=False)
        arr = match_channels(arr, self.config.in_channels, source)
        return normalise(arr.astype(np.float32, copy=False), self.config.normalise,
                         nonzero=self.config.normalise == "zscore")

    def slices(self, arr: np.ndarray) -> np.ndarray:
        """A prepared volume ``(C, *spatial)`` as 2-D slices ``(D, C, H, W)`` along
        ``slice_axis``."""
        return np.moveaxis(arr, 1 + self.config.slice_axis, 0)

    # -- inference -----------------------------------------------------------------------
    def _window(self, x: torch.Tensor, device) -> torch.Tensor:
        import torch
        from monai.inferers import sliding_window_inference

        net = self.network
        with torch.inference_mode():
            out = sliding_window_inference(
                x.to(device), roi_size=tuple(self.config.roi_size), sw_batch_size=16,
                predictor=net, overlap=self.config.overlap, mode="gaussian", device="cpu")
            return torch.softmax(torch.as_tensor(out).float(), dim=1)

    def probabilities(self, image, *, prepared: bool = False,
                      batch_slices: int = 16) -> np.ndarray:
        """Class probabilities ``(K, *spatial)`` of one image (sliding windows; a volume
        slice by slice for a 2-D model)."""
        import torch

        from pmtoolkit.core.devices import torch_device

        arr = image if prepared else self.prepare(image)
        device = torch_device(self.config.device)
        self.network.to(device).eval()
        spatial = arr.ndim - 1
        if spatial == self.config.spatial_dims:
            return self._window(torch.from_numpy(np.ascontiguousarray(arr[None])), device)[0] \
                .numpy()
        stack = self.slices(arr)  # (D, C, H, W)
        parts = []
        for i in range(0, len(stack), batch_slices):
            chunk = torch.from_numpy(np.ascontiguousarray(stack[i:i + batch_slices]))
            parts.append(self._window(chunk, device).numpy())
        probs = np.concatenate(parts)  # (D, K, H, W)
        return np.moveaxis(probs, 0, 1 + self.config.slice_axis)

    def segment(self, image) -> np.ndarray:
        """The label map (uint8 class indices) of one image, shaped like its spatial axes."""
        return self.probabilities(image).argmax(axis=0).astype(np.uint8)


def _dice_per_class(pred, truth, n_classes: int) -> list[float]:
    out = []
    for k in range(1, n_classes):
        p, t = pred == k, truth == k
        denom = p.sum() + t.sum()
        out.append(float(2 * (p & t).sum() / denom) if denom else float("nan"))
    return out


def objective(model: Segmenter, config: SegmenterConfig, weights):
    """Dice plus cross-entropy (MONAI's DiceCELoss, classes weighted by ``weights`` in the
    cross-entropy) on random patches; validation: each image segmented whole by a Gaussian
    sliding window, its Dice per foreground class, and their mean (``val_dice``)."""
    import torch
    from monai.losses import DiceCELoss

    from pmtoolkit.core.task import Objective

    class SegmentationObjective(Objective):
        validation_loss = None
        keep_outputs = True

        def __init__(self):
            super().__init__()
            self.dice_ce = DiceCELoss(to_onehot_y=True, softmax=True,
                                      lambda_dice=config.lambda_dice,
                                      lambda_ce=config.lambda_ce, weight=weights)

        def outputs(self, net, batch):
            return net(batch["image"]), batch["label"]

        def validation_outputs(self, net, batch):
            from monai.inferers import sliding_window_inference

            x, y = batch["image"], batch["label"]
            logits = sliding_window_inference(x, tuple(config.roi_size), 16, net,
                                              overlap=config.overlap, mode="gaussian")
            pred = torch.as_tensor(logits).argmax(1).cpu().numpy()
            truth = y[:, 0].cpu().numpy()
            dice = [_dice_per_class(p, t, len(model.classes)) for p, t in zip(pred, truth)]
            return torch.tensor(dice, dtype=torch.float64), torch.zeros(len(dice))

        def loss(self, out, target, step=None):
            return self.dice_ce(out, target)

        def metrics(self, out, target):
            d = np.asarray(out, dtype=float)
            found = {"val_dice": float(np.nanmean(d)) if np.isfinite(d).any() else 0.0}
            for k, name in enumerate(model.classes[1:]):
                col = d[:, k]
                if np.isfinite(col).any():
                    found[f"val_dice_{name}"] = float(np.nanmean(col))
            return found

    return SegmentationObjective()


def optimizer(config: SegmenterConfig, total_steps: int):
    from pmtoolkit.core.task import Optimizer

    return Optimizer(name="adamw", lr=config.lr, weight_decay=config.weight_decay,
                     schedule="cosine", floor=0.01, total_steps=total_steps)


class _Patches:
    """A torch dataset of random patches: item ``i`` is a fresh random draw from training
    image ``i % n`` (``patches_per_image`` draws per image per epoch)."""

    def __init__(self, items: list[dict], transform, per_image: int):
        self.items, self.transform, self.per_image = items, transform, per_image

    def __len__(self) -> int:
        return len(self.items) * self.per_image

    def __getitem__(self, i: int) -> dict:
        return self.transform(dict(self.items[i % len(self.items)]))


def training_items(model: Segmenter, images, masks, *, slices=None,
                   keep_empty: bool = False) -> list[dict]:
    """``{'image', 'label'}`` tensors for training: prepared images with their masks; for a
    2-D model, volumes become their slices (``slices``: per volume, the slice indices to use;
    each volume is normalised as a whole first, as at inference; slices without foreground are
    dropped unless ``keep_empty``)."""
    import torch

    from pmtoolkit.imaging.io import Image

    items = []
    slices = list(slices) if slices is not None else [None] * len(images)
    for image, mask, chosen in zip(images, masks, slices):
        arr = model.prepare(image)
        source = image.source if isinstance(image, Image) else "image"
        lab = np.asarray(mask.array[0] if isinstance(mask, Image) else mask)
        if lab.shape != arr.shape[1:]:
            raise BadInputError(f"mask of '{source}' has shape {lab.shape}, the image "
                                f"{arr.shape[1:]}", hint="resample the mask onto the image grid")
        lab = np.rint(lab).astype(np.int64)
        if lab.min() < 0 or lab.max() >= len(model.classes):
            raise BadInputError(f"mask of '{source}' holds labels {int(lab.min())}..{int(lab.max())}"
                                f"; the model has {len(model.classes)} classes (0..."
                                f"{len(model.classes) - 1})")
        if arr.ndim - 1 == model.config.spatial_dims:
            pairs = [(arr, lab)]
        else:
            pairs = list(zip(model.slices(arr), np.moveaxis(lab, model.config.slice_axis, 0)))
            if chosen is not None:
                pairs = [pairs[i] for i in chosen]
        for a, m in pairs:
            if keep_empty or m.any():
                items.append({"image": torch.from_numpy(np.ascontiguousarray(a)),
                              "label": torch.from_numpy(np.ascontiguousarray(m[None]))})
    return items


def fit_segmenter(images, masks, config: SegmenterConfig | None = None, *,
                  classes: list[str], valid: tuple[Any, Any] | None = None,
                  train_slices=None, valid_slices=None, workdir: str | Path | None = None,
                  checkpoints: str | Path | None = None, resume: bool = False) -> Segmenter:
    """Train a U-Net on images (records or ``(C, *spatial)`` arrays) and label maps (integer
    class indices, 0 = background); ``valid`` (images, masks) decides early stopping. For a
    2-D model on volumes, ``train_slices`` / ``valid_slices`` name the slices of each volume
    to use (e.g. to hold slices out of one volume).

    Logs go to ``workdir`` (default: a temporary folder); the resume checkpoint to
    ``checkpoints/segmenter`` (default: inside ``workdir``), from which ``resume`` continues
    an interrupted run."""
    import torch

    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config
    from pmtoolkit.imaging.transforms import segmentation_augment

    config = config or SegmenterConfig()
    check_ranges(config, source="segmenter config")
    classes = [str(c) for c in classes]
    if len(classes) < 2:
        raise BadInputError("a segmenter needs a background and at least one class")
    from pmtoolkit.core.seeds import seed_everything

    seed_everything(config.seed)  # the initial weights depend on the seed alone
    model = Segmenter.untrained(config, {"classes": classes})
    train_items = training_items(model, images, masks, slices=train_slices)
    if not train_items:
        raise BadInputError("no training image holds any foreground voxel")
    val_items = (training_items(model, *valid, slices=valid_slices) if valid is not None
                 else [])
    weights = None
    if config.class_weights:
        counts = np.zeros(len(classes))
        for it in train_items:
            counts += np.bincount(it["label"].ravel().numpy(), minlength=len(classes))
        weights = torch.tensor(counts.sum() / (len(classes) * np.maximum(counts, 1)),
                               dtype=torch.float32)
    transform = segmentation_augment(tuple(config.roi_size), augment=config.augment)
    transform.set_random_state(seed=config.seed)
    data = _Patches(train_items, transform, config.patches_per_image)
    gen = torch.Generator().manual_seed(config.seed)
    train = torch.utils.data.DataLoader(data, batch_size=config.batch_size, shuffle=True,
                                        generator=gen)
    val = torch.utils.data.DataLoader(val_items, batch_size=1) if val_items else None
    steps = max(1, len(train)) * config.epochs
    cfg = train_config(config, monitor="val_dice", mode="max", validating=bool(val),
                       resume=resume)
    log.info("training a %d-D U-Net on %d images (%d patches per epoch), validating on %d",
             config.spatial_dims, len(train_items), len(data), len(val_items))
    start = time.perf_counter()
    result = train_network(model.network, objective(model, config, weights), train, val,
                           optimizer=optimizer(config, steps), config=cfg, workdir=workdir,
                           checkpoint_dir=Path(checkpoints) / "segmenter" if checkpoints
                           else None)
    seconds = time.perf_counter() - start
    best = result.metrics()
    model.metadata = {"metrics": {
        "train_seconds": seconds, "epochs_run": result.epochs_run,
        "n_train_images": len(train_items), "n_valid_images": len(val_items),
        "patches_per_second": len(data) * max(1, result.epochs_run) / seconds,
        **{k: v for k, v in best.items() if k.startswith("val_dice")}}}
    return model


def overlay_mask(image, mask: np.ndarray, path: str | Path, *, truth: np.ndarray | None = None,
                 classes: list[str] | None = None, title: str = "",
                 slice_axis: int = 2, n_slices: int = 3,
                 slices: list[int] | None = None) -> None:
    """A PNG of the image in grey with the mask's classes in colour (and the true mask
    beside it when given); volumes show ``n_slices`` evenly spaced slices along
    ``slice_axis`` that hold foreground (or the given ``slices``)."""
    from matplotlib.colors import ListedColormap

    from pmtoolkit.core.plots import figure
    from pmtoolkit.imaging.transforms import as_array

    arr, source = as_array(image)
    grey = arr.mean(axis=0)
    # NIfTI arrays run (x, y[, z]): turn a slice so anterior is up, as viewers show it
    turn = np.rot90 if source.lower().endswith((".nii", ".nii.gz")) else np.asarray
    mask = np.asarray(mask)
    if grey.ndim == 3:
        ax_ = slice_axis
        fg = np.flatnonzero((mask > 0).any(axis=tuple(a for a in range(3) if a != ax_)))
        pick = (np.asarray(slices, dtype=int) if slices is not None
                else np.linspace(fg[0], fg[-1], n_slices + 2)[1:-1].round().astype(int)
                if fg.size else np.linspace(0, grey.shape[ax_] - 1, n_slices + 2)[1:-1]
                .round().astype(int))
        views = [(np.take(grey, i, ax_), np.take(mask, i, ax_),
                  None if truth is None else np.take(truth, i, ax_), f"slice {i}")
                 for i in pick]
    else:
        views = [(grey, mask, truth, "")]
    n_cls = max(int(mask.max()) + 1, len(classes or []), 2)
    colours = ["#00000000", "#f59e0b", "#2563eb", "#10b981", "#ef4444", "#a855f7", "#14b8a6"]
    cmap = ListedColormap((colours * (1 + n_cls // len(colours)))[:n_cls])
    rows = 2 if truth is not None else 1
    with figure(path, size=(3.0 * len(views), 3.1 * rows), nrows=rows, ncols=len(views),
                squeeze=False) as (fig, axes):
        for j, (g, m, t, label) in enumerate(views):
            for r, (lab, name) in enumerate([(m, "predicted"), (t, "true")][:rows]):
                ax = axes[r, j]
                ax.imshow(turn(g), cmap="gray")
                shown = np.ma.masked_where(turn(lab) == 0, turn(lab))
                ax.imshow(shown, cmap=cmap, vmin=0, vmax=n_cls - 1, alpha=0.45,
                          interpolation="nearest")
                ax.set_title(" ".join(x for x in (name if rows > 1 else "", label) if x),
                             fontsize=9)
                ax.axis("off")
        if classes:
            from matplotlib.patches import Patch

            handles = [Patch(color=cmap(k), label=c.replace("_", " "))
                       for k, c in enumerate(classes) if k]
            axes[0, 0].legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.85,
                              borderpad=0.3, handlelength=1.0)
        if title:
            fig.suptitle(title, fontsize=10)


def heldout_metrics(model: Segmenter, image, labels: np.ndarray, slices: list[int]
                    ) -> dict[str, float]:
    """Dice, IoU and Hausdorff distances (mean over the given slices of a volume, each slice
    segmented as at inference: the whole volume normalised, sliding windows) per foreground
    class, plus their mean over classes; ``dice_pooled_<class>`` counts the voxels of all the
    given slices together (a slice with a sliver of a class weighs by its voxels, not as one
    slice)."""
    from pmtoolkit.imaging.evaluate import segmentation_metrics
    from pmtoolkit.imaging.io import Image

    pred = model.segment(image)
    ax = model.config.slice_axis
    spacing = image.spacing if isinstance(image, Image) else None
    in_plane = None if spacing is None else tuple(s for i, s in enumerate(spacing) if i != ax)
    rows: dict[str, dict[str, list[float]]] = {}
    for i in slices:
        per = segmentation_metrics(np.take(pred, i, ax), np.take(labels, i, ax), model.classes,
                                   spacing=in_plane)
        for name, vals in per.items():
            for k in ("dice", "iou", "hausdorff95"):
                rows.setdefault(name, {}).setdefault(k, []).append(vals[k])
    out: dict[str, float] = {}
    for name, vals in rows.items():
        for k, v in vals.items():
            out[f"{k}_{name}"] = float(np.nanmean(v))
    for k in ("dice", "iou", "hausdorff95"):
        out[k] = float(np.mean([out[f"{k}_{n}"] for n in rows]))
    p_all, t_all = np.take(pred, slices, ax), np.take(labels, slices, ax)
    for k, name in enumerate(model.classes):
        if k and name in rows:
            p, t = p_all == k, t_all == k
            out[f"dice_pooled_{name}"] = float(2 * (p & t).sum() / (p.sum() + t.sum()))
    out["dice_pooled"] = float(np.mean([v for k, v in out.items()
                                        if k.startswith("dice_pooled_")]))
    return out


def block_split(n: int, *, block: int = 8, buffer: int = 2, test: bool = True
                ) -> dict[str, list[int]]:
    """Slices ``0..n-1`` of one volume in blocks of ``block``: every fifth block from the
    third is ``test`` (with ``test=True``; else it trains), every fifth from the fifth is
    ``valid``, and the ``buffer`` slices next to a held-out block on either side are left
    out of ``train``, so no training slice is an immediate neighbour of a held-out one."""
    part = np.array(["train"] * n, dtype=object)
    b = np.arange(n) // block
    if test:
        part[b % 5 == 2] = "test"
    part[b % 5 == 4] = "valid"
    near = np.zeros(n, bool)
    for i in np.flatnonzero(part != "train"):
        near[max(0, i - buffer): i + buffer + 1] = True
    return {"train": [i for i in range(n) if part[i] == "train" and not near[i]],
            "valid": [int(i) for i in np.flatnonzero(part == "valid")],
            "test": [int(i) for i in np.flatnonzero(part == "test")]}
