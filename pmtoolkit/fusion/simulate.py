"""A simulator of linked multimodal cohorts with known, planted signal.

No linked imaging + genomics + EHR cohort ships here, so fusion is shown on simulated patients
whose outcome is driven by one latent factor per modality, each planted in that modality's
raw data and written in the formats the domains read:

- ``ehr/events.csv`` + ``ehr/patients.csv`` (:func:`pmtoolkit.ehr.events.read_event_table`):
  3-8 visits in the two years before 2020-01-01 of background codes (``SIM:B00``-``B59``);
  each visit also holds risk codes ``SIM:R1``-``R5`` with a probability rising with the
  patient's EHR factor;
- ``expression.h5ad`` (:func:`pmtoolkit.expression.io.read`): bulk RNA counts of 300 genes,
  genes ``G000``-``G019`` (a module) scaled by ``exp(0.5 x factor)``, negative binomial;
- ``imaging/<patient>.png`` + ``imaging/images.csv`` (path, patient_id): 32x32 grey images of
  a noisy texture with a blob ("lesion") whose size grows with the factor (size, not
  brightness: image models normalise intensities);
- ``genotypes.csv``: dosages (0/1/2) of 100 SNPs; 10 causal SNPs' weighted sum is the
  genotype factor;
- ``outcomes.csv``: ``patient_id``, ``outcome`` (0/1), each modality's planted factor and
  whether the patient has the modality (missing modalities are absent from its files);
- ``cohort.json``: the simulation's settings (weights, missing shares, seed).

The outcome is Bernoulli(sigmoid(sum of weight x factor + interaction x f_ehr x
f_expression + bias)), the bias set for the requested prevalence; the weights say how much
each modality matters (0: none); the interaction (default 0) is a cross-modal effect that
late fusion, a sum of per-modality scores, cannot represent.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pmtoolkit.core.config import SEED, Range, check_ranges
from pmtoolkit.core.errors import BadInputError

MODALITIES = ("ehr", "expression", "imaging", "genotype")


@dataclass
class CohortConfig:
    """What to simulate."""

    patients: int = field(default=600, metadata={"range": Range(10, 100_000), "help": "patients"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "random seed"})
    prevalence: float = field(default=0.3, metadata={
        "range": Range(0, 1, min_open=True, max_open=True), "help": "share with the outcome"})
    weights: dict[str, float] = field(default_factory=lambda: {
        "ehr": 1.2, "expression": 1.0, "imaging": 0.8, "genotype": 0.5}, metadata={
        "help": "how strongly each modality's factor drives the outcome (log-odds per sd)"})
    missing: dict[str, float] = field(default_factory=lambda: {
        "ehr": 0.0, "expression": 0.2, "imaging": 0.3, "genotype": 0.1}, metadata={
        "help": "share of patients without each modality"})
    interaction: float = field(default=0.0, metadata={"range": Range(-100, 100),
        "help": "log-odds per sd^2 of the product of the EHR and expression factors: a "
                "cross-modal effect no sum of per-modality scores can express"})


def _bias(logit: np.ndarray, prevalence: float) -> float:
    """The intercept giving the requested mean probability (bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit + mid)))).mean() < prevalence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def simulate_cohort(outdir: str | os.PathLike, spec: CohortConfig | None = None,
                    *, overwrite: bool = False) -> dict[str, Any]:
    """Write a simulated cohort into ``outdir`` (see the module doc); returns a summary."""
    import anndata as ad
    import pandas as pd
    from PIL import Image

    from pmtoolkit.core.io import atomic_dir

    spec = spec or CohortConfig()
    unknown = sorted((set(spec.weights) | set(spec.missing)) - set(MODALITIES))
    if unknown:
        raise BadInputError(f"unknown modality {unknown[0]!r}", hint=", ".join(MODALITIES))
    check_ranges(spec, source="cohort settings")
    for m, w in spec.weights.items():
        if not -100 <= w <= 100:  # also NaN
            raise BadInputError(f"weight of {m} {w}: a number in [-100, 100]")
    for m, share in spec.missing.items():
        if not 0 <= share < 1:
            raise BadInputError(f"missing share of {m} {share}: a share in [0, 1)")
    rng = np.random.default_rng(spec.seed)
    n = spec.patients
    ids = [f"sim{i:05d}" for i in range(n)]
    factor = {m: rng.normal(size=n) for m in MODALITIES}
    # the genotype factor comes from the genotypes themselves (standardised)
    maf = rng.uniform(0.1, 0.5, size=100)
    dosage = rng.binomial(2, maf, size=(n, 100))
    beta = np.zeros(100)
    beta[:10] = rng.choice([-1.0, 1.0], 10) * rng.uniform(0.5, 1.0, 10)
    g = dosage @ beta
    factor["genotype"] = (g - g.mean()) / g.std()
    logit = sum(spec.weights.get(m, 0.0) * factor[m] for m in MODALITIES)
    logit = logit + spec.interaction * factor["ehr"] * factor["expression"]
    logit = logit + _bias(logit, spec.prevalence)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    present = {m: rng.random(n) >= spec.missing.get(m, 0.0) for m in MODALITIES}

    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        # EHR events
        rows = []
        for i, pid in enumerate(ids):
            if not present["ehr"][i]:
                continue
            n_vis = int(rng.integers(3, 9))
            days = np.sort(rng.choice(730, n_vis, replace=False))[::-1]
            p_risk = 1 / (1 + np.exp(-(1.5 * factor["ehr"][i] - 2.0)))
            for v, d in enumerate(days):
                t = pd.Timestamp("2020-01-01") - pd.Timedelta(days=int(d) + 1)
                codes = [f"B{int(c):02d}" for c in rng.integers(0, 60, int(rng.integers(1, 4)))]
                codes += [f"R{k}" for k in range(1, 6) if rng.random() < p_risk / 2]
                for c in codes:
                    rows.append((pid, t.isoformat(), c, "SIM", f"{pid}-v{v}"))
        (tmp / "ehr").mkdir()
        pd.DataFrame(rows, columns=["patient_id", "time", "code", "system", "visit_id"]).to_csv(
            tmp / "ehr" / "events.csv", index=False)
        pd.DataFrame({"patient_id": ids, "birth_date": "1960-01-01", "death_date": "",
                      "sex": rng.choice(["F", "M"], n)}).to_csv(tmp / "ehr" / "patients.csv",
                                                                 index=False)
        # expression: bulk counts, a 20-gene module following the factor
        keep = present["expression"]
        base = rng.lognormal(2.0, 1.0, size=300)
        mu = np.tile(base, (n, 1))
        mu[:, :20] *= np.exp(0.5 * factor["expression"])[:, None]
        mu *= rng.uniform(0.7, 1.3, size=(n, 1))  # library size
        r = 10.0  # negative binomial dispersion
        counts = rng.negative_binomial(r, r / (r + mu)).astype(np.float32)
        adata = ad.AnnData(counts[keep], obs=pd.DataFrame(index=np.array(ids)[keep]),
                           var=pd.DataFrame(index=[f"G{j:03d}" for j in range(300)]))
        adata.write_h5ad(tmp / "expression.h5ad")
        # imaging: a blob whose brightness follows the factor
        (tmp / "imaging").mkdir()
        yy, xx = np.mgrid[0:32, 0:32]
        table = []
        for i, pid in enumerate(ids):
            if not present["imaging"][i]:
                continue
            cy, cx = rng.integers(10, 22, 2)
            radius = float(np.clip(2.5 + 1.0 * factor["imaging"][i], 0.8, 6.0))
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))
            img = 0.35 + 0.08 * rng.normal(size=(32, 32)) + 0.35 * blob
            buf = io.BytesIO()
            Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, "PNG")
            (tmp / "imaging" / f"{pid}.png").write_bytes(buf.getvalue())
            table.append((f"{pid}.png", pid))
        pd.DataFrame(table, columns=["path", "patient_id"]).to_csv(
            tmp / "imaging" / "images.csv", index=False)
        # genotypes
        keep = present["genotype"]
        geno = pd.DataFrame(dosage[keep], columns=[f"rs{j:04d}" for j in range(100)])
        geno.insert(0, "patient_id", np.array(ids)[keep])
        geno.to_csv(tmp / "genotypes.csv", index=False)
        # truth
        truth = pd.DataFrame({"patient_id": ids, "outcome": y})
        for m in MODALITIES:
            truth[f"{m}_factor"] = factor[m]
            truth[f"has_{m}"] = present[m].astype(int)
        truth.to_csv(tmp / "outcomes.csv", index=False)
        from pmtoolkit.core.config import to_dict
        from pmtoolkit.core.io import write_json

        write_json(tmp / "cohort.json", {"format": "pmtoolkit-simulated-cohort/1",
                                         "spec": to_dict(spec)})
    return {"patients": n, "outcome_rate": float(y.mean()),
            "present": {m: int(present[m].sum()) for m in MODALITIES},
            "events": len(rows), "weights": dict(spec.weights)}
