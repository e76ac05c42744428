"""Drug–target pair models under the one model contract.

``fit(train, valid, config) -> DTIModel``; ``model.predict(data)`` gives one value per pair
(affinity, or interaction probability); ``evaluate(model, data)`` returns CI, MSE, rm²,
Pearson, Spearman (regression) or ROC-AUC, PR-AUC (classification); ``model.save(path)`` /
``load_model(path)``.

Training batches are blocks: the proteins and the drugs are each shuffled into groups every
epoch, and a batch is every training pair between one protein group and one drug group. Each
protein and drug in a batch is encoded once, and every pair is still seen once per epoch. The
group sizes are chosen so a block holds about ``pairs_per_batch`` training pairs for the least
encoder work (a protein costs far more to encode than a drug).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import TorchModel
from pmtoolkit.dti.config import DTIConfig
from pmtoolkit.dti.data import PairData

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- inputs

@dataclass
class EncodedEntities:
    """Model inputs of a list of distinct drugs and proteins."""

    drugs: Any       # PackedGraphs
    proteins: list[str]
    kmers: np.ndarray | None  # (n_proteins, KMER_DIM) for the kmer encoder

    def drug_batch(self, index: np.ndarray):
        return self.drugs.batch(index)

    def protein_inputs(self, index: np.ndarray, config: DTIConfig):
        import torch

        if config.protein_encoder == "kmer":
            return (torch.from_numpy(self.kmers[index]),)
        from pmtoolkit.dti.networks import encode_proteins

        ids, lengths = encode_proteins([self.proteins[i] for i in index],
                                       config.protein_max_length)
        return torch.from_numpy(ids), torch.from_numpy(lengths)


def encode_entities(data: PairData, config: DTIConfig) -> EncodedEntities:
    from pmtoolkit.chem.featurizer import PackedGraphs, mol_codes

    mols = data.drug_mols()
    bad = [i for i, m in enumerate(mols) if m is None]
    if bad:
        raise BadInputError(f"drug {data.drug_ids[bad[0]] if data.drug_ids else bad[0]!r} "
                            f"has an invalid SMILES: {data.drugs[bad[0]]!r}")
    kmers = None
    if config.protein_encoder == "kmer":
        from pmtoolkit.dti.networks import kmer_composition

        kmers = kmer_composition(data.proteins)
    return EncodedEntities(PackedGraphs([mol_codes(m) for m in mols]), list(data.proteins),
                           kmers)


# ----------------------------------------------------------------------------- model

class DTIModel(TorchModel):
    """A trained pair model; ``y_mean``/``y_std`` undo the target standardisation."""

    Config = DTIConfig

    def __init__(self, config: DTIConfig, network=None, y_mean: float = 0.0,
                 y_std: float = 1.0):
        super().__init__(config, network)
        self.y_mean, self.y_std = float(y_mean), float(y_std)

    @classmethod
    def build_network(cls, config: DTIConfig, extra: dict[str, Any]):
        """The members of the ensemble (one network unless ``ensemble_size`` > 1)."""
        from torch import nn

        from pmtoolkit.dti.networks import PairNetwork

        return nn.ModuleList(PairNetwork(config) for _ in range(max(1, config.ensemble_size)))

    @classmethod
    def untrained(cls, config: DTIConfig, extra: dict[str, Any]) -> DTIModel:
        return cls(config, cls.build_network(config, extra), extra.get("y_mean", 0.0),
                   extra.get("y_std", 1.0))

    def extra_metadata(self) -> dict[str, Any]:
        return {"y_mean": self.y_mean, "y_std": self.y_std}

    @property
    def members(self) -> list:
        return list(self.network)

    def _output(self, z: np.ndarray) -> np.ndarray:
        if self.config.task == "classification":
            return 1.0 / (1.0 + np.exp(-z))
        return z * self.y_std + self.y_mean

    def _encode(self, net, entities: EncodedEntities, n_drugs: int, n_proteins: int,
                chunk: int = 256):
        """One member's first-layer vectors of every drug and protein (computed once)."""
        import torch

        cfg = self.config
        d = [net.encode_drugs(entities.drug_batch(np.arange(s, min(s + chunk, n_drugs))))
             for s in range(0, n_drugs, chunk)]
        # proteins sorted by length so each chunk pads little
        order = np.argsort([len(p) for p in entities.proteins], kind="stable")
        p = torch.zeros(n_proteins, cfg.head[0])
        for s in range(0, n_proteins, 32):
            idx = order[s:s + 32]
            p[torch.from_numpy(idx)] = net.encode_proteins(*entities.protein_inputs(idx, cfg))
        return (torch.cat(d) if d else torch.zeros(0, cfg.head[0])), p

    def encode_targets(self, sequences: list[str]) -> list:
        """Each member's first-layer vectors of proteins, for :meth:`score_codes` (encode
        once, then score any number of molecules against them)."""
        import torch

        from pmtoolkit.dti.networks import kmer_composition

        cfg = self.config
        kmers = kmer_composition(sequences) if cfg.protein_encoder == "kmer" else None
        entities = EncodedEntities(None, list(sequences), kmers)
        inputs = entities.protein_inputs(np.arange(len(sequences)), cfg)
        with torch.inference_mode():
            return [net.eval().encode_proteins(*inputs) for net in self.members]

    def score_molecules(self, mols: list, targets: list) -> np.ndarray:
        """Predictions (n_molecules, n_targets) of valid RDKit molecules against targets from
        :meth:`encode_targets` (the ensemble mean)."""
        from pmtoolkit.chem.featurizer import mol_codes

        return self.score_codes([mol_codes(m) for m in mols], targets)

    def score_codes(self, codes: list, targets: list) -> np.ndarray:
        """:meth:`score_molecules` for graph codes already made (``GraphFeaturizer``)."""
        import torch

        from pmtoolkit.chem.featurizer import collate

        n_t = targets[0].shape[0]
        if not codes:
            return np.zeros((0, n_t))
        g = collate(codes)
        n = len(codes)
        d = torch.arange(n).repeat_interleave(n_t)
        p = torch.arange(n_t).repeat(n)
        outs = []
        with torch.inference_mode():
            for net, prot_h in zip(self.members, targets):
                drug_h = net.eval().encode_drugs(g)
                z = net.pairs(drug_h, prot_h, d, p).double().numpy().reshape(n, n_t)
                outs.append(self._output(z))
        return np.mean(outs, axis=0)

    def predict_members(self, data: PairData, *, chunk: int = 8192) -> np.ndarray:
        """Each member's prediction of each pair, shape (members, n_pairs)."""
        import torch

        out = np.empty((len(self.members), len(data)))
        if not len(data):
            return out
        entities = encode_entities(data, self.config)
        with torch.inference_mode():
            for m, net in enumerate(self.members):
                net.eval()
                drug_h, prot_h = self._encode(net, entities, len(data.drugs),
                                              len(data.proteins))
                for s in range(0, len(data), chunk):
                    d = torch.from_numpy(data.drug_index[s:s + chunk])
                    p = torch.from_numpy(data.protein_index[s:s + chunk])
                    out[m, s:s + chunk] = self._output(
                        net.pairs(drug_h, prot_h, d, p).double().numpy())
        return out

    def predict(self, data: PairData) -> np.ndarray:
        """One prediction per pair of ``data`` (affinity, or probability of interaction):
        the mean over the ensemble's members."""
        return self.predict_members(data).mean(axis=0)


