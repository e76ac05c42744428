"""Drug-response prediction: (sample features, drug structure) -> response, under the one
model contract, with the field's baselines, splits and metrics.

Inputs, in the formats of the field's panels (GDSC, CCLE, PRISM all reduce to these):

- a long **response table** (CSV/TSV/Parquet): one row per measured (sample, drug) pair,
  columns ``sample_id``, ``drug_id``, ``response`` (ln IC50, AUC, ...; names are options);
- a **drugs table**: ``drug_id``, ``smiles``; each SMILES is parsed and standardised with
  :mod:`pmtoolkit.chem` (largest fragment, neutralised), an unparsable one is a reject;
- **sample features**: an AnnData ``.h5ad`` (samples x genes, read with
  :func:`pmtoolkit.expression.io.read`; counts are log-normalised) or a CSV/TSV/Parquet matrix
  (``sample_id`` + numeric feature columns, e.g. genotype dosages or log expression).

:class:`ResponseModel` is a two-tower network (see
:class:`~pmtoolkit.fusion.response_config.ResponseConfig`): an MLP on the standardised sample
features, an MLP on the drug's Morgan fingerprint, combined by concatenation, a bilinear
interaction or both. ``fit(train, valid, config) -> ResponseModel``; ``model.predict(data)``;
``evaluate(model, data)``; ``model.save(path)`` / ``load_model(path)`` (safetensors + JSON).

Baselines (:data:`BASELINES`) are fitted and evaluated on the same split: per-drug mean,
per-sample mean, additive (drug + sample effects), ridge regression and a random forest on
[sample features | fingerprint]. Splits (:func:`response_split`): ``random`` (warm: every test
drug and sample was seen in training with other partners), ``cold-drug`` (test drugs never
seen), ``cold-sample`` (test samples never seen), ``both-cold`` (both unseen; pairs crossing
the groups are left out). Metrics (:func:`response_metrics`): RMSE, Pearson and Spearman over
all pairs, and the mean Pearson within each drug (how well a drug's samples are ranked, the
clinically relevant number) and within each sample.
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid, Rejects
from pmtoolkit.core.metrics import pearson
from pmtoolkit.core.model import TorchModel, check_parameters
from pmtoolkit.fusion.response_config import (
    BASELINE_NAMES,
    DEFAULT_BASELINES,
    SPLITS,
    ResponseConfig,
)

if TYPE_CHECKING:
    import pandas as pd

    from pmtoolkit.chem.splits import Split

log = logging.getLogger(__name__)

#: features a model may miss in new data (filled with the training mean) before it refuses
MAX_MISSING_FEATURES = 0.1
MIN_PER_ENTITY = 3  # pairs a drug (sample) needs for its within-drug (sample) correlation


# ============================================================================ inputs

@dataclass
class Columns:
    """Column names of the input tables (the same ``drug`` column in both tables, the same
    ``sample`` column in the responses and a feature table)."""

    sample: str = "sample_id"
    drug: str = "drug_id"
    response: str = "response"
    smiles: str = "smiles"


@dataclass
class SampleFeatures:
    """Distinct samples and their raw features (rows of ``X``)."""

    ids: list[str]
    X: np.ndarray            # (n_samples, n_features) float32
    names: list[str]         # feature names
    counts: bool             # X holds non-negative integers (expression counts)
    source: str = ""

    def __post_init__(self):
        self._pos = {s: i for i, s in enumerate(self.ids)}

    def position(self, sample_id: str) -> int | None:
        return self._pos.get(sample_id)


@dataclass
class Drugs:
    """Distinct drugs: ids and standardised canonical SMILES."""

    ids: list[str]
    smiles: list[str]
    #: drugs of the table left out, by id: why (an invalid SMILES)
    invalid: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self._pos = {d: i for i, d in enumerate(self.ids)}

    def position(self, drug_id: str) -> int | None:
        return self._pos.get(drug_id)


@dataclass
class ResponseData:
    """(sample, drug) pairs as indices into distinct samples and drugs, with responses when
    known and the input line of each pair (tables)."""

    samples: SampleFeatures
    drugs: Drugs
    sample_index: np.ndarray       # (n_pairs,) into samples.ids
    drug_index: np.ndarray         # (n_pairs,) into drugs.ids
    y: np.ndarray | None = None    # (n_pairs,) float
    lines: list[int] | None = None

    def __len__(self) -> int:
        return len(self.sample_index)

    def subset(self, index: Sequence[int]) -> ResponseData:
        idx = np.asarray(index, dtype=np.int64)
        return ResponseData(self.samples, self.drugs, self.sample_index[idx],
                            self.drug_index[idx], None if self.y is None else self.y[idx],
                            None if self.lines is None else [self.lines[i] for i in idx])

    @property
    def pair_sample_ids(self) -> np.ndarray:
        return np.asarray(self.samples.ids, dtype=object)[self.sample_index]

    @property
    def pair_drug_ids(self) -> np.ndarray:
        return np.asarray(self.drugs.ids, dtype=object)[self.drug_index]

    def keys(self) -> list[str]:
        """One text key per pair (sample and drug ids), for split fingerprints."""
        return [f"{s}\t{d}" for s, d in zip(self.pair_sample_ids, self.pair_drug_ids)]

    def fingerprint(self) -> str:
        from pmtoolkit.core.io import sha256_rows

        ys = self.y if self.y is not None else np.full(len(self), np.nan)
        return sha256_rows(f"{k}\t{self.drugs.smiles[d]}\t{v:.6g}"
                           for k, d, v in zip(self.keys(), self.drug_index, ys))

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        out = pd.DataFrame({"sample_id": self.pair_sample_ids, "drug_id": self.pair_drug_ids})
        if self.y is not None:
            out["response"] = self.y
        return out


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()


def read_drugs(path: str | os.PathLike, *, id_column: str = "drug_id",
               smiles_column: str = "smiles") -> tuple[Drugs, Rejects]:
    """The drugs table: each SMILES parsed and standardised (largest organic fragment,
    neutralised; :class:`pmtoolkit.chem.standardize.Standardizer`) to canonical SMILES. An
    unparsable SMILES is a reject with its line; a repeated drug id is an error."""
    from pmtoolkit.chem.molecules import parse_smiles
    from pmtoolkit.chem.standardize import Standardizer, canonical_smiles
    from pmtoolkit.core.io import read_table

    table = read_table(path, columns=[id_column, smiles_column], dtype={id_column: str})
    rejects = Rejects(source=str(path), item_name="smiles")
    standardizer = Standardizer()
    ids, smiles, seen, invalid = [], [], set(), {}
    for line, ident, smi in zip(table.index, table[id_column], table[smiles_column]):
        ident = _text(ident)
        if not ident:
            rejects.add(_text(smi), int(line), f"no drug id in {id_column!r}")
            continue
        if ident in seen:
            raise BadInputError(f"{path}: line {line}: drug id {ident!r} appears twice",
                                hint="one row per drug")
        seen.add(ident)
        mol, reason = parse_smiles(smi)
        if mol is not None:
            mol, reason = standardizer(mol)
        if mol is None:
            rejects.add(_text(smi), int(line), f"drug {ident!r}: {reason}")
            invalid[ident] = reason
            continue
        ids.append(ident)
        smiles.append(canonical_smiles(mol))
    return Drugs(ids, smiles, invalid), rejects


_ANNDATA_SUFFIXES = (".h5ad", ".h5", ".hdf5", ".loom")


def read_features(path: str | os.PathLike, *, id_column: str = "sample_id") -> SampleFeatures:
    """Sample features: an AnnData file (``.h5ad``, 10x ``.h5``, ``.loom`` or a 10x folder;
    samples x genes, obs names are the sample ids) or a table (CSV/TSV/Parquet) with an
    ``id_column`` and numeric feature columns (genotype dosages, log expression, ...).
    Missing values in a table are filled with the feature's mean (and counted in the log);
    a non-numeric column or a repeated sample id is an error."""
    import pandas as pd

    from pmtoolkit.expression.io import is_counts

    p = Path(path)
    if p.is_dir() or p.name.lower().endswith(_ANNDATA_SUFFIXES):
        from pmtoolkit.expression.io import read

        adata = read(p)
        X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
        ids = [str(s) for s in adata.obs_names]
        names = [str(g) for g in adata.var_names]
    else:
        from pmtoolkit.core.io import read_table

        table = read_table(p, columns=[id_column], dtype={id_column: str})
        if table.empty:
            raise BadInputError(f"'{p}' holds no samples")
        ids = [_text(s) for s in table[id_column]]
        values = table.drop(columns=[id_column])
        bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
        if bad:
            col = values[bad[0]]
            first = next((v for v in col if pd.isna(pd.to_numeric(pd.Series([v]),
                                                                  errors="coerce"))[0]
                          and not pd.isna(v)), col.iloc[0])
            raise BadInputError(f"feature column {bad[0]!r} of '{p}' is not numeric "
                                f"(e.g. {first!r})",
                                hint=f"features must be numbers; is {id_column!r} the id "
                                     "column?")
        X = values.to_numpy(dtype=np.float64)
        names = [str(c) for c in values.columns]
        missing = np.isnan(X)
        if missing.any():
            means = np.nanmean(np.where(missing.all(0, keepdims=True), 0.0, X), axis=0)
            X = np.where(missing, means, X)
            log.warning("%s: %d missing feature value(s) filled with the feature's mean",
                        p, int(missing.sum()))
    raw = np.asarray(X)
    with np.errstate(over="ignore"):  # beyond float32, the model's precision: infinite
        X = raw.astype(np.float32)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise BadInputError(f"'{p}' holds no samples or no features ({X.shape})")
    if not np.isfinite(X).all():
        i, j = (int(v[0]) for v in np.nonzero(~np.isfinite(X)))
        raise BadInputError(f"'{p}': sample {ids[i]!r} has a missing, infinite or "
                            f"out-of-range value of feature {names[j]!r} ({raw[i, j]})")
    empty = [i for i, s in enumerate(ids) if not s]
    if empty:
        raise BadInputError(f"'{p}': sample {empty[0] + 1} has no id")
    dup = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(dup):
        raise BadInputError(f"sample id {dup[0]!r} appears twice in '{p}'")
    return SampleFeatures(ids, X, names, is_counts(X), str(p))


def _no_overlap(what: str, a: Sequence[str], b: Sequence[str], where: str, other: str) -> None:
    raise BadInputError(f"no {what} id of '{where}' is in '{other}' (e.g. {a[0]!r} vs "
                        f"{b[0]!r})" if len(a) and len(b) else
                        f"no {what} ids to match between '{where}' and '{other}'",
                        hint="do both files name samples and drugs the same way?")


def load_panel(responses: str | os.PathLike, drugs: str | os.PathLike,
               features: str | os.PathLike, *, columns: Columns | None = None
               ) -> tuple[ResponseData, Rejects, Rejects]:
    """Read a response panel from its three files: ``(data, drug_rejects, row_rejects)``.

    A response row is a reject (with its line) when its value is missing or not a number,
    its drug is not in the drugs table or has an invalid SMILES, or its sample has no
    features. When *no* sample (or drug) id of the responses is found at all, that is one
    error naming an id of each file (the usual cause: different naming)."""
    import pandas as pd

    from pmtoolkit.core.io import read_table

    c = columns or Columns()
    table = read_table(responses, columns=[c.sample, c.drug, c.response],
                       dtype={c.sample: str, c.drug: str})
    if not len(table):
        raise BadInputError(f"response table '{responses}' has no rows")
    drug_set, drug_rejects = read_drugs(drugs, id_column=c.drug, smiles_column=c.smiles)
    samples = read_features(features, id_column=c.sample)
    sample_ids = [_text(s) for s in table[c.sample]]
    drug_ids = [_text(d) for d in table[c.drug]]
    if not any(samples.position(s) is not None for s in sample_ids):
        _no_overlap("sample", sample_ids, samples.ids, str(responses), str(features))
    if not any(drug_set.position(d) is not None or d in drug_set.invalid for d in drug_ids):
        _no_overlap("drug", drug_ids, drug_set.ids, str(responses), str(drugs))
    values = pd.to_numeric(table[c.response], errors="coerce").to_numpy(dtype=float)
    rejects = Rejects(source=str(responses), item_name="pair")
    s_idx, d_idx, ys, lines = [], [], [], []
    for k, line in enumerate(table.index):
        s, d = sample_ids[k], drug_ids[k]
        item = f"{s}\t{d}"
        si, di = samples.position(s), drug_set.position(d)
        if not np.isfinite(values[k]):
            rejects.add(item, int(line), f"no finite number in {c.response!r}")
        elif di is None:
            rejects.add(item, int(line), f"drug {d!r} has an invalid SMILES"
                        if d in drug_set.invalid else f"drug {d!r} is not in the drugs table")
        elif si is None:
            rejects.add(item, int(line), f"sample {s!r} has no features")
        else:
            s_idx.append(si)
            d_idx.append(di)
            ys.append(values[k])
            lines.append(int(line))
    data = ResponseData(samples, drug_set, np.asarray(s_idx, dtype=np.int64),
                        np.asarray(d_idx, dtype=np.int64), np.asarray(ys, dtype=np.float64),
                        lines)
    return data, drug_rejects, rejects


def apply_rejects(drug_rejects: Rejects, rejects: Rejects, on_invalid: OnInvalid) -> None:
    """``error``: stop on the first invalid drug or response row; ``skip``: log the counts."""
    from pmtoolkit.core.io import check_choice

    check_choice("on_invalid", on_invalid, ("error", "skip"))
    if on_invalid == "error":
        drug_rejects.raise_first()
        rejects.raise_first()
    for r in (drug_rejects, rejects):
        if r:
            log.warning("%d invalid record(s) skipped in %s; first: %s", len(r), r.source,
                        r.items[0].describe())


def pairs_for(samples: SampleFeatures, drugs: Drugs, pairs: pd.DataFrame | None = None, *,
              columns: Columns | None = None, source: str = "pairs"
              ) -> tuple[ResponseData, Rejects]:
    """Pairs to predict: every sample with every drug, or the rows of ``pairs`` (sample and
    drug columns; rows with an unknown sample or drug are rejects with their line)."""
    c = columns or Columns()
    if pairs is None:
        s = np.repeat(np.arange(len(samples.ids)), len(drugs.ids))
        d = np.tile(np.arange(len(drugs.ids)), len(samples.ids))
        return ResponseData(samples, drugs, s, d), Rejects(source=source, item_name="pair")
    rejects = Rejects(source=source, item_name="pair")
    s_idx, d_idx, lines = [], [], []
    for line, s, d in zip(pairs.index, pairs[c.sample], pairs[c.drug]):
        s, d = _text(s), _text(d)
        si, di = samples.position(s), drugs.position(d)
        if si is None:
            rejects.add(f"{s}\t{d}", int(line), f"sample {s!r} has no features")
        elif di is None:
            rejects.add(f"{s}\t{d}", int(line), f"drug {d!r} is not a valid drug")
        else:
            s_idx.append(si)
            d_idx.append(di)
            lines.append(int(line))
    return ResponseData(samples, drugs, np.asarray(s_idx, dtype=np.int64),
                        np.asarray(d_idx, dtype=np.int64), lines=lines), rejects


# ============================================================================ splits

def response_split(data: ResponseData, method: str = "random",
                   sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """A seeded split of ``data``'s pairs into train / validation / test (see the module
    doc). ``random`` keeps replicate measurements of one (sample, drug) pair on one side;
    the cold splits assign whole drugs or samples, so that the pairs they carry come near
    ``sizes``; ``both-cold`` splits drugs and samples each with the square roots of the
    fractions and keeps only the pairs whose drug and sample fall on the same side."""
    from pmtoolkit.chem.splits import Split, _check_sizes
    from pmtoolkit.core.io import sha256_rows
    from pmtoolkit.dti.splits import _entity_groups

    sizes = _check_sizes(sizes)
    rng = np.random.default_rng(seed)
    n = len(data)
    n_s, n_d = len(data.samples.ids), len(data.drugs.ids)
    if method == "random":
        pair = data.sample_index * n_d + data.drug_index
        keys, inverse = np.unique(pair, return_inverse=True)
        group = _entity_groups(len(keys), sizes, rng, np.bincount(inverse))[inverse]
    elif method == "cold-drug":
        group = _entity_groups(n_d, sizes, rng, np.bincount(data.drug_index,
                                                            minlength=n_d))[data.drug_index]
    elif method == "cold-sample":
        group = _entity_groups(n_s, sizes, rng, np.bincount(data.sample_index,
                                                            minlength=n_s))[data.sample_index]
    elif method == "both-cold":
        root = np.sqrt(np.asarray(sizes))
        root = tuple(root / root.sum())
        gd = _entity_groups(n_d, root, rng, np.bincount(data.drug_index, minlength=n_d))
        gs = _entity_groups(n_s, root, rng, np.bincount(data.sample_index, minlength=n_s))
        a, b = gd[data.drug_index], gs[data.sample_index]
        group = np.where(a == b, a, -1)
    else:
        raise BadInputError(f"unknown split {method!r}", hint="choose from " + ", ".join(SPLITS))
    parts = [np.flatnonzero(group == k) for k in range(3)]
    split = Split(method=method, seed=seed, sizes=sizes, train=parts[0].tolist(),
                  val=parts[1].tolist(), test=parts[2].tolist(), n=n,
                  smiles_sha256=sha256_rows(data.keys()))
    split.info = {f"{part}_{kind}": len(np.unique(idx[p]))
                  for part, p in zip(("train", "val", "test"), parts)
                  for kind, idx in (("drugs", data.drug_index), ("samples", data.sample_index))}
    split.info["dropped_pairs"] = int((group < 0).sum())
    if not split.train or not split.test:
        raise BadInputError(f"a {method} split of {n} pairs left an empty training or test "
                            "set", hint="more drugs and samples, or other --sizes")
    return split


# ============================================================================ features

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


def drug_fingerprints(smiles: Sequence[str], radius: int = 2, n_bits: int = 2048) -> np.ndarray:
    """Morgan fingerprint bits (float32) of standardised SMILES."""
    from pmtoolkit.chem.fingerprints import morgan
    from pmtoolkit.chem.molecules import parse_smiles

    mols = []
    for s in smiles:
        mol, reason = parse_smiles(s)
        if mol is None:
            raise BadInputError(f"invalid drug SMILES {s!r}: {reason}")
        mols.append(mol)
    return morgan(mols, radius=radius, n_bits=n_bits).astype(np.float32)


# ============================================================================ model

def _tower(n_in: int, sizes: Sequence[int], dropout: float):
    from torch import nn

    layers: list = []
    width = n_in
    for k, h in enumerate(sizes):
        layers.append(nn.Linear(width, h))
        if k < len(sizes) - 1:  # the tower's vector itself is linear (it may be negative)
            layers += [nn.ReLU(), nn.Dropout(dropout)]
        width = h
    return nn.Sequential(*layers)


def check_config(config: ResponseConfig) -> None:
    if not config.sample_hidden or not config.drug_hidden:
        raise BadInputError("sample-hidden and drug-hidden need at least one size each")
    if config.fusion in ("bilinear", "both") and config.sample_hidden[-1] != \
            config.drug_hidden[-1]:
        raise BadInputError(f"{config.fusion} fusion needs the last sample-hidden and "
                            f"drug-hidden sizes equal ({config.sample_hidden[-1]} vs "
                            f"{config.drug_hidden[-1]})")
    if config.fusion != "bilinear" and not config.head:
        raise BadInputError(f"{config.fusion} fusion needs at least one head size")
    if min((*config.sample_hidden, *config.drug_hidden, *config.head,
            config.fingerprint_bits, config.batch_size, config.epochs)) < 1:
        raise BadInputError("layer sizes, fingerprint bits, batch size and epochs must be "
                            "positive")


def _network(config: ResponseConfig, n_features: int):
    import torch
    from torch import nn

    check_config(config)

    class ResponseNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.sample = _tower(n_features, config.sample_hidden, config.dropout)
            self.drug = _tower(config.fingerprint_bits, config.drug_hidden, config.dropout)
            d_s, d_d = config.sample_hidden[-1], config.drug_hidden[-1]
            if config.fusion == "bilinear":
                self.main_sample = nn.Linear(d_s, 1)
                self.main_drug = nn.Linear(d_d, 1, bias=False)
            else:
                width = d_s + d_d + (d_s if config.fusion == "both" else 0)
                self.head = nn.Sequential(nn.ReLU(), nn.Dropout(config.dropout),
                                          _tower(width, (*config.head, 1), config.dropout))

        def pairs(self, s: torch.Tensor, d: torch.Tensor, s_pos: torch.Tensor,
                  d_pos: torch.Tensor) -> torch.Tensor:
            """Outputs of pairs given as positions into encoded samples and drugs."""
            s, d = s.index_select(0, s_pos), d.index_select(0, d_pos)
            if config.fusion == "bilinear":
                dot = (s * d).sum(1) / math.sqrt(s.shape[1])
                return (self.main_sample(s) + self.main_drug(d)).squeeze(1) + dot
            parts = [s, d] + ([s * d] if config.fusion == "both" else [])
            return self.head(torch.cat(parts, 1)).squeeze(1)

    return ResponseNetwork()


class ResponseModel(TorchModel):
    """A trained drug-response model: the feature preparation it learnt (normalisation,
    kept features, their mean and sd) and the response scale."""

    Config = ResponseConfig

    def __init__(self, config: ResponseConfig, network=None, *, prep: FeaturePrep,
                 y_mean: float = 0.0, y_std: float = 1.0):
        self.prep = prep
        self.y_mean, self.y_std = float(y_mean), float(y_std)
        super().__init__(config, network if network is not None
                         else _network(config, len(prep.names)))

    @classmethod
    def build_network(cls, config: ResponseConfig, extra: dict[str, Any]):
        return _network(config, len(extra["features"]))

    @classmethod
    def _new(cls, config: ResponseConfig, extra: dict[str, Any]) -> ResponseModel:
        prep = FeaturePrep(extra["normalize"], list(extra["features"]),
                           np.asarray(extra["feature_mean"], dtype=np.float32),
                           np.asarray(extra["feature_sd"], dtype=np.float32))
        return cls(config, cls.build_network(config, extra), prep=prep,
                   y_mean=extra["y_mean"], y_std=extra["y_std"])

    def extra_metadata(self) -> dict[str, Any]:
        return {"features": self.prep.names, "normalize": self.prep.normalize,
                "feature_mean": self.prep.mean.tolist(), "feature_sd": self.prep.sd.tolist(),
                "y_mean": self.y_mean, "y_std": self.y_std}

    def fingerprints(self, drugs: Drugs) -> np.ndarray:
        return drug_fingerprints(drugs.smiles, self.config.fingerprint_radius,
                                 self.config.fingerprint_bits)

    def predict(self, data: ResponseData, *, chunk: int = 65536) -> np.ndarray:
        """The predicted response of every pair of ``data``."""
        import torch

        out = np.empty(len(data))
        if not len(data):
            return out
        s_used, s_pos = np.unique(data.sample_index, return_inverse=True)
        d_used, d_pos = np.unique(data.drug_index, return_inverse=True)
        X = self.prep.standardized(data.samples)[s_used]
        fp = drug_fingerprints([data.drugs.smiles[i] for i in d_used],
                               self.config.fingerprint_radius, self.config.fingerprint_bits)
        net = self.network.eval()
        with torch.inference_mode():
            s = net.sample(torch.from_numpy(X))
            d = net.drug(torch.from_numpy(fp))
            for a in range(0, len(data), chunk):
                z = net.pairs(s, d, torch.from_numpy(s_pos[a:a + chunk]),
                              torch.from_numpy(d_pos[a:a + chunk]))
                out[a:a + chunk] = z.double().numpy() * self.y_std + self.y_mean
        return out


def check_training(train: ResponseData, config: ResponseConfig) -> FeaturePrep:
    """Refuse what cannot be trained, before anything is written (settings out of range,
    fewer than two responses, responses whose spread is not a finite number, features that
    cannot be normalised); returns the feature preparation learnt on ``train``."""
    from pmtoolkit.core.config import check_ranges

    check_ranges(config, source="drug-response model config")
    check_config(config)
    if train.y is None or len(train) < 2:
        raise BadInputError("training needs at least two pairs with responses")
    y = np.asarray(train.y, dtype=np.float64)
    with np.errstate(over="ignore"):  # a spread too large to compute is the error here
        spread = y.std()
    if not (np.isfinite(y).all() and np.isfinite(spread)):
        raise BadInputError("the training responses are not all finite numbers of a "
                            "sensible size")
    prep = FeaturePrep.learn(train.samples, np.unique(train.sample_index), config.normalize,
                             config.top_genes)
    check_parameters(lambda: _network(config, len(prep.names)), "a drug-response network",
               "smaller --sample-hidden, --drug-hidden, --head or --fingerprint-bits, or "
               "fewer features (--top-genes)")
    return prep


def fit(train: ResponseData, valid: ResponseData | None = None,
        config: ResponseConfig | None = None, *, workdir: str | Path | None = None,
        checkpoints: str | Path | None = None, resume: bool = False) -> ResponseModel:
    """Train a :class:`ResponseModel` on ``train`` (the best epoch by validation loss when
    ``valid`` is given, stopping early; the last epoch otherwise). Logs go to ``workdir``,
    the resume checkpoint to ``checkpoints`` (default: inside ``workdir``), from which
    ``resume`` continues an interrupted run."""
    import lightning as L
    import torch

    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.training import TrainConfig
    from pmtoolkit.core.training import fit as train_module

    config = config or ResponseConfig()
    prep = check_training(train, config)
    y = np.asarray(train.y, dtype=np.float64)
    y_mean, y_std = float(y.mean()), float(y.std())
    y_std = y_std if y_std > 1e-8 else 1.0
    seed_everything(config.seed)
    model = ResponseModel(config, prep=prep, y_mean=y_mean, y_std=y_std)
    net = model.network

    def tensors(data: ResponseData):
        X = torch.from_numpy(prep.standardized(data.samples))
        fp = torch.from_numpy(model.fingerprints(data.drugs))
        return X, fp

    def loader(data: ResponseData, shuffle: bool):
        yy = ((np.asarray(data.y, dtype=np.float64) - y_mean) / y_std).astype(np.float32)
        ds = torch.utils.data.TensorDataset(torch.from_numpy(data.sample_index),
                                            torch.from_numpy(data.drug_index),
                                            torch.from_numpy(yy))
        return torch.utils.data.DataLoader(ds, batch_size=config.batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(config.seed))

    has_val = valid is not None and len(valid) > 0
    X_train, fp_train = tensors(train)
    X_val, fp_val = tensors(valid) if has_val else (X_train, fp_train)
    if has_val and valid.samples is train.samples:
        X_val = X_train
    if has_val and valid.drugs is train.drugs:
        fp_val = fp_train

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net
            # inputs live on the module's device; not weights, so not in its state
            self.register_buffer("X_train", X_train, persistent=False)
            self.register_buffer("fp_train", fp_train, persistent=False)
            self.register_buffer("X_val", X_val, persistent=False)
            self.register_buffer("fp_val", fp_val, persistent=False)

        def _out(self, batch, X, fp):
            si, di, yy = batch
            s_u, s_pos = torch.unique(si, return_inverse=True)
            d_u, d_pos = torch.unique(di, return_inverse=True)
            s = self.net.sample(X.index_select(0, s_u))
            d = self.net.drug(fp.index_select(0, d_u))
            return self.net.pairs(s, d, s_pos, d_pos), yy

        def training_step(self, batch, _):
            out, yy = self._out(batch, self.X_train, self.fp_train)
            loss = torch.nn.functional.mse_loss(out, yy)
            self.log("train_loss", loss, on_epoch=True, on_step=False, batch_size=len(yy))
            return loss

        def validation_step(self, batch, _):
            out, yy = self._out(batch, self.X_val, self.fp_val)
            self.log("val_loss", torch.nn.functional.mse_loss(out, yy), on_epoch=True,
                     batch_size=len(yy))

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)

    module = Module()
    # a resume checkpoint every few epochs where it can outlive the run; else only at the end
    tc = TrainConfig(max_epochs=config.epochs, patience=config.patience if has_val else 0,
                     monitor="val_loss", mode="min", seed=config.seed, device=config.device,
                     resume=resume, **({} if checkpoints else
                                       {"checkpoint_every": max(10, config.epochs)}))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pmt-response-") as tmp:
        result = train_module(module, loader(train, True),
                              loader(valid, False) if has_val else None, config=tc,
                              workdir=workdir or tmp, checkpoint_dir=checkpoints)
    model.network = module.net.eval().cpu()
    model.metadata = {"training_data_sha256": train.fingerprint(),
                      "metrics": {"epochs_run": result.epochs_run,
                                  "best_epoch": result.best_epoch,
                                  "best_val_loss": result.best_score,
                                  "train_seconds": time.perf_counter() - start,
                                  "n_train": len(train)}}
    return model


def load_response_model(path: str | os.PathLike) -> ResponseModel:
    """A saved model: its file, or the training output folder holding ``model.safetensors``."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.safetensors"
    if not p.is_file():
        raise BadInputError(f"model '{path}' does not exist",
                            hint="give the model.safetensors file or its training folder")
    return ResponseModel.load(p)  # type: ignore[return-value]


