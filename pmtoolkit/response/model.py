"""The drug-response model: a two-tower network (see
:class:`~pmtoolkit.response.config.ResponseConfig`): an MLP on the standardised sample
features (optionally grouped by gene first), an MLP on the drug's Morgan fingerprint (or a
D-MPNN over its molecular graph), combined by concatenation, a bilinear interaction or
both. ``fit(train, valid, config) -> ResponseModel``; ``model.predict(data)``;
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
from pmtoolkit.response.data import ResponseData
from pmtoolkit.response.features import FeaturePrep, drug_fingerprints, drug_graphs


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


def gene_groups(names: Sequence[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """The features of ``names`` by gene (rows) and table (columns): each entry the position
    of that feature in ``names``, -1 where the table lacks the gene; then the genes and the
    tables. A feature ``<table>:<gene>`` (:func:`~pmtoolkit.response.data.read_feature_tables`)
    is that gene's in that table; a name without a table is its own gene in table ``""``."""
    tables: dict[str, int] = {}
    genes: dict[str, int] = {}
    cells = []
    for j, name in enumerate(names):
        table, sep, gene = name.partition(":")
        if not sep:
            table, gene = "", name
        cells.append((genes.setdefault(gene, len(genes)), tables.setdefault(table, len(tables)),
                      j))
    index = np.full((len(genes), len(tables)), -1, dtype=np.int64)
    for g, t, j in cells:
        index[g, t] = j
    return index, list(genes), list(tables)


def _gene_group_encoder(names: Sequence[str], config: ResponseConfig):
    """The sample tower of ``sample_encoder = gene-groups``: for each gene, its values in the
    feature tables (0 where a table lacks it) and a presence flag go through one small MLP
    shared by every gene; the values and that MLP's output of every gene, side by side, feed
    the tower."""
    import torch
    from torch import nn

    index, genes, tables = gene_groups(names)
    n_tables, width = len(tables), config.gene_hidden

    class GeneGroups(nn.Module):
        def __init__(self):
            super().__init__()
            # derived from the feature names (saved in the metadata): not weights
            self.register_buffer("index", torch.from_numpy(np.maximum(index, 0)),
                                 persistent=False)
            self.register_buffer("present", torch.from_numpy((index >= 0).astype(np.float32)),
                                 persistent=False)
            self.gene = nn.Sequential(nn.Linear(2 * n_tables, width), nn.ReLU(),
                                      nn.Linear(width, width), nn.ReLU())
            self.tower = _tower(len(genes) * (n_tables + width), config.sample_hidden,
                                config.dropout)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            v = x[:, self.index] * self.present  # (samples, genes, tables)
            h = self.gene(torch.cat([v, self.present.expand_as(v)], 2))
            return self.tower(torch.cat([v, h], 2).flatten(1))

    return GeneGroups()


def _graph_encoder(config: ResponseConfig):
    """The drug tower of ``drug_encoder = graph``: chemprop's D-MPNN
    (:class:`pmtoolkit.chem.encoders.DMPNNEncoder`) over the atoms and bonds, the mean of
    its atom vectors, then the tower."""
    import torch
    from torch import nn

    from pmtoolkit.chem.encoders import DMPNNEncoder, scatter_sum
    from pmtoolkit.chem.featurizer import ATOM_DIM, BOND_DIM

    class GraphDrugs(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = DMPNNEncoder(ATOM_DIM, BOND_DIM, config.graph_hidden,
                                        config.graph_depth, config.dropout)
            self.tower = _tower(config.graph_hidden, config.drug_hidden, config.dropout)

        def forward(self, g) -> torch.Tensor:
            h = self.encoder(g.x, g.edge_index, g.edge_attr)
            z = scatter_sum(h, g.batch, g.num_graphs)
            counts = torch.bincount(g.batch, minlength=g.num_graphs).clamp(min=1)
            return self.tower(z / counts.unsqueeze(1).to(z.dtype))

    return GraphDrugs()


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


def _network(config: ResponseConfig, features: Sequence[str]):
    """The network for ``config`` and the kept feature names (their order is the input's)."""
    import torch
    from torch import nn

    check_config(config)

    class ResponseNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            # attribute names are the saved weights' keys: the defaults keep those of models
            # saved before the encoders were options
            if config.sample_encoder == "gene-groups":
                self.sample = _gene_group_encoder(features, config)
            else:
                self.sample = _tower(len(features), config.sample_hidden, config.dropout)
            if config.drug_encoder == "graph":
                self.drug = _graph_encoder(config)
            else:
                self.drug = _tower(config.fingerprint_bits, config.drug_hidden, config.dropout)
            d_s, d_d = config.sample_hidden[-1], config.drug_hidden[-1]
            if config.fusion == "bilinear":
                self.main_sample = nn.Linear(d_s, 1)
                self.main_drug = nn.Linear(d_d, 1, bias=False)
            else:
                width = d_s + d_d + (d_s if config.fusion == "both" else 0)
                self.head = nn.Sequential(nn.ReLU(), nn.Dropout(config.dropout),
                                          _tower(width, (*config.head, 1), config.dropout))

        def drugs(self, inputs, index: torch.Tensor | None = None) -> torch.Tensor:
            """Drug vectors of the drugs ``index`` (all when None) of ``inputs`` (a
            fingerprint matrix, or a graph batch of every drug)."""
            if config.drug_encoder == "graph":  # the drugs are few: encode them all
                d = self.drug(inputs)
                return d if index is None else d.index_select(0, index)
            return self.drug(inputs if index is None else inputs.index_select(0, index))

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
                         else _network(config, prep.names))

    @property
    def response(self) -> str | None:
        """The response it predicts (the training table's column, e.g. ln_IC50)."""
        return (self.columns or {}).get("response")

    @classmethod
    def build_network(cls, config: ResponseConfig, extra: dict[str, Any]):
        return _network(config, list(extra["features"]))

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

    def drug_inputs(self, smiles: Sequence[str]):
        """What the drug tower reads for ``smiles``: a fingerprint matrix (torch) or, with
        ``drug_encoder = graph``, one graph batch of them all."""
        import torch

        if self.config.drug_encoder == "graph":
            return drug_graphs(smiles)
        return torch.from_numpy(drug_fingerprints(smiles, self.config.fingerprint_radius,
                                                  self.config.fingerprint_bits))

    def predict(self, data: ResponseData, *, chunk: int = 65536) -> np.ndarray:
        """The predicted response of every pair of ``data``."""
        import torch

        out = np.empty(len(data))
        if not len(data):
            return out
        s_used, s_pos = np.unique(data.sample_index, return_inverse=True)
        d_used, d_pos = np.unique(data.drug_index, return_inverse=True)
        X = self.prep.standardized(data.samples)[s_used]
        drugs = self.drug_inputs([data.drugs.smiles[i] for i in d_used])
        net = self.network.eval()
        with torch.inference_mode():
            s = net.sample(torch.from_numpy(X))
            d = net.drugs(drugs)
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
    check_parameters(lambda: _network(config, prep.names), "a drug-response network",
               "smaller --sample-hidden, --drug-hidden, --head, --fingerprint-bits, "
               "--graph-hidden or --gene-hidden, or fewer features (--top-genes)")
    return prep


