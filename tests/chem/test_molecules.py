from __future__ import annotations

import time

import pytest

from pmtoolkit.chem.molecules import Molecule, parse_smiles, read_molecules
from pmtoolkit.core.errors import BadInputError


@pytest.mark.parametrize("smiles,reason", [
    ("", "empty SMILES"), (None, "missing SMILES"), (float("nan"), "missing SMILES"),
    ("C1CC((", "cannot parse SMILES"), ("xyz", "cannot parse SMILES"),
    ("c1ccccc1N(=O)(=O)=O", "invalid molecule (Explicit valence"),
    ("c1cccc1", "invalid molecule (Can't kekulize"),
])
def test_invalid_smiles_have_reasons(smiles, reason):
    mol, why = parse_smiles(smiles)
    assert mol is None and why.startswith(reason)


def test_valid_smiles_are_stripped():
    m = Molecule.from_smiles(" CCO ", line=4)
    assert m.smiles == "CCO" and m.mol.GetNumAtoms() == 3 and m.line == 4
    with pytest.raises(BadInputError, match="line 9: cannot parse SMILES: 'C1CC'"):
        Molecule.from_smiles("C1CC", line=9)


def test_rdkit_stays_quiet(capfd):
    parse_smiles("c1ccccc1N(=O)(=O)=O")
    captured = capfd.readouterr()
    assert "valence" not in captured.err.lower()


def test_table_reader_keeps_rows_aligned_with_line_numbers(test_data):
    table = read_molecules(test_data / "esol_tiny_invalid.csv", columns=["logS"])
    assert len(table) == 40 and len(table.valid) == 38
    assert [(r.line, r.item) for r in table.rejects] == [(5, "C1CC(("), (12, "c1ccccc1N(=O)(=O)=O")]
    assert table.molecules[3] is None and table.mask.sum() == 38
    assert list(table.frame.index[:3]) == [2, 3, 4]


def test_smi_reader(test_data):
    table = read_molecules(test_data / "tiny.smi")
    assert [m.id for m in table.valid] == ["ethanol", "benzene", "aspirin"]
    assert [(r.line, r.item) for r in table.rejects] == [(4, "not_a_smiles")]


def test_gzipped_sdf_reader(test_data):
    table = read_molecules(test_data / "tiny.sdf.gz")
    assert [m.smiles for m in table.valid] == ["CCO", "c1ccccc1", "CC(=O)O"]
    assert table.valid[1].props["logS"] == pytest.approx(-1.6)
    assert [(r.line, r.reason) for r in table.rejects] == [(2, "invalid SDF record")]


def test_reader_errors(tmp_path, test_data):
    with pytest.raises(BadInputError, match="cannot tell the molecule format"):
        read_molecules(tmp_path / "x.xyz")
    with pytest.raises(BadInputError, match="column 'SMILES' not found"):
        read_molecules(test_data / "esol_tiny.csv", smiles_column="SMILES")


def test_atom_limit_is_checked_before_sanitising():
    mol, why = parse_smiles("C" * 1001)
    assert mol is None and why == "1,001 heavy atoms, over the limit of 1,000 (--max-atoms)"
    assert parse_smiles("C" * 1000)[0].GetNumHeavyAtoms() == 1000
    assert parse_smiles("C" * 1001, max_atoms=None)[0] is not None  # None: no limit
    # explicit hydrogens are not heavy atoms: 3 heavy atoms, 11 characters per heavy atom
    assert parse_smiles("[H]C([H])([H])C([H])([H])O[H]", max_atoms=3)[0] is not None
    # kekulising a 10,000-atom aromatic ring takes RDKit half a minute; refused unsanitised
    start = time.monotonic()
    mol, why = parse_smiles("c1" + "c" * 9998 + "c1")
    assert mol is None and why.startswith("10,000 heavy atoms")
    assert time.monotonic() - start < 5


def test_smiles_length_limit():
    mol, why = parse_smiles("C" * 50_001)
    assert mol is None and why == ("SMILES of 50,001 characters, over the limit of 50,000 "
                                   "(50 x --max-atoms)")
    assert parse_smiles("C" * 50_001, max_atoms=2000)[1].startswith("50,001 heavy atoms")
    with pytest.raises(BadInputError, match="line 2: 12 heavy atoms, over the limit of 10"):
        Molecule.from_smiles("C" * 12, line=2, max_atoms=10)


def test_readers_apply_the_limit(tmp_path, test_data):
    path = tmp_path / "m.smi"
    path.write_text("CCO ethanol\n" + "C" * 2000 + " wax\n")
    table = read_molecules(path)
    assert [m.id for m in table.valid] == ["ethanol"]
    (reject,) = table.rejects
    assert reject.line == 2 and reject.reason.startswith("2,000 heavy atoms")
    assert reject.item == "C" * 100 + "... (2,000 characters)"  # one log line, not a page
    assert len(read_molecules(path, max_atoms=None).valid) == 2
    sdf = read_molecules(test_data / "tiny.sdf.gz", max_atoms=3)
    assert [m.smiles for m in sdf.valid] == ["CCO"]
    assert [(r.item, r.reason) for r in sdf.rejects][1:] == [
        ("record 3", "6 heavy atoms, over the limit of 3 (--max-atoms)"),
        ("record 4", "4 heavy atoms, over the limit of 3 (--max-atoms)")]
