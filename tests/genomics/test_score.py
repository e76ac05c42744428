"""Variant scoring end to end: VCF in, annotated VCF / TSV out, rejects, CLI."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.genomics.config import SequenceModelConfig
from pmtoolkit.genomics.model import SequenceModel
from pmtoolkit.genomics.reference import Reference
from pmtoolkit.genomics.score import VariantScorer, info_key, score_vcf
from pmtoolkit.genomics.variants import Variant, allele_windows


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An untrained but deterministic 3-class model (scores need not mean anything here)."""
    import torch

    torch.manual_seed(0)
    cfg = SequenceModelConfig(task="multiclass", window=24, filters=(8, 8), kernels=(5, 3),
                              pools=(2, 2), hidden=8, device="cpu")
    m = SequenceModel(cfg, targets=["EI", "IE", "N"])
    m.network.eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    m.save(path)
    return m, path


def test_scores_match_the_model_on_the_windows(model, test_data):
    m, _ = model
    ref = Reference(test_data / "genome_tiny.fa")
    seq = ref.fetch("chr1", 0, 300)
    v = Variant("chr1", 100, seq[99], "A" if seq[99] != "A" else "G")
    scorer = VariantScorer(m, ref)
    s = scorer.score([v])
    r, a = allele_windows(v, ref, 24)
    np.testing.assert_allclose(s.ref[0], m.predict([r])[0], atol=1e-6)
    np.testing.assert_allclose(s.alt[0], m.predict([a])[0], atol=1e-6)
    np.testing.assert_allclose(s.diff, s.alt - s.ref)
    assert scorer.columns()[:4] == ["EI_ref", "EI_alt", "EI_diff", "EI_logodds"]
    assert info_key("pmt", "my model", "9a") == "pmt_my_model_9a"


def test_vcf_out_parses_and_accounts_for_every_record(model, test_data, tmp_path):
    import pysam

    m, _ = model
    ref = Reference(test_data / "genome_tiny.fa")
    out = tmp_path / "scored.vcf.gz"
    info = score_vcf(test_data / "variants_tiny.vcf", ref, m, out, ref_mismatch="skip",
                     model_name="tiny")
    assert info["variants_scored"] == 8 and info["records"] == 11 and info["rejected"] == 5
    with open(out, "rb") as fh:
        assert fh.read(4)[:2] == b"\x1f\x8b"  # bgzip
    vf = pysam.VariantFile(str(out))
    assert "pmt_tiny_EI_diff" in vf.header.info
    assert vf.header.info["pmt_tiny_EI_diff"].number == "A"
    recs = list(vf)
    assert [r.id for r in recs] == ["snv1", "mnv1", "del1", "ins1", "multi", "mismatch", "sym",
                                    "bnd", "nocontig", "edge", "mito"]
    multi = next(r for r in recs if r.id == "multi")
    assert len(multi.info["pmt_tiny_N_diff"]) == 2  # one value per ALT
    assert "pmt_tiny_N_diff" not in next(r for r in recs if r.id == "sym").info
    assert next(r for r in recs if r.id == "snv1").info["DP"] == 10  # input INFO kept
    rejected = pd.read_csv(tmp_path / "scored.rejected.csv")
    assert len(rejected) == 5 and rejected["line"].tolist() == [11, 12, 13, 14, 15]
    # TSV: the documented columns, one row per scored allele
    tsv = tmp_path / "scored.tsv"
    score_vcf(test_data / "variants_tiny.vcf", ref, m, tsv, ref_mismatch="skip")
    table = pd.read_csv(tsv, sep="\t")
    assert list(table.columns[:5]) == ["chrom", "pos", "id", "ref", "alt"]
    assert len(table) == 8 and table["id"].tolist().count("multi") == 2
    np.testing.assert_allclose(table["N_diff"], table["N_alt"] - table["N_ref"], atol=1e-3)


def test_vcf_out_keeps_every_input_line_byte_for_byte(model, test_data, tmp_path):
    """Only the INFO column gains the model's fields: a value pysam would rewrite
    (PVALUE=2.94e-218 became PVALUE=0), the header and unscored records stay as written."""
    import pysam

    m, _ = model
    src = (test_data / "variants_tiny.vcf").read_text().splitlines(keepends=True)
    header = [ln for ln in src if ln.startswith("#")]
    body = [ln for ln in src if not ln.startswith("#")]
    cols = body[0].rstrip("\n").split("\t")
    cols[7] = "PVALUE=2.94e-218;NOTE=a%3Bb"
    body[0] = "\t".join(cols) + "\n"
    decl = '##INFO=<ID=PVALUE,Number=1,Type=Float,Description="p">\n' \
           '##INFO=<ID=NOTE,Number=1,Type=String,Description="n">\n'
    vcf = tmp_path / "in.vcf"
    vcf.write_text("".join(header[:-1]) + decl + header[-1] + "".join(body))
    out = tmp_path / "out.vcf.gz"
    score_vcf(vcf, Reference(test_data / "genome_tiny.fa"), m, out, ref_mismatch="skip",
              model_name="tiny")
    lines = pysam.BGZFile(str(out)).read().decode().splitlines(keepends=True)
    written = [ln for ln in lines if not ln.startswith("#")]
    assert written[0].startswith(body[0].rstrip("\n") + ";pmt_tiny_EI_diff=")
    original = "".join(header[:-1]) + decl
    assert "".join(ln for ln in lines if ln.startswith("##")).startswith(original)
    parsable = [ln for ln in body if ln.split("\t")[1].isdigit()]  # the rest: rejects
    assert len(written) == len(parsable)
    for before, after in zip(parsable, written):
        assert after.split("\t")[:7] == before.split("\t")[:7]
        kept = before.rstrip("\n").split("\t")[7]
        assert after.rstrip("\n").split("\t")[7].startswith(kept if kept != "." else "")


