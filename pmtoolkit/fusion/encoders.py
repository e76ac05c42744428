"""Per-modality encoders from pmtoolkit's own models, trained on a cohort's patients.

Each modality gets the domain's own model, trained on the training patients' outcome: the EHR
sequence model (:func:`pmtoolkit.ehr.models.fit_risk_model`, GRU), the expression classifier
(:func:`pmtoolkit.expression.classifier.fit_classifier`), the image classifier
(:func:`pmtoolkit.imaging.classifier.fit_classifier`), and for tabular genotypes a
one-modality :class:`~pmtoolkit.fusion.model.FusionModel` (an MLP over the dosages, in the
spirit of a learned polygenic score). A patient's embedding for a modality is the representation
the encoder's output layer reads (:func:`penultimate`); the encoder's own prediction is that
modality's single-modality baseline. :func:`pmtoolkit.fusion.experiment.run_experiment` then
fits :class:`~pmtoolkit.fusion.model.FusionModel` on the embeddings and compares.

Stacking: the encoders train on one part of the patients and the fusion head on embeddings of
another (``PARTS``), so the head never learns from embeddings that saw their patients'
outcomes; both stop early on a third part; the test part is seen by neither.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError

log = logging.getLogger(__name__)


def penultimate(network, call) -> np.ndarray:
    """The input of ``network``'s last linear layer, gathered over everything ``call()`` runs
    through it: the representation the model's output is read from."""
    import torch

    linears = [m for m in network.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError("the network has no linear layer")
    grabbed: list[np.ndarray] = []
    hook = linears[-1].register_forward_hook(
        lambda _m, inp, _out: grabbed.append(inp[0].detach().float().cpu().numpy()))
    try:
        call()
    finally:
        hook.remove()
    return np.concatenate(grabbed) if grabbed else np.zeros((0, linears[-1].in_features))


PARTS = {"train": 0.4, "valid": 0.1, "fusion": 0.3, "test": 0.2}


def _split(ids: list[str], y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Stratified split of patients: ``train`` (the encoders), ``fusion`` (the fusion head,
    on embeddings of patients its encoders never trained on), ``valid`` (early stopping of
    both), ``test``."""
    rng = np.random.default_rng(seed)
    side = np.empty(len(ids), dtype=object)
    cuts = np.cumsum(list(PARTS.values()))[:-1]
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == cls))
        for name, chunk in zip(PARTS, np.split(idx, (cuts * len(idx)).astype(int))):
            side[chunk] = name
    return {k: np.flatnonzero(side == k) for k in PARTS}


def checkpoint_folder(root: str | os.PathLike | None, name: str) -> Path | None:
    """The resume-checkpoint folder of one network of the experiment (None: no resume)."""
    return None if root is None else Path(root) / name


def encode_cohort(folder: str | os.PathLike, *, seed: int = 0, epochs: int = 20,
                  checkpoints: str | os.PathLike | None = None, resume: bool = False
                  ) -> dict[str, Any]:
    """Train each modality's encoder on the training patients of a simulated (or real, in the
    same layout) cohort and embed every patient. Returns ids, outcome, split, and per
    modality: ``embedding (N, d)``, ``present (N,)`` and the encoder's ``prediction (N,)``
    (NaN where the modality is missing). Each encoder keeps its resume checkpoint in
    ``checkpoints/<modality>``, from which ``resume`` continues an interrupted run."""
    import pandas as pd

    from pmtoolkit.core.io import read_table
    from pmtoolkit.fusion.data import read_outcomes

    root = Path(folder)
    outcome = read_outcomes(root / "outcomes.csv", "binary")  # checked: one 0/1 per patient
    ids = list(outcome)
    pos = {p: i for i, p in enumerate(ids)}
    y = np.array([int(outcome[p]) for p in ids])

    def rows_of(patients, path) -> np.ndarray:
        """Positions of a modality file's patients among the outcomes' (all must be there)."""
        rows = [pos.get(str(p).strip()) for p in patients]
        if None in rows:
            raise BadInputError(f"{path}: patient {patients[rows.index(None)]!r} is not in "
                                f"{root / 'outcomes.csv'}")
        return np.array(rows, dtype=np.int64)
    split = _split(ids, y, seed)
    side = np.empty(len(ids), dtype=object)
    for k, v in split.items():
        side[v] = k
    out: dict[str, Any] = {"ids": ids, "y": y, "split": split, "modalities": {}}

    def store(name, rows, emb, pred):
        n = len(ids)
        e = np.zeros((n, emb.shape[1]), np.float32)
        p = np.full(n, np.nan)
        present = np.zeros(n, bool)
        e[rows], p[rows], present[rows] = emb, pred, True
        out["modalities"][name] = {"embedding": e, "prediction": p, "present": present}
        log.info("%s: %d patients, embedding %d", name, len(rows), emb.shape[1])

    # EHR: the GRU risk model over visits, as of each patient's last visit
    from pmtoolkit.ehr.config import RiskModelConfig, TaskConfig
    from pmtoolkit.ehr.events import read_event_table
    from pmtoolkit.ehr.models import fit_risk_model
    from pmtoolkit.ehr.tasks import current_samples

    events = read_event_table(root / "ehr" / "events.csv", patients=root / "ehr" / "patients.csv")
    samples = current_samples(events, TaskConfig(min_visits=1, min_age=None)).samples
    for s in samples:
        s.label = int(y[pos[s.patient_id]])
    by = {k: [s for s in samples if side[pos[s.patient_id]] == k] for k in split}
    ehr = fit_risk_model(by["train"], by["valid"], RiskModelConfig(
        arch="gru", epochs=epochs, seed=seed, device="cpu", embedding_dim=32, hidden_dim=32),
        checkpoints=checkpoint_folder(checkpoints, "ehr"), resume=resume)
    rows = rows_of([s.patient_id for s in samples], root / "ehr" / "events.csv")
    pred = []
    emb = penultimate(ehr.network, lambda: pred.append(ehr.predict_proba(samples)))
    store("ehr", rows, emb, pred[0])

    # expression: the MLP classifier of pmt expr classify
    from pmtoolkit.expression.classifier import fit_classifier as fit_expr
    from pmtoolkit.expression.config import ExpressionClassifierConfig as ExprConfig
    from pmtoolkit.expression.io import read

    adata = read(root / "expression.h5ad")
    rows = rows_of(list(adata.obs_names), root / "expression.h5ad")
    adata.obs["outcome"] = pd.Categorical([str(y[r]) for r in rows])
    train_rows = np.isin(rows, split["train"])
    expr = fit_expr(adata[train_rows].copy(), "outcome", ExprConfig(
        hidden=(64,), epochs=epochs * 2, seed=seed, device="cpu", n_top_genes=None),
        checkpoints=checkpoint_folder(checkpoints, "expression"), resume=resume)
    probs = []
    emb = penultimate(expr.network, lambda: probs.append(expr.predict_proba(adata)))
    store("expression", rows, emb, np.asarray(probs[0])[:, expr.classes.index("1")])

    # imaging: the MONAI ResNet classifier of pmt imaging
    from pmtoolkit.imaging.classifier import fit_classifier as fit_img
    from pmtoolkit.imaging.config import ImageClassifierConfig as ImgConfig
    from pmtoolkit.imaging.io import read_image

    table = read_table(root / "imaging" / "images.csv", columns=["path", "patient_id"])
    rows = rows_of(table["patient_id"].tolist(), root / "imaging" / "images.csv")
    images = [read_image(root / "imaging" / p) for p in table["path"]]
    labels = [str(y[r]) for r in rows]
    tr = np.isin(rows, split["train"])
    va = np.isin(rows, split["valid"])
    img = fit_img([im for im, t in zip(images, tr) if t], [lb for lb, t in zip(labels, tr) if t],
                  # a faint signal under noisy outcome labels: the network learns it late
                  # (flat validation AUROC for 10+ epochs, then a rise), so small batches,
                  # more epochs and no early stop; the best validation epoch is kept
                  ImgConfig(image_size=(32, 32), epochs=epochs * 3 // 2,
                            patience=epochs * 3 // 2, batch_size=32, seed=seed, device="cpu",
                            augment=False),
                  valid=([im for im, t in zip(images, va) if t],
                         [lb for lb, t in zip(labels, va) if t]), classes=["0", "1"],
                  checkpoints=checkpoint_folder(checkpoints, "imaging"), resume=resume)
    probs = []
    emb = penultimate(img.network, lambda: probs.append(img.predict_proba(images)))
    store("imaging", rows, emb, np.asarray(probs[0])[:, 1])

    # genotypes: a one-modality fusion network (an MLP) on the dosages, like a polygenic score
    from pmtoolkit.fusion.config import FusionConfig
    from pmtoolkit.fusion.model import fit_fusion

    geno = read_table(root / "genotypes.csv", columns=["patient_id"])
    rows = rows_of(geno["patient_id"].tolist(), root / "genotypes.csv")
    dosages = geno.drop(columns=["patient_id"]).apply(pd.to_numeric, errors="coerce")
    x = dosages.to_numpy(dtype=np.float64)
    if not np.isfinite(x).all() or x.shape[1] == 0:
        raise BadInputError(f"{root / 'genotypes.csv'}: the dosages must be numbers, one "
                            "column per variant, none missing")
    x = x.astype(np.float32)

    def part(k):
        keep = np.isin(rows, split[k])
        return {"genotype": x[keep]}, np.ones((keep.sum(), 1), bool), y[rows[keep]]

    gmodel = fit_fusion(part("train"), part("valid"), FusionConfig(
        hidden_dim=16, seed=seed, device="cpu", modality_dropout=0.0, dropout=0.3,
        weight_decay=1e-2), checkpoints=checkpoint_folder(checkpoints, "genotype"), resume=resume)
    ones = np.ones((len(rows), 1), bool)
    pred = []
    emb = penultimate(gmodel.network, lambda: pred.append(gmodel.predict({"genotype": x}, ones)))
    store("genotype", rows, emb, pred[0])
    return out
