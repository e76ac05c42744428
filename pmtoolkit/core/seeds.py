"""One place that seeds every random number generator pmtoolkit uses."""
from __future__ import annotations

import os
import random
import sys

import numpy as np

MAX_SEED = 2**32 - 1


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's legacy global state and torch (CPU and every GPU);
    return a fresh ``numpy.random.Generator`` for code that takes an explicit ``rng``.

    torch is seeded only if something has imported it already, so seeding never makes a
    light command import torch.
    """
    from pmtoolkit.core.errors import BadInputError

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise BadInputError(f"seed must be an integer in [0, {MAX_SEED}], not {seed!r}")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # inherited by worker processes
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)