def test_ref_mismatch_error_writes_nothing(model, test_data, tmp_path):
    m, _ = model
    ref = Reference(test_data / "genome_tiny.fa")
    out = tmp_path / "x.tsv"
    with pytest.raises(BadInputError, match="line 11"):
        score_vcf(test_data / "variants_tiny.vcf", ref, m, out)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BadInputError, match="BCF output"):
        score_vcf(test_data / "variants_tiny.vcf", ref, m, tmp_path / "x.bcf")


def test_cli_score_train_ism(pmt, model, test_data, tmp_path):
    _, path = model
    out = tmp_path / "s.tsv"
    r = pmt("variants", "score", "-i", test_data / "variants_tiny.vcf", "-f",
            test_data / "genome_tiny.fa", "-m", path, "-o", out, "--ref-mismatch", "skip")
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(out, sep="\t")) == 8
    r = pmt("variants", "score", "-i", test_data / "variants_tiny.vcf", "-f",
            test_data / "genome_tiny.fa", "-m", path, "-o", tmp_path / "e.tsv")
    assert r.exit_code == 2 and "does not match the reference" in r.output
    assert not (tmp_path / "e.tsv").exists()
    r = pmt("variants", "score", "-i", test_data / "variants_tiny.vcf", "-f",
            test_data / "genome_tiny.fa", "-m", "no_such_model", "-o", tmp_path / "e.tsv")
    assert r.exit_code == 2
    # train on a tiny table, then draw ISM of a reference region
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 24)) for _ in range(40)]
    pd.DataFrame({"sequence": seqs, "cls": ["a", "b"] * 20}).to_csv(tmp_path / "t.csv",
                                                                    index=False)
    r = pmt("variants", "train", "-i", tmp_path / "t.csv", "-l", "cls", "--task", "multiclass",
            "--window", 24, "--filters", 8, "--filters", 8, "--kernels", 5, "--kernels", 3,
            "--pools", 2, "--pools", 2, "--hidden-size", 8, "--epochs", 1, "--device", "cpu",
            "-o", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert {"model.safetensors", "metrics.json", "split.json", "config.json",
            "test_predictions.csv"} <= {p.name for p in (tmp_path / "run").iterdir()}
    r = pmt("variants", "ism", "-m", tmp_path / "run" / "model.safetensors", "--region",
            "chr1:100-110", "-f", test_data / "genome_tiny.fa", "-o", tmp_path / "ism")
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "ism" / "ism.tsv", sep="\t")
    assert table["position"].tolist() == list(range(100, 111))
    assert (tmp_path / "ism" / "ism.png").stat().st_size > 1000
    r = pmt("variants", "ism", "-m", path, "--region", "chr1:100-200", "-f",
            test_data / "genome_tiny.fa", "-o", tmp_path / "ism2")
    assert r.exit_code == 2 and "longer than the model window" in r.output
    r = pmt("variants", "train", "-i", tmp_path / "t.csv", "-l", "nope", "-o", tmp_path / "r2")
    assert r.exit_code == 2 and "nope" in r.output


def test_jaspar_motif_scorer_finds_a_destroyed_site(test_data, tmp_path):
    from pmtoolkit.genomics.motifs import MotifModel
    from pmtoolkit.genomics.sequence import codes

    m = MotifModel()
    assert len(m.names) > 500 and m.window == 2 * m.k_max - 1
    rng = np.random.default_rng(1)
    flank = "".join(rng.choice(list("ACGT"), m.window))
    ctcf = next(s for n, s in zip(m.names, m.consensus) if n.endswith(" CTCF"))
    c = m.window // 2
    at = c - len(ctcf) // 2
    ref = flank[:at] + ctcf + flank[at + len(ctcf):]
    alt = ref[:c] + ("A" if ref[c] != "A" else "T") + ref[c + 1:]  # mid-site substitution
    r, a = codes(ref)[None], codes(alt)[None]
    top = m.top(r, a, k=5)[0]
    assert any("CTCF" in name and delta < 0 for name, delta in top)
    # reverse-complementing the window does not change the strand-blind score
    from pmtoolkit.genomics.sequence import reverse_complement

    np.testing.assert_allclose(m.predict([ref]), m.predict([reverse_complement(ref)]),
                               rtol=1e-5)
    assert m.predict(["N" * m.window])[0, 0] == 0.0


