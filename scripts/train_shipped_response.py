"""Train the shipped drug-response model (data/models/gdsc.safetensors) on every GDSC pair of
the shared copy: 580 cell lines x 140 drugs, ln IC50, with CCLE expression z-scores, copy
number and mutation of 706 genes (2,118 features) and Morgan fingerprints of the drugs.

The network is the candidate chosen on validation pairs by benchmarks/response/gdsc.py
(both-256x64: two towers of 256 and 64, "both" fusion, a head of 128, dropout 0.1), with its
training budget (at most 30 epochs, early stopping after 5 without a better validation loss).
Here 90% of the pairs (random, seed 0) train and 10% are the validation pairs that stop it;
there is no test split: the benchmark's test figures (trained on 80%) are what the model is
expected to do on unseen pairs, and are recorded beside the validation figures.

    python scripts/train_shipped_response.py              # the shipped settings
    python scripts/train_shipped_response.py --epochs 2   # a quick check
    python scripts/update_manifest.py                     # then refresh sizes and hashes
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GDSC = ROOT.parent / "shared" / "data" / "response" / "gdsc"
OUT = ROOT / "data" / "models" / "gdsc.safetensors"
FEATURES = ("cell_expression_zscore", "cell_copynumber", "cell_mutation")
NETWORK = {"fusion": "both", "sample_hidden": (256, 64), "drug_hidden": (256, 64),
           "head": (128,), "dropout": 0.1, "top_genes": 0, "fingerprint_radius": 2,
           "fingerprint_bits": 2048, "patience": 5, "batch_size": 256, "device": "cpu"}
#: test-pair figures of the same network in docs/benchmarks/response_gdsc.md (80/10/10,
#: seeds 0-2): what to expect on pairs the model has not seen
BENCHMARK = {
    "source": "docs/benchmarks/response_gdsc.md (benchmarks/response/gdsc.py), test pairs, "
              "80/10/10 splits, mean ± sd over seeds 0-2",
    "random pairs": {"per_drug_pearson": "0.765 ± 0.002", "pooled_pearson": "0.943 ± 0.001",
                     "rmse": "0.964 ± 0.011"},
    "cold-drug (new drugs)": {"per_drug_pearson": "0.666 ± 0.019",
                              "pooled_pearson": "0.410 ± 0.058"},
    "cold-cell (new cell lines)": {"per_drug_pearson": "0.531 ± 0.024",
                                   "pooled_pearson": "0.891 ± 0.009"},
    "both cold": {"per_drug_pearson": "0.420 ± 0.080", "pooled_pearson": "0.322 ± 0.041"},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import dataclasses

    import torch

    from pmtoolkit import response as R
    from pmtoolkit.response.config import ResponseConfig
    from pmtoolkit.response.data import layout_columns
    from pmtoolkit.response.metrics import evaluate
    from pmtoolkit.response.model import ResponseModel

    torch.set_num_threads(1)  # the benchmark's budget: one thread
    columns = layout_columns("gdsc")
    data, drug_rejects, rejects = R.load_panel(
        GDSC / "ln_ic50.csv.gz", GDSC / "drugs.csv",
        [GDSC / f"{name}.csv.gz" for name in FEATURES], columns=columns)
    if drug_rejects or rejects:
        raise SystemExit(f"rejects in the GDSC panel: {len(drug_rejects)} drugs, "
                         f"{len(rejects)} pairs")
    import numpy as np

    # 10% of the (cell, drug) pairs validate, replicates of a pair on one side (as
    # response_split's random split, which insists on a test part this run does not have)
    pair = data.sample_index * len(data.drugs.ids) + data.drug_index
    keys = np.unique(pair)
    rng = np.random.default_rng(args.seed)
    held = set(rng.choice(keys, size=len(keys) // 10, replace=False).tolist())
    is_val = np.array([k in held for k in pair.tolist()])
    train, valid = data.subset(np.flatnonzero(~is_val)), data.subset(np.flatnonzero(is_val))
    config = ResponseConfig(seed=args.seed, epochs=args.epochs, **NETWORK)
    t0 = time.perf_counter()
    model = R.fit(train, valid, config)
    seconds = time.perf_counter() - t0
    import pandas as pd

    genes = pd.read_csv(GDSC / "gene_map.csv", dtype=str)  # entrez_673 -> BRAF, for explain
    labels = dict(zip(genes["column"], genes["hgnc_symbol"]))
    model.columns, model.labels = dataclasses.asdict(columns), labels
    fitted = model.metadata["metrics"]
    # shipped in float16 (half the file): the figures are those of the stored weights
    model.save(args.out, half=True)
    model = ResponseModel.load(args.out)
    metrics = {
        "validation (chose the epoch; not a test figure)": evaluate(model, valid),
        "positive control (in-sample)": braf_control(model, data),
        "expected on unseen pairs (benchmark)": BENCHMARK,
        "epochs_run": fitted["epochs_run"], "best_epoch": fitted["best_epoch"],
        "train_seconds": seconds,
        "training_set": f"GDSC ln IC50 (TGSA's copy, shared/data/response/gdsc): "
                        f"{len(train):,} of {len(data):,} pairs, {len(data.samples.ids)} cell "
                        f"lines x {len(data.drugs.ids)} drugs (random 90%, seed {args.seed}); "
                        f"{len(valid):,} validation pairs",
        "features": "CCLE expression z-scores, copy number and mutation (0/1) of 706 COSMIC "
                    "census genes, as the three tables cell_expression_zscore, "
                    "cell_copynumber, cell_mutation (2,118 columns entrez_<id>; DepMap_ID "
                    "rows); drugs: Morgan fingerprints (radius 2, 2048 bits) of "
                    "CanonicalSMILES",
        "target": "ln IC50 (natural log of the IC50 in µM), GDSC",
    }
    model.save(args.out, metrics=metrics, training_data_sha256=train.fingerprint(), half=True)
    print(json.dumps(metrics, indent=2, default=str))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {seconds / 60:.1f} min",
          file=sys.stderr)
    return 0


def braf_control(model, data) -> dict:
    """BRAF inhibitors should be predicted more potent in BRAF-mutant cell lines: the mean
    predicted and measured ln IC50 of dabrafenib and PLX-4720 in mutant and wild-type lines.
    Every pair here was trained on, so this checks that the model kept the known biology; it
    is not a held-out figure."""
    import numpy as np

    col = data.samples.names.index("cell_mutation:entrez_673")  # BRAF
    mutant = data.samples.X[:, col] > 0
    pred = model.predict(data)
    out = {}
    for drug in ("Dabrafenib", "PLX-4720"):
        d = data.drugs.ids.index(drug)
        rows = data.drug_index == d
        m = mutant[data.sample_index[rows]]
        out[drug] = {"BRAF mutant lines": int(m.sum()), "wild-type lines": int((~m).sum()),
                     "predicted mean ln IC50, mutant / wild type":
                         [round(float(pred[rows][m].mean()), 3),
                          round(float(pred[rows][~m].mean()), 3)],
                     "measured mean ln IC50, mutant / wild type":
                         [round(float(np.asarray(data.y)[rows][m].mean()), 3),
                          round(float(np.asarray(data.y)[rows][~m].mean()), 3)]}
    return out


if __name__ == "__main__":
    sys.exit(main())
