"""The drug-response model: a two-tower network (see
:class:`~pmtoolkit.response.config.ResponseConfig`): an MLP on the standardised sample
features, an MLP on the drug's Morgan fingerprint, combined by concatenation, a bilinear
interaction or both. ``fit(train, valid, config) -> ResponseModel``; ``model.predict(data)``;
``model.save(path)`` / ``load(path)`` (safetensors + JSON)."""
from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import TorchModel, check_parameters
from pmtoolkit.response.config import ResponseConfig
from pmtoolkit.response.data import Drugs, ResponseData
from pmtoolkit.response.features import FeaturePrep, drug_fingerprints


def _tower(n_in: int, sizes: Sequence[int], dropout: float):
    from torch import nn

    layers: list = []
    width = n_in
    for k, h in enumerate(sizes):
        layers.append(nn.Linear(width, h))
        if k < len(sizes) - 1:  # the tower's vector itself is linear (it may be negative)
            layers += [nn.ReLU(), nn.Dropout(dropout)]
        width = h
    return nn.Sequential(*layers)


def check_config(config: ResponseConfig) -> None:
    if not config.sample_hidden or not config.drug_hidden:
        raise BadInputError("sample-hidden and drug-hidden need at least one size each")
    if config.fusion in ("bilinear", "both") and config.sample_hidden[-1] != \
            config.drug_hidden[-1]:
        raise BadInputError(f"{config.fusion} fusion needs the last sample-hidden and "
                            f"drug-hidden sizes equal ({config.sample_hidden[-1]} vs "
                            f"{config.drug_hidden[-1]})")
    if config.fusion != "bilinear" and not config.head:
        raise BadInputError(f"{config.fusion} fusion needs at least one head size")
    if min((*config.sample_hidden, *config.drug_hidden, *config.head,
            config.fingerprint_bits, config.batch_size, config.epochs)) < 1:
        raise BadInputError("layer sizes, fingerprint bits, batch size and epochs must be "
                            "positive")


def _network(config: ResponseConfig, n_features: int):
    import torch
    from torch import nn

    check_config(config)

    class ResponseNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.sample = _tower(n_features, config.sample_hidden, config.dropout)
            self.drug = _tower(config.fingerprint_bits, config.drug_hidden, config.dropout)
            d_s, d_d = config.sample_hidden[-1], config.drug_hidden[-1]
            if config.fusion == "bilinear":
                self.main_sample = nn.Linear(d_s, 1)
                self.main_drug = nn.Linear(d_d, 1, bias=False)
            else:
                width = d_s + d_d + (d_s if config.fusion == "both" else 0)
                self.head = nn.Sequential(nn.ReLU(), nn.Dropout(config.dropout),
                                          _tower(width, (*config.head, 1), config.dropout))

        def pairs(self, s: torch.Tensor, d: torch.Tensor, s_pos: torch.Tensor,
                  d_pos: torch.Tensor) -> torch.Tensor:
            """Outputs of pairs given as positions into encoded samples and drugs."""
            s, d = s.index_select(0, s_pos), d.index_select(0, d_pos)
            if config.fusion == "bilinear":
                dot = (s * d).sum(1) / math.sqrt(s.shape[1])
                return (self.main_sample(s) + self.main_drug(d)).squeeze(1) + dot
            parts = [s, d] + ([s * d] if config.fusion == "both" else [])
            return self.head(torch.cat(parts, 1)).squeeze(1)

    return ResponseNetwork()


