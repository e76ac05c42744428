"""Variant-scoring benchmark: MPRA effects, splice accuracy, scoring throughput, fast ISM.

1. Saturation-mutagenesis MPRA (Kircher et al. 2019; 21 elements, 16 loci): for each scorer,
   Pearson and Spearman between predicted and measured effects per element, holding out one
   locus at a time (elements measured in several cell types share a locus and are held out
   together). Scorers: ``jaspar`` (zero-shot motif strength change), ``jaspar-fitted`` (one
   weight per JASPAR motif fitted to the other loci's raw effects), ``jaspar-fitted-rank``
   (the same on per-element normal scores, penalty by inner leave-one-locus-out: the shipped
   ``mpra`` model's recipe), ``cnn-local`` (a local CNN started from the JASPAR motifs that
   ridge weighs most, early-stopped on validation loci drawn from the training loci; seeds
   0-2; each fold kept in build/ so an interrupted run resumes), ``cnn-local+ridge`` (their
   average, weight chosen on the validation loci) and the earlier basset/dilated CNNs; with
   the rank ridge, what bounds the figure (learning curve over training loci, within-element
   fit, agreement of one sequence measured twice). ``--dev`` runs the CNN's design protocol
   on the dev loci only and journals it (docs/benchmarks/variants_mpra_runs.jsonl).
2. The shipped splice model's accuracy on its held-out test split.
3. Scoring throughput (variants/s) of ``pmt variants score`` on 20,000 SNVs of the shipped
   hg38 chr2 chunk, beside the physical limit: the model's FLOPs per variant against this
   machine's measured fp32 matrix-multiply rate (selene-sdk and kipoi pin old CUDA builds
   of torch and cannot run here, so the limit is the anchor).
4. Saturation mutagenesis of a whole window: the fast path (recompute what a substitution
   reaches) against rescoring every mutated sequence, same answers.

    python benchmarks/variants/run.py                  # everything (hours on one core)
    python benchmarks/variants/run.py --scorers jaspar --skip-throughput
    # the CNN's folds shared by two processes, then the report from their kept folds:
    python benchmarks/variants/run.py --folds-only --seeds 0 2 &
    python benchmarks/variants/run.py --folds-only --seeds 1 &
    python benchmarks/variants/run.py --skip-throughput --scorers jaspar jaspar-fitted \
        jaspar-fitted-rank cnn-local cnn-local+ridge

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
SCORERS = ["jaspar", "jaspar-fitted", "jaspar-fitted-rank", "cnn-basset", "cnn-dilated",
           "cnn-local", "cnn-local+ridge"]


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


#: the held-out locus's effects are never seen; the design of the effect CNN (targets, size,
#: learning rate) was chosen on DEV_LOCI loci drawn with this seed, folds of them only
#: (``--dev``: docs/benchmarks/variants_mpra_runs.jsonl), so the other loci are untouched by
#: any choice; both halves are reported
DEV_SEED, DEV_LOCI = 2026, 8
#: ridge penalties the nested fit chooses from (inner leave-one-locus-out on training loci)
ALPHAS = (1e2, 1e3, 1e4, 1e5)
#: effect CNN: loci drawn from the training loci for early stopping, the seeds, and the
#: weights of the CNN in its average with the ridge (chosen on those loci)
VAL_LOCI, SEEDS, BLEND = 2, (0, 1, 2), (0.0, 0.25, 0.5, 0.75, 1.0)
WORK = ROOT / "build" / "benchmarks" / "variants_mpra"


def dev_loci(loci: list[str]) -> list[str]:
    rng = np.random.default_rng(DEV_SEED)
    return sorted(str(x) for x in rng.choice(loci, DEV_LOCI, replace=False))


def mean_rho(pred: np.ndarray, effects: np.ndarray, element: np.ndarray) -> float:
    from pmtoolkit.core.metrics import spearman

    return float(np.mean([spearman(effects[element == e], pred[element == e])
                          for e in np.unique(element)]))


def zscore(pred: np.ndarray, element: np.ndarray) -> np.ndarray:
    """Predictions standardised within each element (no labels used), so two scorers'
    predictions can be averaged."""
    out = np.zeros(len(pred))
    for e in np.unique(element):
        k = element == e
        out[k] = (pred[k] - pred[k].mean()) / (pred[k].std() or 1.0)
    return out


class LocusRidge:
    """Ridge fits of effects on motif-strength changes for any set of loci from per-locus
    Gram matrices (computed once), so that nested fits cost a solve each."""

    def __init__(self, x: np.ndarray, y: np.ndarray, locus: np.ndarray):
        self.loci = sorted(set(locus))
        self.gram = {c: x[locus == c].T @ x[locus == c] for c in self.loci}
        self.xy = {c: x[locus == c].T @ y[locus == c] for c in self.loci}

    def weights(self, loci, alpha: float) -> np.ndarray:
        g = sum(self.gram[c] for c in loci)
        g = g + alpha * np.eye(len(g))
        return np.linalg.solve(g, sum(self.xy[c] for c in loci))

    def nested_alpha(self, loci, x, data) -> float:
        """The penalty with the best mean per-element Spearman holding out each of ``loci``
        in turn, fitted on the others (never a locus outside ``loci``)."""
        best, score = ALPHAS[0], -np.inf
        for alpha in ALPHAS:
            rho = []
            for held in loci:
                k = data.locus == held
                w = self.weights([c for c in loci if c != held], alpha)
                rho.append(mean_rho(x[k] @ w, data.effects[k], data.element[k]))
            if np.mean(rho) > score:
                best, score = alpha, float(np.mean(rho))
        return best


def mpra_limits(data, delta: np.ndarray, ranks: np.ndarray, alpha: float = 1e4) -> dict:
    """What bounds a cross-element score on these data, measured:

    - ``learning_curve``: the rank ridge fitted to k randomly drawn other loci (10 draws a
      size), scoring each held-out locus: how the mean Spearman over the 21 elements grows
      with the loci trained on;
    - ``within_elements``: the same ridge when each element's own other positions are in
      training (5 folds of 20-base blocks of positions): the motif features' reach with no
      transfer needed;
    - ``same_sequence``: Spearman between the effects of one element measured twice (other
      cells or times): what a perfect model of one measurement could score on the other."""
    from pmtoolkit.core.metrics import spearman

    loci = sorted(set(data.locus))
    ridge = LocusRidge(delta, ranks, data.locus)
    rng = np.random.default_rng(0)
    curve = {}
    for k in (1, 3, 6, 9, 12, 15):
        rho: dict[str, list[float]] = {}  # element -> one Spearman a draw
        for held in loci:
            others = [c for c in loci if c != held]
            t = data.locus == held
            for _ in range(1 if k == len(others) else 10):
                pick = [str(c) for c in rng.choice(others, k, replace=False)]
                pred = delta[t] @ ridge.weights(pick, alpha)
                for e in np.unique(data.element[t]):
                    m = data.element[t] == e
                    rho.setdefault(str(e), []).append(spearman(data.effects[t][m], pred[m]))
        curve[k] = float(np.mean([np.mean(v) for v in rho.values()]))  # over the 21 elements
    pos = np.array([v.pos for v in data.variants])
    block = (pos // 20) % 5
    pred = np.zeros(len(data))
    for b in range(5):
        fit = LocusRidge(delta[block != b], ranks[block != b], np.zeros((block != b).sum()))
        pred[block == b] = delta[block == b] @ fit.weights([0.0], alpha)
    ids = np.array([v.id.split(":", 1)[1] for v in data.variants])
    same = {}
    for a, b in (("PKLR-24h", "PKLR-48h"), ("ZRSh-13", "ZRSh-13h2"), ("TERT-GBM", "TERT-GAa"),
                 ("TERT-GBM", "TERT-GSc"), ("TERT-GBM", "TERT-HEK"), ("TERT-GSc", "TERT-HEK")):
        x = dict(zip(ids[data.element == a], data.effects[data.element == a]))
        y = dict(zip(ids[data.element == b], data.effects[data.element == b]))
        both = sorted(set(x) & set(y))
        same[f"{a} / {b}"] = {"spearman": spearman(np.array([x[i] for i in both]),
                                                    np.array([y[i] for i in both])),
                              "n": len(both)}
    return {"alpha": alpha, "learning_curve": curve,
            "within_elements": mean_rho(pred, data.effects, data.element),
            "same_sequence": same}


def motif_deltas(data, base) -> np.ndarray:
    """The change in every JASPAR motif's strength (alt - ref) of each variant, cached."""
    from pmtoolkit.genomics.mpra import effect_data

    path = WORK / f"motif_deltas_{len(data)}.npy"
    if path.exists():
        return np.load(path)
    eff = effect_data(data, base.window)
    delta = base.strengths(eff.alt) - base.strengths(eff.ref)
    WORK.mkdir(parents=True, exist_ok=True)
    np.save(path, delta)
    return delta


