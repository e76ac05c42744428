"""RDKit's own logging, silenced where pmtoolkit reports the problem itself."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Block RDKit's C++ log (warnings and errors about bad SMILES, valence, kekulisation)
    for the duration: invalid molecules are reported through the reject list instead."""
    from rdkit import rdBase

    with rdBase.BlockLogs():
        yield


def silence_forever() -> None:
    """Disable RDKit's log for the process (for the CLI, where every error is ours to print)."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
