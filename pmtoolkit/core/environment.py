"""What pmtoolkit runs on: package versions, Python, platform and compute device."""
from __future__ import annotations

import platform
import sys
from importlib import metadata

from pmtoolkit._version import __version__

#: The libraries pmtoolkit builds on, by distribution name, in the order users think of them.
STACK = ("torch", "torch-geometric", "lightning", "rdkit", "deepchem", "biopython", "scanpy",
         "anndata", "numpy", "pandas", "scikit-learn", "safetensors", "click")


def versions() -> dict[str, str | None]:
    """Installed versions of pmtoolkit and its stack, read from package metadata (importing
    none of them); None for one that is not installed."""
    out: dict[str, str | None] = {"pmtoolkit": __version__,
                                  "python": platform.python_version()}
    for dist in STACK:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def device_summary() -> dict[str, object]:
    """The device ``--device auto`` picks, and the GPUs torch sees (imports torch)."""
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return {
        "auto_device": "cuda" if gpus else "cpu",
        "gpus": gpus,
        "cpu_threads": torch.get_num_threads(),
        "platform": f"{platform.system()} {platform.machine()}",
        "python_executable": sys.executable,
    }
