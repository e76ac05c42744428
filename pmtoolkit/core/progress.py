"""Progress bars for long loops: shown on a terminal, silent in pipelines and under ``-q``."""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def console_level() -> int:
    """The level of pmtoolkit's console output: the lowest level among the handlers the CLI
    installed (so a debug log file does not count), else the logger's effective level."""
    logger = logging.getLogger("pmtoolkit")
    levels = [h.level for h in logger.handlers
              if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    return min(levels) if levels else logger.getEffectiveLevel()


def show_progress() -> bool:
    """Progress bars go to a terminal only, and never when logging is quieted with -q."""
    return sys.stderr.isatty() and console_level() <= logging.INFO


def progress(iterable: Iterable[T], *, desc: str = "", total: int | None = None,
             unit: str = "it", enabled: bool | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr when :func:`show_progress` says so."""
    if enabled is None:
        enabled = show_progress()
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    with tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True) as bar:
        yield from bar


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(*, desc: str = "", total: int | None = None, unit: str = "it",
                 enabled: bool | None = None):
    """A bar advanced by hand (``bar.update(n)``, ``bar.close()``), for streams whose items
    arrive in uneven batches; a no-op where :func:`show_progress` says no."""
    if enabled is None:
        enabled = show_progress()
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True)
