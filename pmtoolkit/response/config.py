"""Settings of drug-response models (light to import: CLI options and TOML keys come from
them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pmtoolkit.core.config import (
    DROPOUT,
    FRACTION,
    LEARNING_RATE,
    SEED,
    WEIGHT_DECAY,
    WIDTH,
    Range,
    training_fields,
)

#: how a panel's pairs are split (see :func:`pmtoolkit.response.splits.response_split`)
SPLITS = ("random", "cold-drug", "cold-sample", "cold-pair")
#: baselines by the name users type (:data:`pmtoolkit.response.baselines.BASELINES`); the
#: forest is the slow one, not run by default
BASELINE_NAMES = ("drug-mean", "sample-mean", "additive", "ridge", "drug-ridge", "forest")
DEFAULT_BASELINES = ("drug-mean", "sample-mean", "additive", "ridge")


@dataclass
@training_fields(epochs=100, patience=10, batch_size=256, items="(sample, drug) pairs")
class ResponseConfig:
    """A two-tower model of (sample features, drug structure) -> response.

    The sample tower is an MLP on the sample's features (expression counts log-normalised,
    then every feature standardised on the training samples; optionally only the most
    variable genes); the drug tower an MLP on the drug's Morgan fingerprint. ``fusion``
    combines the two vectors: ``concat`` feeds ``[s, d]`` to an MLP head; ``bilinear`` is
    ``w_s.s + w_d.d + <s, d>`` (main effects plus a low-rank interaction, the shape of a
    matrix-factorisation model); ``both`` feeds ``[s, d, s*d]`` to the head.

    ``drug_encoder`` and ``sample_encoder`` swap what the towers read (a D-MPNN over the
    drug's atoms and bonds; the features grouped by gene, a feature's gene being its name
    after the table stem, ``cell_mutation:entrez_673`` -> ``entrez_673``); their defaults
    are the fingerprint and the plain MLP, which models saved before them were."""

    fusion: Literal["concat", "bilinear", "both"] = field(default="both", metadata={
        "help": "how the sample and drug vectors are combined"})
    sample_hidden: tuple[int, ...] = field(default=(256, 64), metadata={"range": WIDTH,
        "help": "hidden sizes of the sample tower (the last is the sample vector)"})
    drug_hidden: tuple[int, ...] = field(default=(256, 64), metadata={"range": WIDTH,
        "help": "hidden sizes of the drug tower (the last must equal the sample tower's)"})
    head: tuple[int, ...] = field(default=(128,), metadata={"range": WIDTH,
        "help": "hidden sizes of the head (concat, both)"})
    fingerprint_radius: int = field(default=2, metadata={"range": Range(0, 10),
        "help": "Morgan fingerprint radius of the drug tower (2 = ECFP4)"})
    fingerprint_bits: int = field(default=2048, metadata={"range": Range(8, 65_536),
        "help": "Morgan fingerprint length"})
    drug_encoder: Literal["fingerprint", "graph"] = field(default="fingerprint", metadata={
        "help": "what the drug tower reads: the Morgan fingerprint, or the molecular graph "
                "through a D-MPNN (chemprop's directed message passing, mean over atoms)"})
    graph_hidden: int = field(default=128, metadata={"range": Range(1, 4096),
        "help": "width of the D-MPNN's bond and atom states (drug-encoder graph)"})
    graph_depth: int = field(default=3, metadata={"range": Range(1, 10),
        "help": "message-passing steps of the D-MPNN (drug-encoder graph)"})
    sample_encoder: Literal["mlp", "gene-groups"] = field(default="mlp", metadata={
        "help": "what the sample tower reads: every feature side by side (mlp), or the "
                "features of each gene across the feature tables grouped (gene-groups: one "
                "small MLP shared by every gene over its [table values, presence], its "
                "output beside the values, then the tower)"})
    gene_hidden: int = field(default=8, metadata={"range": Range(1, 256),
        "help": "width of the per-gene MLP (sample-encoder gene-groups)"})
    top_genes: int = field(default=2000, metadata={"range": Range(0, 10**6),
        "help": "keep this many most variable features of the training samples (0: all)"})
    normalize: Literal["auto", "log-cpm", "none"] = field(default="auto", metadata={
        "help": "sample features: log-cpm = log1p(counts per million); auto: log-cpm when "
                "the matrix holds counts (non-negative integers), else none"})
    dropout: float = field(default=0.1, metadata={"range": DROPOUT,
        "help": "dropout in towers and head"})
    lr: float = field(default=1e-3, metadata={"range": LEARNING_RATE,
        "help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"range": WEIGHT_DECAY,
        "help": "AdamW weight decay"})


#: the mechanisms a drug's structure plants: name -> SMARTS
MECHANISMS: dict[str, str] = {
    "aromatic_halogen": "c[F,Cl,Br,I]",
    "carbonyl": "[CX3]=[OX1]",
    "hydroxyl": "[OX2H]",
    "aromatic_nitrogen": "[n]",
}


@dataclass
class PanelConfig:
    """What :func:`pmtoolkit.response.simulate.simulate_panel` simulates (its module
    doc writes the model out)."""

    samples: int = field(default=200, metadata={"range": Range(2, 20_000),
        "help": "samples (cell lines or patients)"})
    drugs: int = field(default=150, metadata={"range": Range(2, 5_000),
        "help": "drugs, drawn from the shipped ESOL molecules (at most 1128)"})
    genes: int = field(default=500, metadata={"range": Range(1, 100_000),
        "help": "genes in the expression matrix"})
    mechanisms: int = field(default=4, metadata={"range": Range(1, len(MECHANISMS)),
        "help": f"drug mechanisms / sample programmes (at most {len(MECHANISMS)})"})
    module_size: int = field(default=20, metadata={"range": Range(1, 100_000),
        "help": "genes per expression module"})
    # beyond 5, exp(strength x programme) outgrows what a negative binomial can draw
    module_strength: float = field(default=0.5, metadata={"range": Range(0, 5),
        "help": "log fold change of a module's genes per sd of its programme"})
    w_drug: float = field(default=1.0, metadata={"range": Range(0, 100),
        "help": "weight of the drug main effect"})
    w_sample: float = field(default=0.5, metadata={"range": Range(0, 100),
        "help": "weight of the sample main effect"})
    w_interaction: float = field(default=0.8, metadata={"range": Range(0, 100),
        "help": "weight of the drug x sample interaction"})
    drug_effect_structure: float = field(default=0.5, metadata={"range": FRACTION,
        "help": "share of the drug main effect's variance that follows structure (logP)"})
    noise: float = field(default=0.5, metadata={"range": Range(0, 100),
        "help": "sd of the measurement noise"})
    mean: float = field(default=2.0, metadata={"range": Range(-100, 100),
        "help": "mean response (e.g. ln IC50)"})
    coverage: float = field(default=0.9, metadata={"range": Range(0, 1, min_open=True),
        "help": "share of pairs measured"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "random seed"})