def fit_local_cnn(data, eff, targets, train_loci, val_loci, seed: int, predict_idx,
                  motifs=None, init: str = "jaspar", **overrides) -> tuple[np.ndarray, dict]:
    """The effect CNN fitted to the normal scores of ``train_loci``, stopped early on the mean
    per-element Spearman of ``val_loci``; its effects (alt - ref, both strands) on
    ``predict_idx``. ``motifs``: (MotifModel, strength changes, LocusRidge, alpha): the first
    layer starts from the motifs that a ridge fitted to the same loci weighs most (``init``
    "jaspar"; "random": the usual random start)."""
    from pmtoolkit.genomics.model import EffectData, fit_effects
    from pmtoolkit.genomics.mpra import local_config, motif_filters

    config = local_config(seed=seed, **overrides)
    first = None
    if motifs is not None and init == "jaspar":
        base, delta, ridge, alpha = motifs
        rows = np.isin(data.locus, train_loci)
        first = motif_filters(base, ridge.weights(train_loci, alpha), delta[rows],
                              n=config.filters[0], kernel=config.kernels[0])

    def part(loci):
        idx = np.flatnonzero(np.isin(data.locus, loci))
        return EffectData(eff.ref[idx], eff.alt[idx], targets[idx], data.element[idx])

    t0 = time.process_time()
    model = fit_effects(part(train_loci), part(val_loci), config, first_filters=first)
    w = model.predict_codes(np.concatenate([eff.ref[predict_idx], eff.alt[predict_idx]]))[:, 0]
    info = {"best_epoch": model.metadata["best_epoch"],
            "epochs_run": len(model.metadata["history"]), "cpu_seconds": time.process_time() - t0}
    return w[len(predict_idx):] - w[:len(predict_idx)], info


