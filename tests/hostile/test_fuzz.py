"""Fuzzing the file readers through the commands: whatever bytes arrive, a command either
succeeds or exits 2 with one line naming the problem, and leaves nothing half-written.

Examples are derandomised, so a run is repeatable; ``PMT_FUZZ_EXAMPLES=500 python -m pytest
tests/hostile/test_fuzz.py`` explores further (a failure prints the bytes that caused it)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile import strategies as S
from tests.hostile.helpers import FUZZ, fuzz_run

TESTS = Path(__file__).resolve().parents[1]
@FUZZ
@given(data=S.table(("smiles", "name")))
def test_mol_descriptors_on_hostile_tables(pmt, data):
    fuzz_run(pmt, ["mol", "descriptors", "-i", "{in_csv}", "-o", "{out}", "--names", "MolWt,TPSA"],
         {"in.csv": data}, "out.csv")


@FUZZ
@given(data=S.smi_file())
def test_mol_standardize_on_hostile_smi_files(pmt, data):
    fuzz_run(pmt, ["mol", "standardize", "-i", "{in_smi}", "-o", "{out}"], {"in.smi": data},
         "out.csv")


@FUZZ
@given(data=S.table(("smiles",)))
def test_property_predict_on_hostile_tables(pmt, data):
    fuzz_run(pmt, ["property", "predict", "-i", "{in_csv}", "-o", "{out}"], {"in.csv": data},
         "out.csv")


@FUZZ
@given(data=S.table(("smiles", "sequence"), {"sequence": S.protein}))
def test_dti_predict_on_hostile_pairs(pmt, data):
    fuzz_run(pmt, ["dti", "predict", "-i", "{pairs_csv}", "-o", "{out}"], {"pairs.csv": data},
         "out.csv")


@FUZZ
@given(targets=S.fasta(), library=S.smi_file())
def test_dti_screen_on_hostile_targets_and_libraries(pmt, targets, library):
    fuzz_run(pmt, ["dti", "screen", "--target", "{t_fasta}", "--library", "{lib_smi}", "-o",
               "{out}"], {"t.fasta": targets, "lib.smi": library}, "out.csv")


@FUZZ
@given(data=S.vcf())
def test_variants_score_on_hostile_vcfs(pmt, data):
    fasta = TESTS / "data" / "genome_tiny.fa"
    fuzz_run(pmt, ["variants", "score", "-i", "{in_vcf}", "-f", fasta, "-m", "mpra", "-o", "{out}"],
         {"in.vcf": data}, "out.tsv")


@FUZZ
@given(data=S.fasta(st.text(alphabet="ACGTNacgtn", max_size=400)), vcf=S.vcf())
def test_variants_score_on_hostile_references(pmt, data, vcf):
    fuzz_run(pmt, ["variants", "score", "-i", "{in_vcf}", "-f", "{ref_fa}", "-m", "mpra", "-o",
               "{out}"], {"in.vcf": vcf, "ref.fa": data}, "out.tsv")


@FUZZ
@given(image=st.one_of(S.npy_image().map(lambda b: ("x.npy", b)),
                       S.png_image().map(lambda b: ("x.png", b))))
def test_imaging_predict_on_hostile_images(pmt, image):
    name, data = image
    fuzz_run(pmt, ["imaging", "predict", "-m", "pneumonia", "{" + name.replace(".", "_") + "}",
               "-o", "{out}"], {name: data}, "out.csv")


@pytest.mark.slow
@settings(FUZZ, max_examples=200)
@given(data=S.table(("smiles", "name")))
def test_mol_descriptors_longer(pmt, data):
    test_mol_descriptors_on_hostile_tables.hypothesis.inner_test(pmt, data)
