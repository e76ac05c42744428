"""Fusion of per-modality patient embeddings behind the one model contract.

Inputs are a mapping ``modality -> (N, d_m)`` float array (rows of a missing modality may hold
anything) and a mask ``(N, M)`` of which modalities each patient has. Each modality,
standardised on the training patients, is projected to ``hidden_dim`` (linear, GELU; no
per-patient normalisation, which would erase the strength of a patient's signal);
:class:`~pmtoolkit.fusion.config.FusionConfig` picks how the projections are combined:
concatenation; attention of a learned query token over the modality tokens (multi-head, each
token tagged with its modality); or a gated multimodal unit (a sigmoid gate per modality and feature computed from all of them,
fused = sum of gate * tanh(projection)). Missing modalities never reach the fused vector:
concatenation puts a learned placeholder in their slot, attention and gates mask them out.

Attribution (:meth:`FusionModel.modality_contributions`): the change of each patient's output
when one present modality is hidden (occlusion, the same for every fusion), and for ``gated``
/ ``attention`` the normalised gate or attention weight of each modality.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import TorchModel, check_parameters
from pmtoolkit.fusion.config import FusionConfig

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def _network(config: FusionConfig, dims: list[int]):
    import torch
    from torch import nn

    class Fusion(nn.Module):
        def __init__(self):
            super().__init__()
            h = config.hidden_dim
            # no normalisation per patient here: a layer norm would rescale each patient's
            # projection and erase how strongly the modality expresses its signal
            self.proj = nn.ModuleList([nn.Sequential(nn.Linear(d, h), nn.GELU())
                                       for d in dims])
            m = len(dims)
            self.kind = nn.Parameter(torch.randn(m, h) * 0.02)  # which modality a token is
            if config.fusion == "concat":
                self.placeholder = nn.Parameter(torch.zeros(m, h))
            elif config.fusion == "attention":
                self.cls = nn.Parameter(torch.randn(1, 1, h) * 0.02)
                self.attn = nn.MultiheadAttention(h, num_heads=4 if h % 4 == 0 else 1,
                                                  batch_first=True)
            else:  # gated multimodal unit: a gate per modality and feature, from all of them
                self.gate = nn.Linear(m * h, m * h)
            width = m * h if config.fusion == "concat" else h
            self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(width, h), nn.GELU(),
                                      nn.Dropout(config.dropout), nn.Linear(h, 1))

        def tokens(self, xs):
            return torch.stack([p(x) for p, x in zip(self.proj, xs)], 1) + self.kind

        def fuse(self, z, mask):
            """The fused vector (N, width) and each modality's weight (N, M; None for
            concatenation) — attention averaged over heads, or the mean gate."""
            if config.fusion == "concat":
                z = torch.where(mask.unsqueeze(-1), z, self.placeholder.expand_as(z))
                return z.flatten(1), None
            if config.fusion == "attention":
                out, w = self.attn(self.cls.expand(len(z), 1, -1), z, z,
                                   key_padding_mask=~mask, need_weights=True,
                                   average_attn_weights=True)
                return out[:, 0], w[:, 0]
            zm = z * mask.unsqueeze(-1)
            g = torch.sigmoid(self.gate(zm.flatten(1))).view_as(z) * mask.unsqueeze(-1)
            w = g.mean(-1)
            return (g * torch.tanh(zm)).sum(1), w / w.sum(1, keepdim=True).clamp(min=1e-6)

        def forward(self, xs, mask):
            fused, _ = self.fuse(self.tokens(xs), mask)
            return self.head(fused).squeeze(-1)

    return Fusion()


def _check(data: dict[str, np.ndarray], mask: np.ndarray, modalities: list[str],
           dims: list[int] | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    missing = [m for m in modalities if m not in data]
    if missing:
        raise BadInputError(f"no embeddings of modality {missing[0]!r}",
                            hint="modalities: " + ", ".join(modalities))
    xs = [np.asarray(data[m], dtype=np.float32) for m in modalities]
    flat = [m for m, x in zip(modalities, xs) if x.ndim != 2]
    if flat:
        raise BadInputError(f"the embeddings of modality {flat[0]!r} are not a (patients, "
                            "features) matrix")
    n = len(xs[0])
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (n, len(modalities)) or any(len(x) != n for x in xs):
        raise BadInputError(f"embeddings and mask disagree: {[x.shape for x in xs]} and mask "
                            f"{mask.shape} for {len(modalities)} modalities")
    if dims is not None:
        for m, x, d in zip(modalities, xs, dims):
            if x.shape[1] != d:
                raise BadInputError(f"modality {m!r} has {x.shape[1]} features, the model "
                                    f"expects {d}")
    if not mask.any(1).all():
        raise BadInputError(f"{int((~mask.any(1)).sum())} patient(s) have no modality at all")
    xs = [np.where(mask[:, [j]], np.nan_to_num(x), 0.0).astype(np.float32)
          for j, x in enumerate(xs)]
    return xs, mask


class FusionModel(TorchModel):
    """A trained fusion model: its modalities (in order), their embedding sizes, and the
    per-feature standardisation learnt on the training patients."""

    Config = FusionConfig

    def __init__(self, config: FusionConfig, network=None, *, modalities: list[str],
                 dims: list[int], scale: dict[str, list[list[float]]] | None = None):
        self.modalities = list(modalities)
        self.dims = [int(d) for d in dims]
        self.scale = scale or {}
        super().__init__(config, network)

    @classmethod
    def build_network(cls, config: FusionConfig, extra: dict[str, Any]):
        return _network(config, [int(d) for d in extra["dims"]])

    @classmethod
    def untrained(cls, config: FusionConfig, extra: dict[str, Any]) -> FusionModel:
        return cls(config, cls.build_network(config, extra), modalities=extra["modalities"],
                   dims=extra["dims"], scale=extra.get("scale"))

    def extra_metadata(self) -> dict[str, Any]:
        return {"modalities": self.modalities, "dims": self.dims, "scale": self.scale}

    def _inputs(self, data, mask):
        import torch

        xs, mask = _check(data, mask, self.modalities, self.dims)
        out = []
        for m, x, j in zip(self.modalities, xs, range(len(xs))):
            mu, sd = (np.asarray(v, dtype=np.float32) for v in self.scale[m])
            out.append(torch.from_numpy(np.where(mask[:, [j]], (x - mu) / sd, 0.0)
                                        .astype(np.float32)))
        return out, torch.from_numpy(mask)

    def logits(self, data: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        import torch

        xs, m = self._inputs(data, mask)
        with torch.inference_mode():
            return self.network.eval()(xs, m).numpy()

    def predict(self, data: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        """Probability of the outcome (binary) or the predicted value (regression)."""
        z = self.logits(data, mask)
        return 1.0 / (1.0 + np.exp(-z)) if self.config.task == "binary" else z

    def modality_contributions(self, data: dict[str, np.ndarray], mask: np.ndarray
                               ) -> pd.DataFrame:
        """Per patient and present modality: ``occlusion`` (output with every present
        modality minus output with this one hidden; logits for a binary task) and, for gated
        or attention fusion, the modality's ``weight`` in the fused vector."""
        import pandas as pd
        import torch

        xs, m = self._inputs(data, mask)
        net = self.network.eval()
        with torch.inference_mode():
            full = net(xs, m).numpy()
            _, w = net.fuse(net.tokens(xs), m)
            weights = None if w is None else w.numpy()
            rows = []
            for j, name in enumerate(self.modalities):
                hidden = m.clone()
                hidden[:, j] = False
                alone = ~hidden.any(1)  # the only modality: compare with no information
                hidden[alone] = m[alone]
                out = net(xs, hidden).numpy()
                occ = np.where(alone.numpy(), np.nan, full - out)
                for i in np.flatnonzero(m[:, j].numpy()):
                    rows.append((int(i), name, float(occ[i]),
                                 float(weights[i, j]) if weights is not None else np.nan))
        return pd.DataFrame(rows, columns=["patient", "modality", "occlusion", "weight"])


