"""Molecular descriptors: RDKit's 2D descriptor set, QED, SA score, and rule-of-thumb checks."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from pmtoolkit.chem._rdkit import quiet
from pmtoolkit.core.signals import held


@lru_cache(maxsize=1)
def descriptor_functions() -> tuple[tuple[str, Any], ...]:
    """RDKit's 2D descriptors (``Descriptors._descList``), in RDKit's order."""
    from rdkit.Chem import Descriptors

    return tuple(Descriptors._descList)


#: Descriptors whose cost outgrows the rest, and the heavy-atom count above which they are NaN
#: (the others cost at most ~1 s at the 1,000-atom read limit). Ipc and AvgIpc come from the
#: characteristic polynomial of the adjacency matrix, one n x n matrix product per atom, O(n^4):
#: 0.1 s at 200 heavy atoms, 0.3 s at 300 (seconds on a busy machine), 6 s at 500, minutes at
#: 1,000; and by 150 atoms Ipc is past 1e30, where every value is clipped to 1e30 anyway. The
#: eight BCUT2D values share one dense eigendecomposition, a single C++ call that Ctrl-C cannot
#: interrupt: 0.4 s at 500 heavy atoms, 3 s at 1,000.
COSTLY_DESCRIPTORS: dict[str, int] = {
    "Ipc": 200, "AvgIpc": 200,
    **{f"BCUT2D_{v}": 500 for v in ("MWHI", "MWLOW", "CHGHI", "CHGLO", "LOGPHI", "LOGPLOW",
                                     "MRHI", "MRLOW")},
}


def descriptor_names() -> list[str]:
    return [name for name, _ in descriptor_functions()]


def check_descriptor_names(names: Sequence[str]) -> list[str]:
    """``names`` without repeats, each one of :func:`descriptor_names`; an unknown one is a
    :class:`MissingResourceError` listing the valid names and the closest."""
    import difflib

    from pmtoolkit.core.errors import MissingResourceError

    valid = sorted(descriptor_names())
    known = set(valid)
    for name in names:
        if name not in known:
            # matched without case: 'tpsa' finds TPSA, 'MolWeight' MolWt
            lower = {v.lower(): v for v in valid}
            close = difflib.get_close_matches(name.lower(), list(lower), n=1)
            hint = f"did you mean {lower[close[0]]!r}? " if close else ""
            raise MissingResourceError(f"unknown RDKit descriptor {name!r}",
                                       hint=f"{hint}valid: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def rdkit_descriptors(mols: Sequence[Any], names: Sequence[str] | None = None) -> np.ndarray:
    """An ``(n, d)`` float32 matrix of RDKit 2D descriptors; NaN where RDKit fails or the value
    is not finite (a few descriptors overflow on exotic molecules), and for a descriptor of
    :data:`COSTLY_DESCRIPTORS` on a molecule above its size."""
    funcs = descriptor_functions()
    if names is not None:
        check_descriptor_names(names)
        lookup = dict(funcs)
        funcs = tuple((n, lookup[n]) for n in names)
    limits = [COSTLY_DESCRIPTORS.get(name) for name, _ in funcs]
    out = np.full((len(mols), len(funcs)), np.nan, dtype=np.float64)
    with quiet():
        for i, mol in enumerate(mols):
            if mol is None:
                continue
            atoms = mol.GetNumHeavyAtoms()
            with held():  # the fr_* counts search substructures, which drop a Ctrl-C
                for j, (_, fn) in enumerate(funcs):
                    if limits[j] is not None and atoms > limits[j]:
                        continue
                    try:
                        out[i, j] = fn(mol)
                    except Exception:  # a descriptor RDKit cannot compute is NaN for this one
                        pass
    out[~np.isfinite(out)] = np.nan
    with np.errstate(over="ignore"):
        return np.clip(out, -1e30, 1e30).astype(np.float32)


def qed(mol: Any) -> float:
    """Quantitative estimate of drug-likeness (Bickerton et al. 2012), 0..1."""
    from rdkit.Chem import QED

    with quiet(), held():  # its alerts are substructure searches
        return float(QED.qed(mol))


@lru_cache(maxsize=1)
def _sascorer():
    # Ertl & Schuffenhauer's SA score as shipped in RDKit's Contrib folder
    from rdkit.Contrib.SA_Score import sascorer

    return sascorer


def sa_score(mol: Any) -> float:
    """Synthetic accessibility score (Ertl & Schuffenhauer 2009): 1 easy .. 10 hard."""
    with quiet():
        return float(_sascorer().calculateScore(mol))


def lipinski(mol: Any) -> dict[str, Any]:
    """Lipinski's rule of five: MW ≤ 500, cLogP ≤ 5, H-bond donors ≤ 5, acceptors ≤ 10.
    ``lipinski_pass`` allows one violation, as Lipinski did."""
    from rdkit.Chem import Crippen, Descriptors, Lipinski

    mw = Descriptors.MolWt(mol)
    logp = Crippen.MolLogP(mol)
    hbd = Lipinski.NumHDonors(mol)
    hba = Lipinski.NumHAcceptors(mol)
    violations = int(mw > 500) + int(logp > 5) + int(hbd > 5) + int(hba > 10)
    return {"mw": mw, "logp": logp, "hbd": hbd, "hba": hba,
            "lipinski_violations": violations, "lipinski_pass": violations <= 1}


def veber(mol: Any) -> dict[str, Any]:
    """Veber's oral-bioavailability rule: rotatable bonds ≤ 10 and TPSA ≤ 140 Å²."""
    from rdkit.Chem import Descriptors, rdMolDescriptors

    rot = rdMolDescriptors.CalcNumRotatableBonds(mol)
    tpsa = Descriptors.TPSA(mol)
    return {"rotatable_bonds": rot, "tpsa": tpsa, "veber_pass": rot <= 10 and tpsa <= 140}
