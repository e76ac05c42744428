"""Standardisation with RDKit's MolStandardize, and canonical SMILES."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pmtoolkit.chem._rdkit import quiet
from pmtoolkit.core.signals import held

#: Heavy atoms above which ``tautomer=True`` refuses a molecule. RDKit's enumerator stops at
#: 1,000 tautomers, which a peptide or a polyketide of 60 atoms already reaches; from there each
#: tautomer costs time in proportion to the size: ~2 s at 200 heavy atoms, ~10 s at 1,000, in
#: one C++ call that Ctrl-C cannot interrupt. Cyclic peptide drugs stay below 200.
TAUTOMER_MAX_ATOMS = 200


@dataclass
class StandardizeConfig:
    cleanup: bool = field(default=True, metadata={
        "help": "normalise functional groups, reionise, fix metals (MolStandardize cleanup)"})
    largest_fragment: bool = field(default=True, metadata={
        "help": "keep the largest organic fragment (strip salts and solvents)"})
    neutralize: bool = field(default=True, metadata={"help": "neutralise charges where possible"})
    tautomer: bool = field(default=False, metadata={
        "help": "replace by RDKit's canonical tautomer (slower; refused above "
                f"{TAUTOMER_MAX_ATOMS} heavy atoms)"})
    keep_stereo: bool = field(default=True, metadata={
        "help": "keep stereochemistry in the output SMILES"})

    def __post_init__(self) -> None:
        from dataclasses import fields

        from pmtoolkit.core.errors import ConfigError

        for f in fields(StandardizeConfig):  # a string "no" would otherwise switch a step on
            value = getattr(self, f.name)
            if not isinstance(value, bool):
                raise ConfigError(f"standardize config: {f.name.replace('_', '-')} must be "
                                  f"true or false, got {value!r}")


class Standardizer:
    """Reusable standardiser (RDKit's helper objects are built once)."""

    def __init__(self, config: StandardizeConfig | None = None):
        from rdkit.Chem.MolStandardize import rdMolStandardize as S

        self.config = config or StandardizeConfig()
        self._chooser = S.LargestFragmentChooser(preferOrganic=True)
        self._uncharger = S.Uncharger()
        self._tautomers = S.TautomerEnumerator() if self.config.tautomer else None

    def __call__(self, mol: Any) -> tuple[Any, str]:
        """``(standardised mol, "")`` or ``(None, reason)`` when RDKit cannot process it."""
        from rdkit.Chem.MolStandardize import rdMolStandardize as S

        c = self.config
        try:
            with quiet(), held():  # normalisation rules are substructure searches
                out = S.Cleanup(mol) if c.cleanup else mol
                if c.largest_fragment:
                    out = self._chooser.choose(out)
                if c.neutralize:
                    out = self._uncharger.uncharge(out)
                if self._tautomers is not None:
                    n = out.GetNumHeavyAtoms()
                    if n > TAUTOMER_MAX_ATOMS:
                        return None, (f"{n:,} heavy atoms, over the limit of "
                                      f"{TAUTOMER_MAX_ATOMS} for --tautomer")
                    out = self._tautomers.Canonicalize(out)
        except Exception as exc:  # RDKit raises assorted C++ exceptions here
            return None, f"standardisation failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        if out is None or out.GetNumAtoms() == 0:
            return None, "standardisation left no atoms"
        return out, ""


def standardize(mol: Any, config: StandardizeConfig | None = None) -> Any:
    """Standardise one molecule; raises :class:`BadInputError` if RDKit cannot."""
    from pmtoolkit.core.errors import BadInputError

    out, reason = Standardizer(config)(mol)
    if out is None:
        raise BadInputError(reason)
    return out


def canonical_smiles(mol: Any, *, isomeric: bool = True) -> str:
    """RDKit's canonical SMILES (isomeric by default)."""
    from rdkit import Chem

    return Chem.MolToSmiles(mol, isomericSmiles=isomeric)
