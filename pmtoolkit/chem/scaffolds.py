"""Bemis–Murcko scaffolds."""
from __future__ import annotations

from typing import Any


def murcko_scaffold(mol: Any, *, generic: bool = False, chirality: bool = False) -> str:
    """The Bemis–Murcko scaffold as canonical SMILES ('' for an acyclic molecule);
    ``generic`` makes every atom carbon and every bond single (the graph framework)."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    core = MurckoScaffold.GetScaffoldForMol(mol)
    if generic and core.GetNumAtoms():
        core = MurckoScaffold.MakeScaffoldGeneric(core)
    return Chem.MolToSmiles(core, isomericSmiles=chirality)