# ----------------------------------------------------------------------------- batches

def block_shape(n_drugs: int, n_proteins: int, n_pairs: int, pairs_per_batch: int,
                cost_ratio: float) -> tuple[int, int]:
    """(drugs, proteins) per group so a block holds ~``pairs_per_batch`` pairs at the least
    encoder cost; ``cost_ratio`` = cost of encoding a protein / a drug. Per epoch the encoder
    work is n_d n_p (c_p / g_d + c_d / g_p); with g_d g_p = A fixed, g_d = sqrt(A c_p / c_d)."""
    density = n_pairs / max(1, n_drugs * n_proteins)
    area = pairs_per_batch / max(density, 1e-9)
    g_d = int(round(math.sqrt(area * cost_ratio)))
    g_d = max(1, min(n_drugs, g_d))
    g_p = max(1, min(n_proteins, int(round(area / g_d))))
    if g_p == n_proteins:  # all proteins fit: give the rest of the block to drugs
        g_d = max(1, min(n_drugs, int(round(area / g_p))))
    return g_d, g_p


def encoder_cost_ratio(config: DTIConfig, proteins: list[str], mean_atoms: float) -> float:
    """Forward FLOPs of encoding one protein over one drug (rough, for block shapes)."""
    if config.protein_encoder == "cnn":
        chans = [config.protein_embedding, *config.protein_filters]
        # layer k runs on 1/pool^k of the positions
        per_pos = sum(a * b * config.protein_kernel / config.protein_pool ** k
                      for k, (a, b) in enumerate(zip(chans[:-1], chans[1:])))
        length = float(np.mean([min(len(p), config.protein_max_length) for p in proteins]))
        c_p = per_pos * length
    else:
        from pmtoolkit.dti.networks import KMER_DIM

        c_p = KMER_DIM * 256.0
    h = config.drug_hidden
    c_d = mean_atoms * 2.2 * h * h * config.drug_depth  # ~2.2 directed bonds per atom
    return c_p / max(c_d, 1.0)


