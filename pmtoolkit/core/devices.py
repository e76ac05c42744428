"""Device choice: ``auto``, ``cpu``, ``cuda`` (all visible GPUs) or ``cuda:N[,M...]``.

The same string drives inference (:func:`torch_device`) and training (:func:`lightning_devices`),
so ``--device`` means the same thing in every command.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pmtoolkit.core.errors import BadInputError

_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+(,\d+)*)$")
DEVICE_HELP = "auto, cpu, cuda (all GPUs) or cuda:N[,M...]"


@dataclass(frozen=True)
class DeviceChoice:
    kind: str  # "cpu" or "cuda"
    indices: tuple[int, ...] | None  # None: every visible GPU

    def __str__(self) -> str:
        if self.kind == "cpu":
            return "cpu"
        if self.indices is None:
            return "cuda"
        return "cuda:" + ",".join(map(str, self.indices))


def resolve_device(spec: str = "auto") -> DeviceChoice:
    """Check ``spec`` against the hardware: ``auto`` picks CUDA when torch sees a GPU, else the
    CPU; asking for a GPU that is not there is a user error, not a silent fall-back."""
    spec = (spec or "auto").strip().lower()
    if not _PATTERN.match(spec):
        raise BadInputError(f"invalid device {spec!r}", hint=f"use {DEVICE_HELP}")
    if spec == "cpu":
        return DeviceChoice("cpu", (0,))
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec == "auto":
        return DeviceChoice("cuda", None) if count else DeviceChoice("cpu", (0,))
    if count == 0:
        raise BadInputError(f"device {spec!r} requested but torch sees no CUDA GPU",
                            hint="use --device cpu or auto")
    if spec == "cuda":
        return DeviceChoice("cuda", None)
    indices = tuple(int(i) for i in spec.split(":", 1)[1].split(","))
    bad = [i for i in indices if i >= count]
    if bad:
        raise BadInputError(f"device cuda:{bad[0]} requested but only {count} GPU(s) are visible")
    return DeviceChoice("cuda", indices)


def torch_device(spec: str = "auto"):
    """The single ``torch.device`` for inference: the first GPU of the choice, or the CPU."""
    import torch

    choice = resolve_device(spec)
    if choice.kind == "cpu":
        return torch.device("cpu")
    return torch.device("cuda", choice.indices[0] if choice.indices else 0)


def lightning_devices(spec: str = "auto") -> tuple[str, int | list[int] | str]:
    """``(accelerator, devices)`` for a Lightning Trainer; several GPUs mean DDP."""
    choice = resolve_device(spec)
    if choice.kind == "cpu":
        return "cpu", 1
    return "gpu", "auto" if choice.indices is None else list(choice.indices)
