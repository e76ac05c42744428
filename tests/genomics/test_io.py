"""Sequences, reference access and VCF reading on tiny fixtures."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.genomics.reference import Reference, contig_aliases
from pmtoolkit.genomics.sequence import (
    codes,
    gc_content,
    one_hot,
    one_hot_batch,
    reverse_complement,
    reverse_complement_array,
)
from pmtoolkit.genomics.variants import Variant, allele_windows, read_vcf


def _fasta_records(path):
    seqs, name = {}, None
    for line in open(path):
        if line.startswith(">"):
            name = line[1:].split()[0]
            seqs[name] = ""
        else:
            seqs[name] += line.strip()
    return seqs


@pytest.fixture
def genome(test_data):
    return _fasta_records(test_data / "genome_tiny.fa")


# --------------------------------------------------------------------------- sequences

def test_one_hot_and_reverse_complement():
    x = one_hot("ACGTN")
    assert x.shape == (4, 5) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :4], np.eye(4))
    np.testing.assert_array_equal(x[:, 4], [0.25] * 4)
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("acgR") == "Ycgt"
    seqs = ["ACGTTGCA", "NNGGCCAT"]
    batch = one_hot_batch(seqs)
    assert batch.shape == (2, 4, 8)
    # the array reverse complement is the one-hot of the string reverse complement
    np.testing.assert_array_equal(reverse_complement_array(batch),
                                  one_hot_batch([reverse_complement(s) for s in seqs]))
    np.testing.assert_array_equal(one_hot("acgt"), one_hot("ACGT"))
    assert gc_content("GGCCAT") == pytest.approx(4 / 6)
    assert codes("ACGTR").tolist() == [0, 1, 2, 3, 4]


def test_bad_sequences_are_named():
    with pytest.raises(BadInputError, match=r"'Z' at position 3"):
        one_hot("ACZT")
    with pytest.raises(BadInputError, match="one length"):
        one_hot_batch(["ACG", "AC"])
    assert one_hot_batch([]).shape == (0, 4, 0)


# --------------------------------------------------------------------------- reference

def test_contig_aliases():
    assert contig_aliases("chr2") == ["2"]
    assert contig_aliases("2") == ["chr2"]
    assert set(contig_aliases("MT")) == {"chrMT", "M", "chrM"}


def test_a_contig_named_in_the_other_style_is_mapped_and_said_once(tmp_path, caplog):
    fasta = tmp_path / "ref.fa"
    fasta.write_text(">chr2\nACGTACGTAC\n")
    ref = Reference(fasta)
    with caplog.at_level("INFO", logger="pmtoolkit.genomics.reference"):
        assert ref.fetch("2", 0, 4) == ref.fetch("chr2", 0, 4) == "ACGT"
        ref.fetch("2", 4, 8)
    said = [r.getMessage() for r in caplog.records if "mapped" in r.getMessage()]
    assert said == ["contig 2 is chr2 in ref.fa: mapped"]
    assert ref.resolve("3") is None


@pytest.mark.parametrize("form", ["plain", "bgzip", "gzip", "readonly"])
def test_reference_forms_agree(form, test_data, tmp_path, genome, monkeypatch):
    import pysam

    src = test_data / "genome_tiny.fa"
    if form == "plain":
        path = tmp_path / "g.fa"
        shutil.copy(src, path)
    elif form == "bgzip":
        path = tmp_path / "g.fa.gz"
        pysam.tabix_compress(str(src), str(path))
    elif form == "gzip":
        path = tmp_path / "g.fa.gz"
        with open(src, "rb") as fi, gzip.open(path, "wb") as fo:
            fo.write(fi.read())
    else:  # an unindexed FASTA in a folder we cannot write: indexed in the cache instead
        folder = tmp_path / "ro"
        folder.mkdir()
        path = folder / "g.fa"
        shutil.copy(src, path)
        folder.chmod(0o555)
        # root may write anywhere: make the folder read-only to the code as well
        import pmtoolkit.genomics.reference as reference_module

        monkeypatch.setattr(reference_module.os, "access", lambda p, mode: False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        ref = Reference(path)
        assert ref.lengths == {"chr1": 300, "chrM": 60}
        assert ref.fetch("chr1", 0, 300) == genome["chr1"]
        assert ref.fetch("1", 10, 20) == genome["chr1"][10:20]  # alias
        assert ref.fetch("MT", 0, 5) == genome["chrM"][:5]
        assert ref.fetch("chr1", -3, 2) == "NNN" + genome["chr1"][:2]  # padded past the ends
        assert ref.fetch("chr1", 298, 303) == genome["chr1"][298:] + "NNN"
        assert ref.resolve("chr9") is None and "chr1" in ref
        with pytest.raises(MissingInputError, match="chr9"):
            ref.fetch("chr9", 0, 1)
        ref.close()
        if form == "readonly":
            assert not (folder / "g.fa.fai").exists()
            assert list((tmp_path / "cache").rglob("g.fa.fai"))
    finally:
        if form == "readonly":
            folder.chmod(0o755)


def test_reference_bad_files(tmp_path):
    with pytest.raises(MissingInputError):
        Reference(tmp_path / "absent.fa")
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(BadInputError):
        Reference(empty)



@pytest.mark.parametrize("text", [
    ">a desc\nACGTACGT\nACG\n\n>b\nGGGG\n",      # a blank line between records
    ">a\nACGTACGT\nACG\n>b\nGGGG",                # no final line break
    ">a\r\nACGTACGT\r\nACG\r\n>b\r\nGGGG\r\n",  # Windows line breaks
    ">a\nACGTACGT\nACG\n>empty\n>b\nGGGG\n",     # a record without sequence
    "\n\n>a\nACGTACGT\nACG\n>b\nGGGG\n\n\n"])  # blank lines around
def test_reference_index_check_accepts_valid_layouts(tmp_path, text):
    import pysam

    path = tmp_path / "r.fa"
    path.write_bytes(text.encode())
    for form in ("plain", "bgzip"):
        if form == "bgzip":
            pysam.tabix_compress(str(path), str(tmp_path / "r.fa.gz"))
            path = tmp_path / "r.fa.gz"
        with Reference(path) as ref:
            assert ref.lengths == {"a": 11, "b": 4}
            assert ref.fetch("a", 0, 11) == "ACGTACGTACG" and ref.fetch("b", 0, 4) == "GGGG"
        with Reference(path) as ref:  # the index written by the first open is checked too
            assert ref.fetch("b", 1, 3) == "GG"


def test_reference_index_check_refuses_what_htslib_would_misread(tmp_path):
    import os

    import pysam

    path = tmp_path / "r.fa"
    text = ">a\n" + "ACGT" * 15 + "\n" + "ACGT" * 15 + "\n>b\nGGGG\n"
    path.write_text(text)
    Reference(path).close()
    old = path.stat().st_mtime - 100
    os.utime(tmp_path / "r.fa.fai", (old, old))
    Reference(path).close()  # older than the FASTA but still right: used
    for changed, why in [(">z\nCC\n" + text, "header of 'a' is not where"),
                         (text + ">c\nTTTT\n", "sequence after the last indexed record"),
                         (text.replace("ACGT" * 15 + "\n", "ACGT" * 10 + "\n" + "ACGT" * 5
                                       + "\n", 1), "are not 60 bases long"),
                         (text[:-3], "ends before 'b' does")]:
        path.write_text(changed)
        with pytest.raises(BadInputError, match=rf"r.fa.fai' is older than and does not match "
                                                rf".*{why}.*; delete it to rebuild"):
            Reference(path)
    (tmp_path / "r.fa.fai").write_text("a\t60\n")
    with pytest.raises(BadInputError, match="line 1 is not a FASTA index line"):
        Reference(path)
    # two records of one name: the index htslib builds keeps the first, silently
    (tmp_path / "r.fa.fai").unlink()
    path.write_text(text + ">a\nTTTT\n")
    with pytest.raises(BadInputError, match="contig 'a' appears twice"):
        Reference(path)
    (tmp_path / "r.fa.fai").unlink()
    path.write_text(">a\nACGT\n>a\nTT\n>b\nGGGG\n")
    pysam.faidx(str(path))
    with pytest.raises(BadInputError, match="contig 'a' appears twice"):
        Reference(path)
    gz = tmp_path / "r.fa.gz"
    gz.write_bytes(gzip.compress(b">a\nACGT\n>b\nGG\n>a\nTT\n"))
    with pytest.raises(BadInputError, match=r"contig 'a' appears twice \(line 5\)"):
        Reference(gz)


def test_reference_damaged_compressed_files(tmp_path):
    import pysam

    plain = tmp_path / "r.fa"
    plain.write_text(">a\n" + ("ACGTTGCA" * 8 + "\n") * 20000 + ">b\nGGGG\n")
    bgz = tmp_path / "r.fa.gz"
    pysam.tabix_compress(str(plain), str(bgz))
    whole = bgz.read_bytes()
    bgz.write_bytes(whole[:-28])  # the BGZF end-of-file block cut off
    with pytest.raises(BadInputError, match="truncated"):
        Reference(bgz)
    damaged = bytearray(whole)
    for i in range(len(damaged) // 2, len(damaged) // 2 + 64):
        damaged[i] ^= 0xFF
    bgz.write_bytes(bytes(damaged))
    with pytest.raises(BadInputError, match="r.fa.gz' is truncated or not valid gzip"):
        Reference(bgz)
    # indexed while intact, damaged afterwards: the damaged block is an error when read
    bgz.write_bytes(whole)
    Reference(bgz).close()
    bgz.write_bytes(bytes(damaged))
    with Reference(bgz) as ref, pytest.raises(BadInputError, match="r.fa.gz'"):
        ref.fetch("a", 0, ref.lengths["a"])
    # a .gzi of another compression of the file
    (tmp_path / "s.fa").write_text(">a\nACGT\n")
    pysam.tabix_compress(str(tmp_path / "s.fa"), str(bgz), force=True)
    with pytest.raises(BadInputError, match=r"r.fa.gz.fai' \(and '.*r.fa.gz.gzi'\).*does not "
                                            r"match"):
        Reference(bgz)
    gz = tmp_path / "p.fa.gz"
    data = gzip.compress(plain.read_bytes())
    gz.write_bytes(data[:len(data) // 2])
    with pytest.raises(BadInputError, match="p.fa.gz' is truncated"):
        Reference(gz)
    binary = tmp_path / "b.fa"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(BadInputError, match="does not start with a '>name' header"):
        Reference(binary)


# --------------------------------------------------------------------------- VCF

def test_vcf_every_record_is_a_variant_or_a_reject(test_data, tmp_path):
    import pysam

    ref = Reference(test_data / "genome_tiny.fa")
    vcf = test_data / "variants_tiny.vcf"
    variants, rejects = read_vcf(vcf, reference=ref, ref_mismatch="skip")
    ids = [v.id for v in variants]
    assert ids == ["snv1", "mnv1", "del1", "ins1", "multi", "multi", "edge", "mito"]
    kinds = {v.id: v.kind for v in variants}
    assert kinds == {"snv1": "snv", "mnv1": "mnv", "del1": "deletion", "ins1": "insertion",
                     "multi": "snv", "edge": "snv", "mito": "snv"}
    assert [v.alt for v in variants if v.id == "multi"] == ["C", "G"]  # split per ALT
    reasons = {r.line: r.reason for r in rejects}
    assert "does not match the reference" in reasons[11]
    assert "malformed" in reasons[12] and "notanumber" in rejects.items[1].item
    assert "symbolic" in reasons[13]
    assert "breakend" in reasons[14]
    assert "not in the reference" in reasons[15]
    data_lines = [n for n, line in enumerate(open(vcf), 1) if not line.startswith("#")]
    assert sorted({v.line for v in variants} | set(reasons)) == data_lines  # nothing vanishes
    # the same file bgzipped reads the same
    gz = tmp_path / "v.vcf.gz"
    pysam.tabix_compress(str(vcf), str(gz))
    v2, r2 = read_vcf(gz, reference=ref, ref_mismatch="skip")
    assert v2 == variants and [r.reason for r in r2] == [r.reason for r in rejects]


def test_ref_mismatch_policies(test_data):
    ref = Reference(test_data / "genome_tiny.fa")
    vcf = test_data / "variants_tiny.vcf"
    with pytest.raises(BadInputError, match=r"line 11: REF A does not match .*--ref-mismatch"):
        read_vcf(vcf, reference=ref)
    kept, rejects = read_vcf(vcf, reference=ref, ref_mismatch="warn")
    assert "mismatch" in [v.id for v in kept]
    assert not any("does not match" in r.reason for r in rejects)
    with pytest.raises(BadInputError, match="ref_mismatch"):
        read_vcf(vcf, reference=ref, ref_mismatch="ignore")
    no_ref, _ = read_vcf(vcf)  # without a reference nothing is checked against it
    assert {"mismatch", "nocontig"} <= {v.id for v in no_ref}


def test_not_a_vcf(tmp_path):
    bad = tmp_path / "x.vcf"
    bad.write_text("this is not a vcf\n")
    with pytest.raises(BadInputError, match="no VCF header"):
        read_vcf(bad)
    bad.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(BadInputError, match="is not a VCF or BCF file"):
        read_vcf(bad)


def test_damaged_and_gzip_vcfs_are_input_errors(test_data, tmp_path):
    import pysam

    text = (test_data / "variants_tiny.vcf").read_text()
    head = "".join(ln + "\n" for ln in text.splitlines() if ln.startswith("#"))
    body = "".join(ln + "\n" for ln in text.splitlines()
                   if not ln.startswith("#") and "notanumber" not in ln)
    plain = tmp_path / "v.vcf"
    plain.write_text(head + body * 3000)
    gz = tmp_path / "v.vcf.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(BadInputError, match="gzip, not bgzip.*zcat .*v.vcf.gz | bgzip"):
        read_vcf(gz)
    pysam.tabix_compress(str(plain), str(gz), force=True)
    whole = gz.read_bytes()
    gz.write_bytes(whole[:-100])
    with pytest.raises(BadInputError, match="truncated"):
        read_vcf(gz)
    damaged = bytearray(whole)
    for i in range(len(damaged) // 2, len(damaged) // 2 + 64):
        damaged[i] ^= 0xFF
    gz.write_bytes(bytes(damaged))
    with pytest.raises(BadInputError, match="v.vcf.gz'"):  # not htslib's OSError on close
        read_vcf(gz)


def test_allele_windows(genome, test_data):
    ref = Reference(test_data / "genome_tiny.fa")
    seq = genome["chr1"]
    snv = Variant("chr1", 101, seq[100], "A" if seq[100] != "A" else "C")
    r, a = allele_windows(snv, ref, 11)
    assert r == seq[95:106] and len(a) == 11
    assert a[5] == snv.alt and a[:5] == r[:5] and a[6:] == r[6:]
    deletion = Variant("chr1", 30, seq[29:33], seq[29])
    r, a = allele_windows(deletion, ref, 20)
    assert len(r) == len(a) == 20
    assert seq[29:33] in r and a.find(seq[29] + seq[33:36]) >= 0
    insertion = Variant("chr1", 40, seq[39], seq[39] + "GGT")
    r, a = allele_windows(insertion, ref, 21)
    assert len(a) == 21 and seq[39] + "GGT" in a
    edge = Variant("chr1", 299, seq[298], "A")
    r, a = allele_windows(edge, ref, 9)
    assert r.endswith("NNN") and r[4] == seq[298]
