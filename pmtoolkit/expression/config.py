"""Settings of the expression pipeline and models (light to import: the CLI builds its
options from them, and a run's TOML file uses the same names)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    DROPOUT,
    FRACTION,
    LAYERS,
    LEARNING_RATE,
    SEED,
    WEIGHT_DECAY,
    WIDTH,
    Range,
    training_fields,
)


@dataclass
class SingleCellConfig:
    """The standard single-cell pipeline, step by step, with scanpy's defaults where scanpy
    has one: QC metrics -> cell and gene filters -> doublet scores -> normalise + log1p ->
    highly variable genes -> PCA (or the NB-VAE) -> neighbours -> Leiden -> UMAP -> markers
    -> annotation by marker lists."""

    counts_layer: str = field(default="auto", metadata={
        "help": "where the raw counts are: auto (X, else a 'counts' layer, else .raw), X, raw "
                "or a layer name"})
    mito_prefix: str = field(default="MT-", metadata={
        "help": "prefix of mitochondrial genes (case-insensitive)"})
    ribo_prefixes: tuple[str, ...] = field(default=("RPS", "RPL"), metadata={
        "help": "prefixes of ribosomal-protein genes (case-insensitive)"})
    min_genes: int = field(default=200, metadata={"range": Range(0, 10**6),
        "help": "drop cells with fewer genes detected"})
    max_genes: int | None = field(default=None, metadata={"range": Range(1, 10**6),
        "help": "drop cells with more genes detected (none: no upper limit)"})
    min_counts: int | None = field(default=None, metadata={"range": Range(0, None),
        "help": "drop cells with fewer counts"})
    max_pct_mito: float | None = field(default=20.0, metadata={"range": Range(0, 100),
        "help": "drop cells with a larger percentage of mitochondrial counts (none: keep)"})
    min_cells: int = field(default=3, metadata={"range": Range(0, 10**9),
        "help": "drop genes detected in fewer cells"})
    doublets: bool = field(default=True, metadata={
        "help": "score doublets (scrublet) into obs doublet_score / predicted_doublet"})
    remove_doublets: bool = field(default=False, metadata={
        "help": "drop the cells scrublet predicts to be doublets"})
    target_sum: float = field(default=1e4, metadata={"range": Range(0, 1e12, min_open=True),
        "help": "counts per cell after normalisation (then log1p)"})
    n_top_genes: int = field(default=2000, metadata={"range": Range(1, 10**6),
        "help": "highly variable genes kept for PCA (all genes when there are fewer)"})
    hvg_flavor: Literal["seurat", "cell_ranger", "seurat_v3"] = field(default="seurat", metadata={
        "help": "scanpy's highly-variable-genes flavour (seurat_v3 works on the counts)"})
    batch_key: str | None = field(default=None, metadata={
        "help": "obs column of batches: HVGs per batch, and the VAE integrates them"})
    scale: bool = field(default=True, metadata={
        "help": "scale genes to unit variance (clipped at 10) before PCA; --no-scale keeps "
                "the PCA input sparse (100k cells: 3.6 instead of 6.7 GiB peak)"})
    n_pcs: int = field(default=50, metadata={"range": Range(1, 1000),
        "help": "principal components"})
    embedding: Literal["pca", "vae"] = field(default="pca", metadata={
        "help": "neighbours on PCA, or on the negative-binomial VAE's latent space"})
    n_neighbors: int = field(default=15, metadata={"range": Range(2, 1000),
        "help": "neighbours per cell"})
    resolution: float = field(default=1.0, metadata={"range": Range(0, 100, min_open=True),
        "help": "Leiden resolution"})
    umap_min_dist: float = field(default=0.5, metadata={"range": Range(0, 10),
        "help": "UMAP min_dist"})
    label_key: str | None = field(default=None, metadata={
        "help": "obs column of known labels: UMAP by label, and ARI/NMI of the clusters"})
    markers: str | None = field(default=None, metadata={
        "help": "marker lists to annotate clusters with: a TOML (label = [genes]) or a "
                "two-column CSV/TSV (label, gene)"})
    n_marker_genes: int = field(default=5, metadata={"range": Range(1, 1000),
        "help": "top marker genes per cluster in the dot plot"})
    seed: int = field(default=0, metadata={"range": SEED,
        "help": "random seed (PCA, UMAP, Leiden, VAE)"})


@dataclass
@training_fields(epochs=None, patience=45, batch_size=128, items="cells",
                 auto_epochs="scvi-tools' rule, min(400, 20,000 / cells × 400)")
class VAEConfig:
    """A variational autoencoder of raw counts with a negative-binomial likelihood (the scVI
    model family): cells -> latent Gaussian -> per-gene NB mean (softmax of the library) and
    a per-gene inverse dispersion; batches as one-hot covariates of encoder and decoder."""

    n_latent: int = field(default=10, metadata={"range": Range(1, 1024),
        "help": "latent dimensions"})
    n_hidden: int = field(default=128, metadata={"range": WIDTH,
        "help": "units of each hidden layer"})
    n_layers: int = field(default=1, metadata={"range": LAYERS,
        "help": "hidden layers of encoder and decoder"})
    dropout: float = field(default=0.1, metadata={"range": DROPOUT,
        "help": "dropout in the encoder"})
    n_top_genes: int | None = field(default=2000, metadata={"range": Range(1, 10**6),
        "help": "model the most variable genes (seurat_v3 on counts; none: all genes)"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE, "help": "Adam learning rate"})
    kl_warmup: int = field(default=400, metadata={"range": Range(0, 10**7),
        "help": "epochs over which the KL weight rises from 0 to 1"})


@dataclass
@training_fields(epochs=60, patience=10, batch_size=128, items="profiles")
class ExpressionClassifierConfig:
    """A classifier of expression profiles: cells for label transfer, or bulk samples for
    phenotypes. Input: log1p of counts per 10k on the model's genes; an MLP (or, with no
    hidden layers, multinomial logistic regression); softmax probabilities."""

    hidden: tuple[int, ...] = field(default=(256,), metadata={"range": WIDTH,
        "help": "hidden layer sizes (none: logistic regression)"})
    dropout: float = field(default=0.3, metadata={"range": DROPOUT,
        "help": "dropout after each hidden layer"})
    n_top_genes: int | None = field(default=3000, metadata={"range": Range(1, 10**6),
        "help": "use the most variable genes of the reference (none: all genes)"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"range": WEIGHT_DECAY,
        "help": "AdamW weight decay"})
    class_weights: bool = field(default=True, metadata={
        "help": "weight classes by inverse frequency (rare cell types count as much)"})
    max_missing: float = field(default=0.1, metadata={"range": FRACTION,
        "help": "largest fraction of the model's genes a query may lack (they count as zero)"})
