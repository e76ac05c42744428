"""pmtoolkit's torch SpliceAI: the network, the weights read from the spliceai package (an
optional extra; CI installs it), the annotation and SpliceAI's delta-score semantics."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from pmtoolkit.genomics import spliceai as S

REFERENCE = "chr2_1-2333275.fa.gz"


def _same_padded(net: S.SpliceAINet, x: torch.Tensor) -> torch.Tensor:
    """The network as the original builds it: every convolution zero-padded to keep the length
    ("same"), 5,000 nt cropped from each end of the output."""

    def conv(c, h):
        k, d = c.kernel_size[0], c.dilation[0]
        return F.conv1d(h, c.weight, c.bias, padding=d * (k - 1) // 2, dilation=d)

    h = conv(net.stem, x)
    skip = conv(net.skip0, h)
    for g in range(len(S.GROUPS)):
        for u in net.units[g * 4:(g + 1) * 4]:
            h = h + conv(u.conv2, torch.relu(u.bn2(conv(u.conv1, torch.relu(u.bn1(h))))))
        skip = skip + conv(net.skips[g], h)
    return torch.softmax(conv(net.head, skip), 1)[..., S.FLANK:-S.FLANK]


def test_unpadded_network_equals_the_padded_one_on_the_positions_kept():
    torch.manual_seed(0)
    net = S.SpliceAINet().eval()
    for m in net.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    seq = "".join(np.random.default_rng(1).choice(list("ACGTN"), 2 * S.FLANK + 21))
    x = torch.from_numpy(S.one_hot(seq).T[None].copy())
    with torch.no_grad():
        ours, original = net(x), _same_padded(net, x)
    assert ours.shape == (1, 3, 21)
    torch.testing.assert_close(ours, original, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="more than 10000"):
        net(x[..., :10000])


def test_one_hot_is_acgt_with_n_as_zeros():
    x = S.one_hot("ACGTNacgtx")
    assert x.shape == (10, 4) and x[:4].argmax(1).tolist() == [0, 1, 2, 3]
    assert x[4].sum() == 0 and x[9].sum() == 0 and x[5:9].argmax(1).tolist() == [0, 1, 2, 3]
    assert (S._reverse_complement(S.one_hot("AACG")) == S.one_hot("CGTT")).all()


def test_delta_scores_follow_spliceai():
    d = 2  # five positions, the variant in the middle
    y_ref = np.zeros((5, 3), np.float32)
    y_ref[:, 0] = 1
    y_ref[1, 2] = 0.9  # a donor two... one position upstream
    y_alt = y_ref.copy()
    y_alt[1, 2] = 0.1  # donor lost
    y_alt[4, 1] = 0.6  # acceptor gained two downstream
    ds, dp = S.delta_scores(y_ref, y_alt, ref_len=1, alt_len=1, distance=d, boundary=-1,
                            mask=False)
    assert ds == pytest.approx((0.6, 0.0, 0.0, 0.8)) and dp[0] == 2 and dp[3] == -1
    # masked: a gain at the annotated boundary and a loss elsewhere count 0
    ds, _ = S.delta_scores(y_ref, y_alt, ref_len=1, alt_len=1, distance=d, boundary=-1,
                           mask=True)
    assert ds[3] == pytest.approx(0.8)  # the loss is at the annotated boundary: kept
    ds, _ = S.delta_scores(y_ref, y_alt, ref_len=1, alt_len=1, distance=d, boundary=2,
                           mask=True)
    assert ds[0] == 0 and ds[3] == 0
    # a 2-nt deletion: the alt prediction is 2 shorter; the deleted positions score 0
    ds, dp = S.delta_scores(y_ref, y_alt[:3], ref_len=3, alt_len=1, distance=d, boundary=9,
                            mask=False)
    assert dp[3] == -1 and ds[3] == pytest.approx(0.8)
    # a 2-nt insertion: the inserted positions count once, as their maximum
    longer = np.concatenate([y_ref[:3], y_ref[2:3], y_ref[3:]])
    longer[3, 1] = 0.7
    ds, dp = S.delta_scores(y_ref, longer, ref_len=1, alt_len=2, distance=d, boundary=9,
                            mask=False)
    assert dp[0] == 0 and ds[0] == pytest.approx(0.7)


def test_annotation_table_reads_spans_strands_and_boundaries(tmp_path):
    table = tmp_path / "genes.txt"
    table.write_text("#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n"
                     "G1\t2\t+\t99\t500\t99,299,\t200,500,\n"
                     "G2\t2\t-\t449\t900\t449,\t900,\n")
    ann = S.SpliceAnnotation.read(table)
    assert list(ann.names[ann.genes_at("2", 100)]) == ["G1"]  # 0-based 99 is 1-based 100
    assert list(ann.names[ann.genes_at("2", 99)]) == []
    assert list(ann.names[ann.genes_at("chr2", 460)]) == ["G1", "G2"]  # chr2 maps to 2
    assert ann.strands[1] == "-" and list(ann.names[ann.genes_at("chr3", 460)]) == []
    assert ann.distances(0, 210) == (100 - 210, 500 - 210, 200 - 210)
    assert ann.distances(0, 250) == (-150, 250, -50)  # 200 and 300 tie: the earlier one
    bad = tmp_path / "bad.txt"
    bad.write_text("#NAME\tCHROM\tSTRAND\n")
    from pmtoolkit.core.errors import BadInputError

    with pytest.raises(BadInputError, match="not a SpliceAI annotation table"):
        S.SpliceAnnotation.read(bad)


@pytest.fixture
def model(spliceai_model):
    return spliceai_model


def test_the_five_models_load_from_the_spliceai_package(model):
    assert len(model.nets) == 5
    net = model.nets[0]
    assert net.units[-1].conv2.dilation == (25,) and net.units[0].conv1.kernel_size == (11,)
    assert float(net.units[0].bn1.running_var.min()) > 0


def test_a_canonical_acceptor_mutation_loses_the_acceptor(model, shared_data):
    """MYT1L (minus strand): the exon ending at chr2:1,801,799 is entered from the intron to
    its right; the AG of that acceptor reads CT on the plus strand at 1,801,800-1,801,801.
    SpliceAI calls both mutations a certain acceptor loss at the boundary."""
    from pmtoolkit.genomics.reference import Reference
    from pmtoolkit.genomics.variants import Variant

    ref = Reference(shared_data / "variants" / "reference" / REFERENCE)
    ann = S.SpliceAnnotation.read("grch38")
    scorer = S.SpliceScorer(model, ref, ann, distance=50)
    assert ref.fetch("chr2", 1801799, 1801801) == "CT"
    calls = scorer.score([Variant("chr2", 1801800, "C", "A"), Variant("chr2", 1801801, "T", "A"),
                          Variant("chr2", 1801830, "G", "T")])
    (c1,), (c2,), (deep,) = calls
    assert c1.gene == c2.gene == "MYT1L" and c1.strand == "-"
    assert c1.scores[1] > 0.9 and c2.scores[1] > 0.9  # DS_AL
    assert c1.positions[1] == -1 and c2.positions[1] == -2  # the boundary, relative
    assert max(deep.scores) < 0.2
    assert c1.info().startswith("A|MYT1L|") and c1.info().count("|") == 9


def test_missing_extra_is_a_one_line_error(monkeypatch):
    from pmtoolkit.core.errors import MissingResourceError

    monkeypatch.setattr(S.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingResourceError, match="not installed") as err:
        S.model_files()
    assert "pmtoolkit[spliceai]" in err.value.hint


def test_pmt_variants_score_spliceai_writes_the_original_vcf_field(model, shared_data, tmp_path,
                                                                   pmt):
    """End to end: the input lines kept byte for byte (an INFO value like 2.94e-218 too),
    SpliceAI's INFO declaration and one entry per ALT and gene, multi-allelic records per ALT,
    a symbolic ALT listed as a reject, bgzip + tabix."""
    import pysam

    vcf = tmp_path / "in.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr2,length=2333275>\n"
        '##INFO=<ID=PVALUE,Number=1,Type=Float,Description="p">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        "chr2\t100000\t.\tT\tA\t.\t.\t.\n"  # outside every gene: kept, not scored
        "chr2\t1801800\trs1\tC\tA,T\t.\tPASS\tPVALUE=2.94e-218\n"
        "chr2\t1801801\t.\tT\t<DEL>\t.\t.\t.\n"
        "chr2\t1801805\t.\tATAA\tA\t.\t.\t.\n"
        "chr2\t1801830\t.\tT\tG\t.\t.\t.\n")
    out = tmp_path / "out.vcf.gz"
    fasta = shared_data / "variants" / "reference" / REFERENCE
    result = pmt("variants", "score", "-i", vcf, "-f", fasta, "-m", "spliceai", "-o", out,
                 "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out.vcf.gz.tbi").is_file()
    lines = pysam.BGZFile(str(out)).read().decode().splitlines()
    assert S.INFO_HEADER in lines and lines.index(S.INFO_HEADER) < \
        next(i for i, ln in enumerate(lines) if ln.startswith("#CHROM"))
    records = [ln for ln in lines if not ln.startswith("#")]
    original = [ln for ln in vcf.read_text().splitlines() if not ln.startswith("#")]
    assert len(records) == len(original)
    assert records[1].startswith(original[1] + ";SpliceAI=A|MYT1L|")  # PVALUE kept as written
    entries = records[1].split("SpliceAI=")[1].split(",")
    assert [e.split("|")[0] for e in entries] == ["A", "T"]
    assert float(entries[0].split("|")[3]) > 0.9  # DS_AL of the acceptor's AG
    assert records[0] == original[0] and records[2] == original[2]
    deletion = records[3].split("\t")  # a 3-nt deletion; its empty INFO (.) replaced
    assert deletion[:7] == original[3].split("\t")[:7]
    assert deletion[7].startswith("SpliceAI=A|MYT1L|")
    with pysam.VariantFile(str(out)) as vf:
        fetched = list(vf.fetch("chr2", 1801799, 1801806))
    assert [r.pos for r in fetched] == [1801800, 1801801, 1801805]
    assert "symbolic ALT" in (tmp_path / "out.rejected.csv").read_text()


def test_pmt_info_spliceai_says_where_the_weights_come_from(model, pmt):
    result = pmt("info", "spliceai", "--json")
    assert result.exit_code == 0, result.stderr
    import json

    item = json.loads(result.stdout)
    assert item["version"] == "1.3.1" and "GPLv3" in item["licence"]
    assert [f["file"] for f in item["files"]][:5] == [f"models/spliceai{i}.h5"
                                                      for i in range(1, 6)]


def test_without_the_extra_spliceai_exits_2_saying_what_to_install(pmt, tmp_path, monkeypatch):
    monkeypatch.setattr(S.importlib.util, "find_spec", lambda name: None)
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    fasta = tmp_path / "ref.fa"
    fasta.write_text(">chr2\nACGT\n")
    for args in (("variants", "score", "-i", vcf, "-f", fasta, "-m", "spliceai", "-o",
                  tmp_path / "out.vcf"), ("info", "spliceai")):
        result = pmt(*args)
        assert result.exit_code == 2, result.stderr
        assert 'pip install "pmtoolkit[spliceai]"' in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 or "INFO" in result.stderr
    assert not (tmp_path / "out.vcf").exists()


def test_gtf_and_gff3_give_the_same_genes_as_spliceai_tables(tmp_path):
    """One gene, two transcripts: the Ensembl_canonical one is kept, with the same 1-based
    span and boundaries as SpliceAI's table gives for it (0-based starts there)."""
    gtf = tmp_path / "genes.gtf"
    gtf.write_text(
        '#!genome-build GRCh38\n'
        'chr2\tHAVANA\tgene\t100\t900\t.\t-\t.\tgene_id "G"; gene_name "MYG";\n'
        'chr2\tHAVANA\ttranscript\t100\t900\t.\t-\t.\tgene_id "G"; transcript_id "T1"; '
        'gene_name "MYG"; tag "basic"; tag "Ensembl_canonical";\n'
        'chr2\tHAVANA\texon\t100\t200\t.\t-\t.\tgene_id "G"; transcript_id "T1"; gene_name "MYG";\n'
        'chr2\tHAVANA\texon\t300\t900\t.\t-\t.\tgene_id "G"; transcript_id "T1"; gene_name "MYG";\n'
        'chr2\tHAVANA\texon\t50\t2000\t.\t-\t.\tgene_id "G"; transcript_id "T2"; '
        'gene_name "MYG";\n')
    gff = tmp_path / "genes.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "chr2\tx\tgene\t100\t900\t.\t-\t.\tID=gene:G;Name=MYG\n"
        "chr2\tx\tmRNA\t100\t900\t.\t-\t.\tID=T1;Parent=gene:G;gene_name=MYG;"
        "tag=basic,Ensembl_canonical\n"
        "chr2\tx\texon\t100\t200\t.\t-\t.\tParent=T1\n"
        "chr2\tx\texon\t300\t900\t.\t-\t.\tParent=T1\n"
        "chr2\tx\tmRNA\t50\t2000\t.\t-\t.\tID=T2;Parent=gene:G;gene_name=MYG\n"
        "chr2\tx\texon\t50\t2000\t.\t-\t.\tParent=T2\n")
    table = tmp_path / "genes.txt"
    table.write_text("#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n"
                     "MYG\tchr2\t-\t99\t900\t99,299,\t200,900,\n")
    expected = S.SpliceAnnotation.read(table)
    for path in (gtf, gff):
        ann = S.SpliceAnnotation.read(path)
        assert list(ann.names) == ["MYG"] and list(ann.strands) == ["-"]
        assert (ann.tx_starts[0], ann.tx_ends[0]) == (expected.tx_starts[0],
                                                      expected.tx_ends[0]) == (100, 900)
        np.testing.assert_array_equal(ann.boundaries[0], expected.boundaries[0])
        assert ann.distances(0, 250) == expected.distances(0, 250)
    from pmtoolkit.core.errors import BadInputError

    bad = tmp_path / "bad.gtf"
    bad.write_text("chr2\tx\texon\t1\n")
    with pytest.raises(BadInputError, match="line 1: 4 columns"):
        S.SpliceAnnotation.read(bad)


