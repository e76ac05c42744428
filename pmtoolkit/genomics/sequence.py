"""DNA sequences as arrays: one-hot encoding and reverse complement.

The alphabet order is ``A C G T``, so the complement of a one-hot column is the column read
backwards (A<->T, C<->G) and the reverse complement of an ``(..., 4, L)`` array is a flip of
both of its last two axes. ``N`` and the other IUPAC ambiguity codes encode as 0.25 in every
channel by default (DeepSEA's and selene's convention: "any base, equally likely").
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pmtoolkit.core.errors import BadInputError

ALPHABET = "ACGT"
#: IUPAC nucleotide codes accepted in sequences (upper or lower case)
IUPAC = "ACGTNRYSWKMBDHV"
_COMPLEMENT = str.maketrans("ACGTNRYSWKMBDHVacgtnryswkmbdhv", "TGCANYRSWMKVHDBtgcanyrswmkvhdb")

# byte -> row of _ROWS: 0..3 = A, C, G, T; 4 = ambiguous (N, R, Y, ...); 5 = not a base
_CODE = np.full(256, 5, dtype=np.uint8)
for _i, _b in enumerate(ALPHABET):
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = _i
for _b in IUPAC[4:]:
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = 4


def _rows(unknown: float, dtype) -> np.ndarray:
    rows = np.zeros((6, 4), dtype=dtype)
    rows[np.arange(4), np.arange(4)] = 1
    rows[4] = unknown
    return rows


def codes(seq: str | bytes) -> np.ndarray:
    """Each base as 0..3 (A, C, G, T), 4 for an ambiguity code; a letter that is not an IUPAC
    nucleotide is a :class:`BadInputError` naming it and its position."""
    raw = seq.encode("ascii", "replace") if isinstance(seq, str) else bytes(seq)
    c = _CODE[np.frombuffer(raw, dtype=np.uint8)]
    if c.size and c.max() == 5:
        pos = int(np.argmax(c == 5))
        letter = raw[pos:pos + 1].decode("ascii", "replace")
        raise BadInputError(f"DNA sequence has a non-nucleotide letter {letter!r} at position "
                            f"{pos + 1}", hint=f"use the IUPAC codes {IUPAC}")
    return c


def one_hot(seq: str | bytes, *, unknown: float = 0.25, dtype=np.float32) -> np.ndarray:
    """``(4, L)`` one-hot encoding of one sequence (channels first, as ``Conv1d`` reads it)."""
    return _rows(unknown, dtype)[codes(seq)].T.copy()


def one_hot_batch(seqs: Sequence[str | bytes], *, unknown: float = 0.25,
                  dtype=np.float32) -> np.ndarray:
    """``(B, 4, L)`` one-hot encoding of equal-length sequences."""
    if len(seqs) == 0:
        return np.zeros((0, 4, 0), dtype=dtype)
    lengths = {len(s) for s in seqs}
    if len(lengths) != 1:
        raise BadInputError(f"sequences of a batch must have one length; got lengths "
                            f"{sorted(lengths)[:5]}")
    raw = b"".join(s.encode("ascii", "replace") if isinstance(s, str) else bytes(s)
                   for s in seqs)
    c = codes(raw).reshape(len(seqs), -1)
    return np.ascontiguousarray(_rows(unknown, dtype)[c].transpose(0, 2, 1))


def reverse_complement(seq: str) -> str:
    """The reverse complement of a DNA string (IUPAC codes complemented, case kept)."""
    return seq.translate(_COMPLEMENT)[::-1]


def reverse_complement_array(x: np.ndarray) -> np.ndarray:
    """The reverse complement of one-hot arrays shaped ``(..., 4, L)``."""
    return x[..., ::-1, ::-1]


def gc_content(seq: str) -> float:
    """Fraction of G and C among the unambiguous bases (NaN when there are none)."""
    c = codes(seq)
    known = c < 4
    return float(np.isin(c[known], (1, 2)).mean()) if known.any() else float("nan")
