"""What ships in ``data/``: example datasets and pretrained models, listed in ``data/MANIFEST``
with size, sha256, source and licence, and verified by sha256 before use.

``path("esol")`` is how every command finds a default input or model: it fails with a one-line
error if the name is unknown (listing the names there are) or the file is missing or altered.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pmtoolkit.core.errors import MissingResourceError, unknown_name

MANIFEST_COLUMNS = ("name", "kind", "path", "bytes", "sha256", "source", "licence", "description")
KINDS = ("dataset", "model", "config")
_verified: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    path: str  # relative to the data folder
    bytes: int
    sha256: str
    source: str
    licence: str
    description: str

    @property
    def file(self) -> Path:
        return data_dir() / self.path


def data_dir() -> Path:
    """The shipped data folder: ``pmtoolkit/data`` in an installed wheel, ``data/`` beside the
    package in a source checkout; ``PMT_DATA_DIR`` overrides both."""
    override = os.environ.get("PMT_DATA_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "data", here.parent / "data"):
        if (candidate / "MANIFEST").is_file():
            return candidate
    raise MissingResourceError("pmtoolkit's data folder (with its MANIFEST) was not found",
                               hint="reinstall pmtoolkit")


@lru_cache(maxsize=4)
def _read_manifest(manifest: Path, mtime_ns: int) -> tuple[Entry, ...]:
    with open(manifest, encoding="utf-8", newline="") as fh:
        rows = [line for line in fh if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(rows, delimiter="\t")
    if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
        raise MissingResourceError(f"{manifest} has columns {reader.fieldnames}, "
                                   f"expected {list(MANIFEST_COLUMNS)}")
    entries = []
    for row in reader:
        entries.append(Entry(**{**row, "bytes": int(row["bytes"])}))
    return tuple(entries)


def manifest(kind: str | None = None) -> list[Entry]:
    """The shipped entries, optionally only datasets or only models."""
    path = data_dir() / "MANIFEST"
    entries = _read_manifest(path, path.stat().st_mtime_ns)
    return [e for e in entries if kind is None or e.kind == kind]


def entry(name: str, kind: str | None = None) -> Entry:
    entries = manifest(kind)
    for e in entries:
        if e.name == name:
            return e
    raise unknown_name(f"shipped {kind or 'item'}", name, [e.name for e in entries])


def verify(e: Entry) -> Path:
    """The entry's file, after checking it exists and matches its size and sha256."""
    from pmtoolkit.core.io import sha256_file

    f = e.file
    if not f.is_file():
        raise MissingResourceError(f"shipped {e.kind} {e.name!r} is missing ({f})",
                                   hint="reinstall pmtoolkit")
    st = f.stat()
    key = (str(f), st.st_size, st.st_mtime_ns)
    digest = _verified.get(key)
    if digest is None:
        digest = sha256_file(f) if st.st_size == e.bytes else ""
        _verified[key] = digest
    if digest != e.sha256:
        raise MissingResourceError(f"shipped {e.kind} {e.name!r} ({f}) does not match the "
                                   "sha256 in data/MANIFEST", hint="the file is corrupted or "
                                   "was modified; reinstall pmtoolkit")
    return f


def path(name: str, kind: str | None = None) -> Path:
    """The verified file of a shipped dataset or model, by name."""
    return verify(entry(name, kind))