def test_banded_substitution_pass_equals_the_whole_window(model):
    """snv_forward computes only what a centre substitution can reach, from the reference
    pass's activations of a longer input (at any shift, as for sites sharing a region)."""
    net = model.nets[0]
    rng = np.random.default_rng(3)
    n = 2 * S.FLANK + 41
    seq = "".join(rng.choice(list("ACGTN"), n + 500))
    with torch.inference_mode():
        _, acts = S.forward_with_activations(net, torch.from_numpy(S.one_hot(seq).T[None].copy()))
        for shift in (0, 137, 500):
            window = seq[shift:shift + n]
            alt = window[:n // 2] + "G" + window[n // 2 + 1:]
            whole = net(torch.from_numpy(S.one_hot(alt).T[None].copy()))[0]
            banded = S.snv_forward(net, acts, shift, n, torch.from_numpy(S.one_hot("G")[0]))
            torch.testing.assert_close(banded, whole, atol=1e-6, rtol=1e-5)


def test_bcftools_reads_the_spliceai_vcf(model, shared_data, tmp_path, pmt):
    """The field as the original writes it works with bcftools' own filters (Debian's bcftools;
    .ci/run installs it where it can)."""
    import shutil
    import subprocess

    if shutil.which("bcftools") is None:
        pytest.skip("bcftools is not installed (apt-get install bcftools)")
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr2,length=2333275>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   "chr2\t1801800\tacceptor\tC\tA\t.\tPASS\t.\n"
                   "chr2\t1801830\tdeep\tT\tG\t.\tPASS\t.\n")
    out = tmp_path / "out.vcf.gz"
    fasta = shared_data / "variants" / "reference" / REFERENCE
    assert pmt("variants", "score", "-i", vcf, "-f", fasta, "-m", "spliceai", "-o", out,
               "--device", "cpu").exit_code == 0

    def bcftools(*args):
        return subprocess.run(["bcftools", *args], check=True, capture_output=True,
                              text=True).stdout

    assert S.INFO_HEADER in bcftools("view", "-h", str(out)).splitlines()
    rows = bcftools("query", "-f", "%ID\\t%INFO/SpliceAI\\n", str(out)).splitlines()
    assert [r.split("\t")[0] for r in rows] == ["acceptor", "deep"]
    assert rows[0].split("\t")[1].startswith("A|MYT1L|")
    # a region query through the tabix index, and a filter on the field's text
    assert bcftools("view", "-H", "-r", "chr2:1801800", str(out)).startswith("chr2\t1801800")
    hits = bcftools("view", "-H", "-i", 'INFO/SpliceAI~"0.75"', str(out))  # DS_AG 0.75
    assert [ln.split("\t")[2] for ln in hits.splitlines()] == ["acceptor"]
