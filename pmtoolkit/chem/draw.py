"""Pictures of molecules: one grid renderer for every report that shows molecules (design
runs, pipeline reports, the demo)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any


def molecule_grid(mols: Sequence[Any], path: str | os.PathLike, *,
                  legends: Sequence[str] | None = None, per_row: int = 4,
                  size: tuple[int, int] = (240, 190)) -> None:
    """Draw RDKit molecules as one PNG grid (``per_row`` across, each ``size`` pixels, with an
    optional legend under each) and write it to ``path`` atomically."""
    from rdkit.Chem import Draw

    from pmtoolkit.chem._rdkit import quiet
    from pmtoolkit.core.io import atomic_write

    with quiet():
        image = Draw.MolsToGridImage(list(mols), molsPerRow=per_row, subImgSize=tuple(size),
                                     legends=None if legends is None else list(legends))
    with atomic_write(path, "wb") as fh:
        image.save(fh, format="PNG")
