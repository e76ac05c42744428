"""A negative-binomial variational autoencoder of raw counts, for embedding and integration.

The model is scVI's (Lopez et al. 2018), written for pmtoolkit's one model contract:
encoder ``log1p(counts) [+ batch] -> q(z) = N(mu, sigma)``; decoder ``z [+ batch] -> softmax
over genes`` times the cell's observed library size gives the NB mean; one inverse dispersion
per gene. The loss is the NB negative log-likelihood plus the KL of q(z) from N(0, I), whose
weight rises linearly over the first ``kl_warmup`` epochs. With ``batch_key``, batches enter
encoder and decoder as one-hot covariates, so the latent space keeps biology and the decoder
explains batch. Cells stream from the sparse matrix batch by batch (memory stays near the
size of the sparse counts).

Keys written by :meth:`ExpressionVAE.embed`: ``obsm[key_added]`` (default ``X_pmt_vae``).
"""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import TorchModel
from pmtoolkit.expression.config import VAEConfig
from pmtoolkit.expression.io import (
    align_genes,
    check_no_empty_cells,
    counts_matrix,
    dense_tensor,
)

if TYPE_CHECKING:
    import anndata as ad

log = logging.getLogger(__name__)


def _mlp(n_in: int, n_hidden: int, n_layers: int, dropout: float):
    from torch import nn

    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(n_in if i == 0 else n_hidden, n_hidden),
                   nn.BatchNorm1d(n_hidden, momentum=0.01, eps=1e-3), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _build(config: VAEConfig, n_genes: int, n_batches: int):
    import torch
    from torch import nn

    class NBVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.n_batches = n_batches
            self.encoder = _mlp(n_genes + n_batches, config.n_hidden, config.n_layers,
                                config.dropout)
            self.mean = nn.Linear(config.n_hidden, config.n_latent)
            self.log_var = nn.Linear(config.n_hidden, config.n_latent)
            self.decoder = _mlp(config.n_latent + n_batches, config.n_hidden, config.n_layers,
                                0.0)
            self.scale = nn.Linear(config.n_hidden, n_genes)
            self.log_theta = nn.Parameter(torch.randn(n_genes))

        def _cov(self, h, batch):
            if self.n_batches == 0:
                return h
            return torch.cat([h, nn.functional.one_hot(batch, self.n_batches).to(h.dtype)], 1)

        def encode(self, x, batch):
            h = self.encoder(self._cov(torch.log1p(x), batch))
            return self.mean(h), self.log_var(h).clamp(-15, 15)

        def forward(self, x, batch):
            mu, log_var = self.encode(x, batch)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
            rho = torch.softmax(self.scale(self.decoder(self._cov(z, batch))), dim=-1)
            mean = rho * x.sum(1, keepdim=True)
            return mean, mu, log_var

    return NBVAE()


def nb_log_likelihood(x, mean, theta, eps: float = 1e-8):
    """log NB(x; mean, inverse dispersion theta), summed over genes."""
    import torch

    log_theta_mu = torch.log(theta + mean + eps)
    ll = (theta * (torch.log(theta + eps) - log_theta_mu)
          + x * (torch.log(mean + eps) - log_theta_mu)
          + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1))
    return ll.sum(-1)


