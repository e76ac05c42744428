"""pmtoolkit's torch SpliceAI beside the original SpliceAI 1.3.1, on the same VCF, FASTA and
annotation, in one run on the same machine (issue 25, item 2).

    python benchmarks/variants/spliceai_parity.py [--anchor-python /tmp/spliceai-anchor/bin/python]

Scores ``benchmarks/variants/parity_variants.vcf`` (61 records on hg38 chr2:1-2,333,275, built by
``make_parity_vcf.py``: sites spread over the genes, most far apart) with ``pmt variants score -m
spliceai`` and with the original tool (``spliceai_runner.py`` in the environment
``setup_spliceai_env.sh`` makes), with -D 50 and -M 0 and 1, and compares every delta score and
position, unrounded. Then the throughput scenario: ``dense_variants.vcf`` (``make_dense_vcf.py``:
142 SNVs along 100 kb of MYT1L at one genome's SNV density, one per ~700 bp), -M 0, both tools
again, compared the same way. Without the anchor environment it compares against the committed
anchor outputs in ``anchor/`` and says so. Writes ``docs/benchmarks/spliceai_parity.md`` and
``.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VCF = HERE / "parity_variants.vcf"
DENSE = HERE / "dense_variants.vcf"
FASTA = ROOT.parent / "shared" / "data" / "variants" / "reference" / "chr2_1-2333275.fa.gz"
DOCS = ROOT / "docs" / "benchmarks"
DS = ["DS_AG", "DS_AL", "DS_DG", "DS_DL"]
DP = ["DP_AG", "DP_AL", "DP_DG", "DP_DL"]
KEY = ["chrom", "pos", "ref", "alt", "gene"]


def run_ours(mask: int, out: Path, vcf: Path = VCF) -> float:
    cmd = [sys.executable, "-m", "pmtoolkit.cli", "-q", "variants", "score", "-i", str(vcf),
           "-f", str(FASTA), "-m", "spliceai", "--distance", "50",
           "--mask" if mask else "--no-mask", "-o", str(out), "--device", "cpu", "--overwrite"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def run_anchor(python: str, mask: int, out: Path, vcf: Path = VCF) -> float:
    cmd = [python, str(HERE / "spliceai_runner.py"), "-I", str(vcf), "-O", str(out), "-R",
           str(FASTA), "-A", "grch38", "-D", "50", "-M", str(mask), "--threads", "2"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def compare(anchor_tsv: Path, ours_tsv: Path) -> dict:
    a = pd.read_csv(anchor_tsv, sep="\t", dtype=str).rename(
        columns={"CHROM": "chrom", "POS": "pos", "REF": "ref", "ALT": "alt", "GENE": "gene"})
    o = pd.read_csv(ours_tsv, sep="\t", dtype=str)
    m = a.merge(o, on=KEY, how="outer", suffixes=("_a", "_o"), indicator=True)
    scored = m[(m["STATUS"] == "scored") & (m["_merge"] == "both")]
    diff = np.abs(scored[[c + "_a" for c in DS]].astype(float).to_numpy()
                  - scored[[c + "_o" for c in DS]].astype(float).to_numpy())
    same_dp = (scored[[c + "_a" for c in DP]].astype(int).to_numpy()
               == scored[[c + "_o" for c in DP]].astype(int).to_numpy())
    rounded = (np.round(scored[[c + "_a" for c in DS]].astype(float).to_numpy(), 2)
               == np.round(scored[[c + "_o" for c in DS]].astype(float).to_numpy(), 2))
    dots = m[(m["STATUS"] == "dot")]
    only_ours = m[(m["_merge"] == "right_only")
                  | ((m["STATUS"] == "skipped") & m["DS_AG_o"].notna()
                     & (m["DS_AG_o"] != "."))]
    skipped = a[a["STATUS"] == "skipped"]
    return {"pairs_compared": int(len(scored)),
            "max_abs_diff": {k: float(v) for k, v in zip(DS, diff.max(0))},
            "positions_equal": float(same_dp.mean()),
            "two_decimal_scores_equal": float(rounded.mean()),
            "dot_entries_both": int((dots["DS_AG_o"] == ".").sum()), "dot_entries": len(dots),
            "anchor_skipped": [f"{r.chrom}:{r.pos} {r.WARNING}" for r in skipped.itertuples()],
            "scored_only_by_pmtoolkit": [
                f"{r.chrom}:{r.pos} {r.ref}>{r.alt} {r.gene} (max DS "
                f"{max(float(getattr(r, c + '_o')) for c in DS):.2f})"
                for r in only_ours.itertuples()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchor-python", default="/tmp/spliceai-anchor/bin/python")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pmt-spliceai-parity"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    have_anchor = Path(args.anchor_python).exists()
    rows, results = [], {}
    for mask in (0, 1):
        ours = args.work / f"ours_M{mask}.tsv"
        t_ours = run_ours(mask, ours)
        if have_anchor:
            anchor_vcf = args.work / f"anchor_M{mask}.vcf"
            t_anchor = run_anchor(args.anchor_python, mask, anchor_vcf)
            anchor_tsv = anchor_vcf.with_suffix(".tsv")
        else:
            t_anchor = None
            anchor_tsv = HERE / "anchor" / f"spliceai_D50_M{mask}.tsv"
        cmp = compare(anchor_tsv, ours)
        cmp.update({"seconds_pmtoolkit": t_ours, "seconds_original": t_anchor})
        results[f"M{mask}"] = cmp
        rows.append((mask, cmp, t_ours, t_anchor))
    n_records = sum(1 for ln in VCF.read_text().splitlines() if not ln.startswith("#"))
    n_dense = sum(1 for ln in DENSE.read_text().splitlines() if not ln.startswith("#"))
    dense_ours = args.work / "dense_ours.tsv"
    t_ours = run_ours(0, dense_ours, DENSE)
    if have_anchor:
        dense_anchor = args.work / "dense_anchor.vcf"
        t_anchor = run_anchor(args.anchor_python, 0, dense_anchor, DENSE)
        dense_anchor_tsv = dense_anchor.with_suffix(".tsv")
    else:
        t_anchor = None
        dense_anchor_tsv = HERE / "anchor" / "dense_D50_M0.tsv"
    dense = compare(dense_anchor_tsv, dense_ours)
    dense.update({"records": n_dense, "seconds_pmtoolkit": t_ours,
                  "seconds_original": t_anchor})
    results["dense_M0"] = dense
    results.update({"records": n_records, "cores": os.cpu_count(), "machine": platform.machine(),
                    "anchor_run_here": have_anchor, "date": time.strftime("%Y-%m-%d")})
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "spliceai_parity.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# SpliceAI parity: pmtoolkit's torch port beside the original", "",
        f"{results['date']}, {results['machine']}, {results['cores']} cores, no GPU. "
        f"`python benchmarks/variants/spliceai_parity.py`: {n_records} records of "
        "`benchmarks/variants/parity_variants.vcf` on hg38 chr2:1-2,333,275 (exon boundaries "
        "of MYT1L, TPO, SNTG2 and other genes of SpliceAI's grch38 table, deep intronic, "
        "indels, a multi-allelic record, variants within 5 kb of the contig ends), "
        "annotation grch38, -D 50. The original: spliceai 1.3.1 with TensorFlow-CPU through "
        "tf_keras (benchmarks/variants/setup_spliceai_env.sh), 2 threads; "
        + ("run in the same driver." if have_anchor else
           "NOT run here (no anchor environment): compared with its committed outputs in "
           "benchmarks/variants/anchor/, and no speed ratio is given."), "",
        "| mask | pairs compared | max abs diff DS_AG / DS_AL / DS_DG / DS_DL | DP equal | "
        "2-decimal DS equal | pmtoolkit (s) | original (s) | speed-up |",
        "|---|---|---|---|---|---|---|---|"]
    for mask, cmp, t_ours, t_anchor in rows:
        d = cmp["max_abs_diff"]
        original = f"{t_anchor:.0f}" if t_anchor else "-"
        ratio = f"{t_anchor / t_ours:.1f}x" if t_anchor else "-"
        lines.append(f"| -M {mask} | {cmp['pairs_compared']} | "
                     + " / ".join(f"{d[k]:.1e}" for k in DS)
                     + f" | {cmp['positions_equal']:.0%} | {cmp['two_decimal_scores_equal']:.0%}"
                     f" | {t_ours:.0f} | {original} | {ratio} |")
    d = dense["max_abs_diff"]
    speed = ""
    t_ours, t_anchor = dense["seconds_pmtoolkit"], dense["seconds_original"]
    if t_anchor:
        speed = (f" pmtoolkit {n_dense / t_ours:.2f} variants/s ({t_ours:.0f} s), the original "
                 f"{n_dense / t_anchor:.2f} variants/s ({t_anchor:.0f} s): "
                 f"**{t_anchor / t_ours:.1f}x**.")
    dense_lines = ["## Throughput at a genome's density", "",
              f"`benchmarks/variants/dense_variants.vcf`: {n_dense} SNVs along 100 kb of MYT1L "
              "(hg38 chr2:1,900,001-2,000,000), one per ~700 bp as in one person's whole-genome "
              "VCF (4.5 M SNVs in 3.1 Gb), -D 50 -M 0, same machine, same driver, each tool "
              "with 2 threads." + speed,
              f"Same answers: {dense['pairs_compared']} pairs, max abs diff "
              + " / ".join(f"{d[k]:.1e}" for k in DS)
              + f", DP equal {dense['positions_equal']:.0%}, 2-decimal DS equal "
              f"{dense['two_decimal_scores_equal']:.0%}.", "",
              "The original scores each variant in two windows of 10,101 nt (REF, ALT) through "
              "each of the five models. pmtoolkit runs one reference pass per region of nearby "
              "sites of a gene (sites at most 6,462 nt apart, up to 40 kb) and, for each "
              "substitution, recomputes only the band of positions the changed base reaches "
              "in each layer, reusing the reference's activations elsewhere: about a quarter "
              "of the multiply-adds of a whole window. The five models' passes run on both "
              "cores at once, one thread each (PyTorch's own threads do not speed up these "
              "narrow convolutions here), summed in model order so the numbers do not depend "
              "on the thread count. Sparse variants (the table above: most sites kb apart) "
              "cannot share the reference pass, which caps the gain there.", ""]
    m0 = results["M0"]
    lines += ["", "Times are whole command lines (start-up and model loading included).",
              "", "Where the two differ by design:",
              "- variants near a contig end: the original skips them ("
              + "; ".join(m0["anchor_skipped"]) + "); pmtoolkit reads the missing context as N "
              "and scores them: " + "; ".join(m0["scored_only_by_pmtoolkit"]) + ".",
              f"- substitutions of several bases by several: both write `ALT|GENE|.|.|.|.|.|.|.|.`"
              f" ({m0['dot_entries_both']} of {m0['dot_entries']}).", ""]
    lines += dense_lines
    (DOCS / "spliceai_parity.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