class ResponseModel(TorchModel):
    """A trained drug-response model: the feature preparation it learnt (normalisation,
    kept features, their mean and sd) and the response scale."""

    Config = ResponseConfig

    def __init__(self, config: ResponseConfig, network=None, *, prep: FeaturePrep,
                 y_mean: float = 0.0, y_std: float = 1.0,
                 columns: dict[str, Any] | None = None, labels: dict[str, str] | None = None):
        self.prep = prep
        #: readable names of feature columns (entrez_673: BRAF), for explanations
        self.labels = dict(labels) if labels else None
        self.y_mean, self.y_std = float(y_mean), float(y_std)
        #: the column names of the tables it was trained on (a :class:`Columns` as a dict):
        #: the defaults of predict and evaluate, and the response it predicts (ln_IC50)
        self.columns = dict(columns) if columns else None
        super().__init__(config, network if network is not None
                         else _network(config, len(prep.names)))

    @property
    def response(self) -> str | None:
        """The response it predicts (the training table's column, e.g. ln_IC50)."""
        return (self.columns or {}).get("response")

    @classmethod
    def build_network(cls, config: ResponseConfig, extra: dict[str, Any]):
        return _network(config, len(extra["features"]))

    @classmethod
    def untrained(cls, config: ResponseConfig, extra: dict[str, Any]) -> ResponseModel:
        prep = FeaturePrep(extra["normalize"], list(extra["features"]),
                           np.asarray(extra["feature_mean"], dtype=np.float32),
                           np.asarray(extra["feature_sd"], dtype=np.float32))
        return cls(config, cls.build_network(config, extra), prep=prep,
                   y_mean=extra["y_mean"], y_std=extra["y_std"], columns=extra.get("columns"),
                   labels=extra.get("labels"))

    def extra_metadata(self) -> dict[str, Any]:
        return {"features": self.prep.names, "normalize": self.prep.normalize,
                "feature_mean": self.prep.mean.tolist(), "feature_sd": self.prep.sd.tolist(),
                "y_mean": self.y_mean, "y_std": self.y_std, "columns": self.columns,
                "labels": self.labels}

    def fingerprints(self, drugs: Drugs) -> np.ndarray:
        return drug_fingerprints(drugs.smiles, self.config.fingerprint_radius,
                                 self.config.fingerprint_bits)

    def predict(self, data: ResponseData, *, chunk: int = 65536) -> np.ndarray:
        """The predicted response of every pair of ``data``."""
        import torch

        out = np.empty(len(data))
        if not len(data):
            return out
        s_used, s_pos = np.unique(data.sample_index, return_inverse=True)
        d_used, d_pos = np.unique(data.drug_index, return_inverse=True)
        X = self.prep.standardized(data.samples)[s_used]
        fp = drug_fingerprints([data.drugs.smiles[i] for i in d_used],
                               self.config.fingerprint_radius, self.config.fingerprint_bits)
        net = self.network.eval()
        with torch.inference_mode():
            s = net.sample(torch.from_numpy(X))
            d = net.drug(torch.from_numpy(fp))
            for a in range(0, len(data), chunk):
                z = net.pairs(s, d, torch.from_numpy(s_pos[a:a + chunk]),
                              torch.from_numpy(d_pos[a:a + chunk]))
                out[a:a + chunk] = z.double().numpy() * self.y_std + self.y_mean
        return out


def check_training(train: ResponseData, config: ResponseConfig) -> FeaturePrep:
    """Refuse what cannot be trained, before anything is written (settings out of range,
    fewer than two responses, responses whose spread is not a finite number, features that
    cannot be normalised); returns the feature preparation learnt on ``train``."""
    from pmtoolkit.core.config import check_ranges

    check_ranges(config, source="drug-response model config")
    check_config(config)
    if train.y is None or len(train) < 2:
        raise BadInputError("training needs at least two pairs with responses")
    y = np.asarray(train.y, dtype=np.float64)
    with np.errstate(over="ignore"):  # a spread too large to compute is the error here
        spread = y.std()
    if not (np.isfinite(y).all() and np.isfinite(spread)):
        raise BadInputError("the training responses are not all finite numbers of a "
                            "sensible size")
    prep = FeaturePrep.learn(train.samples, np.unique(train.sample_index), config.normalize,
                             config.top_genes)
    check_parameters(lambda: _network(config, len(prep.names)), "a drug-response network",
               "smaller --sample-hidden, --drug-hidden, --head or --fingerprint-bits, or "
               "fewer features (--top-genes)")
    return prep


def objective(train_inputs, val_inputs):
    """Squared error of standardised responses. A batch holds (sample, drug, response)
    indices; each distinct sample and drug of a batch is encoded once, from the feature and
    fingerprint matrices ``train_inputs`` / ``val_inputs`` (kept on the training device, and
    out of the checkpoint: they are data, not weights)."""
    import torch

    from pmtoolkit.core.task import Objective

    class ResponseObjective(Objective):
        def __init__(self):
            super().__init__()
            for name, value in zip(("X_train", "fp_train", "X_val", "fp_val"),
                                   (*train_inputs, *val_inputs)):
                self.register_buffer(name, value, persistent=False)

        def _outputs(self, net, batch, X, fp):
            si, di, y = batch
            s_u, s_pos = torch.unique(si, return_inverse=True)
            d_u, d_pos = torch.unique(di, return_inverse=True)
            s = net.sample(X.index_select(0, s_u))
            d = net.drug(fp.index_select(0, d_u))
            return net.pairs(s, d, s_pos, d_pos), y

        def outputs(self, net, batch):
            return self._outputs(net, batch, self.X_train, self.fp_train)

        def validation_outputs(self, net, batch):
            return self._outputs(net, batch, self.X_val, self.fp_val)

        def loss(self, out, target, step=None):
            return torch.nn.functional.mse_loss(out, target)

    return ResponseObjective()