class ExpressionVAE(TorchModel):
    """A trained NB-VAE: its genes (in order), batches, and network."""

    Config = VAEConfig

    def __init__(self, config: VAEConfig, network=None, *, genes: list[str] | None = None,
                 batches: list[str] | None = None, batch_key: str | None = None):
        self.genes = list(genes or [])
        self.batches = list(batches or [])
        self.batch_key = batch_key
        super().__init__(config, network)

    @classmethod
    def build_network(cls, config: VAEConfig, extra: dict[str, Any]):
        return _build(config, len(extra.get("genes", [])), len(extra.get("batches", [])))

    @classmethod
    def untrained(cls, config: VAEConfig, extra: dict[str, Any]) -> ExpressionVAE:
        return cls(config, cls.build_network(config, extra), genes=extra.get("genes"),
                   batches=extra.get("batches"), batch_key=extra.get("batch_key"))

    def extra_metadata(self) -> dict[str, Any]:
        return {"genes": self.genes, "batches": self.batches, "batch_key": self.batch_key}

    # -- inference --------------------------------------------------------------------
    def _inputs(self, adata: ad.AnnData, layer: str):
        X, _ = counts_matrix(adata, layer)
        X = align_genes(X, adata.var_names, self.genes, "VAE")
        batch = _batch_codes(adata, self.batch_key, self.batches)
        return X, batch

    def latent(self, adata: ad.AnnData, *, layer: str = "auto", batch_size: int = 1024
               ) -> np.ndarray:
        """The posterior mean of each cell's latent vector (cells × n_latent)."""
        import torch

        X, batch = self._inputs(adata, layer)
        net = self.network.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, X.shape[0], batch_size):
                x = dense_tensor(X[start:start + batch_size])
                b = torch.from_numpy(batch[start:start + batch_size])
                out.append(net.encode(x, b)[0].numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.n_latent), np.float32)

    def embed(self, adata: ad.AnnData, *, key_added: str = "X_pmt_vae", layer: str = "auto",
              copy: bool = False) -> ad.AnnData | None:
        """Store the latent means in ``adata.obsm[key_added]``."""
        adata = adata.copy() if copy else adata
        adata.obsm[key_added] = self.latent(adata, layer=layer)
        return adata if copy else None

    def predict(self, adata: ad.AnnData) -> np.ndarray:
        return self.latent(adata)


def load_vae(path: str | os.PathLike) -> ExpressionVAE:
    """A VAE saved by :meth:`ExpressionVAE.save` (``pmt expr embed --save-model``)."""
    from pmtoolkit.core.model import load_named

    return load_named(path, shipped_names=(), model_class=ExpressionVAE, what="expression VAE")


def _batch_codes(adata: ad.AnnData, batch_key: str | None, batches: list[str]) -> np.ndarray:
    if not batch_key:
        return np.zeros(adata.n_obs, dtype=np.int64)
    if batch_key not in adata.obs:
        raise BadInputError(f"no obs column {batch_key!r} (the model's batch key)")
    values = adata.obs[batch_key].astype(str).to_numpy()
    lookup = {b: i for i, b in enumerate(batches)}
    unknown = sorted(set(values) - set(lookup))
    if unknown:
        raise BadInputError(f"batch(es) {', '.join(unknown[:5])} were not seen in training",
                            hint="embed with the batches the model was trained on, or retrain "
                                 "with them")
    return np.array([lookup[v] for v in values], dtype=np.int64)


class _Rows:
    """A DataLoader collate: row indices -> (dense counts, batch codes)."""

    def __init__(self, X, batch: np.ndarray):
        self.X, self.batch = X, batch

    def __call__(self, idx: list[int]):
        import torch

        idx = np.sort(np.asarray(idx))
        return dense_tensor(self.X[idx]), torch.from_numpy(self.batch[idx])


def objective(config: VAEConfig, steps_per_epoch: int):
    """The negative ELBO: the counts' negative-binomial negative log-likelihood plus the
    latent KL divergence, its weight rising from 0 to 1 over ``config.kl_warmup`` epochs in
    training (1 in validation, which also logs ``val_reconstruction``)."""
    import torch

    from pmtoolkit.core.task import Objective

    class ELBO(Objective):
        def __init__(self):
            super().__init__()
            self._reconstruction = None

        def outputs(self, net, batch):
            x, b = batch
            return (*net(x, b), net.log_theta), x

        def _kl_weight(self, step: int | None) -> float:
            if step is None or config.kl_warmup <= 0:
                return 1.0
            return min(1.0, step / (config.kl_warmup * steps_per_epoch))

        def loss(self, out, target, step=None):
            mean, mu, log_var, log_theta = out
            recon = -nb_log_likelihood(target, mean, torch.exp(log_theta))
            kl = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(-1)
            self._reconstruction = recon.mean()
            return (recon + self._kl_weight(step) * kl).mean()

        def validation_logs(self):
            return {"val_reconstruction": self._reconstruction}

    return ELBO()


def optimizer(config: VAEConfig):
    from pmtoolkit.core.task import Optimizer

    # scvi-tools' optimiser settings
    return Optimizer(name="adam", lr=config.lr, eps=0.01, weight_decay=1e-6)


def default_epochs(n_cells: int) -> int:
    """scvi-tools' rule: 400 epochs up to 20,000 cells, fewer (down to 1) beyond."""
    return int(max(1, min(400, round(20000 / max(1, n_cells) * 400))))


