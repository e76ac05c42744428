"""``pmt variants score``: the default model (spliceai), each model's own option defaults,
options a model does not use refused, and a splice model's warning outside genes."""
from __future__ import annotations

import logging

import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError, MissingResourceError
from pmtoolkit.genomics import spliceai as S
from pmtoolkit.genomics.config import SequenceModelConfig
from pmtoolkit.genomics.model import SequenceModel
from pmtoolkit.genomics.run import check_genic, is_splice_model, load, score_file

#: one gene on chr1 (bases 5-120 of the tiny test genome) with two exons
GTF = ('chr1\tx\tgene\t5\t120\t.\t+\t.\tgene_id "G"; gene_name "TINY";\n'
       'chr1\tx\ttranscript\t5\t120\t.\t+\t.\tgene_id "G"; transcript_id "T"; '
       'gene_name "TINY"; tag "Ensembl_canonical";\n'
       'chr1\tx\texon\t5\t25\t.\t+\t.\tgene_id "G"; transcript_id "T"; gene_name "TINY";\n'
       'chr1\tx\texon\t90\t120\t.\t+\t.\tgene_id "G"; transcript_id "T"; gene_name "TINY";\n')


@pytest.fixture
def genes(tmp_path):
    path = tmp_path / "genes.gtf"
    path.write_text(GTF)
    return path


@pytest.fixture
def no_extra(monkeypatch):
    """The spliceai package absent, as after a plain ``pip install pmtoolkit``."""
    monkeypatch.setattr(S.importlib.util, "find_spec", lambda name: None)


@pytest.fixture(scope="module")
def user_splice_model(tmp_path_factory):
    """A user's own splice-site model: outputs named EI, IE, N (untrained; the warning
    depends on what it predicts, not how well)."""
    import torch

    torch.manual_seed(0)
    cfg = SequenceModelConfig(task="multiclass", window=24, filters=(8, 8), kernels=(5, 3),
                              pools=(2, 2), hidden=8, device="cpu")
    path = tmp_path_factory.mktemp("model") / "my_splice.safetensors"
    SequenceModel(cfg, targets=["EI", "IE", "N"]).save(path)
    return path


def test_splice_models_are_told_apart_by_their_outputs(user_splice_model):
    assert is_splice_model(load("splice")) and is_splice_model(load(user_splice_model))
    assert not is_splice_model(load("mpra")) and not is_splice_model(load("jaspar"))
    assert is_splice_model(SequenceModel(SequenceModelConfig(window=24, filters=(4,),
                                                             kernels=(3,), pools=(2,)),
                                         targets=["donor_probability"]))