class _BlockSampler:
    """Every epoch: shuffle drugs and proteins into groups; a batch is one (protein group,
    drug group) block's training pairs. ``set_epoch`` keeps resumed runs on their order."""

    def __init__(self, drug_index, protein_index, n_drugs, n_proteins, g_d, g_p, seed):
        self.d, self.p = drug_index, protein_index
        self.n_d, self.n_p, self.g_d, self.g_p, self.seed = n_drugs, n_proteins, g_d, g_p, seed
        self.epoch = 0
        self.sampler = self  # Lightning calls set_epoch on batch_sampler.sampler
        self._len = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _blocks(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng((self.seed, epoch))
        dg = np.empty(self.n_d, dtype=np.int64)
        dg[rng.permutation(self.n_d)] = np.arange(self.n_d) // self.g_d
        pg = np.empty(self.n_p, dtype=np.int64)
        pg[rng.permutation(self.n_p)] = np.arange(self.n_p) // self.g_p
        n_dg = int(dg.max()) + 1
        key = pg[self.p] * n_dg + dg[self.d]
        order = np.argsort(key, kind="stable")
        cuts = np.flatnonzero(np.diff(key[order])) + 1
        blocks = np.split(order, cuts)
        rng.shuffle(blocks)
        return blocks

    def __iter__(self):
        blocks = self._blocks(self.epoch)
        self.epoch += 1
        yield from blocks

    def __len__(self) -> int:
        if self._len is None:
            self._len = len(self._blocks(0))
        return self._len


def _collate(entities: EncodedEntities, drug_index, protein_index, y, config: DTIConfig):
    import torch

    def collate(rows):
        rows = np.asarray(rows, dtype=np.int64)
        d_u, d_pos = np.unique(drug_index[rows], return_inverse=True)
        p_u, p_pos = np.unique(protein_index[rows], return_inverse=True)
        return (entities.drug_batch(d_u), entities.protein_inputs(p_u, config),
                torch.from_numpy(d_pos), torch.from_numpy(p_pos),
                torch.from_numpy(y[rows].astype(np.float32)))

    return collate


def _loader(entities, data: PairData, y: np.ndarray, config: DTIConfig, *, train: bool,
            cost_ratio: float):
    from torch.utils.data import DataLoader

    if train:
        g_d, g_p = block_shape(len(data.drugs), len(data.proteins), len(data),
                               config.pairs_per_batch, cost_ratio)
        log.info("training blocks: %d drugs x %d proteins", g_d, g_p)
        sampler = _BlockSampler(data.drug_index, data.protein_index, len(data.drugs),
                                len(data.proteins), g_d, g_p, config.seed)
    else:
        # validation: proteins in groups of 32 against all drugs, in a fixed order
        sampler = _BlockSampler(data.drug_index, data.protein_index, len(data.drugs),
                                len(data.proteins), len(data.drugs), 32, 12345)
        sampler = sampler._blocks(0)
    return DataLoader(range(len(data)), batch_sampler=sampler,
                      collate_fn=_collate(entities, data.drug_index, data.protein_index, y,
                                          config))


def objective(config: DTIConfig):
    """Binary cross-entropy (classification) or squared error (regression) of each pair in a
    block of drugs x proteins (each drug and protein encoded once per block); validation
    ROC-AUC or concordance index."""
    import torch

    from pmtoolkit.core.task import Objective

    classification = config.task == "classification"

    class PairObjective(Objective):
        keep_outputs = True

        def outputs(self, net, batch):
            g, prot, d_pos, p_pos, y = batch
            drug_h = net.encode_drugs(g)
            prot_h = net.encode_proteins(*prot)
            return net.pairs(drug_h, prot_h, d_pos, p_pos), y

        def loss(self, out, target, step=None):
            if classification:
                return torch.nn.functional.binary_cross_entropy_with_logits(out, target)
            return torch.nn.functional.mse_loss(out, target)

        def metrics(self, out, target):
            from pmtoolkit.core import metrics as M

            if classification:
                return {"val_roc_auc": M.roc_auc(target, out)}
            return {"val_ci": M.concordance_index(target, out)}

    return PairObjective()


def optimizer(config: DTIConfig):
    from pmtoolkit.core.task import Optimizer

    return Optimizer(name="adamw", lr=config.lr, weight_decay=config.weight_decay,
                     schedule="cosine", floor=0.1)


def _targets(data: PairData, config: DTIConfig, mean: float, std: float) -> np.ndarray:
    if data.y is None:
        raise BadInputError("training pairs need values")
    y = np.asarray(data.y, dtype=np.float64)
    if config.task == "classification":
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            raise BadInputError(f"classification values must be 0 or 1; got {y[bad][0]!r}")
        return y
    return (y - mean) / std


def fit(train: PairData, valid: PairData | None = None, config: DTIConfig | None = None, *,
        workdir: str | Path | None = None, checkpoints: str | Path | None = None,
        resume: bool = False) -> DTIModel:
    """Train a pair model on ``train`` (best epoch by validation loss when ``valid`` is
    given; the last epoch otherwise).

    Logs go to ``workdir/memberN``; each member's resume checkpoint to
    ``checkpoints/memberN`` (default: beside its logs), from which ``resume`` continues an
    interrupted run."""
    from pmtoolkit.core.config import check_ranges
    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    config = config or DTIConfig()
    check_ranges(config, source="drug-target model config")
    if len(train) < 2:
        raise BadInputError("need at least two training pairs")
    y = np.asarray(train.y, dtype=np.float64) if train.y is not None else None
    mean = float(np.mean(y)) if y is not None and config.task == "regression" else 0.0
    std = float(np.std(y)) if y is not None and config.task == "regression" else 1.0
    std = std if std > 1e-8 else 1.0
    from torch import nn

    from pmtoolkit.dti.networks import PairNetwork

    model = DTIModel(config, nn.ModuleList(), y_mean=mean, y_std=std)
    entities = encode_entities(train, config)
    mean_atoms = float(np.mean(entities.drugs.n_atoms)) if len(entities.drugs) else 1.0
    ratio = encoder_cost_ratio(config, train.proteins, mean_atoms)
    loader = _loader(entities, train, _targets(train, config, mean, std), config, train=True,
                     cost_ratio=ratio)
    val_loader = None
    if valid is not None and len(valid):
        val_entities = entities if (valid.drugs is train.drugs
                                    and valid.proteins is train.proteins) \
            else encode_entities(valid, config)
        val_loader = _loader(val_entities, valid, _targets(valid, config, mean, std), config,
                             train=False, cost_ratio=ratio)
    histories = []
    for i in range(max(1, config.ensemble_size)):
        seed = config.seed + i
        seed_everything(seed)  # each member: its own initialisation and batch order
        net = PairNetwork(config)
        model.network.append(net)
        loader.batch_sampler.seed = seed
        tc = train_config(config, seed=seed, monitor="val_loss", mode="min", resume=resume)
        result = train_network(net, objective(config), loader, val_loader,
                               optimizer=optimizer(config), config=tc,
                               workdir=Path(workdir) / f"member{i}" if workdir else None,
                               checkpoint_dir=Path(checkpoints) / f"member{i}"
                               if checkpoints else None)
        histories.append(result.history)
    model.network = model.network.cpu().eval()
    model.metadata = {"training_data_sha256": train.fingerprint(), "history": histories[0],
                      "member_histories": histories}
    return model


# ----------------------------------------------------------------------------- evaluation

def evaluate(model: DTIModel, data: PairData) -> dict[str, float]:
    """CI, MSE, rm², Pearson, Spearman (regression) or ROC-AUC, PR-AUC (classification)."""
    if data.y is None:
        raise BadInputError("evaluation needs pair values")
    return pair_metrics(data.y, model.predict(data), model.config.task)


def rm2(y_true, y_pred) -> float:
    """Roy's modified r² (rm² = r² (1 - sqrt(|r² - r0²|)), r0² through the origin), as
    reported by DeepDTA and GraphDTA."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    r = np.corrcoef(y, p)[0, 1]
    r2 = r * r
    k = float(np.sum(y * p) / np.sum(p * p))
    r02 = 1.0 - np.sum((y - k * p) ** 2) / np.sum((y - y.mean()) ** 2)
    return float(r2 * (1.0 - np.sqrt(abs(r2 - r02))))


def pair_metrics(y_true, y_pred, task: str = "regression") -> dict[str, float]:
    from pmtoolkit.core import metrics as M

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if task == "classification":
        return {"roc_auc": M.roc_auc(y_true, y_pred), "pr_auc": M.pr_auc(y_true, y_pred),
                "n": int(len(y_true))}
    return {"ci": M.concordance_index(y_true, y_pred), "mse": M.mse(y_true, y_pred),
            "rm2": rm2(y_true, y_pred), "pearson": M.pearson(y_true, y_pred),
            "spearman": M.spearman(y_true, y_pred), "n": int(len(y_true))}
