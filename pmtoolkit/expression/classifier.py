"""Classifiers of expression profiles: label transfer from a labelled reference to query cells,
and phenotypes of bulk samples, with per-profile confidence and per-gene attributions.

Both are one model, :class:`ExpressionClassifier`: non-negative expression (counts, or TPM for
bulk) -> ``log1p(value / total * 1e4)`` on the model's genes (the total over all of a
profile's genes, as scanpy's ``normalize_total``) -> an MLP -> softmax. The query is aligned
to the reference's genes by name; a few missing genes count as zero (``max_missing``), more is
an error naming them.

Keys written by :meth:`ExpressionClassifier.annotate`: ``obs[key_added]`` (the predicted
label), ``obs[key_added + '_confidence']`` (its probability) and ``obsm[key_added +
'_probabilities']`` (a cells × classes table).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import TorchModel
from pmtoolkit.expression.config import ExpressionClassifierConfig
from pmtoolkit.expression.io import (
    _first_bad,
    align_genes,
    check_finite,
    dense_tensor,
    is_counts,
)

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd

log = logging.getLogger(__name__)

TARGET_SUM = 1e4


def expression_matrix(adata: ad.AnnData, layer: str = "auto"):
    """Non-negative expression of ``adata``: with ``auto``, ``X`` if it is non-negative and
    unlogged-looking (counts or TPM), else a ``counts`` layer, else ``.raw``; a named layer
    must be non-negative."""
    def nonneg(X) -> bool:
        return _first_bad(X, lambda v: v < 0) is None

    if layer == "auto":
        if is_counts(adata.X) or (nonneg(adata.X) and _max(adata.X) > 50):
            return _checked(adata.X, adata, "X")
        if "counts" in adata.layers:
            return _checked(adata.layers["counts"], adata, "layers['counts']")
        if adata.raw is not None and list(adata.raw.var_names) == list(adata.var_names) and \
                is_counts(adata.raw.X):
            return adata.raw.X
        check_finite(adata.X, adata.obs_names, adata.var_names, source="X",
                     what="counts or TPM")
        if nonneg(adata.X):
            raise BadInputError("X looks log-normalised (non-negative, largest value "
                                f"{_max(adata.X):.1f}) and there are no raw counts",
                                hint="give counts (or TPM for bulk): a 'counts' layer works")
        layer = "X"
    X = adata.X if layer == "X" else adata.raw.X if layer == "raw" and adata.raw is not None \
        else adata.layers.get(layer)
    if X is None:
        raise BadInputError(f"no layer {layer!r} in the AnnData")
    return _checked(X, adata, layer)


def _checked(X, adata: ad.AnnData, source: str):
    """``X`` if it holds finite, non-negative values, else a one-line error naming one."""
    check_finite(X, adata.obs_names, adata.var_names, source=source, what="counts or TPM")
    bad = _first_bad(X, lambda v: v < 0)
    if bad is not None:
        r, c, v = bad
        raise BadInputError(f"negative expression {v:g} (profile {adata.obs_names[r]!r}, gene "
                            f"{adata.var_names[c]!r}); counts or TPM are required")
    return X


def _max(X) -> float:
    v = X.data if hasattr(X, "data") and hasattr(X, "indptr") else np.asarray(X)
    return float(v.max()) if v.size else 0.0


def _log_normalise(X, genes_of_adata, genes: list[str], max_missing: float):
    """log1p(counts per 10k) of the model's genes, totals over all of the profile's genes."""
    import scipy.sparse as sp

    X = sp.csr_matrix(X, dtype=np.float32)
    totals = _totals(X)
    X = sp.diags(TARGET_SUM / totals) @ X
    X.data = np.log1p(X.data)
    return align_genes(X.tocsr(), genes_of_adata, genes, "classifier", max_missing)


def _totals(X) -> np.ndarray:
    """Each profile's total expression; a profile without any is a one-line error."""
    totals = np.asarray(X.sum(axis=1)).ravel()
    if (totals <= 0).any():
        i = int(np.flatnonzero(totals <= 0)[0])
        raise BadInputError(f"{int((totals <= 0).sum())} profile(s) have no counts, e.g. row "
                            f"{i + 1}", hint="filter empty cells first (pmt expr run does)")
    return totals


