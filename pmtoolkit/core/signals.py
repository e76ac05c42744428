"""Ctrl-C and SIGTERM kept from C code that would swallow them.

Some C libraries install a SIGINT handler of their own while they work and drop the signal:
RDKit's substructure search does (it swaps one in for every match), so a Ctrl-C that arrived
during a match was lost, a third of the time in ``pmt mol descriptors``. Around such calls
:func:`held` keeps the stop signals pending; they reach Python's handlers, and stop the run as
usual, when the block ends.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM pending for the block (in the main thread, where Python handles
    signals); on leaving it they are delivered. Keep the block short: one molecule's work."""
    if threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start_native_threads() -> None:
    """Import NumPy (whose BLAS starts a pool of native threads) with the stop signals held,
    so those threads are born blocking them. While :func:`held` blocks a signal in the main
    thread the kernel hands it to any thread that does not block it, and there a C library's
    handler of the moment (RDKit's) could drop it; threads that block it leave it pending for
    the main thread. Call before the work starts (the CLI does, for every command)."""
    with held():
        import numpy  # noqa: F401
