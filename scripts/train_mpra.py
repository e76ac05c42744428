"""Train the shipped regulatory variant-effect model (data/models/mpra.safetensors) on the
saturation-mutagenesis MPRA elements of Kircher et al. 2019 (all 21 elements, GRCh38): a basset
CNN on 200-base windows fitted so that its output difference between the ALT and REF windows
matches each measured log2 expression effect (``fit_effects``). Its held-out quality is the
leave-one-locus-out row of benchmarks/variants (the same settings, trained without the locus).

    python scripts/train_mpra.py
    python scripts/update_manifest.py     # then refresh sizes and hashes
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "variants" / "mpra_satmut" / "elements.tsv.gz"
OUT = ROOT / "data" / "models" / "mpra.safetensors"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="default: the benchmark's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    from pmtoolkit.genomics.mpra import default_config, effect_data, load_mpra
    from pmtoolkit.genomics.model import fit_effects

    data = load_mpra(DATA)
    overrides = {"seed": args.seed}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    config = default_config(**overrides)
    eff = effect_data(data, config.window)
    t0 = time.perf_counter()
    model = fit_effects(eff, None, config, target="activity")
    seconds = time.perf_counter() - t0
    metrics = {"train_seconds": seconds, "n_train": len(eff),
               "training_set": "Kircher et al. 2019 saturation-mutagenesis MPRA (CAGI5), 21 "
                               "elements, GRCh38 rows (kircherlab/MPRA_SaturationMutagenesis "
                               "@c5cadb4)",
               "target": "log2 expression effect; score = activity_diff (alt - ref)",
               "held_out": "see docs/benchmarks/variants.md (leave one locus out)"}
    model.save(args.out, metrics=metrics)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {seconds:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