def check_trainable(adata: ad.AnnData, label_key: str, *, folds: int = 0,
                    layer: str = "auto") -> None:
    """What :func:`fit_classifier` (and :func:`cross_validate` in ``folds``) would refuse in
    ``adata``, found before any training starts: labels, classes, expression values."""
    check_classes(labels_of(adata, label_key), label_key, folds=folds)
    _totals(expression_matrix(adata, layer))


def _build(config: ExpressionClassifierConfig, n_genes: int, n_classes: int):
    from torch import nn

    layers: list[nn.Module] = []
    n_in = n_genes
    for h in config.hidden:
        layers += [nn.Linear(n_in, h), nn.LayerNorm(h), nn.ReLU(), nn.Dropout(config.dropout)]
        n_in = h
    layers.append(nn.Linear(n_in, n_classes))
    return nn.Sequential(*layers)


class ExpressionClassifier(TorchModel):
    """A trained classifier: its genes (in order), class names and label key."""

    Config = ExpressionClassifierConfig

    def __init__(self, config: ExpressionClassifierConfig, network=None, *,
                 genes: list[str] | None = None,
                 classes: list[str] | None = None, label_key: str | None = None):
        self.genes = list(genes or [])
        self.classes = list(classes or [])
        self.label_key = label_key
        super().__init__(config, network)

    @classmethod
    def build_network(cls, config: ExpressionClassifierConfig, extra: dict[str, Any]):
        return _build(config, len(extra.get("genes", [])), len(extra.get("classes", [])))

    @classmethod
    def untrained(cls, config: ExpressionClassifierConfig, extra: dict[str, Any]
                  ) -> ExpressionClassifier:
        return cls(config, cls.build_network(config, extra), genes=extra.get("genes"),
                   classes=extra.get("classes"), label_key=extra.get("label_key"))

    def extra_metadata(self) -> dict[str, Any]:
        return {"genes": self.genes, "classes": self.classes, "label_key": self.label_key}

    def _features(self, adata: ad.AnnData, layer: str = "auto"):
        X = expression_matrix(adata, layer)
        return _log_normalise(X, adata.var_names, self.genes, self.config.max_missing)

    def predict_proba(self, adata: ad.AnnData, *, layer: str = "auto",
                      batch_size: int = 4096) -> pd.DataFrame:
        """Class probabilities, profiles × classes, indexed like ``adata.obs``."""
        import pandas as pd
        import torch

        X = self._features(adata, layer)
        net = self.network.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, X.shape[0], batch_size):
                out.append(torch.softmax(net(dense_tensor(X[start:start + batch_size])), -1).numpy())
        probs = np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)
        return pd.DataFrame(probs, index=adata.obs_names.copy(), columns=self.classes)

    def predict(self, adata: ad.AnnData) -> pd.DataFrame:
        """Label and confidence of each profile."""
        import pandas as pd

        probs = self.predict_proba(adata)
        arr = probs.to_numpy()
        best = arr.argmax(1) if len(arr) else np.zeros(0, int)
        return pd.DataFrame({"label": np.asarray(self.classes, dtype=object)[best],
                             "confidence": arr[np.arange(len(arr)), best]},
                            index=probs.index)

    def annotate(self, adata: ad.AnnData, *, key_added: str = "pmt_label",
                 copy: bool = False) -> ad.AnnData | None:
        """Write each profile's label, confidence and class probabilities into ``adata``."""
        import pandas as pd

        adata = adata.copy() if copy else adata
        probs = self.predict_proba(adata)
        arr = probs.to_numpy()
        best = arr.argmax(1)
        adata.obs[key_added] = pd.Categorical(np.asarray(self.classes, dtype=object)[best],
                                              categories=self.classes)
        adata.obs[f"{key_added}_confidence"] = arr[np.arange(len(arr)), best]
        adata.obsm[f"{key_added}_probabilities"] = probs
        return adata if copy else None

    def attributions(self, adata: ad.AnnData, *, target: str | None = None, steps: int = 32,
                     batch_size: int = 256) -> pd.DataFrame:
        """Integrated gradients (Sundararajan et al. 2017) of each profile's predicted class
        (or ``target``) with respect to its log-expression, from an all-zero baseline:
        profiles × genes; each row sums to that class's logit minus the baseline's."""
        import pandas as pd
        import torch

        X = self._features(adata)
        net = self.network.eval()
        if target is not None and target not in self.classes:
            raise BadInputError(f"unknown class {target!r}",
                                hint="classes: " + ", ".join(self.classes))
        alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
        rows = []
        for start in range(0, X.shape[0], batch_size):
            x = dense_tensor(X[start:start + batch_size])
            with torch.no_grad():
                cls = (torch.full((len(x),), self.classes.index(target)) if target is not None
                       else net(x).argmax(-1))
            grads = torch.zeros_like(x)
            for a in alphas:
                xi = (a * x).requires_grad_(True)
                logit = net(xi).gather(1, cls[:, None]).sum()
                grads += torch.autograd.grad(logit, xi)[0]
            rows.append((x * grads / steps).numpy())
        values = np.concatenate(rows) if rows else np.zeros((0, len(self.genes)), np.float32)
        return pd.DataFrame(values, index=adata.obs_names.copy(), columns=self.genes)


