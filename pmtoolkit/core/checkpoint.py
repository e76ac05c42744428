"""Saved models: safetensors weights plus JSON metadata, in one file, loaded without unpickling.

The metadata travels inside the safetensors header (key ``pmtoolkit``) so a model is one file
that cannot lose its description. It records the format version, the model class, its config,
the package version, the creation time, a UUID, the training-data sha256, the metrics, a
sha256 of the weights, and a sha256 of the metadata itself (which includes the weights' one),
both checked on every load: an edited config or ensemble size is refused like edited weights.

A pickle (``torch.save`` output, a Lightning ``.ckpt``, a ``.pkl``) is refused before anything
is deserialised: unpickling runs arbitrary code, and a model file is an input like any other.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmtoolkit._version import __version__
from pmtoolkit.core.errors import BadInputError, MissingInputError, UnsafeFileError
from pmtoolkit.core.io import atomic_write

if TYPE_CHECKING:
    import torch

FORMAT = "pmtoolkit-model"
#: 2: the metadata is covered by its own sha256 (files of version 1 load with a warning)
FORMAT_VERSION = 2
_META_KEY = "pmtoolkit"
_MAX_HEADER = 100 * 1024 * 1024
_warned: set[str] = set()
log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """Tensors by name, and the metadata saved with them."""

    tensors: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        return self.metadata.get("config", {})


def weights_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """A digest of names, dtypes, shapes and raw bytes, independent of file layout."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def metadata_sha256(metadata: dict[str, Any]) -> str:
    """A digest of the metadata (its own ``metadata_sha256`` left out) as canonical JSON; it
    covers the weights through ``weights_sha256``."""
    body = {k: v for k, v in metadata.items() if k != "metadata_sha256"}
    text = json.dumps(body, sort_keys=True, allow_nan=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], *,
                    model_class: str, config: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None,
                    training_data_sha256: str | None = None,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``tensors`` and their metadata to ``path`` atomically; return the metadata.

    ``model_class`` is the ``module:Class`` that rebuilds the model; ``extra`` holds what else it
    needs (vocabulary, featurizer version, class names) as plain JSON values.
    """
    from safetensors.torch import save

    # safetensors rejects tensors that share memory (tied weights): give each its own copy,
    # which keeps the bits and lets load_state_dict re-tie them.
    owned = {str(k): v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_class": model_class,
        "config": config or {},
        "metrics": metrics or {},
        "training_data_sha256": training_data_sha256,
        "pmtoolkit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "uuid": str(uuid.uuid4()),
        "weights_sha256": weights_sha256(owned),
        "extra": extra or {},
    }
    try:
        metadata["metadata_sha256"] = metadata_sha256(metadata)
    except TypeError as exc:
        raise BadInputError(f"model metadata must be plain JSON values: {exc}") from None
    header = json.dumps(metadata, sort_keys=True, allow_nan=True)
    payload = save(owned, metadata={_META_KEY: header})
    with atomic_write(path, "wb") as fh:
        fh.write(payload)
    return metadata


def _sniff(path: Path) -> None:
    """Refuse anything that is not a safetensors file before deserialising a byte of it."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(16)
    advice = ("pmtoolkit loads only safetensors model files, because unpickling can run "
              "arbitrary code; re-save the weights with pmtoolkit or safetensors")
    if head[:4] == b"PK\x03\x04":
        raise UnsafeFileError(f"'{path}' is a zip archive of pickles (torch.save or a Lightning "
                              f"checkpoint), refused", hint=advice)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise UnsafeFileError(f"'{path}' is a Python pickle, refused", hint=advice)
    if len(head) < 9:
        raise BadInputError(f"'{path}' is not a pmtoolkit model file (too short)")
    (n,) = struct.unpack("<Q", head[:8])
    if n > min(size - 8, _MAX_HEADER) or head[8:9] != b"{":
        raise BadInputError(f"'{path}' is not a pmtoolkit model file (no safetensors header)",
                            hint=advice)


def read_metadata(path: str | os.PathLike, *, verified: bool = False) -> dict[str, Any]:
    """The metadata of a saved model, without loading its weights. ``verified``: the whole
    file was checked against a sha256 already (a shipped model, by data/MANIFEST), so a format 1
    file, whose metadata has no checksum of its own, loads without a warning."""
    from safetensors import safe_open

    p = Path(path)
    if not p.exists():
        raise MissingInputError(f"model file '{p}' does not exist")
    if p.is_dir():
        raise BadInputError(f"model path '{p}' is a directory, expected a model file")
    _sniff(p)
    try:
        with safe_open(str(p), framework="pt") as f:
            raw = (f.metadata() or {}).get(_META_KEY)
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise BadInputError(f"'{p}' is not a readable safetensors file: {exc}") from None
    if raw is None:
        raise BadInputError(f"'{p}' is a safetensors file without pmtoolkit metadata",
                            hint="it was not saved by pmtoolkit")
    try:
        meta = json.loads(raw)
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadInputError(f"'{p}' is not a pmtoolkit model file")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BadInputError(f"'{p}' was saved by a newer pmtoolkit "
                            f"({meta.get('pmtoolkit_version')})", hint="upgrade pmtoolkit")
    if version >= 2:
        if meta.get("metadata_sha256") != metadata_sha256(meta):
            raise BadInputError(f"the metadata in '{p}' does not match its recorded sha256",
                                hint="the file is corrupted or was modified")
    elif not verified and str(p) not in _warned:
        _warned.add(str(p))
        log.warning("'%s' was saved by pmtoolkit %s (model format %s): its metadata is not "
                    "covered by a checksum; load and save it again to protect it", p,
                    meta.get("pmtoolkit_version"), version)
    return meta


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu",
                    verify: bool = True, verified: bool = False) -> Checkpoint:
    """Load a file written by :func:`save_checkpoint`; with ``verify`` the weights must match
    the sha256 recorded at save time (a corrupted or edited file is refused). ``verified``: see
    :func:`read_metadata`."""
    from safetensors.torch import load_file

    meta = read_metadata(path, verified=verified)
    try:
        tensors = load_file(str(path), device=str(map_location))
    except Exception as exc:
        raise BadInputError(f"cannot read the weights in '{path}': {exc}") from None
    if verify and weights_sha256(tensors) != meta.get("weights_sha256"):
        raise BadInputError(f"weights in '{path}' do not match their recorded sha256",
                            hint="the file is corrupted or was modified")
    return Checkpoint(tensors, meta)