def local_cnn_fold(data, eff, targets, loci, fold: int, seed: int, motifs) -> dict:
    """One outer fold of one seed, resumable: the CNN's predictions of the held-out locus and
    of its validation loci (kept in WORK)."""
    path = WORK / f"local_seed{seed}_fold{fold:02d}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return {k: z[k] for k in z.files}
    held = loci[fold]
    train = [c for c in loci if c != held]
    rng = np.random.default_rng([seed, fold])
    val = sorted(str(c) for c in rng.choice(train, VAL_LOCI, replace=False))
    test_idx = np.flatnonzero(data.locus == held)
    val_idx = np.flatnonzero(np.isin(data.locus, val))
    base, delta, ridge, alphas = motifs
    pred, info = fit_local_cnn(data, eff, targets, [c for c in train if c not in val], val,
                               seed, np.concatenate([test_idx, val_idx]),
                               motifs=(base, delta, ridge, alphas[held]))
    out = {"test_idx": test_idx, "val_idx": val_idx, "test": pred[:len(test_idx)],
           "val": pred[len(test_idx):], "val_loci": np.asarray(val),
           **{k: np.asarray(v) for k, v in info.items()}}
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(path)
    print(f"  cnn-local seed {seed} fold {fold + 1}/{len(loci)} {held}: best epoch "
          f"{int(info['best_epoch'])} of {info['epochs_run']}, {info['cpu_seconds']:.0f} s "
          "CPU", file=sys.stderr, flush=True)
    return out


