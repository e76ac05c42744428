"""Figures saved as PNG, headless (Agg), with one look across the toolkit."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from pmtoolkit.core.io import atomic_write


@contextlib.contextmanager
def figure(path: str | os.PathLike, *, size: tuple[float, float] = (5.0, 3.6),
           dpi: int = 120) -> Iterator:
    """Yield a matplotlib ``(fig, ax)``; on exit save it to ``path`` as PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=size, dpi=dpi)
        try:
            yield fig, ax
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            fig.tight_layout()
            with atomic_write(path, "wb") as fh:
                fig.savefig(fh, format="png")
        finally:
            plt.close(fig)
