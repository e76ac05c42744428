"""DNA sequence models under the one model contract.

``fit(train, valid, config) -> SequenceModel``; ``model.predict(sequences)`` gives one row of
outputs per sequence (probabilities for ``binary`` / ``multiclass``, values for
``regression``), averaged over both strands by default; ``evaluate(model, data)``;
``model.save(path)`` / ``load_model(path)``.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import TorchModel
from pmtoolkit.genomics.config import SequenceModelConfig
from pmtoolkit.genomics.data import SequenceData, encode_sequences

log = logging.getLogger(__name__)

#: base code -> one-hot row (code 4, an ambiguity code, is 0.25 everywhere)
_ROWS = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                  [0.25, 0.25, 0.25, 0.25]], dtype=np.float32)
#: base code -> code of its complement
_COMPLEMENT_CODE = np.array([3, 2, 1, 0, 4], dtype=np.uint8)


def one_hot_codes(codes, *, reverse_complement: bool = False):
    """``(B, 4, L)`` float tensor from base codes ``(B, L)`` (numpy or torch)."""
    import torch

    c = torch.as_tensor(np.asarray(codes), dtype=torch.long) if not torch.is_tensor(codes) \
        else codes.long()
    rows = torch.from_numpy(_ROWS).to(c.device)
    x = rows[c].transpose(1, 2)
    if reverse_complement:
        x = x.flip(1).flip(2)
    return x.contiguous()


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    return _COMPLEMENT_CODE[codes][..., ::-1]


class SequenceModel(TorchModel):
    """A trained sequence model: ``targets`` names its outputs; ``y_mean``/``y_std`` undo the
    standardisation of regression targets."""

    Config = SequenceModelConfig

    def __init__(self, config: SequenceModelConfig, network=None, *,
                 targets: Sequence[str] = ("target",), y_mean=None, y_std=None):
        self.targets = list(targets)
        super().__init__(config, network if network is not None
                         else self.build_network(config, {"targets": self.targets}))
        n = len(self.targets)
        self.y_mean = np.zeros(n) if y_mean is None else np.asarray(y_mean, dtype=np.float64)
        self.y_std = np.ones(n) if y_std is None else np.asarray(y_std, dtype=np.float64)
        #: bases either side a variant scorer should scan by default (see score.VariantScorer)
        self.recommended_scan = 0

    @classmethod
    def build_network(cls, config: SequenceModelConfig, extra: dict[str, Any]):
        from pmtoolkit.genomics.networks import build_network

        return build_network(config, len(extra.get("targets", ["target"])))

    @classmethod
    def untrained(cls, config: SequenceModelConfig, extra: dict[str, Any]) -> SequenceModel:
        model = cls(config, cls.build_network(config, extra), targets=extra["targets"],
                    y_mean=extra.get("y_mean"), y_std=extra.get("y_std"))
        model.recommended_scan = int(extra.get("scan", 0))
        return model

    def extra_metadata(self) -> dict[str, Any]:
        return {"targets": self.targets, "y_mean": [float(v) for v in self.y_mean],
                "y_std": [float(v) for v in self.y_std], "scan": self.recommended_scan}

    @property
    def window(self) -> int:
        return self.config.window

    def flops_per_sequence(self) -> float:
        """Multiply-adds x 2 of one forward pass over one window (one strand)."""
        return float(self.network.flops(self.config.window))

    # -- prediction ----------------------------------------------------------------------
    def outputs(self, logits: np.ndarray) -> np.ndarray:
        """Model outputs from logits: probabilities, or values in the targets' units."""
        if self.config.task == "binary":
            return 1.0 / (1.0 + np.exp(-logits))
        if self.config.task == "multiclass":
            z = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        return logits * self.y_std + self.y_mean

    def logits_codes(self, codes: np.ndarray, *, strands: str = "both",
                     batch_size: int = 512) -> np.ndarray:
        """Raw network outputs of base codes ``(N, window)``; with ``strands="both"`` the
        forward and reverse-complement outputs, stacked ``(2, N, T)``."""
        import torch

        if codes.ndim != 2 or codes.shape[1] != self.window:
            raise BadInputError(f"sequences must be {self.window} bases for this model; got "
                                f"shape {codes.shape}")
        net = self.network.eval()
        device = next(net.parameters()).device
        out = []
        with torch.inference_mode():
            for s in range(0, len(codes), batch_size):
                c = torch.from_numpy(np.ascontiguousarray(codes[s:s + batch_size])).to(device)
                x = one_hot_codes(c)
                if strands == "both":
                    both = net(torch.cat([x, x.flip(1).flip(2)]))
                    out.append(both.view(2, len(c), -1).float().cpu().numpy())
                else:
                    out.append(net(x).float().cpu().numpy()[None])
        if not out:
            return np.zeros((2 if strands == "both" else 1, 0, len(self.targets)), np.float32)
        return np.concatenate(out, axis=1)

    def predict_codes(self, codes: np.ndarray, *, strands: str = "both",
                      batch_size: int = 512) -> np.ndarray:
        """Outputs ``(N, T)`` of base codes; averaged over both strands in output space."""
        if strands not in ("both", "forward"):
            raise BadInputError(f"strands must be 'both' or 'forward', not {strands!r}")
        logits = self.logits_codes(codes, strands=strands, batch_size=batch_size)
        return np.mean([self.outputs(z.astype(np.float64)) for z in logits], axis=0)

    def predict(self, sequences: Sequence[str] | SequenceData, *, strands: str = "both",
                batch_size: int = 512) -> np.ndarray:
        """Outputs ``(N, T)`` for DNA strings (cut or N-padded to the window) or
        :class:`SequenceData`."""
        if isinstance(sequences, SequenceData):
            codes = sequences.codes
        else:
            codes, _ = encode_sequences(list(sequences), self.window)
        return self.predict_codes(codes, strands=strands, batch_size=batch_size)