def optimizer(config: ResponseConfig):
    from pmtoolkit.core.task import Optimizer

    return Optimizer(name="adamw", lr=config.lr, weight_decay=config.weight_decay)


def fit(train: ResponseData, valid: ResponseData | None = None,
        config: ResponseConfig | None = None, *, workdir: str | Path | None = None,
        checkpoints: str | Path | None = None, resume: bool = False) -> ResponseModel:
    """Train a :class:`ResponseModel` on ``train`` (the best epoch by validation loss when
    ``valid`` is given, stopping early; the last epoch otherwise). Logs go to ``workdir``,
    the resume checkpoint to ``checkpoints`` (default: inside ``workdir``), from which
    ``resume`` continues an interrupted run."""
    import torch

    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    config = config or ResponseConfig()
    prep = check_training(train, config)
    y = np.asarray(train.y, dtype=np.float64)
    y_mean, y_std = float(y.mean()), float(y.std())
    y_std = y_std if y_std > 1e-8 else 1.0
    seed_everything(config.seed)
    model = ResponseModel(config, prep=prep, y_mean=y_mean, y_std=y_std)
    net = model.network

    def tensors(data: ResponseData):
        X = torch.from_numpy(prep.standardized(data.samples))
        fp = torch.from_numpy(model.fingerprints(data.drugs))
        return X, fp

    def loader(data: ResponseData, shuffle: bool):
        yy = ((np.asarray(data.y, dtype=np.float64) - y_mean) / y_std).astype(np.float32)
        ds = torch.utils.data.TensorDataset(torch.from_numpy(data.sample_index),
                                            torch.from_numpy(data.drug_index),
                                            torch.from_numpy(yy))
        return torch.utils.data.DataLoader(ds, batch_size=config.batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(config.seed))

    has_val = valid is not None and len(valid) > 0
    X_train, fp_train = tensors(train)
    X_val, fp_val = tensors(valid) if has_val else (X_train, fp_train)
    if has_val and valid.samples is train.samples:
        X_val = X_train
    if has_val and valid.drugs is train.drugs:
        fp_val = fp_train

    # a resume checkpoint every few epochs where it can outlive the run; else only at the end
    tc = train_config(config, monitor="val_loss", mode="min", validating=has_val,
                      resume=resume,
                      checkpoint_every=None if checkpoints else max(10, config.epochs))
    start = time.perf_counter()
    result = train_network(net, objective((X_train, fp_train), (X_val, fp_val)),
                           loader(train, True), loader(valid, False) if has_val else None,
                           optimizer=optimizer(config), config=tc, workdir=workdir,
                           checkpoint_dir=checkpoints)
    model.metadata = {"training_data_sha256": train.fingerprint(),
                      "metrics": {"epochs_run": result.epochs_run,
                                  "best_epoch": result.best_epoch,
                                  "best_val_loss": result.best_score,
                                  "train_seconds": time.perf_counter() - start,
                                  "n_train": len(train)}}
    return model


#: the drug-response models shipped with pmtoolkit (``pmt info NAME`` says what each saw)
SHIPPED = ("gdsc",)


def load(name_or_path: str | os.PathLike) -> ResponseModel:
    """A saved model: a shipped model's name (:data:`SHIPPED`), its file, or the training
    output folder holding ``model.safetensors``."""
    from pmtoolkit.core import shipped

    p = Path(name_or_path)
    if str(name_or_path) in SHIPPED and not p.exists():
        p = shipped.path(str(name_or_path), "model")
    if p.is_dir():
        p = p / "model.safetensors"
    if not p.is_file():
        raise BadInputError(f"model '{name_or_path}' does not exist",
                            hint="give a shipped model (" + ", ".join(SHIPPED) + "), a "
                                 "model.safetensors file or its training folder")
    return ResponseModel.load(p)  # type: ignore[return-value]
