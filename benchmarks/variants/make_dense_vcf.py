"""Write benchmarks/variants/dense_variants.vcf: SNVs at the density of one person's genome,
the throughput scenario of the SpliceAI parity benchmark (issue 25, item 2).

A whole-genome VCF holds about 4.5 M SNVs in 3.1 Gb, one per ~700 bp. This file places SNVs
along 100 kb inside MYT1L (hg38 chr2:1,900,001-2,000,000 of the shipped chunk; minus strand,
in SpliceAI's grch38 table) as a Poisson process of that rate: gaps drawn from an exponential
distribution of mean 700 bp, ALT a random other base, positions on N skipped. Seeded and
deterministic; REF always matches the FASTA (upper-cased).

    python benchmarks/variants/make_dense_vcf.py            # writes dense_variants.vcf beside it
"""
from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FASTA = HERE.parents[2] / "shared" / "data" / "variants" / "reference" / "chr2_1-2333275.fa.gz"
CONTIG, START, END = "chr2", 1_900_001, 2_000_000
MEAN_GAP = 700
SEED = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=HERE / "dense_variants.vcf")
    args = parser.parse_args()
    with gzip.open(FASTA, "rt") as fh:
        fh.readline()
        seq = "".join(line.strip() for line in fh).upper()
    rng = np.random.default_rng(SEED)
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID={CONTIG},length={len(seq)}>",
             f"##source=make_dense_vcf.py seed={SEED} mean_gap={MEAN_GAP}",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    pos = START + int(rng.exponential(MEAN_GAP))
    while pos <= END:
        ref = seq[pos - 1]
        if ref in "ACGT":
            alt = rng.choice([b for b in "ACGT" if b != ref])
            lines.append(f"{CONTIG}\t{pos}\t.\t{ref}\t{alt}\t.\t.\t.")
        pos += max(1, int(rng.exponential(MEAN_GAP)))
    args.output.write_text("\n".join(lines) + "\n")
    print(f"{len(lines) - 4} SNVs written to {args.output}")


if __name__ == "__main__":
    main()
