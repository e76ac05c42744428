"""Marker genes of clusters, and annotation of clusters by lists of known markers.

Keys written: ``uns['rank_genes_groups']`` (scanpy's), and for :func:`annotate_by_markers`
``obs[key_added]`` (the label of each cell's cluster), ``obs['score_<label>']`` (each cell's
marker score) and ``uns[key_added]`` (``{"scores": cluster × label table of mean scores,
"markers": the genes used per label}``).
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pmtoolkit.core.errors import BadInputError, MissingInputError

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd

log = logging.getLogger(__name__)


def rank_markers(adata: ad.AnnData, groupby: str = "leiden", *, method: str = "wilcoxon",
                 key_added: str = "rank_genes_groups") -> None:
    """Rank each group's marker genes against the rest: scanpy's ``rank_genes_groups`` on
    the log-normalised ``X``, with the fraction of cells expressing each gene (groups of
    fewer than 2 cells are left out); :func:`markers_table` reads the result as one table."""
    import scanpy as sc

    if groupby not in adata.obs:
        raise BadInputError(f"no obs column {groupby!r} to rank markers by")
    sizes = adata.obs[groupby].value_counts()
    groups = [str(g) for g, n in sizes.items() if n >= 2]
    if len(groups) < 2:
        raise BadInputError(f"ranking markers needs two groups of 2+ cells in {groupby!r}")
    sc.tl.rank_genes_groups(adata, groupby, groups=groups, method=method, pts=True,
                            key_added=key_added, use_raw=False)


def markers_table(adata: ad.AnnData, *, key: str = "rank_genes_groups",
                  n_genes: int | None = None) -> pd.DataFrame:
    """The ranked markers of :func:`rank_markers` as one table: group, rank, gene, score,
    log2 fold change, p-value, adjusted p-value, and the fraction of cells expressing the
    gene in and out of the group."""
    import numpy as np
    import scanpy as sc

    if key not in adata.uns:
        raise BadInputError(f"no ranked markers in uns[{key!r}]", hint="run rank_markers first")
    table = sc.get.rank_genes_groups_df(adata, group=None, key=key)
    if "group" not in table:
        table.insert(0, "group", str(adata.uns[key]["names"].dtype.names[0]))
    table = table.rename(columns={"names": "gene", "scores": "score",
                                  "logfoldchanges": "log2_fold_change", "pvals": "pvalue",
                                  "pvals_adj": "padj", "pct_nz_group": "frac_in_group",
                                  "pct_nz_reference": "frac_in_rest"})
    table.insert(1, "rank", table.groupby("group", observed=True).cumcount() + 1)
    if n_genes is not None:
        table = table[table["rank"] <= n_genes]
    table["group"] = table["group"].astype(str)
    return table.reset_index(drop=True).astype({"rank": np.int64})


def read_marker_lists(path: str | os.PathLike) -> dict[str, list[str]]:
    """Marker lists from a TOML file (``label = ["GENE", ...]``) or a two-column CSV/TSV
    (label, gene; one row per gene, a header row allowed)."""
    import pandas as pd

    from pmtoolkit.core.io import reading

    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"marker file '{p}' does not exist")
    if p.suffix.lower() == ".toml":
        import tomllib

        with reading(p):
            text = p.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except (ValueError, RecursionError) as exc:
            raise BadInputError(f"cannot parse marker file '{p}': {exc}") from None
        lists = {}
        for label, genes in data.items():
            if not (isinstance(genes, list) and all(isinstance(g, str) for g in genes)):
                raise BadInputError(f"'{p}': {label!r} must be a list of gene names")
            lists[str(label)] = list(genes)
    else:
        sep = "\t" if re.search(r"\.(tsv|txt)(\.gz)?$", p.name.lower()) else ","
        try:
            with reading(p):
                frame = pd.read_csv(p, sep=sep, header=None, dtype=str, comment="#")
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise BadInputError(f"cannot read marker file '{p}': "
                                f"{str(exc).strip().splitlines()[0]}") from None
        if frame.shape[1] < 2:
            raise BadInputError(f"marker file '{p}' needs two columns: label, gene")
        first = [str(v).strip().lower() for v in frame.iloc[0, :2]]
        if first in (["label", "gene"], ["cell_type", "gene"], ["celltype", "gene"]):
            frame = frame.iloc[1:]
        lists = {}
        for label, gene in frame.iloc[:, :2].dropna().itertuples(index=False):
            lists.setdefault(str(label).strip(), []).append(str(gene).strip())
    lists = {k: v for k, v in lists.items() if v}
    if not lists:
        raise BadInputError(f"marker file '{p}' lists no markers")
    return lists


def annotate_by_markers(adata: ad.AnnData, markers: dict[str, list[str]], *,
                        groupby: str = "leiden", key_added: str = "cell_type",
                        min_genes: int = 1, seed: int = 0, copy: bool = False
                        ) -> ad.AnnData | None:
    """Label each cluster of ``groupby`` with the marker list it scores highest on.

    Each cell gets a score per label (scanpy's ``score_genes``: mean expression of the
    markers minus that of random genes of similar expression); a cluster takes the label
    with the highest mean score, or ``unassigned`` when every mean score is <= 0. Markers
    absent from the data are left out (logged); a label with fewer than ``min_genes``
    present markers is an error naming it."""
    import numpy as np
    import pandas as pd
    import scanpy as sc

    if groupby not in adata.obs:
        raise BadInputError(f"no obs column {groupby!r} to annotate")
    adata = adata.copy() if copy else adata
    upper = {g.upper(): g for g in adata.var_names}
    used: dict[str, list[str]] = {}
    for label, genes in markers.items():
        present = [upper[g.upper()] for g in genes if g.upper() in upper]
        missing = [g for g in genes if g.upper() not in upper]
        if missing:
            log.info("markers of %r absent from the data: %s", label, ", ".join(missing[:10]))
        if len(present) < min_genes:
            log.warning("marker list %r left out: %d of its %d genes are in the data", label,
                        len(present), len(genes))
            continue
        used[label] = present
    if not used:
        raise BadInputError(f"none of the {len(markers)} marker lists has {min_genes}+ of its "
                            "genes in the data", hint="check the gene names (symbols vs "
                                                      "Ensembl ids, species)")
    columns = []
    for label, genes in used.items():
        name = f"score_{label}"
        sc.tl.score_genes(adata, genes, score_name=name, random_state=seed, use_raw=False,
                          ctrl_size=min(50, max(1, adata.n_vars - len(genes))))
        columns.append(name)
    clusters = adata.obs[groupby].astype(str)
    means = adata.obs[columns].groupby(clusters.to_numpy()).mean()
    means.columns = list(used)
    best = means.to_numpy().argmax(axis=1)
    top = means.to_numpy()[np.arange(len(means)), best]
    labels = np.where(top > 0, np.asarray(list(used), dtype=object)[best], "unassigned")
    mapping = dict(zip(means.index, labels))
    adata.obs[key_added] = pd.Categorical(clusters.map(mapping))
    adata.uns[key_added] = {"scores": means.reset_index(names=groupby), "markers": used,
                            "groupby": groupby}
    return adata if copy else None
