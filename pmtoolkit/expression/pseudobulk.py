"""Pseudobulk differential expression between conditions.

Cells are not independent replicates: a test over cells calls thousands of genes different
between two donors. Summing the counts of each sample (and cell group) gives one profile per
biological replicate, tested across samples. The test is limma-trend's in spirit: log2 CPM
(edgeR's prior count of 0.5 per library-size-scaled million), a linear model per gene (two
groups), and variances moderated towards a prior fitted across genes by empirical Bayes
(Smyth 2004), which keeps 3-vs-3 designs from calling genes on one small variance.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from pmtoolkit.core.errors import BadInputError

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd

log = logging.getLogger(__name__)


def pseudobulk(adata: ad.AnnData, sample_key: str, *, groupby: str | None = None,
               layer: str | None = "counts", min_cells: int = 10) -> ad.AnnData:
    """Sum the raw counts of each sample (within each ``groupby`` group): a samples × genes
    AnnData whose obs carries the sample, the group, the number of cells, and every obs
    column that is constant within the sample (e.g. its condition). Profiles of fewer than
    ``min_cells`` cells are dropped."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    for key in (sample_key, groupby):
        if key is not None and key not in adata.obs:
            raise BadInputError(f"no obs column {key!r}")
    X = adata.layers[layer] if layer and layer in adata.layers else adata.X
    keys = adata.obs[sample_key].astype(str)
    if groupby is not None:
        keys = adata.obs[groupby].astype(str) + "|" + keys
    codes, uniques = pd.factorize(keys)
    onehot = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                           shape=(len(uniques), len(codes)))
    summed = onehot @ (X if sp.issparse(X) else sp.csr_matrix(X))
    n_cells = np.bincount(codes, minlength=len(uniques))
    obs = pd.DataFrame(index=pd.Index([str(u) for u in uniques], name="profile"))
    first = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
    for col in adata.obs.columns:
        values = adata.obs[col]
        if values.groupby(codes, observed=True).nunique(dropna=False).max() == 1:
            obs[col] = values.iloc[first].to_numpy()
    obs[sample_key] = adata.obs[sample_key].astype(str).iloc[first].to_numpy()
    if groupby is not None:
        obs[groupby] = adata.obs[groupby].astype(str).iloc[first].to_numpy()
    obs["n_cells"] = n_cells
    out = ad.AnnData(X=sp.csr_matrix(summed, dtype=np.float32), obs=obs,
                     var=pd.DataFrame(index=adata.var_names.copy()))
    keep = n_cells >= min_cells
    if not keep.all():
        log.info("pseudobulk: %d profile(s) with fewer than %d cells dropped",
                 int((~keep).sum()), min_cells)
    return out[keep].copy()


def _trigamma_inverse(x: np.ndarray) -> np.ndarray:
    """Solve trigamma(y) = x by Newton's method (limma's algorithm)."""
    from scipy.special import polygamma

    x = np.asarray(x, float)
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = polygamma(1, y)
        dif = tri * (1 - tri / x) / polygamma(2, y)
        y = y + dif
        if np.all(-dif / y < 1e-8):
            break
    return y


def _squeeze_var(s2: np.ndarray, df: float) -> tuple[np.ndarray, float]:
    """Moderated variances and the prior degrees of freedom (limma's fitFDist + squeezeVar,
    without a trend)."""
    from scipy.special import digamma, polygamma

    ok = s2 > 0
    if ok.sum() < 3:
        return s2, 0.0
    z = np.log(s2[ok])
    e = z - digamma(df / 2) + np.log(df / 2)
    emean = e.mean()
    evar = e.var(ddof=1) - polygamma(1, df / 2)
    if evar > 0:
        d0 = float(2 * _trigamma_inverse(np.array([evar]))[0])
        s02 = np.exp(emean + digamma(d0 / 2) - np.log(d0 / 2))
        return (d0 * s02 + df * s2) / (d0 + df), d0
    s02 = np.exp(emean)  # no evidence of gene-to-gene variation: pool completely
    return np.full_like(s2, s02), np.inf


def _bh(p: np.ndarray) -> np.ndarray:
    n = len(p)
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    return out