def fit_vae(adata: ad.AnnData, config: VAEConfig | None = None, *, batch_key: str | None = None,
            layer: str = "auto", valid_fraction: float = 0.1,
            workdir: str | Path | None = None, checkpoints: str | Path | None = None,
            resume: bool = False) -> ExpressionVAE:
    """Train an NB-VAE on the raw counts of ``adata`` (``layer``: see ``counts_matrix``).

    Genes: the ``n_top_genes`` most variable (scanpy's seurat_v3 on the counts, per batch
    when ``batch_key`` is given), or all. ``valid_fraction`` of the cells are held out for
    early stopping. The returned model's ``metadata['metrics']`` has the train time and
    best validation loss. Logs go to ``workdir``, the resume checkpoint to ``checkpoints``
    (default: inside ``workdir``), from which ``resume`` continues an interrupted run."""
    import scanpy as sc
    import torch

    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    config = config or VAEConfig()
    check_ranges(config, source="VAE config")
    if batch_key and batch_key not in adata.obs:
        raise BadInputError(f"no obs column {batch_key!r} for --batch-key",
                            hint="columns: " + ", ".join(map(str, adata.obs.columns)))
    X, where = counts_matrix(adata, layer)
    check_no_empty_cells(X, adata.obs_names, source=f"counts ({where})")
    genes = list(map(str, adata.var_names))
    if config.n_top_genes is not None and config.n_top_genes < adata.n_vars:
        from pmtoolkit.expression.qc import highly_variable_genes

        tmp = sc.AnnData(X=X, obs=adata.obs[[batch_key]] if batch_key else None)
        tmp.var_names = adata.var_names
        highly_variable_genes(tmp, "seurat_v3", config.n_top_genes, batch_key=batch_key,
                              hint="model every gene (--n-top-genes none in a config file)")
        keep = tmp.var["highly_variable"].to_numpy()
        genes = [g for g, k in zip(genes, keep) if k]
    X = align_genes(X, adata.var_names, genes, "VAE")
    n = int((np.asarray(X.sum(axis=1)).ravel() <= 0).sum())
    if n:
        log.warning("%d cell(s) have no counts in the %d modelled genes", n, len(genes))
    batches = sorted(set(adata.obs[batch_key].astype(str))) if batch_key else []
    model = ExpressionVAE.untrained(config, {"genes": genes, "batches": batches,
                                        "batch_key": batch_key})
    codes = _batch_codes(adata, batch_key, batches)

    rng = np.random.default_rng(config.seed)
    order = rng.permutation(adata.n_obs)
    n_val = round(valid_fraction * adata.n_obs) if adata.n_obs >= 50 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    collate = _Rows(X, codes)
    gen = torch.Generator().manual_seed(config.seed)
    train = torch.utils.data.DataLoader(train_idx.tolist(), batch_size=config.batch_size,
                                        shuffle=True, collate_fn=collate, generator=gen,
                                        drop_last=len(train_idx) > config.batch_size)
    val = torch.utils.data.DataLoader(val_idx.tolist(), batch_size=1024,
                                      collate_fn=collate) if n_val else None
    epochs = config.epochs if config.epochs is not None else default_epochs(adata.n_obs)
    train_cfg = train_config(config, epochs=epochs, monitor="val_loss", mode="min",
                             validating=bool(val), resume=resume,
                             # without a checkpoint folder, only the last epoch's
                             checkpoint_every=5 if checkpoints else max(25, epochs))
    start = time.perf_counter()
    result = train_network(model.network, objective(config, max(1, len(train))), train, val,
                           optimizer=optimizer(config), config=train_cfg, workdir=workdir,
                           checkpoint_dir=checkpoints)
    seconds = time.perf_counter() - start
    model.metadata = {"metrics": {"train_seconds": seconds, "epochs_run": result.epochs_run,
                                  "best_val_loss": result.best_score,
                                  "n_cells": int(adata.n_obs), "n_genes": len(genes)}}
    log.info("VAE: %d genes, %d epochs in %.0f s, validation loss %s", len(genes),
             result.epochs_run, seconds,
             f"{result.best_score:.1f}" if result.best_score is not None else "n/a")
    if result.best_score is not None and not math.isfinite(result.best_score):
        raise BadInputError("the VAE's validation loss is not finite")
    return model
