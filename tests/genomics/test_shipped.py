"""The shipped splice model: loads offline by name, calls junctions, reacts to a broken GT."""
from __future__ import annotations

import numpy as np

from pmtoolkit.genomics.run import load


def test_shipped_splice_model(shared_data):
    from pmtoolkit.genomics.data import read_sequence_table
    from pmtoolkit.genomics.model import evaluate

    model = load("splice")
    assert model.targets == ["EI", "IE", "N"] and model.window == 60
    assert model.recommended_scan == 20
    assert model.metadata["metrics"]["test"]["accuracy"] > 0.93
    # the whole UCI set (80% of it seen in training): a shipping sanity check
    data = read_sequence_table(shared_data / "variants" / "uci_splice" / "splice.csv",
                               window=60, task="multiclass", label_columns=["Class"],
                               sequence_column="Sequence")
    assert evaluate(model, data)["accuracy"] > 0.95
    # a donor of the UCI set (ATRINS-DONOR-521): the intron starts GT at bases 31-32
    donor = "CCAGCTGCATCACAGGAGGCCAGCGAGCAGGTCTGTTCCAAGGGCCTTCGAGCCAGTCTG"
    assert donor[30:32] == "GT"
    p = model.predict([donor, donor[:30] + "CA" + donor[32:]])
    assert p[0].argmax() == 0 and p[1, 0] < 0.1
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)


def test_shipped_mpra_model_scores_offline_and_names_its_motifs(pmt, test_data, tmp_path):
    """``-m mpra``: a fitted JASPAR motif model; it loads without pyjaspar's database (the
    matrices are in the file), scores a VCF end to end, and its centred ISM of a region
    equals scoring each substitution as a variant."""
    import pandas as pd

    from pmtoolkit.genomics.motifs import MotifModel
    from pmtoolkit.genomics.reference import Reference
    from pmtoolkit.genomics.score import VariantScorer
    from pmtoolkit.genomics.variants import Variant

    model = load("mpra")
    assert isinstance(model, MotifModel) and model.targets == ["activity"]
    assert len(model.names) > 500 and np.abs(model.weights).max() > 0
    metrics = model.metadata["metrics"]
    assert metrics["n_train"] > 30_000 and metrics["training_fit"]["mean_spearman"] > 0.15
    # the weights carry biology: the GC-box (SP/KLF) and GATA factors activate in these cells
    assert any(n.split()[1] in ("SP1", "SP2", "SP3", "GATA1::TAL1")
               for n in metrics["top_activators"][:5])

    ref = Reference(test_data / "genome_tiny.fa")
    seq = ref.fetch("chr1", 0, 400)
    variants = [Variant("chr1", p, seq[p - 1], "ACGT"[("ACGT".index(seq[p - 1]) + 1) % 4],
                        f"v{p}") for p in range(200, 210)]
    scores = VariantScorer(model, ref).score(variants)
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "".join(
                       f"{v.chrom}\t{v.pos}\t{v.id}\t{v.ref}\t{v.alt}\t.\t.\t.\n"
                       for v in variants))
    r = pmt("variants", "score", "-i", vcf, "-f", test_data / "genome_tiny.fa", "-m", "mpra",
            "-o", tmp_path / "out.tsv")
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    assert list(table.columns[:5]) == ["chrom", "pos", "id", "ref", "alt"]
    np.testing.assert_allclose(table["activity_diff"], scores.diff[:, 0], atol=1e-4)

    r = pmt("variants", "ism", "-m", "mpra", "--region", "chr1:200-209", "-f",
            test_data / "genome_tiny.fa", "-o", tmp_path / "ism")
    assert r.exit_code == 0, r.output
    ism = pd.read_csv(tmp_path / "ism" / "ism.tsv", sep="\t")
    assert list(ism["position"]) == list(range(200, 210))
    for v, d in zip(variants, scores.diff[:, 0]):
        row = ism[ism["position"] == v.pos].iloc[0]
        assert abs(row[f"activity_{v.alt}"] - d) < 1e-6
        assert row[f"activity_{v.ref}"] == 0
    assert (tmp_path / "ism" / "ism.png").stat().st_size > 1000
    assert not (tmp_path / "ism" / "gradient_x_input.tsv").exists()
    r = pmt("variants", "ism", "-m", "mpra", "--sequence", "A" * 2001, "-o", tmp_path / "ism2")
    assert r.exit_code == 2 and "2000 bases a motif model" in r.output
    assert not (tmp_path / "ism2").exists()
