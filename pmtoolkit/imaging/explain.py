"""Explanations of image classifiers: Grad-CAM heat maps (MONAI's ``GradCAM``) over the
input, saved as PNG beside the image.

Grad-CAM weighs the feature maps of the last convolutional stage by the gradient of the
explained class's score and keeps the positive part, upsampled to the input and scaled to
[0, 1] per image: bright regions are those whose features raised that class's score. Maps
are as coarse as that stage (4×4 for a 28-pixel ResNet input); they show where, not why.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pmtoolkit.core.errors import BadInputError


def target_index(model, target: str | int | None) -> int | None:
    """The class index Grad-CAM explains: ``target`` as a class name or index (None: each
    image's predicted class); an error for a class the model does not have."""
    if target is None:
        return None
    if isinstance(target, str) and target in model.classes:
        return model.classes.index(target)
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        k = int(target)
        if not 0 <= k < len(model.classes):
            raise BadInputError(f"class index {k} is out of range 0..{len(model.classes) - 1}")
        return k
    raise BadInputError(f"unknown class {target!r}", hint="classes: " + ", ".join(model.classes))


def cam_target_layer(model, layer: str | None) -> str:
    """The layer Grad-CAM weighs: ``layer`` (a module name of the network, as
    ``named_modules`` gives it) or the last convolutional stage; an error naming the top-level
    layers for a name the network does not have."""
    from pmtoolkit.imaging.classifier import cam_layer

    name = layer or cam_layer(model.config)
    names = [n for n, _ in model.network.named_modules() if n]
    if name not in names:
        raise BadInputError(f"the network has no layer {name!r}", hint="its top-level layers: "
                            + ", ".join(n for n in names if "." not in n))
    return name


def gradcam(model, images, *, target: str | int | None = None, layer: str | None = None,
            batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(maps, probs, x)``: Grad-CAM maps ``(N, *image_size)`` in [0, 1] for ``target`` (a
    class name or index; default: each image's predicted class), the class probabilities
    ``(N, K)`` and the prepared inputs ``(N, C, *image_size)``."""
    import torch
    from monai.visualize import GradCAM

    k = target_index(model, target)
    x = model.prepare(images)
    probs = model.predict_proba(x, prepared=True)
    if k is None:
        idx = np.array([model.classes.index(lab) for lab in model.labels_from(probs)])
    else:
        idx = np.full(len(x), k)
    net = model.network.to("cpu").eval()
    # MONAI's ResNet uses in-place ReLUs, which break the backward hooks Grad-CAM sets
    for m in net.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    cam = GradCAM(nn_module=net, target_layers=cam_target_layer(model, layer))
    maps = []
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size]))
        for j in range(len(xb)):  # one class index per image
            out = cam(x=xb[j:j + 1], class_idx=int(idx[i + j]))
            maps.append(np.asarray(out.detach())[0, 0])
    return np.stack(maps) if maps else np.zeros((0, *model.config.image_size)), probs, x


def save_gradcam(x: np.ndarray, cam: np.ndarray, path: str | Path, *, title: str = "") -> None:
    """A PNG: the prepared image ``(C, *S)`` and the image with its Grad-CAM map over it
    (volumes: the middle slice along each axis)."""
    from pmtoolkit.core.plots import figure

    grey = np.asarray(x).mean(axis=0)
    if grey.ndim == 3:
        views = [(np.take(grey, grey.shape[a] // 2, a), np.take(cam, cam.shape[a] // 2, a))
                 for a in range(3)]
    else:
        views = [(grey, cam)]
    with figure(path, size=(2.6 * 2 * len(views), 2.9), nrows=1, ncols=2 * len(views),
                squeeze=False) as (fig, axes):
        for j, (g, c) in enumerate(views):
            a0, a1 = axes[0, 2 * j], axes[0, 2 * j + 1]
            a0.imshow(g, cmap="gray", interpolation="nearest")
            a0.set_title("input", fontsize=9)
            a1.imshow(g, cmap="gray", interpolation="nearest")
            im = a1.imshow(c, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
            a1.set_title("Grad-CAM", fontsize=9)
            for a in (a0, a1):
                a.axis("off")
        fig.colorbar(im, ax=axes[0, -1], fraction=0.046, pad=0.04)
        if title:
            fig.suptitle(title, fontsize=9)
