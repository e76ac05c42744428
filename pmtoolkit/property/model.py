"""Property prediction models under the one model contract.

``fit(train, valid, config) -> PropertyModel``; ``model.predict(smiles)`` returns a table aligned
row for row with the input (NaN and a reject reason for an invalid SMILES);
``evaluate(model, data)`` returns metrics; ``model.save(path)`` / ``load_model(path)``.

Architectures: ``dmpnn`` (default), ``gine``, ``attentivefp`` (graph networks trained with
Lightning), ``forest`` (random forest on ECFP counts + RDKit descriptors) and ``boost``
(gradient-boosted trees on RDKit descriptors). Regression or
binary classification, one or many targets (missing labels are masked), optional RDKit
descriptors appended to the learned representation, and ensembles whose spread is reported as
an uncertainty column.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.checkpoint import Checkpoint
from pmtoolkit.core.config import check_ranges, from_mapping
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Rejects
from pmtoolkit.core.model import Model, check_shapes
from pmtoolkit.property.config import TREE_ARCHITECTURES, PropertyConfig
from pmtoolkit.property.data import PropertyData, from_arrays

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- features

def _extra_features(data: PropertyData, kind: str) -> np.ndarray | None:
    if kind == "none":
        return None
    from pmtoolkit.chem.descriptors import rdkit_descriptors

    return rdkit_descriptors(data.mols())


class Scaler:
    """Standardisation with NaN-safe statistics; constant columns keep scale 1."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = mean.astype(np.float32)
        self.std = std.astype(np.float32)

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(x, axis=0))
            std = np.nan_to_num(np.nanstd(x, axis=0))
        return cls(mean, np.where(std > 1e-8, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.std + self.mean


# ----------------------------------------------------------------------------- model

class PropertyModel(Model):
    """A trained property model: one or more members (an ensemble) of one architecture."""

    Config = PropertyConfig

    def __init__(self, config: PropertyConfig, target_names: Sequence[str], *,
                 members: list | None = None, y_scaler: Scaler | None = None,
                 x_scaler: Scaler | None = None):
        super().__init__(config)
        self.target_names = list(target_names)
        self.members = members or []
        self.y_scaler = y_scaler
        self.x_scaler = x_scaler

    @property
    def n_tasks(self) -> int:
        return len(self.target_names)

    @property
    def is_trees(self) -> bool:
        return self.config.architecture in TREE_ARCHITECTURES

    # -- prediction --------------------------------------------------------------------
    def member_predictions(self, data: PropertyData, batch_size: int = 256) -> np.ndarray:
        """(members, n, tasks) in target units (probabilities for classification)."""
        if self.is_trees:
            from pmtoolkit.property.forest import tree_features

            X = tree_features(data.mols(), self.config.architecture)
            X = np.where(np.isnan(X), self.x_scaler.mean, X)  # impute with the training mean
            return np.stack([np.stack([f.predict(X) for f in member], axis=-1)
                             for member in self.members])  # (members, n, tasks)
        import torch

        from pmtoolkit.chem.featurizer import collate
        from pmtoolkit.core.devices import torch_device

        device = torch_device(self.config.device)
        extra = _extra_features(data, self.config.features)
        if extra is not None:
            extra = np.nan_to_num(self.x_scaler.transform(extra)).astype(np.float32)
        codes = data.codes()
        preds = []
        for net in self.members:
            net.eval().to(device)
            chunks = []
            with torch.no_grad():
                for start in range(0, len(codes), batch_size):
                    g = collate(codes[start:start + batch_size]).to(device)
                    e = None if extra is None else torch.from_numpy(
                        extra[start:start + batch_size]).to(device)
                    chunks.append(net(g, e).float().cpu().numpy())
            z = np.concatenate(chunks) if chunks else np.zeros((0, self.n_tasks), np.float32)
            if self.config.task == "classification":
                preds.append(1.0 / (1.0 + np.exp(-z)))
            else:
                preds.append(self.y_scaler.inverse(z))
        return np.stack(preds)

    def predict(self, smiles: Sequence[str], *, source: str = "",
                mols: Sequence[Any] | None = None) -> Prediction:
        """Predictions aligned with ``smiles``: NaN rows (and rejects) where invalid.
        ``mols``: the RDKit molecules of ``smiles`` if already parsed (None where invalid)."""
        import pandas as pd

        data, rejects = from_arrays(list(smiles), source=source, mols=mols)
        n = len(smiles)
        valid_rows = np.array([line - 1 for line in data.lines], dtype=np.int64)
        mean = np.full((n, self.n_tasks), np.nan, dtype=np.float64)
        std = np.full((n, self.n_tasks), np.nan, dtype=np.float64)
        if len(data):
            member = self.member_predictions(data)
            mean[valid_rows] = member.mean(axis=0)
            if len(self.members) > 1:
                std[valid_rows] = member.std(axis=0, ddof=1)
        frame = pd.DataFrame({"smiles": list(smiles)})
        for j, name in enumerate(self.target_names):
            frame[f"{name}_pred"] = mean[:, j]
            if len(self.members) > 1:
                frame[f"{name}_uncertainty"] = std[:, j]
        reasons = {r.line - 1: r.reason for r in rejects}
        frame["error"] = [reasons.get(i, "") for i in range(n)]
        return Prediction(frame, rejects)

    # -- persistence ---------------------------------------------------------------------
    def state_tensors(self) -> dict:
        import torch

        tensors: dict[str, Any] = {}
        for i, member in enumerate(self.members):
            if self.is_trees:
                for t, forest in enumerate(member):
                    tensors.update(forest.tensors(f"member{i}.task{t}"))
            else:
                for k, v in member.state_dict().items():
                    tensors[f"member{i}.{k}"] = v
        for name, scaler in (("y_scaler", self.y_scaler), ("x_scaler", self.x_scaler)):
            if scaler is not None:
                tensors[f"{name}.mean"] = torch.from_numpy(scaler.mean)
                tensors[f"{name}.std"] = torch.from_numpy(scaler.std)
        return tensors

    def extra_metadata(self) -> dict:
        from pmtoolkit.chem.featurizer import ATOM_DIM, BOND_DIM, FEATURIZER_VERSION

        return {"target_names": self.target_names, "n_members": len(self.members),
                "featurizer": FEATURIZER_VERSION, "atom_dim": ATOM_DIM, "bond_dim": BOND_DIM,
                "n_extra": self._n_extra()}

    def _n_extra(self) -> int:
        if self.is_trees or self.config.features == "none" or self.x_scaler is None:
            return 0
        return len(self.x_scaler.mean)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> PropertyModel:
        from pmtoolkit.chem.featurizer import FEATURIZER_VERSION
        from pmtoolkit.property.forest import FlatForest

        config = from_mapping(PropertyConfig, checkpoint.config, source="saved model config")
        extra = checkpoint.metadata.get("extra", {})
        if (extra.get("featurizer") != FEATURIZER_VERSION
                and config.architecture not in TREE_ARCHITECTURES):
            raise BadInputError(f"model uses featurizer {extra.get('featurizer')!r}; this "
                                f"pmtoolkit has {FEATURIZER_VERSION!r}", hint="upgrade pmtoolkit")
        t = checkpoint.tensors
        scalers = {}
        for name in ("y_scaler", "x_scaler"):
            if f"{name}.mean" in t:
                scalers[name] = Scaler(t[f"{name}.mean"].numpy(), t[f"{name}.std"].numpy())
        names = extra["target_names"]
        stored = {k.split(".", 1)[0] for k in t if k.startswith("member")}
        if len(stored) != extra["n_members"]:
            raise BadInputError(f"saved model holds {len(stored)} ensemble members, its "
                                f"metadata says {extra['n_members']}",
                                hint="the file is corrupted or was modified")
        n_extra = extra.get("n_extra", 0)
        members = []
        for i in range(extra["n_members"]):
            if config.architecture in TREE_ARCHITECTURES:
                members.append([FlatForest.from_tensors(t, f"member{i}.task{k}")
                                for k in range(len(names))])
            else:
                prefix = f"member{i}."
                own = {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}
                check_shapes(lambda: build_network(config, len(names), n_extra), own,
                             f"property model member {i}")
                net = build_network(config, len(names), n_extra)
                net.load_state_dict(own, strict=True)
                members.append(net)
        model = cls(config, names, members=members, **scalers)
        model.metadata = checkpoint.metadata
        return model


@dataclass
class Prediction:
    """A prediction table aligned with the input, and the inputs that could not be scored."""

    frame: Any
    rejects: Rejects


# ----------------------------------------------------------------------------- training

def build_network(config: PropertyConfig, n_tasks: int, n_extra: int):
    from pmtoolkit.chem.featurizer import ATOM_DIM, BOND_DIM
    from pmtoolkit.property.networks import PropertyNetwork

    return PropertyNetwork(architecture=config.architecture, atom_dim=ATOM_DIM,
                           bond_dim=BOND_DIM, n_tasks=n_tasks, hidden=config.hidden_size,
                           depth=config.depth, dropout=config.dropout,
                           aggregation=config.aggregation, ffn_hidden=config.ffn_hidden_size,
                           ffn_layers=config.ffn_layers, n_extra=n_extra)


def _check(config: PropertyConfig, train: PropertyData) -> None:
    if train.y is None or not len(train):
        raise BadInputError("training needs molecules with target values")
    if config.ensemble_size < 1:
        raise BadInputError("ensemble size must be at least 1")
    if config.task == "classification":
        for j, name in enumerate(train.target_names):
            labels = train.y[:, j]
            if len(np.unique(labels[~np.isnan(labels)])) < 2:
                raise BadInputError(f"target {name!r} has a single class in the training set")


def fit(train: PropertyData, valid: PropertyData | None = None,
        config: PropertyConfig | None = None, *, workdir: str | os.PathLike | None = None,
        checkpoints: str | os.PathLike | None = None, resume: bool = False) -> PropertyModel:
    """Train a property model (an ensemble when ``config.ensemble_size > 1``).

    Logs go to ``workdir``; each network's resume checkpoint to ``checkpoints/memberN``
    (default: inside ``workdir``), from which ``resume`` continues an interrupted run."""
    config = config or PropertyConfig()
    check_ranges(config, source="property model config")
    _check(config, train)
    if config.architecture in TREE_ARCHITECTURES:
        model = _fit_trees(train, config)
    else:
        with tempfile.TemporaryDirectory(prefix="pmt-train-") as tmp:
            root = Path(workdir) if workdir else Path(tmp)
            model = _fit_gnn(train, valid, config, root,
                             Path(checkpoints) if checkpoints else root, resume)
    model.metadata = {"training_data_sha256": train.fingerprint()}
    if valid is not None and len(valid):
        model.metadata["metrics"] = {"valid": evaluate(model, valid)}
    return model


def _fit_trees(train: PropertyData, config: PropertyConfig) -> PropertyModel:
    from pmtoolkit.property.forest import fit_boosting, fit_forest, tree_features

    X = tree_features(train.mols(), config.architecture)
    x_scaler = Scaler.fit(X)  # only its mean is used: to impute NaN descriptors
    X = np.where(np.isnan(X), x_scaler.mean, X)
    classification = config.task == "classification"
    members = []
    for i in range(config.ensemble_size):
        member = []
        for t in range(train.y.shape[1]):
            rows = ~np.isnan(train.y[:, t])
            if config.architecture == "boost":
                member.append(fit_boosting(X[rows], train.y[rows, t],
                                           classification=classification,
                                           n_estimators=config.n_estimators,
                                           learning_rate=config.boost_lr,
                                           min_samples_leaf=config.min_samples_leaf or 20,
                                           seed=config.seed + i))
            else:
                member.append(fit_forest(X[rows], train.y[rows, t],
                                         classification=classification,
                                         n_estimators=config.n_estimators,
                                         min_samples_leaf=config.min_samples_leaf or 1,
                                         max_features=0.33 if not classification else "sqrt",
                                         seed=config.seed + i))
        members.append(member)
    return PropertyModel(config, train.target_names, members=members, x_scaler=x_scaler)


def graph_loader(packed, y, extra, batch_size: int, shuffle: bool, seed: int):
    import torch
    from torch.utils.data import DataLoader

    y_t = torch.from_numpy(np.nan_to_num(y, nan=0.0).astype(np.float32))
    mask = torch.from_numpy(~np.isnan(y))
    extra_t = None if extra is None else torch.from_numpy(extra)

    def collate(index):
        idx = torch.as_tensor(index)
        return (packed.batch(index), y_t[idx], mask[idx],
                None if extra_t is None else extra_t[idx])

    gen = torch.Generator().manual_seed(seed)
    return DataLoader(range(len(packed)), batch_size=batch_size, shuffle=shuffle,
                      collate_fn=collate, generator=gen if shuffle else None)


def objective(config: PropertyConfig):
    """Masked binary cross-entropy (classification) or squared error (regression) over every
    labelled (molecule, task) entry: multi-task data may lack labels."""
    import torch

    from pmtoolkit.core.task import Objective, masked_mean

    classification = config.task == "classification"

    class PropertyObjective(Objective):
        def outputs(self, net, batch):
            g, y, mask, extra = batch
            return net(g, extra), (y, mask)

        def loss(self, out, target, step=None):
            y, mask = target
            if classification:
                per = torch.nn.functional.binary_cross_entropy_with_logits(out, y,
                                                                           reduction="none")
            else:
                per = (out - y) ** 2
            return masked_mean(per, mask)

    return PropertyObjective()


def optimizer(config: PropertyConfig):
    from pmtoolkit.core.task import Optimizer

    # chemprop's Noam-like schedule: lr/10 -> lr linearly, then down to lr/10
    return Optimizer(name="adam", lr=config.lr, schedule="warmup-exp", floor=0.1,
                     warmup_epochs=config.warmup_epochs)


def _fit_gnn(train: PropertyData, valid: PropertyData | None, config: PropertyConfig,
             workdir: Path, checkpoints: Path, resume: bool) -> PropertyModel:
    from pmtoolkit.chem.featurizer import PackedGraphs
    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    classification = config.task == "classification"
    y_scaler = None if classification else Scaler.fit(train.y)
    y_train = train.y if classification else y_scaler.transform(train.y)
    extra_train = _extra_features(train, config.features)
    x_scaler = None
    if extra_train is not None:
        x_scaler = Scaler.fit(extra_train)
        extra_train = np.nan_to_num(x_scaler.transform(extra_train)).astype(np.float32)
    packed_train = PackedGraphs(train.codes())
    val_loader = None
    if valid is not None and len(valid):
        y_val = valid.y if classification else y_scaler.transform(valid.y)
        extra_val = _extra_features(valid, config.features)
        if extra_val is not None:
            extra_val = np.nan_to_num(x_scaler.transform(extra_val)).astype(np.float32)
        val_loader = graph_loader(PackedGraphs(valid.codes()), y_val, extra_val, 256, False, 0)
    n_extra = 0 if extra_train is None else extra_train.shape[1]
    members = []
    for i in range(config.ensemble_size):
        seed = config.seed + i
        seed_everything(seed)
        net = build_network(config, train.y.shape[1], n_extra)
        loader = graph_loader(packed_train, y_train, extra_train, config.batch_size, True, seed)
        tc = train_config(config, seed=seed, monitor="val_loss", mode="min", resume=resume)
        result = train_network(net, objective(config), loader, val_loader,
                               optimizer=optimizer(config), config=tc,
                               workdir=workdir / f"member{i}",
                               checkpoint_dir=checkpoints / f"member{i}")
        log.info("member %d: %d epochs, best val_loss %s", i, result.epochs_run,
                 "n/a" if result.best_score is None else f"{result.best_score:.4f}")
        members.append(net)
    return PropertyModel(config, train.target_names, members=members, y_scaler=y_scaler,
                         x_scaler=x_scaler)


# ----------------------------------------------------------------------------- evaluation

def evaluate(model: PropertyModel, data: PropertyData) -> dict[str, Any]:
    """Metrics per target and their mean: RMSE, MAE, R², Pearson, Spearman (regression) or
    ROC-AUC, PR-AUC, accuracy, F1, MCC, Brier (classification)."""
    from pmtoolkit.core import metrics as M

    if data.y is None:
        raise BadInputError("evaluation needs target values")
    member = model.member_predictions(data)
    pred = member.mean(axis=0)
    bundle = M.regression_metrics if model.config.task == "regression" else M.classification_metrics
    per_task = {name: bundle(data.y[:, j], pred[:, j]) for j, name in enumerate(model.target_names)}
    keys = next(iter(per_task.values())).keys()
    with np.errstate(all="ignore"):
        mean = {k: float(np.nanmean([per_task[t][k] for t in per_task])) for k in keys}
    return {"mean": mean, "tasks": per_task, "n": len(data)}
