"""Device choice: ``auto``, ``cpu``, ``cpu:N`` (N training processes), ``cuda`` (all visible
GPUs) or ``cuda:N[,M...]``.

The same string drives inference (:func:`torch_device`) and training (:func:`lightning_devices`),
so ``--device`` means the same thing in every command.

Training on several devices is Lightning's DDP, and DDP runs the whole command once per
process: Lightning starts the extra processes of one machine itself (``cpu:4``, ``cuda:0,1``), a
cluster launcher (``torchrun``, Slurm's ``srun``) starts every process of a run over several
nodes. Every process runs the command, reads the data and trains on its share of each epoch;
only the first (:func:`secondary_process` false) writes: the others' writes through
:mod:`pmtoolkit.core.io` go to private temporary files that are discarded, their logs are
quieted to warnings and their standard output is dropped.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pmtoolkit.core.errors import BadInputError

_PATTERN = re.compile(r"^(auto|cpu|cpu:\d+|cuda|cuda:\d+(,\d+)*)$")
DEVICE_HELP = "auto, cpu, cpu:N (N processes), cuda (all GPUs) or cuda:N[,M...]"
#: most CPU training processes ``cpu:N`` may ask for on one machine
MAX_CPU_PROCESSES = 256


@dataclass(frozen=True)
class DeviceChoice:
    kind: str  # "cpu" or "cuda"
    indices: tuple[int, ...] | None  # None: every visible GPU

    def __str__(self) -> str:
        if self.kind == "cpu":
            return "cpu" if self.indices is None or len(self.indices) == 1 else \
                f"cpu:{len(self.indices)}"
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
    if spec.startswith("cpu:"):
        n = int(spec[4:])
        if not 1 <= n <= MAX_CPU_PROCESSES:
            raise BadInputError(f"invalid device {spec!r}: cpu:N takes 1 to "
                                f"{MAX_CPU_PROCESSES} processes")
        return DeviceChoice("cpu", tuple(range(n)))
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


def lightning_devices(spec: str = "auto") -> tuple[str, int | list[int] | str, int]:
    """``(accelerator, devices, num_nodes)`` for a Lightning Trainer: several processes mean
    DDP. Under a cluster launcher (:func:`launched_processes`) the launcher's processes per
    node and number of nodes are used, and a ``--device`` that names another count is refused."""
    choice = resolve_device(spec)
    launched = launched_processes()
    accelerator = "cpu" if choice.kind == "cpu" else "gpu"
    if launched is not None:
        nodes, per_node = launched
        named = None if choice.indices is None else len(choice.indices)
        if named is not None and named != per_node and not (choice.kind == "cpu" and named == 1):
            raise BadInputError(f"--device {choice} names {named} device(s) per node but the "
                                f"launcher started {per_node} process(es) per node",
                                hint="name as many devices as processes per node, or cpu/cuda")
        if choice.kind == "cuda" and choice.indices is not None:
            return accelerator, list(choice.indices), nodes
        return accelerator, per_node, nodes
    if choice.kind == "cpu":
        return accelerator, len(choice.indices or (0,)), 1
    return accelerator, "auto" if choice.indices is None else list(choice.indices), 1


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else None
    except ValueError:
        return None


def launched_processes() -> tuple[int, int] | None:
    """``(nodes, processes per node)`` when a cluster launcher started this process as one of
    several (``torchrun``: ``WORLD_SIZE`` and ``LOCAL_WORLD_SIZE``; Slurm: ``SLURM_NTASKS`` over
    ``SLURM_NNODES``); None for a process started by hand (Lightning starts its own then)."""
    world, local = _env_int("WORLD_SIZE"), _env_int("LOCAL_WORLD_SIZE")
    if os.environ.get("TORCHELASTIC_RUN_ID") and world and local and world > 1:
        return max(1, world // local), local
    tasks, nodes = _env_int("SLURM_NTASKS"), _env_int("SLURM_NNODES")
    if tasks and tasks > 1 and nodes and os.environ.get("SLURM_JOB_NAME") not in (
            None, "bash", "interactive"):  # Lightning's own test for a batch job
        return nodes, max(1, tasks // nodes)
    return None


def secondary_process() -> bool:
    """Whether this is a training process other than the first of a DDP run (global rank >
    0): Lightning's own extra processes (``LOCAL_RANK``/``NODE_RANK``), ``torchrun``'s
    (``RANK``) or Slurm's (``SLURM_PROCID`` in a job of several tasks). Such a process writes
    no output and leaves its output checks to the first; it must still run every training the
    command runs, in the same order (DDP's collectives pair the processes' steps)."""
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        if (_env_int(name) or 0) > 0:
            return True
    tasks = _env_int("SLURM_NTASKS")
    return bool(tasks and tasks > 1 and (_env_int("SLURM_PROCID") or 0) > 0)