def _test(counts: np.ndarray, is_case: np.ndarray, min_count: float) -> pd.DataFrame:
    import pandas as pd
    from scipy import stats

    lib = counts.sum(axis=1)
    if (lib <= 0).any():
        raise BadInputError("a pseudobulk profile has no counts")
    prior = 0.5 * lib / lib.mean()
    logcpm = np.log2((counts + prior[:, None]) / (lib[:, None] + 2 * prior[:, None]) * 1e6)
    expressed = (counts / lib[:, None] * 1e6 >= min_count).sum(axis=0) >= min(
        is_case.sum(), (~is_case).sum())
    a, b = logcpm[is_case], logcpm[~is_case]
    n1, n0 = len(a), len(b)
    df = n1 + n0 - 2
    s2 = (((a - a.mean(0)) ** 2).sum(0) + ((b - b.mean(0)) ** 2).sum(0)) / df
    s2_mod, d0 = _squeeze_var(s2[expressed], df)
    lfc = a.mean(0) - b.mean(0)
    t = np.full(counts.shape[1], np.nan)
    t[expressed] = lfc[expressed] / np.sqrt(s2_mod * (1 / n1 + 1 / n0))
    total_df = df + d0 if np.isfinite(d0) else 1e6
    p = np.full(counts.shape[1], np.nan)
    p[expressed] = 2 * stats.t.sf(np.abs(t[expressed]), total_df)
    padj = np.full(counts.shape[1], np.nan)
    padj[expressed] = _bh(p[expressed])
    return pd.DataFrame({"log2_fold_change": lfc, "mean_log2_cpm": logcpm.mean(0), "t": t,
                         "pvalue": p, "padj": padj})


def pseudobulk_de(adata: ad.AnnData, condition_key: str, sample_key: str, *,
                  case: str, reference: str, groupby: str | None = None,
                  layer: str | None = "counts", min_cells: int = 10,
                  min_cpm: float = 1.0) -> pd.DataFrame:
    """Genes differentially expressed between samples of ``case`` and ``reference`` (values
    of ``condition_key``, constant within each sample of ``sample_key``), per group of
    ``groupby`` (e.g. cell type) or over all cells. Returns one row per group and gene:
    log2 fold change (case over reference), mean log2 CPM, moderated t, p-value and
    Benjamini-Hochberg adjusted p-value (NaN for genes below ``min_cpm`` in too many
    samples), sorted by group and p-value. Each side needs two or more samples."""
    import pandas as pd

    for key in (condition_key, sample_key, groupby):  # before any grouping by them
        if key is not None and key not in adata.obs:
            raise BadInputError(f"no obs column {key!r}",
                                hint="columns: " + ", ".join(map(str, adata.obs.columns)))
    per_sample = adata.obs.groupby(adata.obs[sample_key].astype(str), observed=True)[
        condition_key].nunique()
    if (per_sample > 1).any():
        bad = per_sample.index[per_sample > 1][0]
        raise BadInputError(f"sample {bad!r} has cells of several {condition_key!r} values",
                            hint="a condition must be constant within a sample")
    values = set(adata.obs[condition_key].astype(str))
    for v in (case, reference):
        if v not in values:
            raise BadInputError(f"{condition_key!r} has no value {v!r}",
                                hint="values: " + ", ".join(sorted(values)))
    pb = pseudobulk(adata, sample_key, groupby=groupby, layer=layer, min_cells=min_cells)
    cond = pb.obs[condition_key].astype(str).to_numpy()
    groups = [None] if groupby is None else sorted(pb.obs[groupby].unique())
    tables = []
    for g in groups:
        sel = np.isin(cond, [case, reference]) & (
            True if g is None else (pb.obs[groupby] == g).to_numpy())
        is_case = cond[sel] == case
        if is_case.sum() < 2 or (~is_case).sum() < 2:
            log.warning("pseudobulk DE skipped for %s: %d %s and %d %s sample(s), need 2 each",
                        g or "all cells", is_case.sum(), case, (~is_case).sum(), reference)
            continue
        X = pb.X[sel]
        counts = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        table = _test(counts.astype(float), is_case, min_cpm)
        table.insert(0, "gene", pb.var_names.to_numpy())
        table.insert(0, "group", "all" if g is None else g)
        table["n_case"], table["n_reference"] = int(is_case.sum()), int((~is_case).sum())
        tables.append(table.sort_values("pvalue", na_position="last"))
    if not tables:
        raise BadInputError(f"no group has two or more samples of both {case!r} and "
                            f"{reference!r} (with {min_cells}+ cells each)")
    return pd.concat(tables, ignore_index=True)
