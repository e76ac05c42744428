"""DTI pair data: the DeepDTA benchmark files, tables of pairs, FASTA, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.dti.data import check_sequence, load_benchmark, read_fasta, read_pairs


def test_davis_and_kiba_as_deepdta_reads_them(shared_data):
    davis = load_benchmark(shared_data / "dti" / "davis")
    d = davis.data
    assert (len(d.drugs), len(d.proteins), len(d)) == (68, 442, 68 * 442)
    assert len(davis.test) == 5010 and len(davis.train_folds) == 5
    assert len(set(davis.train) | set(davis.test)) == len(d)      # folds cover every pair
    assert d.y.min() == pytest.approx(5.0)                          # pKd of Kd = 10 uM
    kiba = load_benchmark(shared_data / "dti" / "kiba")
    assert (len(kiba.data.drugs), len(kiba.data.proteins), len(kiba.data)) == (2111, 229, 118254)
    assert len(kiba.test) == 19709 and not np.isnan(kiba.data.y).any()


def test_check_sequence():
    assert check_sequence(" mkv lA* ") == ("MKVLA", "")
    assert check_sequence("MKV1A")[0] is None and "position 4" in check_sequence("MKV1A")[1]
    assert check_sequence("")[1] == "empty protein sequence"


def test_read_pairs_rejects_bad_rows_and_stores_distinct_items(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("smiles,sequence,pKd\n"
                    "CCO,MKVLA,5.0\n"
                    "CCO,MKVLA,6.0\n"
                    "C1CC,MKVLA,5.0\n"
                    "CCN,MKV1A,5.0\n"
                    "CCN,MKVLAG,n/a\n"
                    "CCN,MKVLAG,7.5\n")
    data, rejects = read_pairs(path, value_column="pKd")
    assert data.drugs == ["CCO", "CCN"] and data.proteins == ["MKVLA", "MKVLAG"]
    assert data.drug_index.tolist() == [0, 0, 1] and data.lines == [2, 3, 7]
    assert [r.line for r in rejects] == [4, 5, 6]
    assert "non-amino-acid" in rejects.items[1].reason


def test_read_fasta(tmp_path):
    fa = tmp_path / "t.fasta"
    fa.write_text(">sp|P00533|EGFR_HUMAN desc\nMRPSG\nTAGAA\n>second\nmkv\n")
    assert read_fasta(fa) == [("sp|P00533|EGFR_HUMAN", "MRPSGTAGAA"), ("second", "MKV")]
    (tmp_path / "empty.fa").write_text("")
    with pytest.raises(BadInputError, match="no FASTA records"):
        read_fasta(tmp_path / "empty.fa")
    (tmp_path / "bad.fa").write_text(">x\nMK#V\n")
    with pytest.raises(BadInputError, match="line 1: record 'x'"):
        read_fasta(tmp_path / "bad.fa")


def test_check_sequence_refuses_dna_and_rna():
    dna = "ATGGCGTACGTTAGCCGATCGATCGGCTAGCTAGGCTAAC"
    for seq in (dna, dna.replace("T", "U"), dna.lower(), "ACGTN" * 4):
        checked, reason = check_sequence(seq)
        assert checked is None and "DNA or RNA" in reason, seq
    # short peptides of these letters, and proteins rich in them, are proteins
    assert check_sequence("ACGTNACGTNACGTNACGT")[0] == "ACGTNACGTNACGTNACGT"
    kinase = "MEIDMTYQLKVIQQSLEQEEAEHKATKARLADKNKIYESIEEAKSEAMKEMEKKLLEERT"
    assert check_sequence(kinase)[0] == kinase
    assert check_sequence("GAGAGSGAGAGSGAGAGSGAGAGS")[0] is not None  # silk: 83% A/G


def test_read_fasta_names_records_and_refuses_a_name_twice(tmp_path):
    fa = tmp_path / "t.fasta"
    fa.write_text(">\nMRPSG\n>p2\nMKV\n>\nMKL\n")
    assert [n for n, _ in read_fasta(fa)] == ["target1", "p2", "target3"]
    fa.write_text(">p1 a\nMRPSG\n>p2\nMKV\n>p1 b\nMKL\n")
    with pytest.raises(BadInputError, match=r"line 5: record name 'p1' is used twice \(first "
                                            r"at line 1\)"):
        read_fasta(fa)
    fa.write_text(">target2\nMRPSG\n>\nMKV\n")
    with pytest.raises(BadInputError, match="'target2' is used twice"):
        read_fasta(fa)
    fa.write_text(">gene\nATGGCGTACGTTAGCCGATCGATCGGCTAG\n")
    with pytest.raises(BadInputError, match="record 'gene': looks like DNA or RNA"):
        read_fasta(fa)


def _benchmark(root, kd="10 100\n1000 10000\n", test="[3]"):
    (root / "folds").mkdir(parents=True)
    (root / "ligands_can.txt").write_text('{"d1": "CCO", "d2": "c1ccccc1O"}')
    (root / "proteins.txt").write_text('{"p1": "MKVLA", "p2": "MRPSG"}')
    (root / "drug-target_interaction_affinities_Kd__Davis_et_al.2011v1.txt").write_text(kd)
    (root / "folds" / "train_fold_setting1.txt").write_text("[[0, 1], [2]]")
    (root / "folds" / "test_fold_setting1.txt").write_text(test)
    return root


def test_benchmark_folder_files_are_checked(tmp_path):
    bench = load_benchmark(_benchmark(tmp_path / "ok" / "davis"))
    np.testing.assert_allclose(bench.data.y, [8, 7, 6, 5])  # pKd of 10 nM ... 10 uM
    assert bench.test.tolist() == [3] and len(bench.train_folds) == 2
    with pytest.raises(BadInputError, match="Kd of zero"):
        load_benchmark(_benchmark(tmp_path / "zero" / "davis", kd="0 1\n1 1\n"))
    with pytest.raises(BadInputError, match="line 2 has 1 values"):
        load_benchmark(_benchmark(tmp_path / "ragged" / "davis", kd="1 1\n1\n"))
    with pytest.raises(BadInputError, match="outside the 4 measured pairs"):
        load_benchmark(_benchmark(tmp_path / "fold" / "davis", test="[4]"))
    with pytest.raises(BadInputError, match="test_fold_setting1.txt' holds a JSON dict"):
        load_benchmark(_benchmark(tmp_path / "kind" / "davis", test='{"a": 1}'))
    root = _benchmark(tmp_path / "json" / "davis")
    (root / "proteins.txt").write_text('{"p1": "MKVLA", ')
    with pytest.raises(BadInputError, match="proteins.txt' is not valid JSON"):
        load_benchmark(root)