# ----------------------------------------------------------------------------- training

class _Batches:
    """Shuffled (or ordered) batches of base codes and labels, one-hot encoded per batch,
    with random reverse complements and shifts in training."""

    def __init__(self, data: SequenceData, y: np.ndarray, config: SequenceModelConfig,
                 train: bool, seed: int):
        self.codes, self.y, self.config, self.train = data.codes, y, config, train
        self.rng = np.random.default_rng(seed)
        self.batch_size = config.batch_size

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.codes) / self.batch_size))

    def __iter__(self):
        import torch

        n = len(self.codes)
        order = self.rng.permutation(n) if self.train else np.arange(n)
        for s in range(0, n, self.batch_size):
            idx = order[s:s + self.batch_size]
            c = self.codes[idx]
            if self.train and self.config.max_shift > 0:
                c = _shift(c, self.rng.integers(-self.config.max_shift,
                                                self.config.max_shift + 1, len(c)))
            if self.train and self.config.augment_rc:
                flip = self.rng.random(len(c)) < 0.5
                c = c.copy()
                c[flip] = reverse_complement_codes(c[flip])
            yield one_hot_codes(c), torch.from_numpy(self.y[idx])


def _shift(codes: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each row moved by its shift, the bases shifted in being N (code 4)."""
    out = np.full_like(codes, 4)
    length = codes.shape[1]
    for i, k in enumerate(shifts):
        if k >= 0:
            out[i, k:] = codes[i, :length - k]
        else:
            out[i, :k] = codes[i, -k:]
    return out


def _loss(config: SequenceModelConfig, out, y):
    import torch
    from torch.nn import functional as F

    if config.task == "multiclass":
        return F.cross_entropy(out, y)
    mask = ~torch.isnan(y)
    if not mask.any():
        return out.sum() * 0.0
    if config.task == "binary":
        return F.binary_cross_entropy_with_logits(out[mask], y[mask])
    return F.mse_loss(out[mask], y[mask])


def objective(config: SequenceModelConfig, targets: list[str]):
    """:func:`_loss` of the network's outputs for its task; validation ROC-AUC (binary),
    accuracy (multiclass) or Pearson's r (regression), averaged over the targets."""
    from pmtoolkit.core.task import Objective

    key = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "pearson"}[config.task]

    class SequenceObjective(Objective):
        keep_outputs = True

        def outputs(self, net, batch):
            x, y = batch
            return net(x), y

        def loss(self, out, target, step=None):
            return _loss(config, out, target)

        def metrics(self, out, target):
            m = _metrics(config.task, target, out, targets, logits=True)
            return {f"val_{key}": m[key]} if math.isfinite(m.get(key, float("nan"))) else {}

    return SequenceObjective()


