"""Bad input to ``pmt variants score -m spliceai``: each a one-line error with exit code 2 and
no output file, or a listed reject; contig-name styles mapped and said."""
from __future__ import annotations

import gzip
import shutil

import pytest

from pmtoolkit.genomics import spliceai as S

REFERENCE = "chr2_1-2333275.fa.gz"
HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
#: an acceptor AG of MYT1L (chr2, minus strand) in the shipped GRCh38 chunk
SITE = "\t1801800\t.\tC\tA\t.\t.\t.\n"


@pytest.fixture(scope="module", autouse=True)
def _extra():
    pytest.importorskip("h5py")
    if S.importlib.util.find_spec("spliceai") is None:
        pytest.skip("the spliceai extra is not installed (CI installs it)")


@pytest.fixture
def fasta(shared_data):
    return shared_data / "variants" / "reference" / REFERENCE


def _score(pmt, vcf, fasta, out, *extra):
    return pmt("variants", "score", "-i", vcf, "-f", fasta, "-m", "spliceai", "-o", out,
               "--device", "cpu", *extra)


def _one_line_error(result, *words):
    assert result.exit_code == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if "error" in ln.lower()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_contig_missing_from_the_fasta_is_a_listed_reject(pmt, fasta, tmp_path):
    vcf = tmp_path / "in.vcf"
    vcf.write_text(HEADER + "chr5" + SITE + "chr2" + SITE)
    result = _score(pmt, vcf, fasta, tmp_path / "out.vcf")
    assert result.exit_code == 0, result.stderr
    rejects = (tmp_path / "out.rejected.csv").read_text()
    assert "contig 'chr5' is not in the reference" in rejects
    records = [ln for ln in (tmp_path / "out.vcf").read_text().splitlines()
               if not ln.startswith("#")]
    assert len(records) == 2 and "SpliceAI=" not in records[0] and "SpliceAI=A|MYT1L" in \
        records[1]


def test_contigs_without_the_chr_prefix_are_mapped_and_said(pmt, fasta, tmp_path):
    vcf = tmp_path / "in.vcf"
    vcf.write_text(HEADER + "2" + SITE)
    result = _score(pmt, vcf, fasta, tmp_path / "out.vcf")
    assert result.exit_code == 0, result.stderr
    assert "contig 2 is chr2" in result.stderr
    record = (tmp_path / "out.vcf").read_text().splitlines()[-1]
    assert record.startswith("2\t1801800\t") and "SpliceAI=A|MYT1L|" in record


@pytest.mark.parametrize("text, words", [
    ("chr2" + SITE, ("no VCF header",)),
    ("##fileformat=VCFv4.2\nchr2" + SITE, ("no #CHROM column line",)),
])
def test_a_vcf_without_its_header_is_one_line_and_writes_nothing(pmt, fasta, tmp_path, text,
                                                                  words):
    vcf = tmp_path / "in.vcf"
    vcf.write_text(text)
    _one_line_error(_score(pmt, vcf, fasta, tmp_path / "out.vcf.gz"), *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.vcf"]


def test_a_ref_mismatch_after_scored_records_leaves_no_half_written_vcf(pmt, fasta, tmp_path):
    vcf = tmp_path / "in.vcf"
    vcf.write_text(HEADER + "chr2" + SITE + "chr2\t1801830\t.\tA\tG\t.\t.\t.\n")
    _one_line_error(_score(pmt, vcf, fasta, tmp_path / "out.vcf.gz"), "does not match")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.vcf"]


def test_a_fasta_without_index_is_indexed_and_a_truncated_one_refused(pmt, fasta, tmp_path):
    plain = tmp_path / "ref.fa"
    with gzip.open(fasta, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    vcf = tmp_path / "in.vcf"
    vcf.write_text(HEADER + "chr2" + SITE)
    result = _score(pmt, vcf, plain, tmp_path / "out.vcf")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "ref.fa.fai").is_file()
    assert "SpliceAI=A|MYT1L|" in (tmp_path / "out.vcf").read_text()

    truncated = tmp_path / "cut.fa.gz"
    truncated.write_bytes(fasta.read_bytes()[:3000])
    _one_line_error(_score(pmt, vcf, truncated, tmp_path / "cut.vcf"), "truncated")
    assert not (tmp_path / "cut.vcf").exists()


@pytest.mark.parametrize("args, words", [
    (("--distance", "-1"), ("--distance",)),
    (("--distance", "5001"), ("--distance",)),
    (("--annotation", "missing.gtf"), ("missing.gtf",)),
])
def test_out_of_range_options_and_a_missing_annotation_exit_2(pmt, fasta, tmp_path, args,
                                                               words):
    vcf = tmp_path / "in.vcf"
    vcf.write_text(HEADER + "chr2" + SITE)
    result = _score(pmt, vcf, fasta, tmp_path / "out.vcf", *args)
    assert result.exit_code == 2, result.stderr
    assert all(w in result.stderr for w in words) and "Traceback" not in result.stderr
    assert not (tmp_path / "out.vcf").exists()
