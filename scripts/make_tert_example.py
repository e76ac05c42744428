"""Write the shipped TERT-promoter example (data/examples/tert_promoter.fa and .vcf) from the
saturation-mutagenesis MPRA table of Kircher et al. 2019 (GRCh38 rows of the TERT element as
measured in glioblastoma cells, TERT-GBM).

The FASTA is the 259-base element (GRCh38 chr5:1,294,989-1,295,247, plus strand; TERT is
transcribed from the minus strand) as one contig, ``TERT_promoter``. The VCF holds the two
recurrent cancer mutations of the promoter (C228T and C250T, named on the gene's strand: G>A
here; Horn et al. 2013, Huang et al. 2013) and, for contrast, the three variants the assay
found most damaging and three it found neutral, each with its measured log2 effect (INFO
EFFECT) and p-value.

    python scripts/make_tert_example.py
    python scripts/update_manifest.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "variants" / "mpra_satmut" / "elements.tsv.gz"
OUT = ROOT / "data" / "examples"
ELEMENT, CONTIG = "TERT-GBM", "TERT_promoter"
#: GRCh38 chr5 position -> name (on the gene's strand)
CANCER = {1295113: "C228T", 1295135: "C250T"}


def main() -> None:
    from pmtoolkit.genomics.mpra import load_mpra

    data = load_mpra(DATA)
    chrom, lo = data.offsets[ELEMENT]
    seq = data.elements[ELEMENT]
    k = np.flatnonzero(data.element == ELEMENT)
    snv = [i for i in k if len(data.variants[i].ref) == len(data.variants[i].alt) == 1]
    chosen: dict[int, str] = {}
    for i in snv:
        v = data.variants[i]
        name = CANCER.get(v.pos + lo - 1)
        if name and v.alt == "A":
            chosen[i] = name
    by_effect = sorted(snv, key=lambda i: data.effects[i])
    for i in by_effect[:3]:
        chosen[i] = "damaging"
    quiet = [i for i in snv if abs(data.effects[i]) < 0.02 and data.pvalues[i] > 0.5]
    for i in quiet[::max(1, len(quiet) // 3)][:3]:
        chosen[i] = "neutral"
    (OUT / "tert_promoter.fa").write_text(
        f">{CONTIG} GRCh38 chr{chrom}:{lo}-{lo + len(seq) - 1} (+ strand), TERT promoter\n"
        + "".join(seq[s:s + 60] + "\n" for s in range(0, len(seq), 60)))
    lines = ["##fileformat=VCFv4.2",
             f"##contig=<ID={CONTIG},length={len(seq)}>",
             '##INFO=<ID=EFFECT,Number=1,Type=Float,Description="Measured log2 expression '
             'effect in glioblastoma cells (Kircher et al. 2019, TERT-GBM)">',
             '##INFO=<ID=PVALUE,Number=1,Type=Float,Description="MPRA p-value">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for i in sorted(chosen, key=lambda i: data.variants[i].pos):
        v = data.variants[i]
        vid = chosen[i] if chosen[i] in CANCER.values() else f"{chosen[i]}_{v.pos}{v.ref}>{v.alt}"
        lines.append(f"{CONTIG}\t{v.pos}\t{vid}\t{v.ref}\t{v.alt}\t.\t.\t"
                     f"EFFECT={data.effects[i]:.4g};PVALUE={data.pvalues[i]:.3g}")
    (OUT / "tert_promoter.vcf").write_text("\n".join(lines) + "\n")
    import pysam

    pysam.faidx(str(OUT / "tert_promoter.fa"))  # shipped, so nothing is written at run time
    print("\n".join(lines[5:]))


if __name__ == "__main__":
    main()