def optimizer(config: SequenceModelConfig):
    from pmtoolkit.core.task import Optimizer

    return Optimizer(name="adamw", lr=config.lr, weight_decay=config.weight_decay,
                     schedule="cosine", floor=0.1)


def _train_targets(data: SequenceData, config: SequenceModelConfig, mean, std) -> np.ndarray:
    if data.y is None:
        raise BadInputError("training sequences need labels")
    if data.task != config.task:
        raise BadInputError(f"the data are labelled for a {data.task} task but the model is "
                            f"{config.task}", hint="set --task to match the labels")
    if config.task == "multiclass":
        return data.y.astype(np.int64)
    if config.task == "regression":
        return ((data.y - mean) / std).astype(np.float32)
    return data.y.astype(np.float32)


def fit(train: SequenceData, valid: SequenceData | None = None,
        config: SequenceModelConfig | None = None, *, workdir: str | Path | None = None,
        checkpoints: str | Path | None = None, resume: bool = False) -> SequenceModel:
    """Train a sequence model on ``train`` (best epoch by validation loss when ``valid`` is
    given; the last epoch otherwise). Sequences must be ``config.window`` bases.

    Logs go to ``workdir``; the resume checkpoint to ``checkpoints`` (default: inside
    ``workdir``), from which ``resume`` continues an interrupted run."""
    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    config = config or SequenceModelConfig()
    check_ranges(config, source="sequence model config")
    if len(train) < 2:
        raise BadInputError("need at least two training sequences")
    for name, d in (("training", train), ("validation", valid)):
        if d is not None and d.window != config.window:
            raise BadInputError(f"{name} sequences are {d.window} bases but the model window "
                                f"is {config.window}")
    if valid is not None and valid.targets != train.targets:
        raise BadInputError("validation targets differ from the training targets")
    mean = std = None
    if config.task == "regression":
        mean = np.nanmean(train.y, axis=0).astype(np.float64)
        std = np.nanstd(train.y, axis=0).astype(np.float64)
        std = np.where(std > 1e-8, std, 1.0)
    seed_everything(config.seed)
    model = SequenceModel(config, targets=train.targets, y_mean=mean, y_std=std)
    y = _train_targets(train, config, model.y_mean, model.y_std)
    loader = _Batches(train, y, config, train=True, seed=config.seed)
    val_loader = None
    if valid is not None and len(valid):
        val_loader = _Batches(valid, _train_targets(valid, config, model.y_mean, model.y_std),
                              config, train=False, seed=config.seed)
    tc = train_config(config, monitor="val_loss", mode="min", resume=resume)
    result = train_network(model.network, objective(config, train.targets), loader,
                           val_loader, optimizer=optimizer(config), config=tc,
                           workdir=workdir, checkpoint_dir=checkpoints)
    model.metadata = {"training_data_sha256": train.fingerprint(), "history": result.history,
                      "best_epoch": result.best_epoch}
    return model


@dataclass
class EffectData:
    """Variant effects measured as differences (e.g. MPRA log2 fold changes): base codes of
    the reference and alternative windows, ``(N, window)`` each, and the effect of each."""

    ref: np.ndarray
    alt: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None = None  # e.g. the element of each variant

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> EffectData:
        index = np.asarray(index, dtype=np.int64)
        return EffectData(self.ref[index], self.alt[index], self.y[index],
                          None if self.groups is None else self.groups[index])


class _EffectBatches:
    """Batches of (ref, alt) one-hot windows, the same random strand for both of a pair."""

    def __init__(self, data: EffectData, y: np.ndarray, config: SequenceModelConfig,
                 train: bool, seed: int):
        self.data, self.y, self.config, self.train = data, y, config, train
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self._batches())

    def _batches(self) -> list[np.ndarray]:
        n, bs = len(self.y), self.config.batch_size
        if self.config.effect_loss == "pearson" and self.data.groups is not None:
            # a correlation is taken within one element: batches never mix elements
            out = []
            for g in np.unique(self.data.groups):
                idx = np.flatnonzero(self.data.groups == g)
                if self.train:
                    idx = self.rng.permutation(idx)
                k = max(1, round(len(idx) / bs))  # near-equal batches, none tiny
                out.extend(part for part in np.array_split(idx, k) if len(part) >= 3)
            if self.train:
                out = [out[i] for i in self.rng.permutation(len(out))]
            return out
        order = self.rng.permutation(n) if self.train else np.arange(n)
        return [order[s:s + bs] for s in range(0, n, bs)]

    def __iter__(self):
        import torch

        for idx in self._batches():
            r, a = self.data.ref[idx], self.data.alt[idx]
            if self.train and self.config.augment_rc:
                flip = self.rng.random(len(idx)) < 0.5
                r, a = r.copy(), a.copy()
                r[flip] = reverse_complement_codes(r[flip])
                a[flip] = reverse_complement_codes(a[flip])
            yield one_hot_codes(r), one_hot_codes(a), torch.from_numpy(self.y[idx])


