"""Metrics and pictures of risk predictions: AUROC, AUPRC, Brier score, sensitivity and
specificity (and PPV, NPV) at a threshold, expected calibration error, a reliability diagram
(all from :mod:`pmtoolkit.core.metrics` and :mod:`pmtoolkit.core.plots`), and a per-patient
timeline of code contributions."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core import metrics as M

if TYPE_CHECKING:
    import pandas as pd


def risk_metrics(y, p, threshold: float = 0.5) -> dict[str, Any]:
    """The metrics of predicted probabilities ``p`` against binary outcomes ``y``."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    return {"n": len(y), "positives": int(y.sum()), "prevalence": float(y.mean()) if len(y)
            else math.nan, "auroc": M.roc_auc(y, p), "auprc": M.pr_auc(y, p),
            "brier": M.brier(y, p), "ece": M.expected_calibration_error(y, p) if len(y) else 0.0,
            "threshold": float(threshold),
            "sensitivity": M.sensitivity(y, p, threshold),
            "specificity": M.specificity(y, p, threshold),
            "ppv": M.precision(y, p, threshold), "npv": M.npv(y, p, threshold)}


def plot_reliability(y, p, path: str | Path, *, title: str = "Calibration") -> None:
    """Observed frequency against mean predicted probability in ten bins of equal counts
    (outcomes are rare: equal-width bins would hold nearly every sample in the first), with
    the number of outcomes / samples of each bin."""
    from pmtoolkit.core.plots import reliability_plot

    reliability_plot(path, y, p, xlabel="predicted probability", ylabel="observed frequency",
                     title=f"{title} (deciles of risk)", annotate="count", strategy="quantile")


def plot_timeline(contrib: pd.DataFrame, path: str | Path, *, title: str = "",
                  top: int = 15) -> None:
    """One sample's history: each code (the ``top`` by absolute contribution) at its visit's
    days before the index time, red raising the risk, blue lowering it, size by magnitude."""
    from pmtoolkit.core.plots import figure

    c = contrib.copy()
    keep = (c.groupby("code")["contribution"].apply(lambda s: s.abs().max())
            .sort_values(ascending=False).head(top).index)
    c = c[c["code"].isin(keep)]
    codes = list(c.groupby("code")["contribution"].sum().sort_values().index)
    ypos = {code: i for i, code in enumerate(codes)}
    names = (dict(zip(c["code"], c["description"])) if "description" in c else {})

    def label(code: str) -> str:
        text = str(names.get(code) or "")
        text = text if len(text) <= 40 else text[:39] + "…"
        return f"{text} ({code})" if text else code
    scale = float(c["contribution"].abs().max() or 1.0)
    with figure(path, size=(9.0, 1.3 + 0.28 * max(3, len(codes)))) as (fig, ax):
        ax.scatter(-c["days_before"], [ypos[k] for k in c["code"]],
                   s=30 + 300 * c["contribution"].abs() / scale,
                   c=np.where(c["contribution"] > 0, "#dc2626", "#2563eb"), alpha=0.75,
                   edgecolors="none")
        ax.set_yticks(range(len(codes)), [label(k) for k in codes], fontsize=7)
        ax.set_xlabel("days before the index time (red: raises the risk, blue: lowers it; "
                      "size: magnitude)", fontsize=8)
        ax.axvline(0, color="#888", lw=0.8, ls=":")
        fig.suptitle(title or "code contributions", fontsize=9)


#: words of a SNOMED CT finding that record a person's social circumstances (Synthea records
#: them at visits: employment, housing, isolation, stress, education)
_SOCIAL = ("employment", "labor force", "isolation", "housing", "stress", "education",
           "income", "criminal", "violence", "transport", "refugee", "unemployed", "social")


def code_reading(code: str, description: str = "") -> str:
    """How to read a code that a risk model leans on, in one line: what kind of record it is
    and what its weight can and cannot mean. A contribution is an association learned from the
    records, never a cause; some kinds of record (a vaccination, a social finding, a drug) stand
    for something else, and the line says what."""
    vocab = str(code).split(":", 1)[0].upper()
    text = str(description or "").lower()
    if vocab == "CVX" or "vaccin" in text or "immuniz" in text:
        if "influenza" in text:
            return ("a vaccination: a marker of who gets care (the yearly flu shot goes to "
                    "older and chronically ill patients, who are seen often), not a cause")
        return "a vaccination: a marker of who gets care, not a cause"
    if vocab in ("RXNORM", "NDC", "ATC") or "oral tablet" in text or " mg " in f" {text} ":
        return "a prescription: it stands for the condition it treats, not a risk of the drug"
    if any(w in text for w in _SOCIAL) and "(finding)" in text:
        return ("a social circumstance recorded at a visit: a correlate of risk (age, health, "
                "access to care), not a cause")
    if "(procedure)" in text or vocab in ("ICD9PROC", "ICD10PCS", "CPT"):
        return "a procedure: marks the care given, and the illness that called for it"
    if "(disorder)" in text or vocab.startswith("ICD"):
        return "a diagnosis: the condition itself, which can carry risk"
    if "(finding)" in text or "(observable" in text:
        return "a finding recorded at a visit: a sign of the patient's state"
    if "encounter" in text or "visit" in text:
        return "a kind of visit: marks contact with care"
    return ""


def top_codes(contrib: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """The codes that raised the explained risks most: ``contributions.csv`` of
    ``pmt ehr explain`` summed per code over its samples, with how often the code was seen, its
    description and :func:`code_reading`."""
    frame = contrib.assign(description=contrib.get("description", "").fillna("")
                           if "description" in contrib else "")
    g = (frame.groupby(["code", "description"])["contribution"]
         .agg(contribution="sum", records="count").reset_index()
         .sort_values(["contribution", "code"], ascending=[False, True]).head(top))
    g = g[g["contribution"] > 0].reset_index(drop=True)
    g["how to read it"] = [code_reading(c, d) for c, d in zip(g["code"], g["description"])]
    return g
