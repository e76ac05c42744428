"""Structural alerts (PAINS, Brenk and RDKit's other catalogs) and rule-based filters."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pmtoolkit.chem._rdkit import quiet
from pmtoolkit.core.signals import held

ALERT_CATALOGS = ("PAINS", "BRENK", "NIH", "ZINC", "CHEMBL")


@lru_cache(maxsize=8)
def _catalog(names: tuple[str, ...]):
    from rdkit.Chem import FilterCatalog

    params = FilterCatalog.FilterCatalogParams()
    enum = FilterCatalog.FilterCatalogParams.FilterCatalogs
    for name in check_catalogs(names):  # user text: getattr only on the allow-list's names
        params.AddCatalog(getattr(enum, name))
    return FilterCatalog.FilterCatalog(params)


def check_catalogs(names: Sequence[str]) -> tuple[str, ...]:
    from pmtoolkit.core.errors import BadInputError

    out = tuple(str(n).upper() for n in names)
    bad = [n for n in out if n not in ALERT_CATALOGS]
    if bad:
        raise BadInputError(f"unknown alert catalog {bad[0]!r}",
                            hint=f"choose from {', '.join(ALERT_CATALOGS)}")
    return out


def alerts(mol: Any, catalogs: Sequence[str] = ("PAINS", "BRENK")) -> list[str]:
    """Descriptions of every alert of ``catalogs`` that ``mol`` matches (empty: clean)."""
    cat = _catalog(check_catalogs(catalogs))
    with quiet(), held():  # catalog matches are substructure searches
        return [m.GetDescription() for m in cat.GetMatches(mol)]


def filter_table(mols: Sequence[Any], *, catalogs: Sequence[str] = ("PAINS", "BRENK")) -> Any:
    """A DataFrame with one row per molecule: Lipinski and Veber results, QED, SA score,
    the alerts matched, and ``passes`` (rules pass and no alert). Rows of None are NaN."""
    import pandas as pd

    from pmtoolkit.chem.descriptors import lipinski, qed, sa_score, veber

    cats = check_catalogs(catalogs)
    rows = []
    for mol in mols:
        if mol is None:
            rows.append({})
            continue
        found = alerts(mol, cats)
        lip, veb = lipinski(mol), veber(mol)
        rows.append({**lip, **veb, "qed": qed(mol), "sa_score": sa_score(mol),
                     "alerts": "; ".join(found), "n_alerts": len(found),
                     "passes": bool(lip["lipinski_pass"] and veb["veber_pass"] and not found)})
    return pd.DataFrame(rows)