def effect_objective(config: SequenceModelConfig, groups: np.ndarray | None = None):
    """A one-output network f trained so that f(alt) - f(ref) fits the measured effect
    (squared error, or one minus Pearson's r within a batch); validation Spearman's rho, the
    mean over ``groups`` (the validation effects' elements, in the validation batches' order)
    where given: the evaluation of held-out elements."""
    import torch
    from torch.nn import functional as F

    from pmtoolkit.core.task import Objective

    class EffectObjective(Objective):
        keep_outputs = True

        def outputs(self, net, batch):
            r, a, y = batch
            out = net(torch.cat([r, a]))[:, 0]
            return out[len(r):] - out[:len(r)], y

        def loss(self, out, target, step=None):
            if config.effect_loss == "pearson":
                dc, yc = out - out.mean(), target - target.mean()
                return 1 - (dc * yc).sum() / (dc.norm() * yc.norm() + 1e-8)
            return F.mse_loss(out, target)

        def metrics(self, out, target):
            from pmtoolkit.core import metrics as M

            if groups is None or len(groups) != len(out):
                return {"val_spearman": M.spearman(target, out)}
            rho = [M.spearman(target[groups == g], out[groups == g]) for g in np.unique(groups)]
            return {"val_spearman": float(np.nanmean(rho))}

    return EffectObjective()


def fit_effects(train: EffectData, valid: EffectData | None = None,
                config: SequenceModelConfig | None = None, *, target: str = "activity",
                workdir: str | Path | None = None,
                first_filters: tuple[np.ndarray, np.ndarray] | None = None) -> SequenceModel:
    """Train a one-output regression model from measured variant effects: the network's
    output difference between the ALT and REF windows fits each effect (a Siamese fit, as
    saturation-mutagenesis MPRA measures differences, not activities). The model's output is
    in the effect's units up to an offset, so its ``diff`` scores are effects.

    With ``valid``, the weights of the epoch with the best validation Spearman are kept
    (the mean over ``valid.groups``, e.g. held-out elements, where it has them), and
    ``config.patience`` epochs without improvement stop the run. ``first_filters``: weights
    ``(filters, 4, kernel)`` and biases the first convolution starts from instead of random
    ones (e.g. motif matrices, :func:`pmtoolkit.genomics.mpra.motif_filters`)."""
    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    config = config or SequenceModelConfig(task="regression")
    check_ranges(config, source="sequence model config")
    if config.task != "regression":
        raise BadInputError("effect training needs --task regression")
    if len(train) < 2:
        raise BadInputError("need at least two training effects")
    for d in (train, valid):
        if d is not None and d.ref.shape[1] != config.window:
            raise BadInputError(f"effect windows are {d.ref.shape[1]} bases but the model "
                                f"window is {config.window}")
    scale = float(np.std(train.y)) or 1.0
    seed_everything(config.seed)
    model = SequenceModel(config, targets=[target], y_mean=[0.0], y_std=[scale])
    if first_filters is not None:
        _set_first_filters(model.network, *first_filters)
    loader = _EffectBatches(train, (train.y / scale).astype(np.float32), config, True,
                            config.seed)
    val_loader = None if valid is None or not len(valid) else _EffectBatches(
        valid, (valid.y / scale).astype(np.float32), config, False, config.seed)
    val_groups = None
    if val_loader is not None and valid.groups is not None:
        val_groups = valid.groups[np.concatenate(val_loader._batches())]  # in batch order
    tc = train_config(config, monitor="val_spearman", mode="max")
    result = train_network(model.network, effect_objective(config, val_groups), loader,
                           val_loader, optimizer=optimizer(config), config=tc,
                           workdir=workdir)
    if config.effect_loss == "pearson":
        _rescale_effects(model, train)
    import hashlib

    h = hashlib.sha256(train.ref.tobytes())
    h.update(train.alt.tobytes())
    h.update(train.y.astype(np.float64).tobytes())
    model.metadata = {"training_data_sha256": h.hexdigest(), "history": result.history,
                      "best_epoch": result.best_epoch}
    return model