def scored(pred: np.ndarray, data, seconds: float, **extra) -> dict:
    elements = per_element(pred, data)
    return {"elements": elements, "seconds": seconds,
            "mean_pearson": float(np.mean([v["pearson"] for v in elements.values()])),
            "mean_spearman": float(np.mean([v["spearman"] for v in elements.values()])),
            **extra}


def mpra(scorers: list[str], epochs: int, done=None, seeds=SEEDS,
         folds_only: bool = False, reverse: bool = False) -> dict:
    from pmtoolkit.genomics.model import fit_effects
    from pmtoolkit.genomics.mpra import default_config, effect_data, load_mpra, normal_scores

    data = load_mpra(SHARED / "mpra_satmut" / "elements.tsv.gz")
    loci = sorted(set(data.locus))
    dev = dev_loci(loci)
    results = {}

    def keep(name: str, row: dict) -> None:
        row["mean_spearman_sealed_loci"] = float(np.mean(
            [v["spearman"] for e, v in row["elements"].items()
             if data.locus[data.element == e][0] not in dev]))
        results[name] = row
        print(f"{name}: mean Spearman {row['mean_spearman']:.3f}, Pearson "
              f"{row['mean_pearson']:.3f} ({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
        if done is not None:  # keep each scorer's row as soon as it is measured
            done({"n_variants": len(data), "dropped_rows": data.dropped, "loci": loci,
                  "dev_loci": dev, "element_loci": element_loci(data),
                  "scorers": dict(results)})

    ranks = normal_scores(data.effects, data.element)
    needs_motifs = {"jaspar-fitted", "jaspar-fitted-rank", "cnn-local", "cnn-local+ridge"}
    if needs_motifs & set(scorers):
        from pmtoolkit.genomics.motifs import MotifModel, fit_motif_effects

        base = MotifModel()
        t0 = time.perf_counter()
        delta = motif_deltas(data, base)
        motif_seconds = time.perf_counter() - t0
    ridge_pred, alphas = None, {}
    for name in scorers:
        t0 = time.perf_counter()
        if name == "jaspar":
            from pmtoolkit.genomics.motifs import MotifModel
            from pmtoolkit.genomics.score import VariantScorer

            s = VariantScorer(MotifModel(), data.reference()).score(data.variants)
            keep(name, scored(s.diff[:, 0], data, time.perf_counter() - t0))
        elif name == "jaspar-fitted":
            eff = effect_data(data, base.window)
            pred = np.zeros(len(data))
            for locus in loci:
                test = data.locus == locus
                model = fit_motif_effects(eff.subset(np.flatnonzero(~test)), base=base,
                                          strengths=delta[~test])
                pred[test] = delta[test] @ model.weights
            keep(name, scored(pred, data, time.perf_counter() - t0 + motif_seconds))
        if name in ("jaspar-fitted-rank", "cnn-local", "cnn-local+ridge") and ridge_pred is None:
            ridge = LocusRidge(delta, ranks, data.locus)
            ridge_pred = np.zeros(len(data))
            for locus in loci:
                train = [c for c in loci if c != locus]
                alphas[locus] = ridge.nested_alpha(train, delta, data)
                test = data.locus == locus
                ridge_pred[test] = delta[test] @ ridge.weights(train, alphas[locus])
            ridge_seconds = time.perf_counter() - t0 + motif_seconds
            if name == "jaspar-fitted-rank":
                keep(name, scored(ridge_pred, data, ridge_seconds,
                                  alphas={k: float(v) for k, v in alphas.items()},
                                  limits=mpra_limits(data, delta, ranks)))
        if name in ("cnn-local", "cnn-local+ridge"):
            eff = effect_data(data, 41)
            order = range(len(loci))[::-1] if reverse else range(len(loci))
            folds = {s: sorted(((i, local_cnn_fold(data, eff, ranks, loci, i, s,
                                                   (base, delta, ridge, alphas)))
                                for i in order), key=lambda x: x[0]) for s in seeds}
            folds = {s: [f for _, f in fs] for s, fs in folds.items()}
            if folds_only:
                continue
            cpu = float(sum(f["cpu_seconds"] for fs in folds.values() for f in fs))
            runs, preds = [], {}
            for s, fs in folds.items():
                pred = np.zeros(len(data))
                for i, f in enumerate(fs):
                    cnn_test = f["test"]
                    if name == "cnn-local+ridge":  # the CNN's weight, chosen on val loci
                        vi, test = f["val_idx"], f["test_idx"]
                        val_ridge = delta[vi] @ ridge.weights(
                            [c for c in loci if c != loci[i] and c not in f["val_loci"]],
                            alphas[loci[i]])
                        el = data.element[vi]
                        rho = [mean_rho(b * zscore(f["val"], el) + (1 - b) * zscore(val_ridge, el),
                                        data.effects[vi], el) for b in BLEND]
                        b = BLEND[int(np.argmax(rho))]
                        cnn_test = b * zscore(cnn_test, data.element[test]) + \
                            (1 - b) * zscore(ridge_pred[test], data.element[test])
                    pred[f["test_idx"]] = cnn_test
                preds[s] = pred
                runs.append({"seed": s, **scored(pred, data, 0.0)})
                runs[-1].pop("seconds")
            rhos = [r["mean_spearman"] for r in runs]
            ensemble = scored(np.mean([zscore(p, data.element) for p in preds.values()],
                                      axis=0), data, cpu)
            # the row: the mean over seeds (each element too); the seeds' average, its own
            row = {"elements": {e: {k: float(np.mean([r["elements"][e][k] for r in runs]))
                                    for k in ("spearman", "pearson")}
                                | {"n": runs[0]["elements"][e]["n"]}
                                for e in runs[0]["elements"]},
                   "seconds": cpu, "mean_spearman": float(np.mean(rhos)),
                   "mean_pearson": float(np.mean([r["mean_pearson"] for r in runs])),
                   "mean_spearman_sd": float(np.std(rhos, ddof=1)), "n_seeds": len(runs),
                   "seeds": runs, "ensemble": {k: ensemble[k] for k in
                                               ("mean_spearman", "mean_pearson", "elements")},
                   "epochs": f"early stopping (patience {local_patience()}), at most "
                             f"{default_epochs()}",
                   "best_epochs": [int(f["best_epoch"]) for fs in folds.values() for f in fs]}
            keep(name, row)
        elif name in ("cnn-basset", "cnn-dilated"):
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
            keep(name, scored(pred, data, time.perf_counter() - t0, epochs=epochs))
    return {"n_variants": len(data), "dropped_rows": data.dropped, "loci": loci,
            "dev_loci": dev, "element_loci": element_loci(data), "scorers": results}


def element_loci(data) -> dict[str, str]:
    return {str(e): str(data.locus[data.element == e][0]) for e in sorted(set(data.element))}


def default_epochs() -> int:
    from pmtoolkit.genomics.mpra import local_config

    return local_config().epochs


def local_patience() -> int:
    from pmtoolkit.genomics.mpra import local_config

    return local_config().patience


def mpra_dev(tag: str, overrides: dict, note: str = "") -> dict:
    """The design protocol, on DEV_LOCI only: four folds, each holding out two dev loci and
    training on the other six (normal-score targets), early-stopped on the held-out pair;
    their mean per-element Spearman (the best epoch's: optimistic, for comparing designs),
    beside the rank ridge fitted to the same six loci. Appended to the runs journal."""
    from pmtoolkit.genomics.motifs import MotifModel
    from pmtoolkit.genomics.mpra import effect_data, load_mpra, normal_scores

    data = load_mpra(SHARED / "mpra_satmut" / "elements.tsv.gz")
    dev = dev_loci(sorted(set(data.locus)))
    ranks = normal_scores(data.effects, data.element)
    base = MotifModel()
    delta = motif_deltas(data, base)
    ridge = LocusRidge(delta, ranks, data.locus)
    window = overrides.get("window", 41)
    eff = effect_data(data, window)
    folds = [dev[i::4] for i in range(4)]
    rows, t0 = [], time.process_time()
    for held in folds:
        idx = np.flatnonzero(np.isin(data.locus, held))
        pred, info = fit_local_cnn(data, eff, ranks, [c for c in dev if c not in held], held,
                                   overrides.get("seed", 0), idx,
                                   motifs=(base, delta, ridge, 1e3),
                                   **{k: v for k, v in overrides.items() if k != "seed"})
        ridge_pred = delta[idx] @ ridge.weights([c for c in dev if c not in held], 1e3)
        rows.append({"held_out": held, "spearman": mean_rho(pred, data.effects[idx],
                                                            data.element[idx]),
                     "ridge_rank_spearman": mean_rho(ridge_pred, data.effects[idx],
                                                     data.element[idx]), **info})
    row = {"date": time.strftime("%Y-%m-%d %H:%M"), "tag": tag, "protocol": "dev loci "
           f"{dev}, 4 folds of 2 held out, 6 trained", "overrides": overrides, "note": note,
           "mean_spearman": float(np.mean([r["spearman"] for r in rows])),
           "ridge_rank_mean_spearman": float(np.mean([r["ridge_rank_spearman"] for r in rows])),
           "folds": rows,
           "cpu_seconds": time.process_time() - t0}
    with open(DOCS / "variants_mpra_runs.jsonl", "a") as fh:
        fh.write(json.dumps(row, default=float) + "\n")
    print(f"dev {tag}: {row['mean_spearman']:.3f}", file=sys.stderr, flush=True)
    return row


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
             f"Last run {r['date']} on {r['machine']}: `{r['command']}`; the parts and rows "
             "it did not rerun keep the numbers of their own runs (the MPRA part says its "
             "command).", ""]
    m = r.get("mpra")
    if m:
        dev = m.get("dev_loci", [])
        lines += ["## Saturation-mutagenesis MPRA, leave one locus out", ""]
        if "command" in m:
            lines += [(f"Measured {m['date']}: `{m['command']}` (rows not rerun keep their "
                      "own numbers)."), ""]
        lines += [(f"{m['n_variants']:,} variants of 21 elements (Kircher et al. 2019, GRCh38; "
                  f"{m['dropped_rows']} table rows without coordinates or anchor left out), "
                  f"{len(m['loci'])} loci. Every scorer but the zero-shot `jaspar` is fitted to "
                  "the measured effects of the other 15 loci and scores the held-out one "
                  "(elements measured in several cells or times share a locus and are held "
                  "out together); the number is the Spearman between predicted and measured "
                  "effects within each element, averaged over the 21 elements. Goal: ≥ 0.3."),
                  "",
                  ("- `jaspar-fitted`: a ridge over the changes in strength of 879 JASPAR "
                  "motifs fitted to the raw effects (its penalty, 1e4, was chosen once by this "
                  "same leave-one-locus-out): the recipe of the `mpra` model shipped before "
                  "issue 25."),
                  ("- `jaspar-fitted-rank`: the same ridge fitted to each element's effects as "
                  "normal scores (ranks; every element weighs alike; the shipped `mpra` "
                  "model's recipe since issue 25), its penalty chosen per "
                  "fold by an inner leave-one-locus-out over the training loci ("
                  + ", ".join(f"{a:.0e}" for a in ALPHAS) + ")."),
                  ("- `cnn-local`: a CNN of local sequence (`architecture=\"local\"`: 64 "
                  "filters of 15 bases, 32 of 7 on them, summed over positions; REF and ALT "
                  "windows of 41 bases, everything a variant can reach), first layer started "
                  "from the 64 JASPAR motifs the rank ridge of the same loci weighs most, "
                  "trained (`fit_effects`) on normal scores of 13 loci and stopped early on "
                  f"the mean per-element Spearman of {VAL_LOCI} loci drawn from the training "
                  "loci (never the held-out one), both strands averaged. "
                  f"Seeds {list(SEEDS)}; the row is their mean ± sd, per element too."),
                  ("- `cnn-local+ridge`: each seed's CNN averaged with `jaspar-fitted-rank` "
                  "(standardised within each element), the CNN's weight chosen from "
                  f"{list(BLEND)} on the same validation loci."),
                  "",
                  ("Design choices (targets, loss, size, first layer, learning rate) were made "
                  f"on folds of {len(dev)} dev loci ({', '.join(dev)}) only: the "
                  "'sealed' column averages the elements of the other loci, which no choice "
                  "saw. The runs behind the choices: "
                  "[variants_mpra_runs.jsonl](variants_mpra_runs.jsonl)."), "",
                  "| scorer | mean Spearman | sealed loci | mean Pearson | time (s) |",
                  "|---|---:|---:|---:|---:|"]
        for name, s in m["scorers"].items():
            label = name
            if "n_seeds" in s:
                label += f" (n = {s['n_seeds']} seeds; {s['epochs']})"
            elif "epochs" in s:
                label += f" ({s['epochs']} epochs a fold)"
            if "superseded" in s:
                label = f"~~{label}~~ superseded: {s['superseded']}"
            rho = f"{s['mean_spearman']:.3f}"
            if "mean_spearman_sd" in s:
                rho += f" ± {s['mean_spearman_sd']:.3f}"
            sealed = s.get("mean_spearman_sealed_loci")
            lines.append(f"| {label} | {rho} | "
                         f"{'' if sealed is None else f'{sealed:.3f}'} | "
                         f"{s['mean_pearson']:.3f} | {s['seconds']:.0f} |")
        seeded = {n: s for n, s in m["scorers"].items() if "seeds" in s}
        for name, s in seeded.items():
            runs = ", ".join(f"seed {x['seed']} {x['mean_spearman']:.3f}" for x in s["seeds"])
            lines += ["", (f"`{name}` per seed: {runs}; the seeds' average, one scorer: "
                      f"{s['ensemble']['mean_spearman']:.3f}. CPU time of all its fits "
                      f"(one thread): {s['seconds']:.0f} s.")]
        limits = m["scorers"].get("jaspar-fitted-rank", {}).get("limits")
        if limits:
            curve = limits["learning_curve"]
            same = limits["same_sequence"]
            lines += ["", ("What bounds these numbers (the rank ridge, penalty "
                      f"{limits['alpha']:.0e}):"), "",
                      "| loci trained on | " + " | ".join(str(k) for k in curve) + " |",
                      "|---|" + "---:|" * len(curve),
                      "| mean Spearman, held-out locus | " + " | ".join(
                          f"{v:.3f}" for v in curve.values()) + " |", "",
                      (f"(10 random draws of the training loci a size). With each element's "
                       "own other positions in training (5 folds of 20-base blocks), the same "
                       f"ridge reaches {limits['within_elements']:.3f}: the motif features' "
                       "reach with nothing to transfer. One sequence measured twice (other "
                       "cells or times) agrees to Spearman " + ", ".join(
                           f"{v['spearman']:.2f} ({k})" for k, v in same.items()) +
                       ": a model of one measurement can score no better on the other.")]
        missing = [n for n in SCORERS if n not in m["scorers"]]
        if missing:
            lines += ["", "Not measured yet: " + ", ".join(f"`{n}`" for n in missing) +
                      f" (`--scorers {' '.join(missing)}`)."]
        names = list(m["scorers"])
        lines += ["", "Per element (Spearman; seeded rows: the mean over seeds; * dev locus):",
                  "", "| element | n | " + " | ".join(names) + " |",
                  "|---|---:|" + "---:|" * len(names)]
        first = m["scorers"][names[0]]["elements"]
        locus_of = m.get("element_loci", {})
        for e in first:
            star = "*" if locus_of.get(e) in dev else ""
            lines.append(f"| {e}{star} | {first[e]['n']} | " + " | ".join(
                f"{m['scorers'][n]['elements'][e]['spearman']:.3f}" for n in names) + " |")
        lines += ["", "![Spearman per element](variants.png)", ""]
        _plot(m, DOCS / "variants.png")
    s = r.get("splice")
    if s:
        lines += ["## Splice model (shipped)", "",
                  (f"Held-out test split ({s['n_test']} of 3,190 UCI sequences): accuracy "
                  f"{s['accuracy']:.3f}, macro ROC-AUC {s['roc_auc']:.3f}."), ""]
    t = r.get("throughput")
    if t:
        lines += ["## Scoring throughput", "",
                  (f"`score_vcf` on {t['variants']:,} SNVs of the hg38 chr2 chunk, TSV out, "
                  "REF and ALT windows on both strands (4 forward passes per variant). The "
                  f"limit: this machine's best fp32 matrix multiply on the same "
                  f"{t.get('threads', '?')} thread(s), measured in the same run, "
                  f"{t['matmul_peak_gflops']:.0f} GFLOP/s. Goal: ≥ 30% of it."), "",
                  "| model | window | MFLOP / variant | variants/s | GFLOP/s | of the limit |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name in ("splice", "mpra"):
            x = t.get(name, {})
            if "variants_per_second" in x:
                lines.append(f"| {name} | {x['window']} | {x['flops_per_variant'] / 1e6:.1f} | "
                             f"{x['variants_per_second']:,.0f} | {x['gflops_per_second']:.1f} | "
                             f"{x['fraction_of_peak']:.0%} |")
        lines += ["", ("Both run the same pipeline (VCF parsing, REF checks, window cutting, "
                  "output): the `mpra` motif model needs few FLOPs a variant, so most of its "
                  "time is spent outside the model and its fraction of the limit is low "
                  "though it scores as fast as `splice`."), ""]
    i = r.get("ism")
    if i:
        lines += ["## Saturation mutagenesis", "",
                  ("Every substitution of a window, both strands, with the benchmark CNN's layers "
                  "(`cnn-basset`: kernels 15/7/5, pools 4/4/2): the fast path recomputes only the "
                  "slice of each stage a substitution reaches; rescoring runs every mutated "
                  "sequence through the whole network. Same answers (largest difference "
                  "shown). Goal: ≥ 5x."), "",
                  ("| window | substitutions | fast (ms) | rescoring (ms) | speed-up | "
                  "max difference |"), "|---:|---:|---:|---:|---:|---:|"]
        for x in i:
            lines.append(f"| {x['window']} | {x['substitutions']} | "
                         f"{x['fast_seconds'] * 1000:.0f} | {x['full_seconds'] * 1000:.0f} | "
                         f"**{x['speedup']:.1f}x** | {x['max_abs_difference']:.1e} |")
        lines += ["", ("At 200 bases a substitution reaches most of the last stages (their "
                  "receptive field is a large part of the window), so little can be skipped; "
                  "at Basset's and DeepSEA's window sizes the saving is what fastISM reports. "
                  "(The shipped `mpra` model is a motif model: its ISM scores each "
                  "substitution in its own centred window, 5 windows a position.)"), ""]
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
    ap.add_argument("--dev", metavar="JSON",
                    help="run the effect CNN's design protocol on the dev loci with these "
                         "local_config overrides (a JSON object) and journal it")
    ap.add_argument("--tag", default="dev", help="--dev: the run's name in the journal")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                    help="the effect CNN's seeds")
    ap.add_argument("--folds-only", action="store_true",
                    help="only fit the effect CNN's folds of --seeds (kept in build/, for a "
                         "second process to share the work) and write nothing")
    ap.add_argument("--reverse", action="store_true",
                    help="--folds-only: from the last fold back (a second process on the same "
                         "seed meets the first halfway)")
    args = ap.parse_args()
    if args.folds_only:
        mpra(["cnn-local"], args.epochs, seeds=args.seeds, folds_only=True,
             reverse=args.reverse)
        return 0
    if args.dev:
        mpra_dev(args.tag, json.loads(args.dev))
        return 0
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
            r["mpra"] = {**m, "date": r["date"], "command": r["command"],
                         "scorers": {**old, **m["scorers"]}}
            write_docs(r)

        mpra(args.scorers, args.epochs, done, seeds=args.seeds)
    write_docs(r)
    print((DOCS / "variants.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
