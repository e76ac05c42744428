"""Hostile sizes through `pmt mol`: a molecule or a SMILES too big to process is a reject with
its reason (rows stay aligned), found before RDKit spends minutes on it."""
from __future__ import annotations

import time

import pandas as pd
import pytest

HUGE = "C" * 10_000  # a 10,000-atom alkane: hours of descriptors before the limit
REASON = "10,000 heavy atoms, over the limit of 1,000 (--max-atoms)"


@pytest.fixture
def hostile_csv(tmp_path):
    path = tmp_path / "hostile.csv"
    path.write_text(f"smiles\nCCO\n{HUGE}\nc1ccccc1O\n")
    return path


@pytest.mark.parametrize("command, column", [
    ("standardize", "standardized_smiles"), ("descriptors", "MolWt"),
    ("fingerprints", "fp_0"), ("filter", "passes"),
])
def test_huge_molecule_is_a_reject_in_every_command(pmt, tmp_path, hostile_csv, command, column):
    out = tmp_path / "out.csv"
    start = time.monotonic()
    result = pmt("mol", command, "-i", hostile_csv, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - start < 30  # was > 7 minutes (descriptors), killed unfinished
    frame = pd.read_csv(out)
    assert frame["smiles"].str.len().tolist() == [3, 10_000, 9]  # aligned with the input
    assert frame[column].isna().tolist() == [False, True, False]
    rejected = pd.read_csv(tmp_path / "out.rejected.csv")
    assert rejected["line"].tolist() == [3] and rejected["reason"].tolist() == [REASON]
    assert rejected["smiles"][0].endswith("... (10,000 characters)")  # not 10,000 characters


def test_descriptor_header_is_unique_with_a_huge_molecule(pmt, tmp_path, hostile_csv):
    assert pmt("mol", "descriptors", "-i", hostile_csv, "-o", tmp_path / "d.csv").exit_code == 0
    header = (tmp_path / "d.csv").read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header)) and header.count("qed") == 1


def test_huge_molecule_stops_a_split_or_is_skipped(pmt, tmp_path, test_data):
    rows = (test_data / "esol_tiny.csv").read_text().splitlines()
    path = tmp_path / "with_huge.csv"
    path.write_text("\n".join([rows[0], f"huge,{HUGE},0.0", *rows[1:]]) + "\n")
    refused = pmt("mol", "split", "-i", path, "-o", tmp_path / "a")
    assert refused.exit_code == 2 and f"line 2: {REASON}" in refused.stderr
    assert not (tmp_path / "a").exists()
    skipped = pmt("mol", "split", "-i", path, "-o", tmp_path / "b", "--on-invalid", "skip")
    assert skipped.exit_code == 0, skipped.stderr
    assert sum(len(pd.read_csv(tmp_path / "b" / f"{k}.csv")) for k in ("train", "val", "test")) \
        == 40
    assert pd.read_csv(tmp_path / "b" / "rejected.csv")["reason"].tolist() == [REASON]


def test_megabytes_of_smiles_on_one_line_are_refused_unparsed(pmt, tmp_path):
    path = tmp_path / "long.smi"
    path.write_text("CCO ethanol\n" + "C" * 5_000_000 + " polymer\n")
    start = time.monotonic()
    result = pmt("mol", "descriptors", "-i", path, "-o", tmp_path / "d.csv", "--names", "MolWt")
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - start < 20
    reason = pd.read_csv(tmp_path / "d.rejected.csv")["reason"].tolist()
    assert reason == [("SMILES of 5,000,000 characters, over the limit of 50,000 "
                       "(50 x --max-atoms)")]
    assert len(result.stderr) < 2000  # the log names the record without repeating it


def test_max_atoms_option(pmt, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("smiles\nCCCCC\nCCCCCC\n")
    result = pmt("mol", "descriptors", "-i", path, "-o", tmp_path / "d.csv", "--max-atoms", 5,
                 "--names", "HeavyAtomCount")
    assert result.exit_code == 0, result.stderr
    assert pd.read_csv(tmp_path / "d.csv")["HeavyAtomCount"].tolist()[0] == 5
    assert pd.read_csv(tmp_path / "d.rejected.csv")["reason"].tolist() == [
        "6 heavy atoms, over the limit of 5 (--max-atoms)"]
    for bad in ("0", "-1", "10001", "many"):
        refused = pmt("mol", "fingerprints", "-i", path, "-o", tmp_path / f"f{bad}.csv",
                      "--max-atoms", bad)
        assert refused.exit_code == 2 and "--max-atoms" in refused.stderr
        assert not (tmp_path / f"f{bad}.csv").exists()


def test_sdf_records_over_the_limit(pmt, tmp_path, test_data):
    result = pmt("mol", "fingerprints", "-i", test_data / "tiny.sdf.gz", "-o", tmp_path / "f.csv",
                 "--max-atoms", 3, "--n-bits", 16)
    assert result.exit_code == 0, result.stderr
    reasons = pd.read_csv(tmp_path / "f.rejected.csv")["reason"].tolist()
    assert any("over the limit of 3 (--max-atoms)" in r for r in reasons)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["standardize", "descriptors", "fingerprints", "filter"])
@pytest.mark.parametrize("smiles", [
    "C" * 999,                                               # chain
    "N[C@@H](C)C(=O)" * 199 + "O",                            # 996-atom peptide
    "c1ccc(cc1)" + "c1ccc(cc1)" * 164 + "c1ccccc1",           # 996-atom polyphenylene
], ids=["chain", "peptide", "polyphenyl"])
def test_just_under_the_limit_takes_seconds(pmt, tmp_path, command, smiles):
    path = tmp_path / "big.csv"
    path.write_text(f"smiles\n{smiles}\n")
    start = time.monotonic()
    extra = ["--kind", "atompair"] if command == "fingerprints" else []  # the slowest kind
    result = pmt("mol", command, "-i", path, "-o", tmp_path / "out.csv", *extra)
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "out.rejected.csv").exists()
    assert time.monotonic() - start < 60  # ~10 s for descriptors on a quiet 2-core machine
