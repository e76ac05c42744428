"""The exceptions pmtoolkit raises on purpose, and the exit code each maps to.

Every error a user can cause (a missing file, a bad column, an unknown model name, an invalid
record under ``--on-invalid error``) is a :class:`PmtError` subclass with ``exit_code = 2``
and a message that fits on one line and says what to do. Anything else that escapes is a bug
in pmtoolkit and exits 1.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class PmtError(Exception):
    """Base class of the errors pmtoolkit raises deliberately."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = " ".join(str(message).split())
        self.hint = " ".join(hint.split()) if hint else None
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class BadInputError(PmtError, ValueError):
    """The user's input is wrong: a malformed file, an invalid record, a bad value."""

    exit_code = 2


class MissingInputError(BadInputError, FileNotFoundError):
    """A file or column the user named does not exist."""


class ConfigError(BadInputError):
    """A configuration file or option set is invalid (unknown key, wrong type)."""


class MissingResourceError(PmtError, LookupError):
    """A named model or dataset is unknown, or a shipped file is absent or corrupted."""

    exit_code = 2


class UnsafeFileError(BadInputError):
    """A file that would have to be unpickled to load; pmtoolkit refuses to do that."""


class Interrupted(BaseException):
    """The run was stopped by a signal (SIGTERM; SIGINT arrives as KeyboardInterrupt).

    A BaseException, like KeyboardInterrupt, so that ``except Exception`` in library code cannot
    swallow it while cleanup (``finally``, atomic writers) still runs; the CLI reports one line,
    ``interrupted``, and exits 128 + the signal number (143 for SIGTERM)."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        super().__init__(f"interrupted by signal {self.signum}")


class InternalError(PmtError, RuntimeError):
    """pmtoolkit reached a state it should not; a bug to report."""

    exit_code = 1


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of a library's error message, for a one-line error naming the input
    it failed on: quotes around it dropped, cut at ``limit`` characters; the exception's type
    when it says nothing."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip(" '\"") if text else ""
    if not first:
        return type(exc).__name__
    return first if len(first) <= limit else first[:limit] + "..."


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> MissingResourceError:
    """The error for a name that is not in a registry: lists the valid names and the closest."""
    valid = sorted(valid)
    by_lower = {v.lower(): v for v in valid}
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=1)]
    hint = f"did you mean {close[0]!r}? " if close else ""
    listing = ", ".join(valid) if valid else "none available"
    return MissingResourceError(f"unknown {kind} {name!r}", hint=f"{hint}valid: {listing}")
