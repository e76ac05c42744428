"""A tiny panel in the GDSC layout of ``shared/data/response/gdsc`` (written by the tests,
never read from there): ``ln_ic50.csv.gz`` (DepMap_ID, drug_name, ln_IC50, pubchem_cid),
``drugs.csv`` (drug_name, CID, CanonicalSMILES, IsomericSMILES) and three per-cell tables
(DepMap_ID, then one ``entrez_<id>`` column per gene) for expression z-scores, copy number
and mutation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DRUGS = {"Erlotinib": "COCCOC1=C(C=C2C(=C1)C(=NC=N2)NC3=CC=CC(=C3)C#C)OCCOC",
         "Gefitinib": "COC1=C(C=C2C(=C1)N=CN=C2NC3=CC(=C(C=C3)F)Cl)OCCCN4CCOCC4",
         "Nutlin-3a": "CC(C)OC1=C(C=CC(=C1)OC)C2=NC(C(N2C(=O)N3CCNC(=O)C3)C4=CC=C(C=C4)Cl)"
                      "C5=CC=C(C=C5)Cl",
         "Camptothecin": "CCC1(C2=C(COC1=O)C(=O)N3CC4=CC5=CC=CC=C5N=C4C3=C2)O",
         "Vinorelbine": "CCC1=CC2CC(C3=C(CN(C2)C1)C4=CC=CC=C4N3)(C5=C(C=C6C(=C5)C78CCN9C7C"
                        "(C=CC9)(C(C(C8N6C)(C(=O)OC)O)OC(=O)C)CC)OC)C(=O)OC",
         "Paclitaxel": "CC1=C2C(C(=O)C3(C(CC4C(C3C(C(C2(C)C)(CC1OC(=O)C(C(C5=CC=CC=C5)NC(=O)"
                       "C6=CC=CC=C6)O)O)OC(=O)C7=CC=CC=C7)(CO4)OC(=O)C)O)C)OC(=O)C"}
GENES = ["entrez_1956", "entrez_7157", "entrez_4193", "entrez_5290", "entrez_3845"]
TABLES = ("cell_expression_zscore", "cell_copynumber", "cell_mutation")


def cells(n: int) -> list[str]:
    return [f"ACH-{i:06d}" for i in range(1, n + 1)]


def write_gdsc(folder: Path, *, n_cells: int = 12, no_smiles: str | None = None,
               missing_mutation: str | None = None, seed: int = 0) -> dict[str, Path]:
    """Write the panel into ``folder``: every cell x every drug measured; ``no_smiles``: a
    drug whose SMILES cells are empty; ``missing_mutation``: a cell left out of the
    mutation table. Returns the paths by role (responses, drugs, and each table's name)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = cells(n_cells)
    expr = rng.normal(size=(n_cells, len(GENES)))
    copy = rng.lognormal(0.0, 0.3, size=(n_cells, len(GENES)))
    mut = (rng.random((n_cells, len(GENES))) < 0.3).astype(int)
    paths = {}
    for name, values in zip(TABLES, (expr, copy, mut)):
        frame = pd.DataFrame(values, columns=GENES)
        frame.insert(0, "DepMap_ID", ids)
        if name == "cell_mutation" and missing_mutation:
            frame = frame[frame["DepMap_ID"] != missing_mutation]
        paths[name] = folder / f"{name}.csv.gz"
        frame.to_csv(paths[name], index=False)
    drugs = pd.DataFrame({"drug_name": list(DRUGS), "CID": np.arange(len(DRUGS)) + 100,
                          "CanonicalSMILES": list(DRUGS.values()),
                          "IsomericSMILES": list(DRUGS.values())})
    if no_smiles:
        drugs.loc[drugs["drug_name"] == no_smiles, ["CanonicalSMILES", "IsomericSMILES"]] = ""
    paths["drugs"] = folder / "drugs.csv"
    drugs.to_csv(paths["drugs"], index=False)
    potency = rng.normal(0, 2, size=len(DRUGS))
    # response: drug potency + the cell's expression of a drug-specific gene + noise
    rows = [(c, d, 2.0 + potency[j] + expr[i, j % len(GENES)] + 0.1 * rng.normal(), 100 + j)
            for i, c in enumerate(ids) for j, d in enumerate(DRUGS)]
    paths["responses"] = folder / "ln_ic50.csv.gz"
    pd.DataFrame(rows, columns=["DepMap_ID", "drug_name", "ln_IC50", "pubchem_cid"]).to_csv(
        paths["responses"], index=False)
    return paths


def feature_paths(paths: dict[str, Path]) -> list[Path]:
    return [paths[name] for name in TABLES]
