"""Drug-response metrics: RMSE, Pearson and Spearman over all pairs (pooled: what DeepCDR and
TGSA publish), and the mean Pearson and Spearman within each drug (how well a drug's samples
are ranked, the clinically relevant number) with the count of drugs they average, and the
mean Pearson within each sample."""
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
                     min_size: int = MIN_PER_ENTITY, *, rank: bool = False) -> np.ndarray:
    """Pearson r (Spearman's with ``rank``) of (y, p) within each group with at least
    ``min_size`` pairs; NaN where a group is too small or either side is constant there.
    Indexed by group id."""
    from pmtoolkit.core.metrics import spearman

    corr = spearman if rank else pearson
    out = np.full(int(group.max()) + 1 if len(group) else 0, np.nan)
    order = np.argsort(group, kind="stable")
    cuts = np.flatnonzero(np.diff(group[order])) + 1
    for chunk in np.split(order, cuts):
        if len(chunk) >= max(min_size, 2):
            out[group[chunk[0]]] = corr(y[chunk], p[chunk])
    return out


def _nanmean(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def response_metrics(y_true, y_pred, drug_index, sample_index, *,
                     min_pairs: int = MIN_PER_ENTITY) -> dict[str, float]:
    """RMSE, Pearson, Spearman over all pairs (pooled); ``per_drug_pearson`` and
    ``per_drug_spearman``: the mean over drugs of the correlation within the drug, over the
    ``drugs_scored`` drugs with at least ``min_pairs`` pairs whose observed and predicted
    values both vary; ``per_sample_pearson`` likewise within samples. A prediction constant
    within every drug (a per-drug mean) has no within-drug correlation: NaN, shown as such."""
    from pmtoolkit.core import metrics as M

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    d = np.asarray(drug_index)
    s = np.asarray(sample_index)
    per_drug = _grouped_pearson(y, p, d, min_pairs)
    per_drug_rank = _grouped_pearson(y, p, d, min_pairs, rank=True)
    per_sample = _grouped_pearson(y, p, s, min_pairs)
    r = pearson(y, p)
    return {"rmse": M.rmse(y, p), "pearson": r,
            "spearman": M.spearman(y, p) if np.isfinite(r) else float("nan"),
            "per_drug_pearson": _nanmean(per_drug),
            "per_drug_spearman": _nanmean(per_drug_rank),
            "per_sample_pearson": _nanmean(per_sample),
            "drugs_scored": int(np.isfinite(per_drug).sum()),
            "samples_scored": int(np.isfinite(per_sample).sum()),
            "n": len(y), "n_drugs": len(np.unique(d)),
            "n_samples": len(np.unique(s))}


def per_drug_pearson(data: ResponseData, pred: np.ndarray) -> pd.DataFrame:
    """One row per drug of ``data``: drug_id, pairs, Pearson and Spearman r within the
    drug."""
    import pandas as pd

    y, p = np.asarray(data.y, float), np.asarray(pred, float)
    r = _grouped_pearson(y, p, data.drug_index)
    rho = _grouped_pearson(y, p, data.drug_index, rank=True)
    counts = np.bincount(data.drug_index, minlength=len(r))
    used = np.flatnonzero(counts)
    return pd.DataFrame({"drug_id": [data.drugs.ids[i] for i in used],
                         "pairs": counts[used], "pearson": r[used], "spearman": rho[used]})


def evaluate(model, data: ResponseData, *, min_pairs: int = MIN_PER_ENTITY
             ) -> dict[str, float]:
    """:func:`response_metrics` of ``model`` (a :class:`ResponseModel` or a baseline) on
    ``data``."""
    if data.y is None:
        raise BadInputError("evaluation needs measured responses")
    if not len(data):
        raise BadInputError("no pairs to evaluate")
    return response_metrics(data.y, model.predict(data), data.drug_index, data.sample_index,
                            min_pairs=min_pairs)
