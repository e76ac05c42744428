"""Helpers every command uses: the start-up log line."""
from __future__ import annotations

import logging
import shlex
import sys

log = logging.getLogger("pmtoolkit.cli")


def startup(**fields: object) -> None:
    """Log one line with the versions, device, seed and the command line, as a run starts."""
    from importlib import metadata

    from pmtoolkit._version import __version__
    from pmtoolkit.cli.main import _state

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "none"
    parts = [f"pmtoolkit {__version__}", f"python {sys.version.split()[0]}",
             f"torch {torch_version}"]
    parts += [f"{k} {v}" for k, v in fields.items() if v is not None]
    log.info("%s | %s", " | ".join(parts), shlex.join(["pmt", *map(str, _state["argv"])]))
