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
