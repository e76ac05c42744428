"""Write benchmarks/variants/parity_variants.vcf: the input of the SpliceAI parity check (issue 25, item 2).

About 60 variants on the shipped hg38 chunk (chr2:1-2,333,275), chosen around the internal exon
boundaries of the genes that spliceai's own ``annotations/grch38.txt`` lists in that range
(FAM110C, SH3YL1, ACP1, FAM150B, TMEM18, SNTG2, TPO, PXDN, MYT1L), both strands:

* SNVs at the canonical donor GT (+1/+2) and acceptor AG (-1/-2) positions,
* SNVs near the boundaries (donor +3..+8 and exonic -1..-3, acceptor -3..-8 and exonic +1..+3),
* deep-intronic SNVs (>= 1 kb from every exon boundary) and mid-exon SNVs,
* 1-4 bp deletions (one spanning a donor) and 1-3 bp insertions,
* multi-allelic records (three SNV ALTs; and a deletion ALT beside a 2-bp substitution ALT, which
  the original reports as ``.`` scores),
* variants close to a transcript's start/end (SpliceAI pads the window with N outside the transcript),
* variants within 5,050 bp of the chunk's last base (the original skips them as "near chromosome
  end"; 2,328,225 is the last position scored at -D 50, 2,328,226 the first skipped), and variants
  within 5 kb of the contig start plus one intergenic variant (no gene: no SpliceAI field).

REF always matches the FASTA (upper-cased). IDs say what each variant is, e.g. ``TPO|+|donor|+5``:
gene, strand, site, offset in transcript orientation (donor: +k intronic, -k exonic; acceptor:
-k intronic, +k exonic). Deterministic: seeded RNG, no dependence on the environment beyond the
FASTA and the annotation table.

    python benchmarks/variants/make_parity_vcf.py            # writes parity_variants.vcf beside it
    python benchmarks/variants/make_parity_vcf.py --annotation path/to/grch38.txt -o out.vcf
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
FASTA = Path("/work/shared/data/variants/reference/chr2_1-2333275.fa.gz")
CONTIG = "chr2"
SEED = 25
HALF_WINDOW = 5050  # (10000 + 2*50 + 1) // 2 at -D 50
COMP = str.maketrans("ACGT", "TGCA")


def default_annotation() -> Path:
    # importing spliceai itself needs pkg_resources; locate the wheel's files without importing it
    spec = importlib.util.find_spec("spliceai")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("spliceai is not installed here: pass --annotation path/to/grch38.txt")
    return Path(spec.submodule_search_locations[0]) / "annotations" / "grch38.txt"


def read_fasta(path: Path) -> tuple[str, str]:
    with gzip.open(path, "rt") as fh:  # bgzip is gzip-compatible
        header = fh.readline().strip()
        seq = "".join(line.strip() for line in fh)
    return header[1:].split()[0], seq


def read_genes(path: Path, length: int) -> list[dict]:
    genes = []
    with open(path) as fh:
        next(fh)
        for line in fh:
            name, chrom, strand, tx_start, tx_end, ex_s, ex_e = line.rstrip("\n").split("\t")
            if chrom.removeprefix("chr") != "2" or int(tx_end) > length:
                continue
            starts = [int(x) + 1 for x in ex_s.split(",") if x]  # 1-based, as spliceai's Annotator
            ends = [int(x) for x in ex_e.split(",") if x]
            genes.append({"name": name, "strand": strand, "tx_start": int(tx_start) + 1, "tx_end": int(tx_end),
                              "exons": sorted(zip(starts, ends))})
    return genes


def sites(gene: dict) -> list[dict]:
    """Internal splice sites with a function mapping transcript-orientation offset -> 1-based position."""
    out = []
    ex = gene["exons"]
    plus = gene["strand"] == "+"
    for k in range(len(ex) - 1):
        e_left, s_right = ex[k][1], ex[k + 1][0]  # intron is e_left+1 .. s_right-1
        left = ("donor" if plus else "acceptor", e_left)
        right = ("acceptor" if plus else "donor", s_right)
        for kind, b in (left, right):
            is_left = b == e_left
            # intronic offsets point into the intron, exonic ones into the exon
            if is_left:  # boundary exon end at b: intron b+1.., exon ..b
                intr = lambda d, b=b: b + d          # d >= 1
                exon = lambda d, b=b: b - d + 1      # d >= 1
            else:        # boundary exon start at b: intron ..b-1, exon b..
                intr = lambda d, b=b: b - d
                exon = lambda d, b=b: b + d - 1
            out.append({"gene": gene, "kind": kind, "boundary": b, "intron": intr, "exon": exon,
                            "intron_len": s_right - e_left - 1})
    return out


def offset_label(kind: str, intronic: bool, d: int) -> str:
    if kind == "donor":
        return f"+{d}" if intronic else f"-{d}"
    return f"-{d}" if intronic else f"+{d}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fasta", type=Path, default=FASTA)
    ap.add_argument("--annotation", type=Path, default=None)
    ap.add_argument("-o", "--output", type=Path, default=HERE / "parity_variants.vcf")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()

    contig, seq = read_fasta(args.fasta)
    length = len(seq)
    genes = read_genes(args.annotation or default_annotation(), length)
    rng = random.Random(args.seed)
    ref = lambda pos, n=1: seq[pos - 1:pos - 1 + n].upper()
    records: dict[tuple, tuple] = {}

    def add(pos: int, r: str, alts: list[str], vid: str, cls: str) -> None:
        assert r == ref(pos, len(r)) and "N" not in r[1:] or cls == "contig_start", (pos, r)
        key = (pos, r, tuple(alts))
        if any(k[0] == pos for k in records):
            return
        records[key] = (pos, r, alts, vid, cls)

    def snv(pos: int, vid: str, cls: str) -> None:
        r = ref(pos)
        if r not in "ACGT":
            return
        add(pos, r, [rng.choice([b for b in "ACGT" if b != r])], vid, cls)

    def site_id(s: dict, intronic: bool, d: int) -> str:
        g = s["gene"]
        return f"{g['name']}|{g['strand']}|{s['kind']}|{offset_label(s['kind'], intronic, d)}"

    # sites whose whole +-HALF_WINDOW window lies inside the chunk (near-end cases are chosen below)
    all_sites = [s for g in genes for s in sites(g)
                 if HALF_WINDOW < s["boundary"] < length - HALF_WINDOW - 10 and s["intron_len"] > 60]
    donors = [s for s in all_sites if s["kind"] == "donor"]
    acceptors = [s for s in all_sites if s["kind"] == "acceptor"]
    rng.shuffle(donors)
    rng.shuffle(acceptors)

    # 1. canonical dinucleotides: 6 donors (+1/+2), 6 acceptors (-1/-2)
    for s in donors[:6]:
        d = rng.choice([1, 2])
        snv(s["intron"](d), site_id(s, True, d), "canonical")
    for s in acceptors[:6]:
        d = rng.choice([1, 2])
        snv(s["intron"](d), site_id(s, True, d), "canonical")
    # 2. near the boundaries: donor +3..+8 / exonic -1..-3, acceptor -3..-8 / exonic +1..+3
    for s in donors[6:14]:
        intronic = rng.random() < 0.6
        d = rng.randint(3, 8) if intronic else rng.randint(1, 3)
        snv((s["intron"] if intronic else s["exon"])(d), site_id(s, intronic, d), "near_boundary")
    for s in acceptors[6:14]:
        intronic = rng.random() < 0.6
        d = rng.randint(3, 8) if intronic else rng.randint(1, 3)
        snv((s["intron"] if intronic else s["exon"])(d), site_id(s, intronic, d), "near_boundary")
    # 3. deep intronic: >= 1 kb from every exon boundary of the gene
    long_introns = [s for s in acceptors if s["intron_len"] > 4000]
    for s in long_introns[:6]:
        d = rng.randint(1000, s["intron_len"] - 1000)
        snv(s["intron"](d), f"{s['gene']['name']}|{s['gene']['strand']}|deep_intronic|{d}", "deep_intronic")
    # 4. mid-exon SNVs
    for s in donors[14:17]:
        g = s["gene"]
        exon = next(e for e in g["exons"] if s["boundary"] in e)
        pos = (exon[0] + exon[1]) // 2
        snv(pos, f"{g['name']}|{g['strand']}|exon_middle|{pos - exon[0] + 1}of{exon[1] - exon[0] + 1}", "exon_middle")
    # 5. deletions (VCF: anchor base + deleted bases -> anchor base)
    for n, s in zip([1, 2, 3, 4], donors[17:21]):
        pos = s["intron"](rng.randint(2, 6))
        r = ref(pos, n + 1)
        add(pos, r, [r[0]], f"{s['gene']['name']}|{s['gene']['strand']}|del{n}|near_{s['kind']}", "deletion")
    s = donors[21]  # deletion spanning the donor: exonic -2 .. intronic +2 in genomic order
    lo = min(s["exon"](2), s["intron"](2))
    r = ref(lo - 1, 5)
    add(lo - 1, r, [r[0]], f"{s['gene']['name']}|{s['gene']['strand']}|del4|spans_donor", "deletion")
    # 6. insertions (anchor base -> anchor base + inserted bases)
    for n, s in zip([1, 2, 3], acceptors[14:17]):
        pos = s["intron"](rng.randint(2, 10))
        r = ref(pos)
        ins = "".join(rng.choice("ACGT") for _ in range(n))
        add(pos, r, [r + ins], f"{s['gene']['name']}|{s['gene']['strand']}|ins{n}|near_{s['kind']}", "insertion")
    s = acceptors[17]  # insertion right at the acceptor: between intronic -1 and exonic +1
    pos = min(s["intron"](1), s["exon"](1))
    r = ref(pos)
    add(pos, r, [r + "T"], f"{s['gene']['name']}|{s['gene']['strand']}|ins1|at_acceptor", "insertion")
    # 7. multi-allelic: three SNV ALTs at a donor +5; a deletion ALT beside a 2-bp substitution ALT
    s = donors[22]
    pos = s["intron"](5)
    r = ref(pos)
    add(pos, r, [b for b in "ACGT" if b != r], f"{site_id(s, True, 5)}|multiallelic", "multiallelic")
    s = acceptors[18]
    pos = min(s["intron"](4), s["intron"](3))
    r = ref(pos, 2)
    mnv = "".join({"A": "C", "C": "G", "G": "T", "T": "A"}[b] for b in r)
    add(pos, r, [r[0], mnv], f"{s['gene']['name']}|{s['gene']['strand']}|del1+mnv2|near_{s['kind']}", "multiallelic")
    # 8. near a transcript start/end (window padded with N outside the transcript)
    for g in [g for g in genes if g["name"] in ("TPO", "SH3YL1")]:
        snv(g["tx_start"] + 30, f"{g['name']}|{g['strand']}|tx_start+30", "near_tx_end")
        snv(g["tx_end"] - 2000, f"{g['name']}|{g['strand']}|tx_end-2000", "near_tx_end")
    # 9. near the chunk's end (MYT1L, - strand, tx end 2,331,116): cut-off at -D 50 is pos > length-5050
    myt1l = next(g for g in genes if g["name"] == "MYT1L")
    last = length - HALF_WINDOW
    for pos, tag in [(last - 1, "end-5051"), (last, "last_scored_at_D50"), (last + 1, "first_skipped_at_D50")]:
        snv(pos, f"MYT1L|-|contig_end|{tag}", "contig_end")
    for s in sites(myt1l):
        if s["boundary"] > last:
            snv(s["intron"](1), f"{site_id(s, True, 1)}|contig_end", "contig_end")
            snv(s["intron"](5), f"{site_id(s, True, 5)}|contig_end", "contig_end")
    snv(myt1l["tx_end"] - 5, "MYT1L|-|tx_end-5|contig_end", "contig_end")
    # 10. near the contig start (hg38 chr2 starts with 10 kb of N: REF is N, no gene) and intergenic
    for pos in (1000, 4000):
        add(pos, "N", ["A"], f"contig_start|{pos}", "contig_start")
    tm, sn = next(g for g in genes if g["name"] == "TMEM18"), next(g for g in genes if g["name"] == "SNTG2")
    snv((tm["tx_end"] + sn["tx_start"]) // 2, "intergenic|TMEM18-SNTG2", "intergenic")

    rows = sorted(records.values(), key=lambda x: (x[0], x[1]))
    lines = [
        "##fileformat=VCFv4.2",
        f"##source=pmtoolkit benchmarks/variants/make_parity_vcf.py (seed {args.seed})",
        f"##reference={args.fasta.name}",
        f"##contig=<ID={contig},length={length},assembly=GRCh38>",
        '##INFO=<ID=PARITY_CLASS,Number=1,Type=String,Description="Why this variant is in the parity set">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    for pos, r, alts, vid, cls in rows:
        lines.append(f"{contig}\t{pos}\t{vid}\t{r}\t{','.join(alts)}\t.\t.\tPARITY_CLASS={cls}")
    args.output.write_text("\n".join(lines) + "\n")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[4]] = counts.get(row[4], 0) + 1
    print(f"wrote {len(rows)} records to {args.output}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
