"""Reading drug-response panels: the response table, the drugs table and sample features,
matched into (sample, drug) pairs with the rejects of each file.

Inputs, in the formats of the field's panels (GDSC, CCLE/DepMap, CTRP, PRISM all reduce to
these):

- a long **response table** (CSV/TSV/Parquet): one row per measured (sample, drug) pair,
  columns ``sample_id``, ``drug_id``, ``response`` (ln IC50, AUC, ...; names are options);
- a **drugs table**: ``drug_id``, ``smiles``; each SMILES is parsed and standardised with
  :mod:`pmtoolkit.chem` (largest fragment, neutralised), an unparsable or empty one is a
  reject;
- **sample features**, one or several tables read side by side (expression, copy number,
  mutation, ...): an AnnData ``.h5ad`` (samples x genes, read with
  :func:`pmtoolkit.expression.io.read`; counts are log-normalised) or a CSV/TSV/Parquet matrix
  (``sample_id`` + numeric feature columns, e.g. genotype dosages or log expression). A sample
  must be in every table; one missing from a table is a reject naming that table.

:data:`LAYOUTS` names the column sets of known layouts (``gdsc``: the GDSC ln IC50 layout
with DepMap ids, ``DepMap_ID``, ``drug_name``, ``ln_IC50``, ``CanonicalSMILES``).
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid, Rejects

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class Columns:
    """Column names of the input tables: the same ``drug`` column in the responses and the
    drugs table; the ``sample`` column in the responses, and in the feature tables unless
    ``feature_sample`` names theirs."""

    sample: str = "sample_id"
    drug: str = "drug_id"
    response: str = "response"
    smiles: str = "smiles"
    feature_sample: str | None = None

    @property
    def feature_id(self) -> str:
        return self.feature_sample or self.sample


#: column sets of known panel layouts, by the name ``--layout`` takes; explicit column
#: options override them
LAYOUTS: dict[str, Columns] = {
    "default": Columns(),
    # GDSC ln IC50 with DepMap cell ids and PubChem SMILES (TGSA's and DeepCDR's tables)
    "gdsc": Columns(sample="DepMap_ID", drug="drug_name", response="ln_IC50",
                    smiles="CanonicalSMILES"),
}


def layout_columns(layout: str = "default", **names: str | None) -> Columns:
    """The columns of ``layout`` (:data:`LAYOUTS`) with the given names (``sample``,
    ``drug``, ``response``, ``smiles``, ``feature_sample``; None: the layout's) in place."""
    from dataclasses import replace

    if layout not in LAYOUTS:
        from pmtoolkit.core.errors import unknown_name

        raise unknown_name("layout", layout, LAYOUTS)
    return replace(LAYOUTS[layout], **{k: v for k, v in names.items() if v is not None})


@dataclass
class SampleFeatures:
    """Distinct samples and their raw features (rows of ``X``)."""

    ids: list[str]
    X: np.ndarray            # (n_samples, n_features) float32
    names: list[str]         # feature names
    counts: bool             # X holds non-negative integers (expression counts)
    source: str = ""
    #: samples left out because a feature table lacks them, by id: why
    missing: dict[str, str] = field(default_factory=dict)

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


def _stem(path: str | os.PathLike) -> str:
    """A feature table's name in feature names: the file name without its extensions."""
    name = Path(path).name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", *_ANNDATA_SUFFIXES):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[:-len(suffix)]
    return name


def read_feature_tables(paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                        id_column: str = "sample_id") -> SampleFeatures:
    """Sample features of one or several tables (:func:`read_features` each), side by side.

    With several tables, each feature is named ``<table>:<feature>`` (``<table>`` the file
    name without extensions, e.g. ``cell_mutation:entrez_1029``), so tables may share column
    names (GDSC's expression, copy number and mutation tables all have one column per gene).
    The samples are those of the first table that every table holds; a sample some table
    lacks is kept out and listed in ``missing`` with the tables that lack it, so that its
    response rows become rejects with that reason."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise BadInputError("no feature table given")
    if len(paths) == 1:
        return read_features(paths[0], id_column=id_column)
    stems = [_stem(p) for p in paths]
    dup = next((s for k, s in enumerate(stems) if s in stems[:k]), None)
    if dup is not None:
        raise BadInputError(f"two feature tables are named {dup!r}; their features would "
                            "share names", hint="give each table its own file name")
    tables = [read_features(p, id_column=id_column) for p in paths]
    seen: dict[str, None] = {}
    for t in tables:
        seen.update(dict.fromkeys(t.ids))
    lacking = {s: [str(p) for p, t in zip(paths, tables) if t.position(s) is None]
               for s in seen}
    ids = [s for s in seen if not lacking[s]]
    if not ids:
        raise BadInputError(f"no sample is in every feature table ({', '.join(map(str, paths))})",
                            hint=f"do the tables name samples the same way in {id_column!r}?")
    missing = {s: "missing from " + ", ".join(f"'{p}'" for p in where)
               for s, where in lacking.items() if where}
    X = np.hstack([t.X[[t.position(s) for s in ids]] for t in tables])
    names = [f"{stem}:{n}" for stem, t in zip(stems, tables) for n in t.names]
    if missing:  # their rows become rejects, which say so under the bad-input policy
        log.info("%d sample(s) are not in every feature table, e.g. %s %s", len(missing),
                 next(iter(missing)), next(iter(missing.values())))
    return SampleFeatures(ids, X, names, all(t.counts for t in tables),
                          " + ".join(str(p) for p in paths), missing)


def _no_overlap(what: str, a: Sequence[str], b: Sequence[str], where: str, other: str) -> None:
    raise BadInputError(f"no {what} id of '{where}' is in '{other}' (e.g. {a[0]!r} vs "
                        f"{b[0]!r})" if len(a) and len(b) else
                        f"no {what} ids to match between '{where}' and '{other}'",
                        hint="do both files name samples and drugs the same way?")


def load_panel(responses: str | os.PathLike, drugs: str | os.PathLike,
               features: str | os.PathLike | Sequence[str | os.PathLike], *,
               columns: Columns | None = None) -> tuple[ResponseData, Rejects, Rejects]:
    """Read a response panel from its files (``features``: one feature table or several,
    see :func:`read_feature_tables`): ``(data, drug_rejects, row_rejects)``.

    A response row is a reject (with its line) when its value is missing or not a number,
    its drug is not in the drugs table or has no valid SMILES, or its sample is missing from
    a feature table (the reason names the table). When *no* sample (or drug) id of the
    responses is found at all, that is one error naming an id of each file (the usual cause:
    different naming)."""
    import pandas as pd

    from pmtoolkit.core.io import read_table

    c = columns or Columns()
    table = read_table(responses, columns=[c.sample, c.drug, c.response],
                       dtype={c.sample: str, c.drug: str})
    if not len(table):
        raise BadInputError(f"response table '{responses}' has no rows")
    drug_set, drug_rejects = read_drugs(drugs, id_column=c.drug, smiles_column=c.smiles)
    samples = read_feature_tables(features, id_column=c.feature_id)
    sample_ids = [_text(s) for s in table[c.sample]]
    drug_ids = [_text(d) for d in table[c.drug]]
    if not any(samples.position(s) is not None for s in sample_ids):
        _no_overlap("sample", sample_ids, samples.ids, str(responses), samples.source)
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
            rejects.add(item, int(line), _drug_reason(d, drug_set))
        elif si is None:
            rejects.add(item, int(line), _sample_reason(s, samples))
        else:
            s_idx.append(si)
            d_idx.append(di)
            ys.append(values[k])
            lines.append(int(line))
    data = ResponseData(samples, drug_set, np.asarray(s_idx, dtype=np.int64),
                        np.asarray(d_idx, dtype=np.int64), np.asarray(ys, dtype=np.float64),
                        lines)
    return data, drug_rejects, rejects


def _drug_reason(drug: str, drugs: Drugs) -> str:
    """Why a drug of the responses or pairs cannot be used."""
    if drug not in drugs.invalid:
        return f"drug {drug!r} is not in the drugs table"
    why = drugs.invalid[drug]
    if why in ("missing SMILES", "empty SMILES"):
        return f"drug {drug!r} has no SMILES in the drugs table"
    return f"drug {drug!r} has an invalid SMILES ({why})"


def _sample_reason(sample: str, samples: SampleFeatures) -> str:
    """Why a sample of the responses or pairs has no features."""
    if sample in samples.missing:
        return f"sample {sample!r} is {samples.missing[sample]}"
    return f"sample {sample!r} has no features"


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
            rejects.add(f"{s}\t{d}", int(line), _sample_reason(s, samples))
        elif di is None:
            rejects.add(f"{s}\t{d}", int(line), _drug_reason(d, drugs))
        else:
            s_idx.append(si)
            d_idx.append(di)
            lines.append(int(line))
    return ResponseData(samples, drugs, np.asarray(s_idx, dtype=np.int64),
                        np.asarray(d_idx, dtype=np.int64), lines=lines), rejects
