"""De novo generation benchmark: the shipped prior against MOSES' CharRNN row.

Samples 30k SMILES from a generator (default: the shipped prior), computes every MOSES metric
against the MOSES test set (reference statistics cached in the work folder: the first run
spends minutes on the 176k test molecules), and measures sampling throughput in SMILES/s and as
a fraction of the machine's measured fp32 matrix-multiply rate (the FLOP limit for this model).

    python benchmarks/generation/run.py                     # about 10-15 minutes on 2 cores
    python benchmarks/generation/run.py --model runs/prior/model.safetensors --samples 10000

Results: docs/benchmarks/generation.md and generation.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MOSES = ROOT.parent / "shared" / "data" / "generative" / "moses"
DOCS = ROOT / "docs" / "benchmarks"

# MOSES paper (Polykovskiy et al. 2020, Table 2), CharRNN, test set, 30k samples
CHARRNN = {"valid": 0.975, "unique@1000": 1.0, "unique@10000": 0.999, "FCD": 0.073,
           "SNN": 0.601, "Frag": 1.000, "Scaf": 0.924, "IntDiv1": 0.856, "IntDiv2": 0.850,
           "Filters": 0.994, "novelty": 0.842}
GOALS = {"valid": ">= 0.98", "unique@10000": ">= 0.999", "novelty": ">= 0.85", "FCD": "<= 0.5"}


def matmul_gflops(n: int = 2048, size: int = 512, repeats: int = 20) -> float:
    """Best fp32 GFLOP/s of (n x size) @ (size x 3 size), the shape of a sampling step."""
    import torch

    a, b = torch.randn(n, size), torch.randn(size, 3 * size)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n * size * 3 * size / (time.perf_counter() - t0) / 1e9)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="prior")
    ap.add_argument("--samples", type=int, default=30_000)
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pmt-generation"))
    ap.add_argument("--no-fcd", action="store_true")
    ap.add_argument("--reuse-throughput", action="store_true",
                    help="take the throughput from the work folder's throughput.json (an "
                         "earlier quiet run of the same samples) while other jobs run")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    import pandas as pd

    from pmtoolkit.design.metrics import Reference, canonical_set, generation_metrics
    from pmtoolkit.design.run import load

    model = load(args.model)
    model.sample(256, batch_size=256, seed=123)  # warm-up
    t0 = time.perf_counter()
    s = model.sample(args.samples, batch_size=args.batch_size, seed=args.seed)
    seconds = time.perf_counter() - t0
    flops = s.tokens * model.flops_per_token()
    saved = args.workdir / "throughput.json"
    if args.reuse_throughput:
        throughput = json.loads(saved.read_text())
        if (throughput["samples"], throughput["seed"], throughput["model"]) != \
                (args.samples, args.seed, str(args.model)) or \
                abs(throughput["mean_tokens"] - s.tokens / args.samples) > 1e-9:
            ap.error(f"{saved} was measured for other samples; rerun without "
                     "--reuse-throughput")
    else:
        peak = matmul_gflops(size=model.config.hidden_size)
        throughput = {"smiles_per_second": args.samples / seconds,
                      "tokens_per_second": s.tokens / seconds,
                      "gflops_per_second": flops / seconds / 1e9,
                      "matmul_peak_gflops": peak, "fraction_of_peak": flops / seconds / 1e9 / peak,
                      "fraction_of_100_gflops": flops / seconds / 1e9 / 100.0,
                      "mean_tokens": s.tokens / args.samples, "batch_size": args.batch_size,
                      "flops_per_token": model.flops_per_token(), "seconds": seconds,
                      "samples": args.samples, "seed": args.seed, "model": str(args.model),
                      "measured": time.strftime("%Y-%m-%d %H:%M")}
        saved.write_text(json.dumps(throughput, indent=1) + "\n")
    print(json.dumps(throughput, indent=1), file=sys.stderr)
    pd.DataFrame({"smiles": s.smiles}).to_csv(args.workdir / "samples.csv", index=False)

    train_cache = args.workdir / "train_canonical.txt"
    if train_cache.exists():
        train = set(train_cache.read_text().split())
    else:
        train = canonical_set(pd.read_csv(MOSES / "train.csv.gz")["SMILES"].tolist())
        train_cache.write_text("\n".join(sorted(train)) + "\n")
    reference = Reference.cached(MOSES / "test.csv.gz", args.workdir / "test_reference.npz",
                                 fcd=not args.no_fcd)
    t1 = time.perf_counter()
    metrics = generation_metrics(s.smiles, train=train, reference=reference,
                                 fcd=not args.no_fcd)
    print(f"metrics in {time.perf_counter() - t1:.0f} s", file=sys.stderr)
    _figures(s.smiles)
    meta = model.metadata.get("metrics", {})
    result = {"date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "model": str(args.model), "config": model.metadata.get("config"),
              "training": {k: meta.get(k) for k in ("training_set", "train_seconds", "epochs")},
              "samples": args.samples, "metrics": metrics, "charrnn": CHARRNN,
              "throughput": throughput}
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "generation.json").write_text(json.dumps(result, indent=1) + "\n")
    write_markdown(result)
    print((DOCS / "generation.md").read_text())
    return 0


def _figures(samples: list[str]) -> None:
    """Property distributions of 5,000 valid samples beside 5,000 test molecules, and a grid
    of the first 24 valid samples (no selection)."""
    import pandas as pd

    from pmtoolkit.design.metrics import canonical, parse
    from pmtoolkit.design.run import _distribution_plot, _molecule_grid

    mols = [m for m in parse(samples[:8000]) if m is not None][:5000]
    test = pd.read_csv(MOSES / "test.csv.gz")["SMILES"].tolist()[:5000]
    ref = [m for m in parse(test) if m is not None]
    _distribution_plot(mols, ref, DOCS / "generation_properties.png")
    _molecule_grid(pd.DataFrame({"smiles": canonical(mols[:24])}), DOCS / "generation_samples.png")


def write_markdown(r: dict) -> None:
    cfg = r.get("config") or {}
    tp = r["throughput"]
    lines = [
        "# De novo generation: the shipped prior beside MOSES CharRNN", "",
        (f"Measured {r['date']} on {r['machine']}; `python benchmarks/generation/run.py`. "
        f"{r['samples']} samples at temperature 1 from `{r['model']}` "
        f"({cfg.get('cell', '?').upper()}, {cfg.get('layers', '?')} layers x "
        f"{cfg.get('hidden-size', cfg.get('hidden_size', '?'))}; trained on "
        f"{(r.get('training') or {}).get('training_set') or '?'}), metrics with the MOSES "
        "definitions against the MOSES test set (176k molecules). CharRNN: the MOSES paper's "
        "row (LSTM 3 x 768, full training set, GPU)."), "",
        "| metric | pmtoolkit prior | MOSES CharRNN | goal |", "|---|---:|---:|---|",
    ]
    for k, v in r["metrics"].items():
        ref = r["charrnn"].get(k)
        lines.append(f"| {k} | {v:.3f} | {'' if ref is None else f'{ref:.3f}'} | "
                     f"{GOALS.get(k, '')} |")
    lines += [
        "", "## Sampling throughput", "",
        (f"{tp['smiles_per_second']:,.0f} SMILES/s ({tp['tokens_per_second']:,.0f} tokens/s, "
        f"batch {tp['batch_size']}, {tp['mean_tokens']:.1f} tokens per SMILES). The model "
        f"costs {tp['flops_per_token'] / 1e6:.2f} MFLOP per token (first-layer input gates are "
        f"a table lookup), so sampling ran at {tp['gflops_per_second']:.1f} GFLOP/s: "
        f"{tp['fraction_of_peak']:.0%} of this machine's best fp32 matrix-multiply rate for "
        f"the same shapes ({tp['matmul_peak_gflops']:.0f} GFLOP/s) and "
        f"{tp['fraction_of_100_gflops']:.0%} of the nominal 100 GFLOP/s (measured "
        f"{tp.get('measured', r['date'])} with nothing else running)."), "",
        "## Pictures", "",
        "Properties of 5,000 valid samples (lines) beside 5,000 MOSES test molecules (filled):",
        "", "![property distributions](generation_properties.png)", "",
        "The first 24 valid samples of the run, unselected:", "",
        "![samples](generation_samples.png)", "",
    ]
    (DOCS / "generation.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