def _top_variance(L, n_top: int | None) -> np.ndarray:
    """Column indices of ``L`` (log-normalised, the classifier's input scale): all, or the
    ``n_top`` of highest variance, in their original order."""
    if n_top is None or n_top >= L.shape[1]:
        return np.arange(L.shape[1])
    mean = np.asarray(L.mean(axis=0)).ravel()
    sq = np.asarray(L.multiply(L).mean(axis=0)).ravel()
    return np.sort(np.argsort(-(sq - mean ** 2), kind="stable")[:n_top])


def objective(weights):
    """Class-weighted cross-entropy (``weights``: a tensor per class); validation accuracy."""
    import torch

    from pmtoolkit.core.task import Objective

    class ProfileObjective(Objective):
        keep_outputs = True

        def __init__(self):
            super().__init__()
            self.register_buffer("weights", weights)

        def outputs(self, net, batch):
            x, y = batch
            return net(x), y

        def loss(self, out, target, step=None):
            return torch.nn.functional.cross_entropy(out, target, weight=self.weights)

        def metrics(self, out, target):
            return {"val_accuracy": float((out.argmax(-1) == target).mean())}

    return ProfileObjective()


def optimizer(config: ExpressionClassifierConfig):
    from pmtoolkit.core.task import Optimizer

    return Optimizer(name="adamw", lr=config.lr, weight_decay=config.weight_decay)


def labels_of(adata: ad.AnnData, label_key: str) -> np.ndarray:
    if label_key not in adata.obs:
        raise BadInputError(f"no obs column {label_key!r} with labels",
                            hint="columns: " + ", ".join(map(str, adata.obs.columns)))
    values = adata.obs[label_key]
    if values.isna().any():
        raise BadInputError(f"{int(values.isna().sum())} profile(s) have no {label_key!r} label",
                            hint="drop unlabelled profiles from the reference")
    return values.astype(str).to_numpy()