def check_training(train: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray],
                   config: FusionConfig, modalities: list[str] | None = None) -> None:
    """Refuse what cannot be trained, before anything is written: settings out of range,
    embeddings and mask that disagree, non-finite values, one outcome class, a modality no
    training patient has."""
    from pmtoolkit.core.config import check_ranges

    check_ranges(config, source="fusion config")
    data, mask, y = train
    modalities = list(modalities or data)
    if not modalities:
        raise BadInputError("no modality given")
    _, mask = _check(data, mask, modalities)
    for j, m in enumerate(modalities):  # a missing modality's rows may hold anything
        if not np.isfinite(np.asarray(data[m], dtype=np.float64)[mask[:, j]]).all():
            raise BadInputError(f"the embeddings of modality {m!r} hold a missing or "
                                "infinite value")
    y = np.asarray(y, dtype=np.float64)
    if len(y) != len(mask) or not np.isfinite(y).all():
        raise BadInputError(f"{len(y)} outcomes for {len(mask)} patients, or an outcome "
                            "that is not a finite number")
    if config.task == "binary" and len(set(y.tolist())) < 2:
        raise BadInputError("the training outcomes have one class; need both")
    for j, name in enumerate(modalities):
        if not mask[:, j].any():
            raise BadInputError(f"no training patient has modality {name!r}")
    dims = [np.shape(data[m])[1] for m in modalities]
    check_parameters(lambda: _network(config, dims), f"a {config.fusion} fusion network",
               "a smaller --hidden-size, or embeddings of fewer features")


