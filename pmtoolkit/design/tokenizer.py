"""SMILES tokens and the vocabulary a generator is trained with.

A SMILES is split into bracket atoms (``[nH]``, ``[S@+]``, ``[13CH3]``), the two-letter
organic-subset elements ``Cl`` and ``Br``, two-digit ring closures (``%10``) and single
characters. The vocabulary is saved with the model; a molecule with a token the vocabulary
lacks is a reject with that token named, never a ``KeyError``.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS = (PAD, BOS, EOS)

# bracket atoms, Cl/Br, %nn ring closures, then any single character that can occur in SMILES
_TOKEN = re.compile(r"\[[^\[\]]+\]|Cl|Br|%\d\d|[BCNOPSFIbcnops*()=#\-+\\/:~@?>.\d$]")


class TokenError(ValueError):
    """A SMILES that cannot be tokenised, or holds a token outside the vocabulary."""


def tokenize(smiles: str) -> list[str]:
    """The tokens of ``smiles``; :class:`TokenError` names the first character that is not
    SMILES (e.g. an unclosed bracket)."""
    tokens = _TOKEN.findall(smiles)
    if sum(len(t) for t in tokens) != len(smiles):
        pos = 0
        for m in _TOKEN.finditer(smiles):
            if m.start() != pos:
                break
            pos = m.end()
        raise TokenError(f"cannot tokenise SMILES at position {pos + 1} "
                         f"({smiles[pos:pos + 8]!r})")
    return tokens


@dataclass(frozen=True)
class Vocabulary:
    """Tokens and their ids; ids 0, 1, 2 are padding, start and end."""

    tokens: tuple[str, ...]

    def __post_init__(self):
        if self.tokens[:3] != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def build(cls, smiles: Iterable[str], *, min_count: int = 1) -> Vocabulary:
        """The tokens of ``smiles`` seen at least ``min_count`` times, in a stable order
        (specials, then by frequency, ties alphabetical). Untokenisable SMILES are skipped
        here; :meth:`encode` reports them."""
        counts: Counter[str] = Counter()
        for s in smiles:
            try:
                counts.update(tokenize(s))
            except TokenError:
                continue
        kept = sorted((t for t, c in counts.items() if c >= min_count and t not in SPECIALS),
                      key=lambda t: (-counts[t], t))
        return cls((*SPECIALS, *kept))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    @property
    def pad(self) -> int:
        return 0

    @property
    def bos(self) -> int:
        return 1

    @property
    def eos(self) -> int:
        return 2

    def encode(self, smiles: str, *, max_length: int | None = None) -> list[int]:
        """``[bos, tokens..., eos]`` ids; :class:`TokenError` for an unknown token or a
        sequence longer than ``max_length`` (counting start and end)."""
        tokens = tokenize(smiles)
        unknown = [t for t in tokens if t not in self._index]
        if unknown:
            raise TokenError(f"token {unknown[0]!r} is not in the model's vocabulary")
        ids = [self.bos, *(self._index[t] for t in tokens), self.eos]
        if max_length is not None and len(ids) > max_length:
            raise TokenError(f"{len(tokens)} tokens, more than the model's maximum of "
                             f"{max_length - 2}")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The SMILES of ``ids``, stopping at the first end token; start and padding dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos:
                break
            if i > self.eos:
                out.append(self.tokens[i])
        return "".join(out)
