"""Figures saved as PNG, headless (Agg), with one look across the toolkit."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from pmtoolkit.core.io import atomic_write


@contextlib.contextmanager
def figure(path: str | os.PathLike, *, size: tuple[float, float] = (5.0, 3.6),
           dpi: int = 120, nrows: int = 1, ncols: int = 1, **subplots: Any) -> Iterator:
    """Yield a matplotlib ``(fig, ax)`` (``ax`` an array of axes for several panels;
    ``subplots`` go to ``plt.subplots``); on exit save it to ``path`` as PNG, atomically."""
    import warnings

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    with plt.style.context("default"):
        fig, ax = plt.subplots(nrows, ncols, figsize=size, dpi=dpi, **subplots)
        try:
            yield fig, ax
            for a in np.atleast_1d(ax).ravel():
                for side in ("top", "right"):
                    a.spines[side].set_visible(False)
            with warnings.catch_warnings():  # colour bars and tight layout do not always agree
                warnings.simplefilter("ignore", UserWarning)
                fig.tight_layout()
            with atomic_write(path, "wb") as fh:
                fig.savefig(fh, format="png")
        finally:
            plt.close(fig)
