"""Drug-response metrics: RMSE, Pearson and Spearman over all pairs, and the mean Pearson
within each drug (how well a drug's samples are ranked, the clinically relevant number) and
within each sample."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.metrics import pearson

if TYPE_CHECKING:
    import pandas as pd

    from pmtoolkit.response.data import ResponseData

MIN_PER_ENTITY = 3  # pairs a drug (sample) needs for its within-drug (sample) correlation


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
