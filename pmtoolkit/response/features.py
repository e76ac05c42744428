"""Model inputs of a drug-response panel: sample features normalised and standardised as
learnt on the training samples (:class:`FeaturePrep`), drugs as Morgan fingerprints or
molecular graphs."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pmtoolkit.core.errors import BadInputError

if TYPE_CHECKING:
    from pmtoolkit.response.data import SampleFeatures

log = logging.getLogger(__name__)

#: features a model may miss in new data (filled with the training mean) before it refuses
MAX_MISSING_FEATURES = 0.1


def log_cpm(X: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """log1p(counts per million) of each row."""
    total = X.sum(axis=1, dtype=np.float64)
    empty = np.flatnonzero(total <= 0)
    if len(empty):
        raise BadInputError(f"sample {ids[empty[0]]!r} has no counts; cannot normalise")
    return np.log1p(X / total[:, None] * 1e6).astype(np.float32)


def normalized(samples: SampleFeatures, how: str) -> np.ndarray:
    """``samples.X`` normalised as the model was (``log-cpm`` or ``none``)."""
    if how == "log-cpm":
        if not samples.counts:
            raise BadInputError(f"features of '{samples.source}' are not counts "
                                "(non-negative integers); the model was trained on "
                                "log-normalised counts")
        return log_cpm(samples.X, samples.ids)
    return samples.X


@dataclass
class FeaturePrep:
    """How raw sample features become model inputs, learnt on the training samples:
    normalisation, the kept features (by name) and their mean and sd."""

    normalize: str
    names: list[str]
    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def learn(cls, samples: SampleFeatures, rows: np.ndarray, normalize: str, top: int
              ) -> FeaturePrep:
        how = normalize if normalize != "auto" else ("log-cpm" if samples.counts else "none")
        X = normalized(samples, how)[rows]
        var = X.var(axis=0)
        keep = np.arange(X.shape[1])
        if 0 < top < X.shape[1]:
            keep = np.sort(np.argsort(-var, kind="stable")[:top])
        sd = X[:, keep].std(axis=0)
        return cls(how, [samples.names[j] for j in keep], X[:, keep].mean(axis=0),
                   np.where(sd > 1e-6, sd, 1.0).astype(np.float32))

    def raw(self, samples: SampleFeatures) -> np.ndarray:
        """Normalised features of every sample in the model's feature order (not yet
        standardised); features the data lack are filled with the training mean when they
        are at most :data:`MAX_MISSING_FEATURES` of them."""
        X = normalized(samples, self.normalize)
        pos = {n: j for j, n in enumerate(samples.names)}
        cols = np.array([pos.get(n, -1) for n in self.names])
        missing = cols < 0
        if missing.any():
            frac = missing.mean()
            first = [n for n, m in zip(self.names, missing) if m][:3]
            if frac > MAX_MISSING_FEATURES:
                raise BadInputError(f"{int(missing.sum())} of the model's {len(self.names)} "
                                    f"features are missing from '{samples.source}', e.g. "
                                    f"{', '.join(first)}",
                                    hint="use the feature names the model was trained on")
            log.warning("%d of %d features missing from %s (e.g. %s); filled with the "
                        "training mean", int(missing.sum()), len(self.names), samples.source,
                        ", ".join(first))
        out = np.where(missing[None, :], self.mean[None, :], X[:, np.maximum(cols, 0)])
        return out.astype(np.float32)

    def standardized(self, samples: SampleFeatures) -> np.ndarray:
        return ((self.raw(samples) - self.mean) / self.sd).astype(np.float32)


def _molecules(smiles: Sequence[str]) -> list:
    from pmtoolkit.chem.molecules import parse_smiles

    mols = []
    for s in smiles:
        mol, reason = parse_smiles(s)
        if mol is None:
            raise BadInputError(f"invalid drug SMILES {s!r}: {reason}")
        mols.append(mol)
    return mols


def drug_fingerprints(smiles: Sequence[str], radius: int = 2, n_bits: int = 2048) -> np.ndarray:
    """Morgan fingerprint bits (float32) of standardised SMILES."""
    from pmtoolkit.chem.fingerprints import morgan

    return morgan(_molecules(smiles), radius=radius, n_bits=n_bits).astype(np.float32)


def drug_graphs(smiles: Sequence[str]):
    """The molecular graphs of ``smiles`` as one :class:`pmtoolkit.chem.featurizer.GraphBatch`
    (graph ``i`` is drug ``i``), featurised as the property and drug-target models do."""
    from pmtoolkit.chem.featurizer import collate, mol_codes

    return collate([mol_codes(m) for m in _molecules(smiles)])