def fit_classifier(adata: ad.AnnData, label_key: str,
                   config: ExpressionClassifierConfig | None = None,
                   *, layer: str = "auto", valid_fraction: float = 0.1,
                   workdir: str | Path | None = None, checkpoints: str | Path | None = None,
                   resume: bool = False) -> ExpressionClassifier:
    """Train a classifier of ``obs[label_key]`` on ``adata``'s expression; ``valid_fraction``
    of the profiles (stratified) decide early stopping. Logs go to ``workdir``, the resume
    checkpoint to ``checkpoints`` (default: inside ``workdir``), from which ``resume``
    continues an interrupted run."""
    import torch

    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    config = config or ExpressionClassifierConfig()
    check_ranges(config, source="expression classifier config")
    y_text = labels_of(adata, label_key)
    classes = sorted(set(y_text))
    if len(classes) < 2:
        raise BadInputError(f"{label_key!r} has one class ({classes[0]!r}); need two or more")
    all_genes = list(map(str, adata.var_names))
    L = _log_normalise(expression_matrix(adata, layer), adata.var_names, all_genes, 0.0)
    keep = _top_variance(L, config.n_top_genes)
    genes, features = [all_genes[i] for i in keep], L[:, keep].tocsr()
    y = np.searchsorted(classes, y_text)
    model = ExpressionClassifier.untrained(config, {"genes": genes, "classes": classes,
                                               "label_key": label_key})
    rng = np.random.default_rng(config.seed)
    val_mask = np.zeros(len(y), bool)
    if len(y) >= 50 and valid_fraction > 0:
        for c in range(len(classes)):
            idx = rng.permutation(np.flatnonzero(y == c))
            val_mask[idx[: round(valid_fraction * len(idx))]] = True
    counts = np.bincount(y[~val_mask], minlength=len(classes)).astype(np.float32)
    weights = torch.from_numpy(len(y[~val_mask]) / (len(classes) * np.maximum(counts, 1))) \
        if config.class_weights else torch.ones(len(classes))

    def loader(mask, shuffle):
        # rows are made dense a batch at a time: the whole matrix dense could be many GB
        return torch.utils.data.DataLoader(
            np.flatnonzero(mask).tolist(), batch_size=config.batch_size, shuffle=shuffle,
            collate_fn=_Rows(features, y), generator=torch.Generator().manual_seed(config.seed))

    train = loader(~val_mask, True)
    val = loader(val_mask, False) if val_mask.any() else None
    cfg = train_config(config, monitor="val_loss", mode="min", validating=bool(val),
                       resume=resume,  # without a checkpoint folder, only the last epoch's
                       checkpoint_every=5 if checkpoints else max(25, config.epochs))
    start = time.perf_counter()
    result = train_network(model.network, objective(weights.float()), train, val,
                           optimizer=optimizer(config), config=cfg, workdir=workdir,
                           checkpoint_dir=checkpoints)
    best = result.metrics()
    model.metadata = {"metrics": {"train_seconds": time.perf_counter() - start,
                                  "epochs_run": result.epochs_run,
                                  "val_accuracy": best.get("val_accuracy"),
                                  "n_profiles": len(y), "n_genes": len(genes)}}
    return model


class _Rows:
    """A DataLoader collate: row indices -> (dense features, labels)."""

    def __init__(self, X, y: np.ndarray):
        self.X, self.y = X, y

    def __call__(self, idx: list[int]):
        import torch

        idx = np.asarray(idx)
        return dense_tensor(self.X[idx]), torch.from_numpy(self.y[idx])


def check_classes(y: np.ndarray, label_key: str, *, folds: int = 0) -> None:
    """Labels a classifier can be trained (and cross-validated in ``folds``) on: two
    classes or more, each with a profile per fold."""
    classes, counts = np.unique(np.asarray(y, dtype=str), return_counts=True)
    if len(classes) < 2:
        raise BadInputError(f"{label_key!r} has {len(classes)} class(es); need two or more")
    if folds >= 2 and counts.min() < folds:
        raise BadInputError(f"the rarest class of {label_key!r} ({classes[counts.argmin()]!r}) "
                            f"has {counts.min()} profile(s), fewer than {folds} folds",
                            hint="lower --folds")


def cross_validate(adata: ad.AnnData, label_key: str,
                   config: ExpressionClassifierConfig | None = None,
                   *, folds: int = 5, seed: int = 0, workdir: str | Path | None = None,
                   checkpoints: str | Path | None = None, resume: bool = False
                   ) -> pd.DataFrame:
    """Stratified ``folds``-fold cross-validation: accuracy, balanced accuracy and macro F1
    of each held-out fold (the genes are chosen on the training folds only). Each fold's
    logs and resume checkpoint go to ``fold<k>`` of ``workdir`` and ``checkpoints``."""
    import pandas as pd
    from sklearn.metrics import balanced_accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    y = labels_of(adata, label_key)
    check_classes(y, label_key, folds=folds)
    rows = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(splitter.split(np.zeros(len(y)), y)):
        model = fit_classifier(adata[tr].copy(), label_key, config,
                               workdir=Path(workdir) / f"fold{k}" if workdir else None,
                               checkpoints=Path(checkpoints) / f"fold{k}" if checkpoints
                               else None, resume=resume)
        pred = model.predict(adata[te].copy())["label"].to_numpy()
        rows.append({"fold": k, "n_test": len(te), "accuracy": float((pred == y[te]).mean()),
                     "balanced_accuracy": float(balanced_accuracy_score(y[te], pred)),
                     "macro_f1": float(f1_score(y[te], pred, average="macro"))})
    return pd.DataFrame(rows)