def _held(value):
    """A module holding a fingerprint matrix or a graph batch as non-persistent buffers, so
    that it moves to the training device with the objective and stays out of checkpoints."""
    from torch import nn

    from pmtoolkit.chem.featurizer import GraphBatch

    keys = ("x", "edge_index", "edge_attr", "batch")

    class Held(nn.Module):
        def __init__(self):
            super().__init__()
            self.graph = isinstance(value, GraphBatch)
            for k in keys if self.graph else ("value",):
                self.register_buffer(k, getattr(value, k) if self.graph else value,
                                     persistent=False)
            self.num_graphs = value.num_graphs if self.graph else None

        def get(self):
            if self.graph:
                return GraphBatch(*(getattr(self, k) for k in keys), self.num_graphs)
            return self.value

    return Held()


def objective(train_inputs, val_inputs):
    """Squared error of standardised responses. A batch holds (sample, drug, response)
    indices; each distinct sample and drug of a batch is encoded once, from the feature
    matrix and drug inputs (fingerprints or graphs) ``train_inputs`` / ``val_inputs`` (kept
    on the training device, and out of the checkpoint: they are data, not weights)."""
    import torch

    from pmtoolkit.core.task import Objective

    class ResponseObjective(Objective):
        def __init__(self):
            super().__init__()
            (X_train, drugs_train), (X_val, drugs_val) = train_inputs, val_inputs
            self.register_buffer("X_train", X_train, persistent=False)
            self.register_buffer("X_val", X_val, persistent=False)
            self.drugs_train = _held(drugs_train)
            self.drugs_val = self.drugs_train if drugs_val is drugs_train else _held(drugs_val)

        def _outputs(self, net, batch, X, drugs):
            si, di, y = batch
            s_u, s_pos = torch.unique(si, return_inverse=True)
            d_u, d_pos = torch.unique(di, return_inverse=True)
            s = net.sample(X.index_select(0, s_u))
            d = net.drugs(drugs.get(), d_u)
            return net.pairs(s, d, s_pos, d_pos), y

        def outputs(self, net, batch):
            return self._outputs(net, batch, self.X_train, self.drugs_train)

        def validation_outputs(self, net, batch):
            return self._outputs(net, batch, self.X_val, self.drugs_val)

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
        return X, model.drug_inputs(data.drugs.smiles)

    def loader(data: ResponseData, shuffle: bool):
        yy = ((np.asarray(data.y, dtype=np.float64) - y_mean) / y_std).astype(np.float32)
        ds = torch.utils.data.TensorDataset(torch.from_numpy(data.sample_index),
                                            torch.from_numpy(data.drug_index),
                                            torch.from_numpy(yy))
        return torch.utils.data.DataLoader(ds, batch_size=config.batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(config.seed))

    has_val = valid is not None and len(valid) > 0
    X_train, drugs_train = tensors(train)
    X_val, drugs_val = tensors(valid) if has_val else (X_train, drugs_train)
    if has_val and valid.samples is train.samples:
        X_val = X_train
    if has_val and valid.drugs is train.drugs:
        drugs_val = drugs_train

    # a resume checkpoint every few epochs where it can outlive the run; else only at the end
    tc = train_config(config, monitor="val_loss", mode="min", validating=has_val,
                      resume=resume,
                      checkpoint_every=None if checkpoints else max(10, config.epochs))
    start = time.perf_counter()
    result = train_network(net, objective((X_train, drugs_train), (X_val, drugs_val)),
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


#: shipped models by the name users type; each is a ``model`` entry in data/MANIFEST
SHIPPED_MODELS = ("gdsc",)


def load(name_or_path: str | os.PathLike) -> ResponseModel:
    """A saved model file, a shipped model by name (``gdsc``), or the training output folder
    holding ``model.safetensors``."""
    from pmtoolkit.core.model import load_named

    folder = Path(name_or_path)
    if folder.is_dir() and (folder / "model.safetensors").is_file():
        name_or_path = folder / "model.safetensors"
    return load_named(name_or_path, shipped_names=SHIPPED_MODELS, model_class=ResponseModel,
                      what="drug-response model")
