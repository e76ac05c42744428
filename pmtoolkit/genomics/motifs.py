"""A zero-shot, interpretable variant scorer: transcription-factor motif strength from JASPAR.

The matrices come from pyjaspar's bundled JASPAR database (offline); Biopython turns each
count matrix into a log-odds PSSM (uniform background, JASPAR's sqrt(N)/4 pseudocounts). For
a window, each motif's best match among the placements that cover the window's central base
(either strand) is compared with the motif's threshold (``relative`` of the way from its
worst to its best possible score); the output ``motif_sum`` is the sum over motifs of how far
the best match clears its threshold. A variant's ``motif_sum_diff`` (alt - ref) is then the
motif strength it creates (> 0) or destroys (< 0) at its position, and :meth:`MotifModel.top`
names the motifs behind it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pmtoolkit.core.errors import BadInputError


@dataclass
class MotifConfig:
    """Which JASPAR matrices, and when a match counts."""

    release: str = field(default="JASPAR2024", metadata={"help": "JASPAR release (pyjaspar)"})
    collection: str = field(default="CORE", metadata={"help": "JASPAR collection"})
    tax_group: str = field(default="vertebrates", metadata={"help": "JASPAR taxonomic group"})
    relative: float = field(default=0.8, metadata={
        "help": "a match counts above this fraction of the way from a motif's minimum to its "
                "maximum score"})
    task: str = "regression"


class MotifModel:
    """JASPAR PSSMs as one convolution; the sequence-model interface of :mod:`.score`."""

    def __init__(self, config: MotifConfig | None = None):
        import torch
        from Bio.motifs.jaspar import calculate_pseudocounts
        from pyjaspar import jaspardb

        self.config = config or MotifConfig()
        try:
            db = jaspardb(release=self.config.release)
            motifs = db.fetch_motifs(collection=self.config.collection,
                                     tax_group=[self.config.tax_group], all_versions=False)
        except Exception as exc:  # pyjaspar raises plain exceptions for unknown releases
            raise BadInputError(f"cannot read JASPAR matrices ({exc})") from None
        if not motifs:
            raise BadInputError(f"no JASPAR matrices for collection {self.config.collection!r}, "
                                f"tax group {self.config.tax_group!r}")
        self.names = [f"{m.matrix_id} {m.name}" for m in motifs]
        self.consensus = [str(m.consensus) for m in motifs]
        self.lengths = np.array([m.length for m in motifs])
        k_max = int(self.lengths.max())
        weights = np.zeros((len(motifs), 4, k_max), dtype=np.float32)
        thresholds = np.zeros(len(motifs), dtype=np.float32)
        for i, m in enumerate(motifs):
            pssm = m.counts.normalize(pseudocounts=calculate_pseudocounts(m)).log_odds()
            weights[i, :, :m.length] = [pssm[b] for b in "ACGT"]
            thresholds[i] = pssm.min + self.config.relative * (pssm.max - pssm.min)
        self.k_max = k_max
        self.window = 2 * k_max - 1
        self.targets = ["motif_sum"]
        # forward and reverse-complement filters, each motif left-aligned in k_max columns
        rc = np.zeros_like(weights)
        for i, k in enumerate(self.lengths):
            rc[i, :, :k] = weights[i, ::-1, :k][:, ::-1]
        self._filters = torch.from_numpy(np.concatenate([weights, rc]))
        self._thresholds = torch.from_numpy(thresholds)
        # placement s (start) covers the centre c = k_max - 1 when c - k + 1 <= s <= c
        starts = np.arange(self.window - k_max + 1)
        c = k_max - 1
        mask = (starts[None, :] >= c - self.lengths[:, None] + 1) & (starts[None, :] <= c)
        self._mask = torch.from_numpy(np.concatenate([mask, mask]))

    def __repr__(self) -> str:
        return (f"MotifModel({self.config.release} {self.config.collection} "
                f"{self.config.tax_group}: {len(self.names)} motifs)")

    def best_scores(self, codes: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """(N, n_motifs): each motif's best log-odds among the placements covering the
        window's central base, either strand."""
        import torch
        from torch.nn import functional as F

        from pmtoolkit.genomics.model import one_hot_codes

        if codes.ndim != 2 or codes.shape[1] != self.window:
            raise BadInputError(f"motif windows must be {self.window} bases; got {codes.shape}")
        out = []
        n = len(self.names)
        with torch.inference_mode():
            for s in range(0, len(codes), batch_size):
                x = one_hot_codes(codes[s:s + batch_size])
                y = F.conv1d(x, self._filters).masked_fill(~self._mask, float("-inf"))
                best = y.amax(dim=2)
                out.append(torch.maximum(best[:, :n], best[:, n:]).numpy())
        return np.concatenate(out) if out else np.zeros((0, n), np.float32)

    def outputs(self, best: np.ndarray) -> np.ndarray:
        return np.clip(best - self._thresholds.numpy(), 0, None).sum(axis=1, keepdims=True)

    def predict_codes(self, codes: np.ndarray, *, strands: str = "both",
                      batch_size: int = 512) -> np.ndarray:
        """``motif_sum`` per window, ``(N, 1)`` (both strands are always searched)."""
        return self.outputs(self.best_scores(codes, batch_size=batch_size)).astype(np.float64)

    def predict(self, sequences, *, strands: str = "both", batch_size: int = 512) -> np.ndarray:
        from pmtoolkit.genomics.data import encode_sequences

        codes, _ = encode_sequences(list(sequences), self.window)
        return self.predict_codes(codes, batch_size=batch_size)

    def top(self, ref_codes: np.ndarray, alt_codes: np.ndarray, k: int = 3
            ) -> list[list[tuple[str, float]]]:
        """For each variant, the ``k`` motifs whose thresholded strength changes most
        (name, alt - ref), largest change first."""
        thr = self._thresholds.numpy()
        r = np.clip(self.best_scores(ref_codes) - thr, 0, None)
        a = np.clip(self.best_scores(alt_codes) - thr, 0, None)
        d = a - r
        order = np.argsort(-np.abs(d), axis=1)[:, :k]
        return [[(self.names[j], float(d[i, j])) for j in row if d[i, j] != 0]
                for i, row in enumerate(order)]