# ============================================================================ metrics



def _grouped_pearson(y: np.ndarray, p: np.ndarray, group: np.ndarray,
                     min_size: int = MIN_PER_ENTITY) -> np.ndarray:
    """Pearson r of (y, p) within each group with at least ``min_size`` pairs; NaN where a
    group is too small or either side is constant there. Indexed by group id."""
    out = np.full(int(group.max()) + 1 if len(group) else 0, np.nan)
    order = np.argsort(group, kind="stable")
    cuts = np.flatnonzero(np.diff(group[order])) + 1
    for chunk in np.split(order, cuts):
        if len(chunk) >= min_size:
            out[group[chunk[0]]] = pearson(y[chunk], p[chunk])
    return out


def _nanmean(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def response_metrics(y_true, y_pred, drug_index, sample_index) -> dict[str, float]:
    """RMSE, Pearson, Spearman over all pairs; ``per_drug_pearson``: the mean over drugs of
    the Pearson r within the drug (drugs with at least 3 pairs and non-constant values);
    ``per_sample_pearson`` likewise within samples. A prediction constant within every drug
    (a per-drug mean) has no within-drug correlation: NaN, shown as such."""
    from pmtoolkit.core import metrics as M

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    d = np.asarray(drug_index)
    s = np.asarray(sample_index)
    per_drug = _grouped_pearson(y, p, d)
    per_sample = _grouped_pearson(y, p, s)
    r = pearson(y, p)
    return {"rmse": M.rmse(y, p), "pearson": r,
            "spearman": M.spearman(y, p) if np.isfinite(r) else float("nan"),
            "per_drug_pearson": _nanmean(per_drug),
            "per_sample_pearson": _nanmean(per_sample),
            "drugs_scored": int(np.isfinite(per_drug).sum()),
            "samples_scored": int(np.isfinite(per_sample).sum()),
            "n": len(y), "n_drugs": len(np.unique(d)),
            "n_samples": len(np.unique(s))}


def per_drug_pearson(data: ResponseData, pred: np.ndarray) -> pd.DataFrame:
    """One row per drug of ``data``: drug_id, pairs, Pearson r within the drug."""
    import pandas as pd

    r = _grouped_pearson(np.asarray(data.y, float), np.asarray(pred, float), data.drug_index)
    counts = np.bincount(data.drug_index, minlength=len(r))
    used = np.flatnonzero(counts)
    return pd.DataFrame({"drug_id": [data.drugs.ids[i] for i in used],
                         "pairs": counts[used], "pearson": r[used]})


def evaluate(model, data: ResponseData) -> dict[str, float]:
    """:func:`response_metrics` of ``model`` (a :class:`ResponseModel` or a baseline) on
    ``data``."""
    if data.y is None:
        raise BadInputError("evaluation needs measured responses")
    if not len(data):
        raise BadInputError("no pairs to evaluate")
    return response_metrics(data.y, model.predict(data), data.drug_index, data.sample_index)


# ============================================================================ baselines

class _EntityMeans:
    """Mean training response of each drug (or sample); the global mean for unseen ones."""

    by = "drug"

    def fit(self, train: ResponseData, valid: ResponseData | None = None) -> _EntityMeans:
        ids = train.pair_drug_ids if self.by == "drug" else train.pair_sample_ids
        import pandas as pd

        self.mean = float(np.mean(train.y))
        self.table = pd.Series(np.asarray(train.y, float)).groupby(ids).mean().to_dict()
        return self

    def predict(self, data: ResponseData) -> np.ndarray:
        ids = data.pair_drug_ids if self.by == "drug" else data.pair_sample_ids
        return np.array([self.table.get(i, self.mean) for i in ids], dtype=float)


class DrugMean(_EntityMeans):
    by = "drug"


class SampleMean(_EntityMeans):
    by = "sample"


class Additive:
    """y = mu + a_drug + b_sample, fitted by alternating ridge-shrunk means (``shrink``
    pseudo-pairs at 0 per entity); unseen drugs or samples get effect 0. The strongest
    baseline without features on warm splits: every drug's potency and every sample's
    general sensitivity, but nothing that depends on the pair."""

    def __init__(self, shrink: float = 1.0, iterations: int = 30):
        self.shrink, self.iterations = shrink, iterations

    def fit(self, train: ResponseData, valid: ResponseData | None = None) -> Additive:
        y = np.asarray(train.y, float)
        d, s = train.drug_index, train.sample_index
        n_d, n_s = len(train.drugs.ids), len(train.samples.ids)
        self.mu = float(y.mean())
        a, b = np.zeros(n_d), np.zeros(n_s)
        cd = np.bincount(d, minlength=n_d) + self.shrink
        cs = np.bincount(s, minlength=n_s) + self.shrink
        for _ in range(self.iterations):
            a = np.bincount(d, y - self.mu - b[s], minlength=n_d) / cd
            b = np.bincount(s, y - self.mu - a[d], minlength=n_s) / cs
        used_d, used_s = np.bincount(d, minlength=n_d) > 0, np.bincount(s, minlength=n_s) > 0
        self.drug = {train.drugs.ids[i]: a[i] for i in np.flatnonzero(used_d)}
        self.sample = {train.samples.ids[i]: b[i] for i in np.flatnonzero(used_s)}
        return self

    def predict(self, data: ResponseData) -> np.ndarray:
        return self.mu + np.array([self.drug.get(i, 0.0) for i in data.pair_drug_ids]) + \
            np.array([self.sample.get(i, 0.0) for i in data.pair_sample_ids])


class _FeatureBaseline:
    """Shared: sample features prepared as the network's (top variable, standardised) and
    drug fingerprints."""

    def __init__(self, config: ResponseConfig | None = None):
        self.config = config or ResponseConfig()

    def _prep(self, train: ResponseData) -> None:
        c = self.config
        self.prep = FeaturePrep.learn(train.samples, np.unique(train.sample_index),
                                      c.normalize, c.top_genes)

    def _entities(self, data: ResponseData) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        return (self.prep.standardized(data.samples).astype(np.float64),
                drug_fingerprints(data.drugs.smiles, c.fingerprint_radius,
                                  c.fingerprint_bits).astype(np.float64))


class Ridge(_FeatureBaseline):
    """Ridge regression on [sample features | drug fingerprint]: linear, so a sum of a
    sample part and a drug part (no interaction). Solved on the normal equations built from
    per-entity sums (never the pairs x features design matrix); the penalty is picked on the
    validation pairs from a grid (10 without validation)."""

    ALPHAS = (1.0, 10.0, 100.0, 1000.0, 10000.0)

    def fit(self, train: ResponseData, valid: ResponseData | None = None) -> Ridge:
        self._prep(train)
        S, F = self._entities(train)
        s, d = train.sample_index, train.drug_index
        y = np.asarray(train.y, float)
        n_s, n_d = len(S), len(F)
        ns = np.bincount(s, minlength=n_s).astype(float)
        nd = np.bincount(d, minlength=n_d).astype(float)
        N = np.zeros((n_s, n_d))
        np.add.at(N, (s, d), 1.0)
        # centre both blocks on the pairs so the intercept is the mean response
        ms, md = ns @ S / len(y), nd @ F / len(y)
        Sc, Fc = S - ms, F - md
        ys, yd = np.bincount(s, y - y.mean(), minlength=n_s), \
            np.bincount(d, y - y.mean(), minlength=n_d)
        A = np.block([[Sc.T @ (ns[:, None] * Sc), Sc.T @ N @ Fc],
                      [Fc.T @ N.T @ Sc, Fc.T @ (nd[:, None] * Fc)]])
        rhs = np.concatenate([Sc.T @ ys, Fc.T @ yd])
        self.y_mean, self.ms, self.md = float(y.mean()), ms, md
        alphas = self.ALPHAS if valid is not None and len(valid) else (10.0,)
        best = None
        for alpha in alphas:
            w = np.linalg.solve(A + alpha * np.eye(len(A)), rhs)
            self.w_s, self.w_d = w[:S.shape[1]], w[S.shape[1]:]
            if len(alphas) == 1:
                break
            err = float(np.mean((self.predict(valid) - valid.y) ** 2))
            if best is None or err < best[0]:
                best = (err, alpha, self.w_s, self.w_d)
        if best is not None:
            _, self.alpha, self.w_s, self.w_d = best
        return self

    def predict(self, data: ResponseData) -> np.ndarray:
        S, F = self._entities(data)
        a = (S - self.ms) @ self.w_s
        b = (F - self.md) @ self.w_d
        return self.y_mean + a[data.sample_index] + b[data.drug_index]


class Forest(_FeatureBaseline):
    """A random forest (scikit-learn, 100 trees, min 5 pairs a leaf, the square root of the
    features tried per split) on [sample features | drug fingerprint]: it can learn
    interactions."""

    def __init__(self, config: ResponseConfig | None = None, trees: int = 100):
        super().__init__(config)
        self.trees = trees

    def fit(self, train: ResponseData, valid: ResponseData | None = None) -> Forest:
        from sklearn.ensemble import RandomForestRegressor

        self._prep(train)
        self.rf = RandomForestRegressor(n_estimators=self.trees, min_samples_leaf=5,
                                        max_features="sqrt", random_state=self.config.seed,
                                        n_jobs=1)
        self.rf.fit(self._design(train), np.asarray(train.y, float))
        return self

    def _design(self, data: ResponseData) -> np.ndarray:
        S, F = self._entities(data)
        return np.hstack([S.astype(np.float32)[data.sample_index],
                          F.astype(np.float32)[data.drug_index]])

    def predict(self, data: ResponseData) -> np.ndarray:
        return self.rf.predict(self._design(data))


#: baselines by the name users type (the names: ``response_config.BASELINE_NAMES``)
BASELINES: dict[str, type] = dict(zip(BASELINE_NAMES, (DrugMean, SampleMean, Additive, Ridge,
                                                       Forest)))


def fit_baseline(name: str, train: ResponseData, valid: ResponseData | None = None,
                 config: ResponseConfig | None = None):
    """Fit baseline ``name`` (see :data:`BASELINES`); returns an object with ``predict``."""
    from pmtoolkit.core.errors import unknown_name

    if name not in BASELINES:
        raise unknown_name("baseline", name, BASELINES)
    cls = BASELINES[name]
    model = cls(config) if issubclass(cls, _FeatureBaseline) else cls()
    return model.fit(train, valid)


# ============================================================================ files

def train_files(responses: str | os.PathLike, drugs: str | os.PathLike,
                features: str | os.PathLike, outdir: str | os.PathLike, *,
                config: ResponseConfig, columns: Columns | None = None, split: str = "random",
                sizes: tuple[float, float, float] = (0.8, 0.1, 0.1), split_seed: int = 0,
                baselines: Sequence[str] = DEFAULT_BASELINES, on_invalid: OnInvalid = "error",
                overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Read a panel, split it, train, and evaluate the model and every baseline on the test
    pairs. Writes ``outdir``: ``model.safetensors``, ``config.json``, ``split.json``,
    ``metrics.json`` (test metrics of the model and the baselines), ``test_predictions.csv``,
    and ``rejected.csv`` / ``rejected_drugs.csv`` when records were skipped. An interrupted
    run keeps its checkpoint in ``outdir/work`` and continues from it with ``resume``."""
    from pmtoolkit.core.config import check_ranges, to_dict, write_resolved
    from pmtoolkit.core.devices import resolve_device
    from pmtoolkit.core.io import atomic_dir, check_output_dir, work_dir, write_json, write_table

    columns = columns or Columns()
    check_ranges(config, source="drug-response model config")
    check_config(config)
    for name in baselines:
        if name not in BASELINES:
            from pmtoolkit.core.errors import unknown_name

            raise unknown_name("baseline", name, BASELINES)
    if split not in SPLITS:
        raise BadInputError(f"unknown split {split!r}", hint="choose from " + ", ".join(SPLITS))
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    data, drug_rejects, rejects = load_panel(responses, drugs, features, columns=columns)
    apply_rejects(drug_rejects, rejects, on_invalid)
    if len(data) < 10:
        raise BadInputError(f"only {len(data)} usable response rows; need at least 10")
    s = response_split(data, split, sizes, split_seed)
    idx = s.indices()
    train, valid, test = (data.subset(idx[k]) for k in ("train", "val", "test"))
    log.info("%d pairs (%d samples x %d drugs): %d train, %d validation, %d test (%s split)",
             len(data), len(data.samples.ids), len(data.drugs.ids), len(train), len(valid),
             len(test), split)
    # everything that can refuse the run does so before the work folder exists
    check_training(train, config)
    resolve_device(config.device)
    settings = {"model": to_dict(config), "data": {
        "responses": str(responses), "drugs": str(drugs), "features": str(features),
        "sample-column": columns.sample, "drug-column": columns.drug,
        "response-column": columns.response, "smiles-column": columns.smiles,
        "split": split, "sizes": list(sizes), "split-seed": split_seed,
        "baselines": list(baselines), "on-invalid": on_invalid}}
    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        if drug_rejects:
            drug_rejects.write(tmp / "rejected_drugs.csv")
        if rejects:
            rejects.write(tmp / "rejected.csv")
        t0 = time.perf_counter()
        model = fit(train, valid if len(valid) else None, config, workdir=tmp / "training",
                    checkpoints=work_dir(outdir, settings), resume=resume)
        seconds = time.perf_counter() - t0
        pred = model.predict(test)
        metrics: dict[str, Any] = {
            "split": split, "split_seed": split_seed, "train_seconds": seconds,
            "n_train": len(train), "n_valid": len(valid), "n_test": len(test),
            "epochs_run": model.metadata["metrics"]["epochs_run"],
            "test": response_metrics(test.y, pred, test.drug_index, test.sample_index),
            "baselines": {}}
        frame = test.frame()
        frame["prediction"] = pred
        for name in baselines:
            b = fit_baseline(name, train, valid if len(valid) else None, config)
            bp = b.predict(test)
            metrics["baselines"][name] = response_metrics(test.y, bp, test.drug_index,
                                                          test.sample_index)
            frame[name] = bp
        model.save(tmp / "model.safetensors", metrics=metrics,
                   training_data_sha256=train.fingerprint())
        s.save(tmp / "split.json")
        write_resolved(tmp / "config.json", **settings)
        write_json(tmp / "metrics.json", metrics)
        write_table(frame, tmp / "test_predictions.csv")
    return metrics


def predict_files(model: ResponseModel, drugs: str | os.PathLike, features: str | os.PathLike,
                  output: str | os.PathLike, *, pairs: str | os.PathLike | None = None,
                  columns: Columns | None = None) -> dict[str, int]:
    """Predict pairs of samples (a features file) and drugs (a drugs table): every sample
    with every drug, or the rows of a ``pairs`` table (sample and drug columns; its other
    columns are kept, rows stay aligned, a row that cannot be predicted gets an empty
    prediction and a reason in ``error``). Invalid drugs are skipped and listed in the log
    and ``<stem>.rejected.csv`` beside the output."""
    import pandas as pd

    from pmtoolkit.core.io import is_stdio, read_table, rejects_path, write_table

    c = columns or Columns()
    drug_set, drug_rejects = read_drugs(drugs, id_column=c.drug, smiles_column=c.smiles)
    samples = read_features(features, id_column=c.sample)
    if not drug_set.ids:
        drug_rejects.raise_first()
        raise BadInputError(f"no drugs in '{drugs}'")
    table = None
    if pairs is not None:
        table = read_table(pairs, columns=[c.sample, c.drug], dtype={c.sample: str,
                                                                    c.drug: str})
        ids = [_text(v) for v in table[c.sample]]
        if not any(samples.position(s) is not None for s in ids):
            _no_overlap("sample", ids, samples.ids, str(pairs), str(features))
    data, rejects = pairs_for(samples, drug_set, table, columns=c, source=str(pairs or ""))
    pred = model.predict(data)
    if table is None:
        out = pd.DataFrame({c.sample: data.pair_sample_ids, c.drug: data.pair_drug_ids,
                            "prediction": pred})
    else:
        out = table.copy()
        values = np.full(len(table), np.nan)
        pos = {line: i for i, line in enumerate(table.index)}
        values[[pos[line] for line in data.lines]] = pred
        out["prediction"] = values
        reasons = {r.line: r.reason for r in rejects}
        out["error"] = [reasons.get(int(line), "") for line in table.index]
        out = out.reset_index(drop=True)
    write_table(out, output)
    if drug_rejects:
        log.warning("%d drug(s) with an invalid SMILES skipped; first: %s", len(drug_rejects),
                    drug_rejects.items[0].describe())
        if not is_stdio(output):
            drug_rejects.write(rejects_path(output))
    return {"rows": len(out), "predicted": int(np.isfinite(out["prediction"]).sum()),
            "rejected_drugs": len(drug_rejects)}


def evaluate_files(model: ResponseModel, responses: str | os.PathLike, drugs: str | os.PathLike,
                   features: str | os.PathLike, outdir: str | os.PathLike, *,
                   columns: Columns | None = None, on_invalid: OnInvalid = "error",
                   overwrite: bool = False) -> dict[str, Any]:
    """Evaluate ``model`` on a measured panel; writes ``outdir``: ``metrics.json``,
    ``predictions.csv``, ``per_drug.csv``, ``scatter.png`` (predicted vs observed),
    ``per_drug.png`` (the within-drug Pearson of every drug) and ``report.html``."""
    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_json, write_table

    check_output_dir(outdir, overwrite=overwrite)
    data, drug_rejects, rejects = load_panel(responses, drugs, features, columns=columns)
    apply_rejects(drug_rejects, rejects, on_invalid)
    if not len(data):
        raise BadInputError(f"no usable response rows in '{responses}'")
    pred = model.predict(data)
    metrics = response_metrics(data.y, pred, data.drug_index, data.sample_index)
    metrics["rejected_rows"], metrics["rejected_drugs"] = len(rejects), len(drug_rejects)
    per_drug = per_drug_pearson(data, pred)
    frame = data.frame()
    frame["prediction"] = pred
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        write_json(tmp / "metrics.json", metrics)
        write_table(frame, tmp / "predictions.csv")
        write_table(per_drug, tmp / "per_drug.csv")
        if drug_rejects:
            drug_rejects.write(tmp / "rejected_drugs.csv")
        if rejects:
            rejects.write(tmp / "rejected.csv")
        _report(tmp, data, pred, metrics, per_drug, str(responses))
    return metrics


def _report(folder: Path, data: ResponseData, pred: np.ndarray, metrics: dict[str, Any],
            per_drug: pd.DataFrame, source: str) -> None:
    import pandas as pd

    from pmtoolkit.core.plots import figure, parity
    from pmtoolkit.core.report import Report

    y = np.asarray(data.y, float)
    with figure(folder / "scatter.png", size=(4.4, 4.2)) as (_, ax):
        parity(ax, y, pred, xlabel="observed response", ylabel="predicted response",
               title=f"Pearson {metrics['pearson']:.3f}, RMSE {metrics['rmse']:.3f}", size=5,
               alpha=0.3)
    scored = per_drug.dropna(subset=["pearson"]).sort_values("pearson")
    with figure(folder / "per_drug.png", size=(6.0, 3.6)) as (_, ax):
        if len(scored):
            ax.bar(np.arange(len(scored)), scored["pearson"], width=1.0, color="#20bf6b")
            ax.axhline(float(scored["pearson"].mean()), color="#b42318", lw=1,
                       label=f"mean {scored['pearson'].mean():.3f}")
            ax.legend(frameon=False, fontsize=8, loc="upper left")
        ax.axhline(0.0, color="#666666", lw=0.8)
        ax.set_xlabel(f"drugs, sorted ({len(scored)} with >= {MIN_PER_ENTITY} samples)")
        ax.set_ylabel("Pearson r within drug")
        ax.set_title("how well each drug's samples are ranked")
    rep = Report("Drug-response evaluation", subtitle=f"{source}: {metrics['n']} pairs, "
                 f"{metrics['n_samples']} samples x {metrics['n_drugs']} drugs")
    shown = {k: v for k, v in metrics.items() if isinstance(v, float)}
    rep.section("Metrics").table(pd.DataFrame({"metric": list(shown),
                                               "value": list(shown.values())})).text(
        "per_drug_pearson is the mean Pearson r between predicted and observed response "
        "within each drug: how well the model ranks the samples for one drug, the number a "
        "treatment choice depends on. Overall Pearson is dominated by differences between "
        "drugs (potency) and says little about that.")
    rep.section("Predicted vs observed").figure("scatter.png", "every pair")
    rep.section("Per-drug correlation").figure("per_drug.png", "Pearson r within each drug") \
        .table(per_drug.sort_values("pearson", ascending=False), max_rows=30)
    rep.write(folder / "report.html")