def test_genic_check_counts_variants_outside_genes_and_unknown_contigs(genes, test_data,
                                                                      caplog):
    vcf = test_data / "variants_tiny.vcf"  # positions 10-299 of contig 1, one on MT
    with caplog.at_level(logging.WARNING, logger="pmtoolkit"):
        counts = check_genic(vcf, str(genes), "splice")
    # 10 ALTs: seven at 1:10-60 lie in TINY (5-120), 1:299 does not, chr9 and MT are not in
    # the annotation (1 is its chr1)
    assert counts == {"variants": 10, "outside_genes": 1, "unannotated_contigs": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "1 of 10 variants lie outside every gene" in warnings[1] and "-m mpra" in warnings[1]
    assert "2 of 10 variants are on contigs" in warnings[0]


def test_genic_check_without_an_annotation_says_it_could_not_check(no_extra, test_data,
                                                                    caplog):
    with caplog.at_level(logging.WARNING, logger="pmtoolkit"):
        counts = check_genic(test_data / "variants_tiny.vcf", None, "splice")
    assert counts["outside_genes"] is None
    assert [r.getMessage() for r in caplog.records if "could not be checked" in
            r.getMessage()] and len(caplog.records) == 1
    with pytest.raises(MissingResourceError, match="not installed"):  # named: an error
        check_genic(test_data / "variants_tiny.vcf", "grch38", "splice")


def test_options_a_model_does_not_use_are_refused(test_data, tmp_path):
    vcf, fasta, out = test_data / "variants_tiny.vcf", test_data / "genome_tiny.fa", \
        tmp_path / "o.tsv"
    for kwargs, message in (
            ({"model_name": "spliceai", "scan": 5}, "--scan does not apply to spliceai"),
            ({"model_name": "spliceai", "strands": "forward"}, "--strands does not apply"),
            ({"model_name": "mpra", "distance": 10}, "--distance applies to -m spliceai"),
            ({"model_name": "jaspar", "mask": False}, "--mask applies to -m spliceai"),
            ({"model_name": "mpra", "annotation": "grch38"}, "--annotation applies"),
            ({"model_name": "spliceia"}, "did you mean 'spliceai'")):
        with pytest.raises((BadInputError, MissingResourceError), match=message):
            score_file(vcf, fasta, out, ref_mismatch="skip", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_the_default_model_without_the_extra_exits_2_naming_the_alternatives(
        pmt, no_extra, test_data, tmp_path):
    result = pmt("variants", "score", "-i", test_data / "variants_tiny.vcf", "-f",
                 test_data / "genome_tiny.fa", "-o", tmp_path / "o.vcf")
    assert result.exit_code == 2
    lines = [ln for ln in result.stderr.splitlines() if "INFO" not in ln]
    assert len(lines) == 1 and lines[0].startswith("pmt: error: the default model, spliceai")
    assert 'pip install "pmtoolkit[spliceai]"' in lines[0]
    assert "-m mpra" in lines[0] and "-m splice" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_bad_model_options_exit_2_with_one_line(pmt, test_data, tmp_path):
    base = ("variants", "score", "-i", test_data / "variants_tiny.vcf", "-f",
            test_data / "genome_tiny.fa", "-o", tmp_path / "o.tsv")
    for extra, message in ((("-m", "spliceai", "--scan", "20"), "--scan does not apply"),
                           (("-m", "nosuch"), "unknown model 'nosuch'"),
                           (("-m", "mpra", "--mask"), "--mask applies to -m spliceai")):
        result = pmt("-q", *base, *extra)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_each_sequence_model_scans_as_it_recommends(pmt, genes, test_data, tmp_path):
    """End to end on the tiny fixtures: splice scans 20 bases by default (the same numbers
    as --scan 20, not as --scan 0), mpra none; a splice model warns once, with the count,
    on variants outside the genes of --annotation."""
    def run(model, *extra):
        out = tmp_path / f"{model}{'_'.join(extra)}.tsv"
        result = pmt("variants", "score", "-i", test_data / "variants_tiny.vcf", "-f",
                     test_data / "genome_tiny.fa", "-m", model, "--ref-mismatch", "skip",
                     "-o", out, *extra)
        assert result.exit_code == 0, result.stderr
        return pd.read_csv(out, sep="\t"), result.stderr

    default, stderr = run("splice", "--annotation", str(genes))
    assert stderr.count("lie outside every gene of") == 1
    assert "1 of 10 variants lie outside every gene" in stderr
    pd.testing.assert_frame_equal(default, run("splice", "--scan", "20")[0])
    assert not default.equals(run("splice", "--scan", "0")[0])
    mpra, stderr = run("mpra")
    assert "gene" not in stderr  # promoters and enhancers: no genic check
    pd.testing.assert_frame_equal(mpra, run("mpra", "--scan", "0")[0])


def test_the_default_model_is_spliceai(pmt, shared_data, tmp_path):
    """Without -m, a VCF gets SpliceAI's field (needs the extra, which CI installs)."""
    if S.importlib.util.find_spec("spliceai") is None:
        pytest.skip("the spliceai extra is not installed (CI installs it)")
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr2,length=2333275>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   "chr2\t1801800\t.\tC\tA\t.\t.\t.\n")
    out = tmp_path / "out.vcf"
    fasta = shared_data / "variants" / "reference" / "chr2_1-2333275.fa.gz"
    result = pmt("variants", "score", "-i", vcf, "-f", fasta, "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    record = next(ln for ln in out.read_text().splitlines() if not ln.startswith("#"))
    assert "SpliceAI=A|MYT1L|" in record