def _set_first_filters(network, weight: np.ndarray, bias: np.ndarray) -> None:
    import torch

    conv = next(m for m in network.modules() if isinstance(m, torch.nn.Conv1d))
    if tuple(weight.shape) != tuple(conv.weight.shape) or bias.shape != (conv.out_channels,):
        raise BadInputError(f"first filters of shape {tuple(weight.shape)} do not fit the "
                            f"first convolution {tuple(conv.weight.shape)}")
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(weight, dtype=conv.weight.dtype))
        conv.bias.copy_(torch.as_tensor(bias, dtype=conv.bias.dtype))


def _rescale_effects(model: SequenceModel, train: EffectData) -> None:
    """Scale the output layer so that the model's effects fit the training effects by least
    squares (a correlation loss leaves their scale free)."""
    import torch

    w = model.predict_codes(np.concatenate([train.ref, train.alt]))[:, 0]
    d = w[len(train):] - w[:len(train)]
    denom = float(d @ d)
    if denom <= 0 or not np.isfinite(denom):
        return
    factor = float(d @ train.y) / denom
    with torch.no_grad():
        model.network.out.weight.mul_(factor)
        model.network.out.bias.mul_(factor)


# ----------------------------------------------------------------------------- evaluation

def _metrics(task: str, y: np.ndarray, out: np.ndarray, targets: list[str], *,
             logits: bool = False) -> dict[str, float]:
    """Metrics of outputs (or logits) against labels: mean over targets, and per target."""
    from pmtoolkit.core import metrics as M

    res: dict[str, float] = {}
    if task == "multiclass":
        pred = out.argmax(axis=1)
        res["accuracy"] = float(np.mean(pred == y))
        aucs = []
        for k, name in enumerate(targets):
            yk = (y == k).astype(float)
            if 0 < yk.sum() < len(yk):
                aucs.append(M.roc_auc(yk, out[:, k]))
                res[f"roc_auc[{name}]"] = aucs[-1]
            res[f"recall[{name}]"] = float(np.mean(pred[y == k] == k)) if (y == k).any() \
                else float("nan")
        res["roc_auc"] = float(np.mean(aucs)) if aucs else float("nan")
        return res
    per: dict[str, list[float]] = {}
    for k, name in enumerate(targets):
        ok = ~np.isnan(y[:, k])
        yk, ok_out = y[ok, k], out[ok, k]
        if task == "binary":
            if 0 < yk.sum() < len(yk):
                for metric, fn in (("roc_auc", M.roc_auc), ("pr_auc", M.pr_auc)):
                    per.setdefault(metric, []).append(fn(yk, ok_out))
                    res[f"{metric}[{name}]"] = per[metric][-1]
        elif len(yk) > 2:
            for metric, fn in (("pearson", M.pearson), ("spearman", M.spearman)):
                per.setdefault(metric, []).append(fn(yk, ok_out))
                res[f"{metric}[{name}]"] = per[metric][-1]
            if not logits:
                per.setdefault("mse", []).append(M.mse(yk, ok_out))
    for metric, vals in per.items():
        res[metric] = float(np.nanmean(vals)) if vals else float("nan")
    return res


def evaluate(model: SequenceModel, data: SequenceData, *, strands: str = "both"
             ) -> dict[str, float]:
    """Accuracy and per-class ROC-AUC (multiclass), ROC-AUC and PR-AUC (binary), Pearson,
    Spearman and MSE (regression); means over targets plus one entry per target."""
    if data.y is None:
        raise BadInputError("evaluation needs labelled sequences")
    if data.targets != model.targets:
        raise BadInputError(f"the data's targets {data.targets[:5]} are not the model's "
                            f"{model.targets[:5]}")
    return _metrics(model.config.task, data.y, model.predict(data, strands=strands),
                    model.targets)