def objective(config: FusionConfig, n_modalities: int):
    """Binary cross-entropy (binary) or squared error of the fused prediction; in training,
    each modality of a patient is hidden with probability ``config.modality_dropout`` (never
    all of them), so the model learns to predict from whatever a patient has."""
    import torch

    from pmtoolkit.core.task import Objective

    binary = config.task == "binary"

    class FusionObjective(Objective):
        def outputs(self, net, batch):
            *xs, m, y = batch
            return net(xs[:n_modalities], m), y

        def training_outputs(self, net, batch, step):
            *xs, m, y = batch
            if config.modality_dropout > 0:
                drop = torch.rand(m.shape, device=m.device) < config.modality_dropout
                kept = m & ~drop
                m = torch.where(kept.any(1, keepdim=True), kept, m)
            return net(xs[:n_modalities], m), y

        def loss(self, out, target, step=None):
            if binary:
                return torch.nn.functional.binary_cross_entropy_with_logits(out, target)
            return torch.nn.functional.mse_loss(out, target)

    return FusionObjective()


def optimizer(config: FusionConfig):
    from pmtoolkit.core.task import Optimizer

    return Optimizer(name="adamw", lr=config.lr, weight_decay=config.weight_decay)


def fit_fusion(train: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray],
               valid: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None = None,
               config: FusionConfig | None = None, *, modalities: list[str] | None = None,
               workdir: str | Path | None = None, checkpoints: str | Path | None = None,
               resume: bool = False) -> FusionModel:
    """Train on ``(embeddings, mask, y)``; ``valid`` (the same triple) picks the best epoch
    and stops early. Logs go to ``workdir``, the resume checkpoint to ``checkpoints``
    (default: inside ``workdir``), from which ``resume`` continues an interrupted run."""
    import torch

    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    config = config or FusionConfig()
    check_training(train, config, modalities)
    data, mask, y = train
    modalities = list(modalities or data)
    xs, mask = _check(data, mask, modalities)
    y = np.asarray(y, dtype=np.float32)
    scale = {}
    for name, x, j in zip(modalities, xs, range(len(xs))):
        present = x[mask[:, j]]
        sd = present.std(0)
        scale[name] = [present.mean(0).tolist(), np.where(sd > 1e-8, sd, 1.0).tolist()]
    seed_everything(config.seed)
    model = FusionModel.untrained(config, {"modalities": modalities,
                                      "dims": [x.shape[1] for x in xs], "scale": scale})

    def loader(d, mk, yy, shuffle):
        inputs, m = model._inputs(d, mk)
        ds = torch.utils.data.TensorDataset(*inputs, m, torch.from_numpy(
            np.asarray(yy, np.float32)))
        return torch.utils.data.DataLoader(ds, batch_size=config.batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(config.seed))

    has_val = valid is not None
    # a resume checkpoint every few epochs where it can outlive the run; else only at the end
    cfg = train_config(config, monitor="val_loss", mode="min", validating=has_val,
                       resume=resume,
                       checkpoint_every=None if checkpoints else max(10, config.epochs))
    start = time.perf_counter()
    result = train_network(model.network, objective(config, len(modalities)),
                           loader(data, mask, y, True),
                           loader(*valid, False) if has_val else None,
                           optimizer=optimizer(config), config=cfg, workdir=workdir,
                           checkpoint_dir=checkpoints)
    model.metadata = {"metrics": {"epochs_run": result.epochs_run,
                                  "train_seconds": time.perf_counter() - start,
                                  "n_train": len(y), "best_val_loss": result.best_score}}
    return model
