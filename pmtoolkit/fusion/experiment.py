"""The fused experiment on a cohort: the per-modality encoders
(:mod:`pmtoolkit.fusion.encoders`), then each fusion head on their embeddings, against
single-modality baselines, late fusion and (for a simulated cohort) the planted signal; the
numbers ``pmt fusion run`` reports."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.fusion.encoders import checkpoint_folder, encode_cohort

log = logging.getLogger(__name__)


def run_experiment(folder: str | os.PathLike, *, seed: int = 0, epochs: int = 20,
                   fusions: tuple[str, ...] = ("concat", "attention", "gated"),
                   hidden_dim: int = 8, weight_decay: float = 1e-2,
                   encoded: dict[str, Any] | None = None,
                   save_dir: str | os.PathLike | None = None,
                   checkpoints: str | os.PathLike | None = None,
                   resume: bool = False) -> dict[str, Any]:
    """Encoders, then each fusion on the embeddings: test AUROC of every single modality (the
    encoder's own prediction, or a fusion model on that modality alone for tabular genotypes),
    of each fused model on every test patient and (``fused_on``) on the test patients who have
    each modality, of each fused model with one modality hidden
    from everyone, the mean |occlusion| of each modality beside its planted weight, and (for a
    simulated cohort) the correlation of each encoder's prediction with its planted factor.
    Two references beside them: late fusion (a logistic regression on the encoders' logits,
    with a missing-modality indicator each) and, for a simulated cohort, the same regression on
    the planted factors themselves and the EHR x expression product (the ceiling).
    ``save_dir``: write each fused model there as ``<fusion>.safetensors``. Each network keeps
    its resume checkpoint in a folder of ``checkpoints``, from which ``resume`` continues an
    interrupted run."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from pmtoolkit.core.io import read_table
    from pmtoolkit.core.metrics import roc_auc
    from pmtoolkit.fusion.config import FusionConfig
    from pmtoolkit.fusion.model import fit_fusion

    enc = encoded or encode_cohort(folder, seed=seed, epochs=epochs, checkpoints=checkpoints,
                                   resume=resume)
    names = list(enc["modalities"])
    y = enc["y"]
    data = {m: enc["modalities"][m]["embedding"] for m in names}
    mask = np.stack([enc["modalities"][m]["present"] for m in names], 1)
    sp = enc["split"]

    def part(k):
        idx = sp[k]
        return {m: v[idx] for m, v in data.items()}, mask[idx], y[idx]

    test_idx = sp["test"]
    res: dict[str, Any] = {"patients": len(y), "test_patients": len(test_idx),
                           "single": {}, "fused": {}, "fused_on": {}, "without": {},
                           "attribution": {}}
    for j, m in enumerate(names):
        have = test_idx[mask[test_idx, j]]
        pred = enc["modalities"][m]["prediction"]
        if np.isnan(pred[have]).all():  # no encoder prediction: a head on this modality alone
            solo = fit_fusion(({m: data[m][sp["fusion"]]}, mask[sp["fusion"]][:, [j]] | True,
                               y[sp["fusion"]]),
                              ({m: data[m][sp["valid"]]}, mask[sp["valid"]][:, [j]] | True,
                               y[sp["valid"]]), FusionConfig(seed=seed, device="cpu"),
                              checkpoints=checkpoint_folder(checkpoints, f"{m}-alone"),
                              resume=resume)
            pred = np.full(len(y), np.nan)
            pred[have] = solo.predict({m: data[m][have]}, np.ones((len(have), 1), bool))
        res["single"][m] = {"auroc": roc_auc(y[have], pred[have]), "patients": len(have)}
    truth = read_table(Path(folder) / "outcomes.csv")

    def stacked(columns):  # a value per modality (0 where missing) and missing indicators
        x = np.nan_to_num(np.stack(columns, 1)) * mask
        return np.hstack([x, ~mask])

    def lr_auroc(x):
        fit = LogisticRegression(C=1.0, max_iter=1000).fit(x[sp["fusion"]], y[sp["fusion"]])
        return roc_auc(y[test_idx], fit.predict_proba(x[test_idx])[:, 1])

    preds = [np.clip(enc["modalities"][m]["prediction"], 1e-6, 1 - 1e-6) for m in names]
    res["late"] = (lr_auroc(stacked([np.log(p / (1 - p)) for p in preds]))
                   if all(np.isfinite(p[mask[:, j]]).all() for j, p in enumerate(preds))
                   else None)
    cols = [f"{m}_factor" for m in names]
    # the planted factors of a simulated cohort (numbers; a hand-made table may lack them)
    if all(c in truth and pd.api.types.is_numeric_dtype(truth[c]) for c in cols):
        x = stacked([truth[c].to_numpy() for c in cols])
        if {"ehr", "expression"} <= set(names):  # the simulator's one cross-modal term
            both = mask[:, names.index("ehr")] & mask[:, names.index("expression")]
            x = np.hstack([x, (both * truth["ehr_factor"].to_numpy()
                               * truth["expression_factor"].to_numpy())[:, None]])
        res["oracle"] = lr_auroc(x)
    else:
        res["oracle"] = None
    for f in fusions:
        model = fit_fusion(part("fusion"), part("valid"),
                           FusionConfig(fusion=f, seed=seed, device="cpu", hidden_dim=hidden_dim,
                                        weight_decay=weight_decay, dropout=0.3),
                           modalities=names, checkpoints=checkpoint_folder(checkpoints, f"{f}-fusion"),
                           resume=resume)
        if save_dir is not None:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            model.save(Path(save_dir) / f"{f}.safetensors")
        d, mk, yt = part("test")
        pred = model.predict(d, mk)
        res["fused"][f] = roc_auc(yt, pred)
        # on the same patients as each single modality (those who have it)
        res["fused_on"][f] = {m: roc_auc(yt[mk[:, j]], pred[mk[:, j]])
                              for j, m in enumerate(names)}
        res["without"][f] = {}
        for j, m in enumerate(names):
            hidden = mk.copy()
            hidden[:, j] = False
            ok = hidden.any(1)
            res["without"][f][m] = roc_auc(yt[ok], model.predict(
                {k: v[ok] for k, v in d.items()}, hidden[ok]))
        c = model.modality_contributions(d, mk)
        res["attribution"][f] = c.assign(size=c["occlusion"].abs()).groupby(
            "modality")["size"].mean().to_dict()
    # how well each encoder recovers its modality's planted factor (simulated cohorts)
    res["encoder_recovery"] = {}
    for m in names:
        col = f"{m}_factor"
        have = test_idx[mask[test_idx, names.index(m)]]
        pred = enc["modalities"][m]["prediction"][have]
        if col in truth and pd.api.types.is_numeric_dtype(truth[col]) and len(have) > 2 \
                and np.isfinite(pred).all():
            res["encoder_recovery"][m] = float(np.corrcoef(
                pred, truth[col].to_numpy()[have])[0, 1])
    spec = Path(folder) / "cohort.json"
    if spec.is_file():  # a simulated cohort: the weights planted
        import json

        from pmtoolkit.core.io import reading

        try:
            with reading(spec):
                weights = json.loads(spec.read_text(encoding="utf-8"))["spec"]["weights"]
            res["planted_weights"] = {m: float(weights.get(m, 0.0)) for m in names}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadInputError(f"{spec}: not the cohort.json pmt fusion simulate "
                                "writes") from None
    res["outcome_rate"] = float(truth["outcome"].mean())
    return res
