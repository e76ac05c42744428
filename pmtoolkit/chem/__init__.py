"""Molecules: reading, standardisation, descriptors, fingerprints, filters, scaffolds, splits,
and molecular graphs for GNNs. Names load lazily (``pmtoolkit.chem.read_molecules`` imports
RDKit on first use, not at ``import pmtoolkit.chem``)."""
from __future__ import annotations

from pmtoolkit._lazy import lazy_exports

_EXPORTS = {
    "Molecule": "molecules", "MoleculeTable": "molecules", "parse_smiles": "molecules",
    "from_smiles": "molecules", "read_molecules": "molecules", "iter_molecules": "molecules",
    "StandardizeConfig": "standardize", "Standardizer": "standardize",
    "standardize": "standardize", "canonical_smiles": "standardize",
    "rdkit_descriptors": "descriptors", "descriptor_names": "descriptors", "qed": "descriptors",
    "sa_score": "descriptors", "lipinski": "descriptors", "veber": "descriptors",
    "FingerprintConfig": "fingerprints", "fingerprints": "fingerprints", "morgan": "fingerprints",
    "tanimoto": "fingerprints",
    "alerts": "filters", "filter_table": "filters",
    "murcko_scaffold": "scaffolds",
    "Split": "splits", "make_split": "splits", "random_split": "splits",
    "scaffold_split": "splits", "stratified_split": "splits", "kfold": "splits",
    "load_split": "splits",
    "GraphFeaturizer": "featurizer", "GraphBatch": "featurizer", "collate": "featurizer",
    "to_data": "featurizer",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
