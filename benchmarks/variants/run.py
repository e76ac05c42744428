"""Variant-scoring benchmark: MPRA effects, splice accuracy, scoring throughput, fast ISM.

1. Saturation-mutagenesis MPRA (Kircher et al. 2019; 21 elements, 16 loci): for each scorer,
   Pearson and Spearman between predicted and measured effects per element, holding out one
   locus at a time (elements measured in several cell types share a locus and are held out
   together). Scorers: ``jaspar`` (zero-shot motif strength change), ``jaspar-fitted`` (one
   weight per JASPAR motif fitted to the other loci's effects: the shipped ``mpra`` model's
   recipe) and CNNs trained on the other loci's measured effects (``fit_effects``: basset and
   dilated).
2. The shipped splice model's accuracy on its held-out test split.
3. Scoring throughput (variants/s) of ``pmt variants score`` on 20,000 SNVs of the shipped
   hg38 chr2 chunk, beside the physical limit: the model's FLOPs per variant against this
   machine's measured fp32 matrix-multiply rate (selene-sdk and kipoi pin old CUDA builds
   of torch and cannot run here, so the limit is the anchor).
4. Saturation mutagenesis of a whole window: the fast path (recompute what a substitution
   reaches) against rescoring every mutated sequence, same answers.

    python benchmarks/variants/run.py                  # everything (about 2 h on one core)
    python benchmarks/variants/run.py --scorers jaspar --skip-throughput

Parts and scorers not run keep their last rows in docs/benchmarks/variants.json.

Results: docs/benchmarks/variants.md, variants.json, variants.png.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "variants"
DOCS = ROOT / "docs" / "benchmarks"
GOALS = {"spearman": 0.3, "fraction_of_peak": 0.3, "ism_speedup": 5.0}
SCORERS = ["jaspar", "jaspar-fitted", "cnn-basset", "cnn-dilated"]


def matmul_gflops(n: int = 4096, k: int = 512, m: int = 512, repeats: int = 10) -> float:
    import torch

    a, b = torch.randn(n, k), torch.randn(k, m)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n * k * m / (time.perf_counter() - t0) / 1e9)
    return best


def per_element(pred: np.ndarray, data) -> dict[str, dict[str, float]]:
    from pmtoolkit.core.metrics import pearson, spearman

    out = {}
    for e in sorted(set(data.element)):
        k = data.element == e
        out[e] = {"pearson": pearson(data.effects[k], pred[k]),
                  "spearman": spearman(data.effects[k], pred[k]), "n": int(k.sum())}
    return out


def mpra(scorers: list[str], epochs: int, done=None) -> dict:
    from pmtoolkit.genomics.mpra import default_config, effect_data, load_mpra
    from pmtoolkit.genomics.model import fit_effects
    from pmtoolkit.genomics.score import VariantScorer

    data = load_mpra(SHARED / "mpra_satmut" / "elements.tsv.gz")
    loci = sorted(set(data.locus))
    results = {}
    for name in scorers:
        t0 = time.perf_counter()
        if name == "jaspar":
            from pmtoolkit.genomics.motifs import MotifModel

            s = VariantScorer(MotifModel(), data.reference()).score(data.variants)
            pred = s.diff[:, 0]
        elif name == "jaspar-fitted":
            from pmtoolkit.genomics.motifs import MotifModel, fit_motif_effects

            base = MotifModel()
            eff = effect_data(data, base.window)
            # each window's motif strengths once; every fold refits only the weights
            delta = base.strengths(eff.alt) - base.strengths(eff.ref)
            pred = np.zeros(len(data))
            for locus in loci:
                test = data.locus == locus
                model = fit_motif_effects(eff.subset(np.flatnonzero(~test)), base=base,
                                          strengths=delta[~test])
                pred[test] = delta[test] @ model.weights
        else:
            arch = {"cnn-basset": "basset", "cnn-dilated": "dilated"}[name]
            extra = {} if arch == "basset" else {"filters": (64, 96), "kernels": (15, 3),
                                                 "blocks": 5}
            config = default_config(architecture=arch, epochs=epochs, **extra)
            eff = effect_data(data, config.window)
            pred = np.zeros(len(data))
            for i, locus in enumerate(loci):
                test = np.flatnonzero(data.locus == locus)
                train = np.flatnonzero(data.locus != locus)
                model = fit_effects(eff.subset(train), None, config)
                w = model.predict_codes(np.concatenate([eff.ref[test], eff.alt[test]]))[:, 0]
                pred[test] = w[len(test):] - w[:len(test)]
                print(f"  {name} {i + 1}/{len(loci)} {locus}", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - t0
        elements = per_element(pred, data)
        results[name] = {"elements": elements, "seconds": seconds,
                         "mean_pearson": float(np.mean([v["pearson"] for v in
                                                        elements.values()])),
                         "mean_spearman": float(np.mean([v["spearman"] for v in
                                                         elements.values()]))}
        if name.startswith("cnn"):
            results[name]["epochs"] = epochs
        print(f"{name}: mean Spearman {results[name]['mean_spearman']:.3f}, Pearson "
              f"{results[name]['mean_pearson']:.3f} ({seconds:.0f} s)", file=sys.stderr,
              flush=True)
        if done is not None:  # keep each scorer's row as soon as it is measured
            done({"n_variants": len(data), "dropped_rows": data.dropped, "loci": loci,
                  "scorers": dict(results)})
    return {"n_variants": len(data), "dropped_rows": data.dropped, "loci": loci,
            "scorers": results}


def throughput(n: int = 20_000) -> dict:
    """Variants/s of score_vcf over SNVs of the chr2 chunk, and the FLOP rate it implies."""
    from pmtoolkit.genomics.reference import Reference
    from pmtoolkit.genomics.run import load
    from pmtoolkit.genomics.score import score_vcf

    fasta = SHARED / "reference" / "chr2_1-2333275.fa.gz"
    ref = Reference(fasta)
    rng = np.random.default_rng(0)
    out: dict = {"variants": n, "matmul_peak_gflops": matmul_gflops()}
    with tempfile.TemporaryDirectory() as tmp:
        vcf = Path(tmp) / "snvs.vcf"
        positions = np.sort(rng.choice(np.arange(1_000_000, 2_300_000), n * 2, replace=False))
        lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr2,length=2333275>",
                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
        k = 0
        for p in positions:
            base = ref.fetch("chr2", int(p) - 1, int(p))
            if base not in "ACGT":
                continue
            alt = "ACGT"[("ACGT".index(base) + 1 + k % 3) % 4]
            lines.append(f"chr2\t{p}\tv{k}\t{base}\t{alt}\t.\t.\t.")
            k += 1
            if k == n:
                break
        vcf.write_text("\n".join(lines) + "\n")
        for name in ("splice", "mpra"):
            try:
                model = load(name)
            except Exception as exc:  # the MPRA model may not be shipped yet
                out[name] = {"error": str(exc)}
                continue
            score_vcf(vcf, ref, model, Path(tmp) / "warm.tsv", batch_size=512)  # warm-up
            info = score_vcf(vcf, ref, model, Path(tmp) / f"{name}.tsv", batch_size=512)
            flops = 2 * 2 * model.flops_per_sequence()  # REF and ALT windows, both strands
            gflops = info["variants_per_second"] * flops / 1e9
            out[name] = {"variants_per_second": info["variants_per_second"],
                         "flops_per_variant": flops, "gflops_per_second": gflops,
                         "fraction_of_peak": gflops / out["matmul_peak_gflops"],
                         "window": model.window}
            print(f"{name}: {info['variants_per_second']:,.0f} variants/s, {gflops:.1f} "
                  f"GFLOP/s", file=sys.stderr, flush=True)
    return out


def ism_speed(windows=(200, 600, 1000)) -> list[dict]:
    """Fast ISM against full rescoring of every substitution of a window, both strands, for
    the benchmark CNN's shape (cnn-basset) at its 200 bases and at Basset's (600) and
    DeepSEA's (1000) windows: the fast path's cost grows with the window, rescoring's with
    its square."""
    from pmtoolkit.genomics.ism import ism
    from pmtoolkit.genomics.model import SequenceModel
    from pmtoolkit.genomics.mpra import default_config

    rows = []
    for window in windows:
        config = default_config(window=window)
        model = SequenceModel(config, targets=["activity"])
        model.network.eval()
        seq = "".join(np.random.default_rng(1).choice(list("ACGT"), config.window))
        ism(model, seq, method="fast")  # warm-up
        timings, results = {}, {}
        for method in ("fast", "full"):
            best = float("inf")
            for _ in range(3 if window <= 600 else 1):
                t0 = time.perf_counter()
                results[method] = ism(model, seq, method=method, batch_size=1024)
                best = min(best, time.perf_counter() - t0)
            timings[method] = best
        diff = float(np.abs(results["fast"].outputs - results["full"].outputs).max())
        rows.append({"window": window, "substitutions": 3 * window,
                     "fast_seconds": timings["fast"], "full_seconds": timings["full"],
                     "speedup": timings["full"] / timings["fast"],
                     "max_abs_difference": diff})
        print(f"ISM window {window}: {rows[-1]['speedup']:.1f}x", file=sys.stderr, flush=True)
    return rows


def write_docs(r: dict) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "variants.json").write_text(json.dumps(r, indent=1) + "\n")
    lines = ["# Variant scoring: MPRA effects, splice accuracy, throughput, fast ISM", "",
             f"Measured {r['date']} on {r['machine']}; `{r['command']}`.", ""]
    m = r.get("mpra")
    if m:
        lines += ["## Saturation-mutagenesis MPRA, leave one locus out", "",
                  f"{m['n_variants']:,} variants of 21 elements (Kircher et al. 2019, GRCh38; "
                  f"{m['dropped_rows']} table rows without coordinates or anchor left out), "
                  f"{len(m['loci'])} loci. `jaspar-fitted` (the shipped `mpra` model's recipe) "
                  "and each CNN are fitted to the measured effects of the other loci and score "
                  "the held-out one; `jaspar` is zero-shot. Goal: best mean Spearman ≥ 0.3.",
                  "",
                  "| scorer | mean Spearman | mean Pearson | time (s) |",
                  "|---|---:|---:|---:|"]
        for name, s in m["scorers"].items():
            label = name + (f" ({s['epochs']} epochs a fold)" if "epochs" in s else "")
            lines.append(f"| {label} | {s['mean_spearman']:.3f} | {s['mean_pearson']:.3f} | "
                         f"{s['seconds']:.0f} |")
        missing = [n for n in SCORERS if n not in m["scorers"]]
        if missing:
            lines += ["", "Not measured yet: " + ", ".join(f"`{n}`" for n in missing) +
                      f" (`--scorers {' '.join(missing)}`)."]
        names = list(m["scorers"])
        lines += ["", "Per element (Spearman):", "",
                  "| element | n | " + " | ".join(names) + " |",
                  "|---|---:|" + "---:|" * len(names)]
        first = m["scorers"][names[0]]["elements"]
        for e in first:
            lines.append(f"| {e} | {first[e]['n']} | " + " | ".join(
                f"{m['scorers'][n]['elements'][e]['spearman']:.3f}" for n in names) + " |")
        lines += ["", "![Spearman per element](variants.png)", ""]
        _plot(m, DOCS / "variants.png")
    s = r.get("splice")
    if s:
        lines += ["## Splice model (shipped)", "",
                  f"Held-out test split ({s['n_test']} of 3,190 UCI sequences): accuracy "
                  f"{s['accuracy']:.3f}, macro ROC-AUC {s['roc_auc']:.3f}.", ""]
    t = r.get("throughput")
    if t:
        lines += ["## Scoring throughput", "",
                  f"`score_vcf` on {t['variants']:,} SNVs of the hg38 chr2 chunk, TSV out, "
                  "REF and ALT windows on both strands (4 forward passes per variant). The "
                  f"limit: this machine's best fp32 matrix multiply on the same "
                  f"{t.get('threads', '?')} thread(s), measured in the same run, "
                  f"{t['matmul_peak_gflops']:.0f} GFLOP/s. Goal: ≥ 30% of it.", "",
                  "| model | window | MFLOP / variant | variants/s | GFLOP/s | of the limit |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name in ("splice", "mpra"):
            x = t.get(name, {})
            if "variants_per_second" in x:
                lines.append(f"| {name} | {x['window']} | {x['flops_per_variant'] / 1e6:.1f} | "
                             f"{x['variants_per_second']:,.0f} | {x['gflops_per_second']:.1f} | "
                             f"{x['fraction_of_peak']:.0%} |")
        lines += ["", "Both run the same pipeline (VCF parsing, REF checks, window cutting, "
                  "output): the `mpra` motif model needs few FLOPs a variant, so most of its "
                  "time is spent outside the model and its fraction of the limit is low "
                  "though it scores as fast as `splice`.", ""]
    i = r.get("ism")
    if i:
        lines += ["## Saturation mutagenesis", "",
                  "Every substitution of a window, both strands, with the benchmark CNN's layers "
                  "(`cnn-basset`: kernels 15/7/5, pools 4/4/2): the fast path recomputes only the "
                  "slice of each stage a substitution reaches; rescoring runs every mutated "
                  "sequence through the whole network. Same answers (largest difference "
                  "shown). Goal: ≥ 5x.", "",
                  "| window | substitutions | fast (ms) | rescoring (ms) | speed-up | "
                  "max difference |", "|---:|---:|---:|---:|---:|---:|"]
        for x in i:
            lines.append(f"| {x['window']} | {x['substitutions']} | "
                         f"{x['fast_seconds'] * 1000:.0f} | {x['full_seconds'] * 1000:.0f} | "
                         f"**{x['speedup']:.1f}x** | {x['max_abs_difference']:.1e} |")
        lines += ["", "At 200 bases a substitution reaches most of the last stages (their "
                  "receptive field is a large part of the window), so little can be skipped; "
                  "at Basset's and DeepSEA's window sizes the saving is what fastISM reports. "
                  "(The shipped `mpra` model is a motif model: its ISM scores each "
                  "substitution in its own centred window, 5 windows a position.)", ""]
    (DOCS / "variants.md").write_text("\n".join(lines))


def _plot(m: dict, path: Path) -> None:
    from pmtoolkit.core.plots import figure

    names = list(m["scorers"])
    elements = list(m["scorers"][names[0]]["elements"])
    width = 0.8 / len(names)
    with figure(path, size=(max(6.0, 0.45 * len(elements)), 3.6)) as (_, ax):
        for j, n in enumerate(names):
            vals = [m["scorers"][n]["elements"][e]["spearman"] for e in elements]
            ax.bar(np.arange(len(elements)) + j * width, vals, width, label=n)
        ax.axhline(GOALS["spearman"], ls="--", lw=0.8, color="#777777")
        ax.axhline(0, lw=0.6, color="#999999")
        ax.set_xticks(np.arange(len(elements)) + 0.4 - width / 2)
        ax.set_xticklabels(elements, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("Spearman, held-out locus")
        ax.legend(fontsize=7, frameon=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scorers", nargs="+", default=SCORERS, choices=SCORERS)
    ap.add_argument("--epochs", type=int, default=8, help="CNN training epochs per fold")
    ap.add_argument("--skip-mpra", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite docs/benchmarks/variants.md from variants.json")
    args = ap.parse_args()
    if args.report_only:
        write_docs(json.loads((DOCS / "variants.json").read_text()))
        return 0
    from pmtoolkit.genomics.run import load

    # parts not run this time (and scorers not rerun) keep their last measured rows
    previous = DOCS / "variants.json"
    r: dict = json.loads(previous.read_text()) if previous.exists() else {}
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    r.update({"date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "command": " ".join(["python", *sys.argv])})
    splice = load("splice").metadata["metrics"]
    r["splice"] = {"accuracy": splice["test"]["accuracy"], "roc_auc": splice["test"]["roc_auc"],
                   "n_test": splice["n_test"]}
    if not args.skip_throughput:  # first, on a quiet machine
        r["throughput"] = {**throughput(), "threads": threads}
        r["ism"] = ism_speed()
    if not args.skip_mpra:
        old = r.get("mpra", {}).get("scorers", {})

        def done(m: dict) -> None:
            r["mpra"] = {**m, "scorers": {**old, **m["scorers"]}}
            write_docs(r)

        mpra(args.scorers, args.epochs, done)
    write_docs(r)
    print((DOCS / "variants.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