def test_scan_keeps_the_largest_change_over_offsets(model, test_data):
    m, _ = model
    ref = Reference(test_data / "genome_tiny.fa")
    seq = ref.fetch("chr1", 0, 300)
    v = Variant("chr1", 120, seq[119], "A" if seq[119] != "A" else "G")
    plain = VariantScorer(m, ref).score([v])
    scanned = VariantScorer(m, ref, scan=3).score([v])
    assert (np.abs(scanned.diff) >= np.abs(plain.diff) - 1e-9).all()
    # the kept change is the one of some offset's windows
    r, a = allele_windows(v, ref, 24 + 6)
    per_offset = [m.predict([a[o:o + 24]])[0] - m.predict([r[o:o + 24]])[0] for o in range(7)]
    for t in range(3):
        assert min(abs(scanned.diff[0, t] - d[t]) for d in per_offset) < 1e-6
    with pytest.raises(BadInputError):
        VariantScorer(m, ref, scan=-1)


def test_scores_in_small_chunks_equal_one_batch(model, test_data):
    """A tiny --batch-size (or a wide --scan) scores a few variants' windows at a time; the
    scores are those of one batch."""
    m, _ = model
    ref = Reference(test_data / "genome_tiny.fa")
    seq = ref.fetch("chr1", 0, 300)
    variants = [Variant("chr1", p, seq[p - 1], "A" if seq[p - 1] != "A" else "C")
                for p in range(20, 280, 13)]
    one = VariantScorer(m, ref, scan=4).score(variants)
    chunked = VariantScorer(m, ref, scan=4, batch_size=1).score(variants)
    np.testing.assert_allclose(chunked.ref, one.ref, atol=1e-6)
    np.testing.assert_allclose(chunked.alt, one.alt, atol=1e-6)
    assert VariantScorer(m, ref, batch_size=10**9).batch_size * m.window <= 1 << 24


def test_fitted_motif_weights_recover_a_planted_factor_and_round_trip(tmp_path):
    """Effects made by one motif (CTCF sites: losing one lowers activity by its strength)
    give CTCF the largest weight; the saved model predicts the same without pyjaspar."""
    from pmtoolkit.core.model import load_model
    from pmtoolkit.genomics.model import EffectData
    from pmtoolkit.genomics.motifs import MotifConfig, MotifModel, fit_motif_effects
    from pmtoolkit.genomics.sequence import codes

    base = MotifModel()
    j = next(i for i, n in enumerate(base.names) if n.endswith(" CTCF"))
    site = base.consensus[j]
    rng = np.random.default_rng(0)
    c = base.window // 2
    refs, alts = [], []
    for i in range(600):
        seq = list(rng.choice(list("ACGT"), base.window))
        if i % 2 == 0:  # half the windows hold a CTCF site over the centre
            at = c - rng.integers(0, len(site))
            seq[at:at + len(site)] = site
            seq = seq[:base.window]
        p = c
        alt = seq.copy()
        alt[p] = "ACGT"[("ACGT".index(seq[p]) + 1 + i % 3) % 4]
        refs.append(codes("".join(seq)))
        alts.append(codes("".join(alt)))
    ref, alt = np.stack(refs), np.stack(alts)
    y = 2.0 * (base.strengths(alt)[:, j] - base.strengths(ref)[:, j])
    y += rng.normal(0, 0.05, len(y))
    model = fit_motif_effects(EffectData(ref, alt, y), MotifConfig(alpha=1.0), base=base)
    assert int(np.argmax(model.weights)) == j and model.weights[j] > 1.0
    d = model.predict_codes(alt)[:, 0] - model.predict_codes(ref)[:, 0]
    assert np.corrcoef(d, y)[0, 1] > 0.9
    assert model.top(ref[:1], alt[:1], k=1)[0][0][0].endswith("CTCF") or y[0] == 0

    path = tmp_path / "motifs.safetensors"
    model.save(path)
    back = load_model(path)
    assert isinstance(back, MotifModel) and back.names == model.names
    np.testing.assert_allclose(back.predict_codes(alt), model.predict_codes(alt), atol=1e-5)
    with pytest.raises(BadInputError, match="windows"):
        fit_motif_effects(EffectData(ref[:, 1:], alt[:, 1:], y), base=base)


def test_motif_best_scores_equal_a_direct_scan():
    """The length-grouped matrix products give each motif's best log-odds over exactly the
    placements that cover the centre, on either strand (N bases count 1/4 of each)."""
    from pmtoolkit.genomics.model import _ROWS
    from pmtoolkit.genomics.motifs import MotifModel

    m = MotifModel()
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 5, (4, m.window)).astype(np.uint8)
    got = m.best_scores(codes)
    c = m.k_max - 1
    for j in rng.choice(len(m.names), 25, replace=False):
        k = int(m.lengths[j])
        fwd = m._forward[j, :, :k]
        rev = fwd[::-1, ::-1]
        for b in range(len(codes)):
            x = _ROWS[codes[b]].T  # (4, window)
            want = max(float((x[:, s:s + k] * f).sum())
                       for s in range(c - k + 1, c + 1) for f in (fwd, rev))
            assert abs(got[b, j] - want) < 1e-4
