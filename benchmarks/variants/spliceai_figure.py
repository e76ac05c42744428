"""The picture in docs/variants.md: SpliceAI's acceptor and donor probabilities along MYT1L
around one exon, for the reference and for a substitution of the exon's acceptor AG, with the
delta scores pmt writes for it.

    python benchmarks/variants/spliceai_figure.py

Needs the spliceai extra and ../shared/data/variants/reference (hg38 chr2:1-2,333,275).
MYT1L is on the minus strand: the exon ending at chr2:1,801,799 is entered from the intron on
its right, whose last two bases (AG on the gene's strand) read CT at 1,801,800-1,801,801 on the
plus strand; C>A at 1,801,800 breaks that AG.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FASTA = ROOT.parent / "shared" / "data" / "variants" / "reference" / "chr2_1-2333275.fa.gz"
OUT = ROOT / "docs" / "images" / "spliceai_myt1l_acceptor.png"
POS, REF, ALT = 1801800, "C", "A"
SPAN = 400  # positions either side drawn


def main() -> None:
    from pmtoolkit.core.plots import figure
    from pmtoolkit.genomics.reference import Reference
    from pmtoolkit.genomics.spliceai import SpliceAI, SpliceAnnotation, SpliceScorer
    from pmtoolkit.genomics.variants import Variant

    genes = SpliceAnnotation.read("grch38")
    with Reference(FASTA) as ref:
        scorer = SpliceScorer(SpliceAI(device="cpu"), ref, genes, distance=SPAN)
        variant = Variant("chr2", POS, REF, ALT)
        g = int(genes.genes_at("chr2", POS)[0])
        x_ref, x_alt = scorer._windows(variant, g)
        y_ref, y_alt = scorer._predict([x_ref, x_alt], ["-", "-"])
        (call,) = SpliceScorer(scorer.model, ref, genes, distance=50).score([variant])[0]
    x = np.arange(POS - SPAN, POS + SPAN + 1)
    boundaries = [b for b in genes.boundaries[g] if abs(b - POS) <= SPAN]
    with figure(OUT, size=(7.5, 3.8)) as (fig, ax):
        for k, (name, colour) in enumerate((("acceptor", "#3867d6"), ("donor", "#eb3b5a")),
                                           start=1):
            ax.plot(x, y_ref[:, k], color=colour, lw=1.2, label=f"{name}, reference")
            ax.plot(x, y_alt[:, k], color=colour, lw=1.2, ls="--", label=f"{name}, {REF}>{ALT}")
        for b in boundaries:
            ax.axvline(b, color="#999999", lw=0.8, ls=":")
        ax.plot([POS], [-0.06], marker="^", color="#20bf6b", ms=7, clip_on=False,
                label=f"variant {REF}>{ALT}")
        ax.set_ylim(-0.08, 1.05)
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
        ax.set_xlabel("chr2 position (GRCh38); dotted: annotated exon boundaries")
        ax.set_ylabel("SpliceAI probability")
        ds = " ".join(f"{n} {v:.2f}" for n, v in zip(("AG", "AL", "DG", "DL"), call.scores))
        ax.set_title(f"MYT1L (minus strand), chr2:{POS} {REF}>{ALT} breaks the exon's acceptor "
                     f"AG\nmean of SpliceAI's five models; delta scores (±50 nt): {ds}",
                     fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    print(f"wrote {OUT}: {call.info()}")


if __name__ == "__main__":
    main()
