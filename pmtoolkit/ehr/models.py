"""Risk models over patient visit sequences behind the one model contract: a bag-of-codes
logistic regression, GRU/LSTM, RETAIN and a small Transformer (see
:class:`~pmtoolkit.ehr.config.RiskModelConfig`), trained with the project's Lightning helper.

Inputs are :class:`~pmtoolkit.ehr.tasks.Sample` lists. A :class:`Vocabulary` fitted on the
training samples maps ``SYSTEM:CODE`` tokens to indices (0 padding, 1 unknown: codes never seen
in training, counted when encoding). Training: binary cross-entropy with positives weighted by
negatives / positives, AdamW, early stopping on validation AUPRC, then calibration of the
probabilities on the validation samples (temperature scaling, or isotonic regression), and a
decision threshold by Youden's J on them.

Explanations: RETAIN's contributions are exact (the logit is a sum over codes and visits of
``alpha_i * w · (beta_i ⊙ e_k)``); the other models get integrated gradients over each visit's
code embeddings (zero baseline, completeness checked in the tests). Either way each code in
each visit gets a signed contribution to the logit.
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import TorchModel, check_parameters
from pmtoolkit.ehr.config import RiskModelConfig

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from pmtoolkit.ehr.tasks import Sample

log = logging.getLogger(__name__)

PAD, UNK = 0, 1
TIME_SCALE = math.log1p(3650.0)  # log days before the index, 10 years -> 1


class Vocabulary:
    """Code tokens of the training samples (``min_count`` samples at least)."""

    def __init__(self, tokens: list[str]):
        self.tokens = ["<pad>", "<unk>"] + [t for t in tokens if t not in ("<pad>", "<unk>")]
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def fit(cls, samples: list[Sample], min_count: int = 1) -> Vocabulary:
        counts: Counter = Counter()
        for s in samples:
            counts.update({c for v in s.visits for c in v})
        return cls(sorted(t for t, n in counts.items() if n >= min_count))

    def encode(self, samples: list[Sample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``codes (N, V, C)`` int64 (0 padding), ``days (N, V)`` float32 and ``mask (N, V)``
        bool, visits right-padded (the first ``len(visits)`` positions hold the history)."""
        n = len(samples)
        v = max((len(s.visits) for s in samples), default=1) or 1
        c = max((len(x) for s in samples for x in s.visits), default=1) or 1
        codes = np.zeros((n, v, c), np.int64)
        days = np.zeros((n, v), np.float32)
        mask = np.zeros((n, v), bool)
        unknown = 0
        for i, s in enumerate(samples):
            for j, (visit, d) in enumerate(zip(s.visits, s.days_before)):
                ids = [self.index.get(t, UNK) for t in visit]
                unknown += ids.count(UNK)
                codes[i, j, :len(ids)] = ids
                days[i, j] = d
                mask[i, j] = True
        if unknown:
            log.info("%d code occurrence(s) unknown to the vocabulary share the <unk> token",
                     unknown)
        return codes, days, mask


def multi_hot(samples: list[Sample], codes: list[str]) -> np.ndarray:
    """The samples' ``targets`` as a ``(N, len(codes))`` 0/1 matrix over ``codes`` (other
    codes left out)."""
    index = {t: i for i, t in enumerate(codes)}
    y = np.zeros((len(samples), len(index)), np.float32)
    for i, s in enumerate(samples):
        for t in s.targets or ():
            if t in index:
                y[i, index[t]] = 1.0
    return y


def _networks():
    import torch
    from torch import nn

    class VisitEmbedding(nn.Module):
        """Visit vectors: the sum of the visit's code embeddings (+ a time term)."""

        def __init__(self, vocab: int, dim: int, time: bool, dropout: float):
            super().__init__()
            self.codes = nn.Embedding(vocab, dim, padding_idx=PAD)
            self.time = nn.Linear(1, dim) if time else None
            self.drop = nn.Dropout(dropout)

        def code_vectors(self, codes):
            return self.codes(codes)  # (N, V, C, d)

        def forward(self, codes, days, scale: torch.Tensor | None = None):
            e = self.code_vectors(codes)
            if scale is not None:  # integrated gradients: scaled code embeddings
                e = e * scale
            v = e.sum(2)
            if self.time is not None:
                v = v + self.time((torch.log1p(days) / TIME_SCALE).unsqueeze(-1))
            return self.drop(v)

    class Logistic(nn.Module):
        def __init__(self, vocab: int, cfg: RiskModelConfig, n_out: int = 1):
            super().__init__()
            self.vocab = vocab
            self.linear = nn.Linear(vocab, n_out)

        def features(self, codes, mask):
            x = torch.zeros(codes.shape[0], self.vocab, device=codes.device)
            x.scatter_(1, codes.flatten(1), 1.0)
            x[:, PAD] = 0.0
            return x

        def forward(self, codes, days, mask):
            return self.linear(self.features(codes, mask)).squeeze(-1)

    class Recurrent(nn.Module):
        def __init__(self, vocab: int, cfg: RiskModelConfig, n_out: int = 1):
            super().__init__()
            self.embed = VisitEmbedding(vocab, cfg.embedding_dim, cfg.time_encoding, cfg.dropout)
            rnn = nn.GRU if cfg.arch == "gru" else nn.LSTM
            self.rnn = rnn(cfg.embedding_dim, cfg.hidden_dim, num_layers=cfg.layers,
                           batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
            self.out = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden_dim, n_out))

        def forward(self, codes, days, mask, scale=None):
            v = self.embed(codes, days, scale)
            lengths = mask.sum(1).clamp(min=1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(v, lengths, batch_first=True,
                                                       enforce_sorted=False)
            _, h = self.rnn(packed)
            h = h[0] if isinstance(h, tuple) else h
            return self.out(h[-1]).squeeze(-1)

    class Retain(nn.Module):
        def __init__(self, vocab: int, cfg: RiskModelConfig, n_out: int = 1):
            super().__init__()
            self.embed = VisitEmbedding(vocab, cfg.embedding_dim, cfg.time_encoding, cfg.dropout)
            self.alpha_rnn = nn.GRU(cfg.embedding_dim, cfg.hidden_dim, batch_first=True)
            self.beta_rnn = nn.GRU(cfg.embedding_dim, cfg.hidden_dim, batch_first=True)
            self.alpha = nn.Linear(cfg.hidden_dim, 1)
            self.beta = nn.Linear(cfg.hidden_dim, cfg.embedding_dim)
            self.out = nn.Linear(cfg.embedding_dim, n_out)
            self.drop = nn.Dropout(cfg.dropout)

        def attention(self, codes, days, mask, scale=None):
            v = self.embed(codes, days, scale)  # (N, V, d)
            lengths = mask.sum(1)
            # reverse each history in time (most recent visit first), as RETAIN does
            n, steps = mask.shape
            pos = torch.arange(steps, device=mask.device).expand(n, steps)
            rev = (lengths.unsqueeze(1) - 1 - pos).clamp(min=0)
            vr = torch.gather(v, 1, rev.unsqueeze(-1).expand_as(v)) * mask.unsqueeze(-1)
            g, _ = self.alpha_rnn(vr)
            h, _ = self.beta_rnn(vr)
            e = self.alpha(g).squeeze(-1).masked_fill(~mask, float("-inf"))
            a = torch.softmax(e, dim=1)  # over visits, in reversed order
            b = torch.tanh(self.beta(h))
            # back to time order: reversing the first `length` positions is its own inverse,
            # so the same index gathers them back (a scatter would let padded positions,
            # whose index is clamped to 0, overwrite the oldest visit)
            a = torch.gather(a, 1, rev) * mask
            b = torch.gather(b, 1, rev.unsqueeze(-1).expand_as(b)) * mask.unsqueeze(-1)
            return v, a, b

        def forward(self, codes, days, mask, scale=None):
            v, a, b = self.attention(codes, days, mask, scale)
            c = (a.unsqueeze(-1) * b * v).sum(1)
            return self.out(self.drop(c)).squeeze(-1)

    class Transformer(nn.Module):
        def __init__(self, vocab: int, cfg: RiskModelConfig, n_out: int = 1):
            super().__init__()
            self.embed = VisitEmbedding(vocab, cfg.embedding_dim, cfg.time_encoding, cfg.dropout)
            self.proj = nn.Linear(cfg.embedding_dim, cfg.hidden_dim)
            layer = nn.TransformerEncoderLayer(cfg.hidden_dim, cfg.heads, 2 * cfg.hidden_dim,
                                               cfg.dropout, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
            self.out = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden_dim, n_out))

        def forward(self, codes, days, mask, scale=None):
            x = self.encoder(self.proj(self.embed(codes, days, scale)),
                             src_key_padding_mask=~mask)
            m = mask.unsqueeze(-1).float()
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.out(pooled).squeeze(-1)

    return {"logistic": Logistic, "gru": Recurrent, "lstm": Recurrent, "retain": Retain,
            "transformer": Transformer}


def build_network(config: RiskModelConfig, vocab_size: int, n_out: int = 1):
    """The network of ``config.arch``: one logit (a risk), or ``n_out`` (next-visit codes;
    the forward pass then returns ``(N, n_out)``)."""
    _check_architecture(config)
    return _networks()[config.arch](vocab_size, config, n_out)


ARCHITECTURES = ("logistic", "gru", "lstm", "retain", "transformer")
#: the most parameters a risk model may have (each setting in range can still multiply into
#: tens of billions: 64 LSTM layers 8,192 wide)
def check_size(config: RiskModelConfig, vocab_size: int, n_out: int = 1) -> None:
    """Refuse a network of more than :data:`pmtoolkit.core.model.MAX_PARAMETERS` before
    allocating it."""
    check_parameters(lambda: build_network(config, vocab_size, n_out),
                     f"a {config.arch} network for {vocab_size:,} codes",
                     hint="smaller --embedding-dim, --hidden-size or --layers, or fewer codes "
                          "(--min-code-count)")


def _check_architecture(config: RiskModelConfig) -> None:
    if config.arch not in ARCHITECTURES:
        raise BadInputError(f"unknown model {config.arch!r}", hint=", ".join(ARCHITECTURES))
    if config.arch == "transformer" and config.hidden_dim % config.heads:
        raise BadInputError(f"hidden_dim {config.hidden_dim} is not divisible by "
                            f"{config.heads} heads")


class RiskModel(TorchModel):
    """A trained risk model: vocabulary, calibration and decision threshold; or, for the
    next-visit task, a model of every target code's probability (``targets``)."""

    Config = RiskModelConfig

    def __init__(self, config: RiskModelConfig, network=None, *, tokens: list[str] | None = None,
                 calibration: dict[str, Any] | None = None, threshold: float | None = None,
                 task: dict[str, Any] | None = None, targets: list[str] | None = None):
        self.vocab = Vocabulary(list(tokens or [])[2:] if tokens else [])
        self.calibration = dict(calibration or {"method": "none"})
        self.threshold = threshold
        self.task = dict(task or {})
        self.targets = list(targets) if targets else None
        super().__init__(config, network)

    @property
    def multilabel(self) -> bool:
        return self.targets is not None

    @classmethod
    def build_network(cls, config: RiskModelConfig, extra: dict[str, Any]):
        return build_network(config, max(2, len(extra.get("tokens") or [])),
                             len(extra.get("targets") or []) or 1)

    @classmethod
    def untrained(cls, config: RiskModelConfig, extra: dict[str, Any]) -> RiskModel:
        return cls(config, cls.build_network(config, extra), tokens=extra.get("tokens"),
                   calibration=extra.get("calibration"), threshold=extra.get("threshold"),
                   task=extra.get("task"), targets=extra.get("targets"))

    def extra_metadata(self) -> dict[str, Any]:
        return {"tokens": self.vocab.tokens, "calibration": self.calibration,
                "threshold": self.threshold, "task": self.task, "targets": self.targets}

    def target_matrix(self, samples: list[Sample]) -> np.ndarray:
        """Next-visit samples' targets as a multi-hot ``(N, n_targets)`` matrix (codes the
        model does not know are left out)."""
        return multi_hot(samples, self.targets or [])

    def _tensors(self, samples):
        import torch

        codes, days, mask = self.vocab.encode(samples)
        return torch.from_numpy(codes), torch.from_numpy(days), torch.from_numpy(mask)

    def logits(self, samples: list[Sample], *, batch_size: int = 256) -> np.ndarray:
        import torch

        self.network.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(samples), batch_size):
                out.append(self.network(*self._tensors(samples[i:i + batch_size])).numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def calibrate(self, z: np.ndarray) -> np.ndarray:
        """Probabilities from logits, with the fitted calibration."""
        from scipy.special import expit  # the logistic function, without overflow

        method = self.calibration.get("method", "none")
        if method == "platt":
            a, b = float(self.calibration["a"]), float(self.calibration["b"])
            return expit(a * z + b)
        if method == "temperature":
            return expit(z / float(self.calibration["temperature"]))
        p = expit(z)
        if method == "isotonic":
            return np.interp(p, self.calibration["x"], self.calibration["y"])
        return p

    def predict_proba(self, samples: list[Sample]) -> np.ndarray:
        """Calibrated probability of the outcome for each sample (next visit: ``(N,
        n_targets)``, each code's probability)."""
        return self.calibrate(self.logits(samples))

    def predict(self, samples: list[Sample], *, top: int = 10) -> pd.DataFrame:
        """Risk and decision per sample; next visit: the ``top`` most probable codes of each
        sample (``rank``, ``code``, ``probability``)."""
        import pandas as pd

        p = self.predict_proba(samples)
        if self.multilabel:
            k = min(top, p.shape[1])
            order = np.argsort(-p, axis=1, kind="stable")[:, :k]
            return pd.DataFrame({
                "patient_id": np.repeat([s.patient_id for s in samples], k),
                "index_time": np.repeat([str(s.index_time) for s in samples], k),
                "rank": np.tile(np.arange(1, k + 1), len(samples)),
                "code": np.asarray(self.targets, dtype=object)[order].ravel(),
                "probability": np.take_along_axis(p, order, axis=1).ravel()})
        t = 0.5 if self.threshold is None else self.threshold
        return pd.DataFrame({"patient_id": [s.patient_id for s in samples],
                             "index_time": [str(s.index_time) for s in samples],
                             "probability": p, "predicted": (p >= t).astype(int)})

    def contributions(self, samples: list[Sample], *, steps: int = 32,
                      target: str | None = None) -> pd.DataFrame:
        """Each code's signed contribution to each sample's logit: ``sample``, ``visit``
        (0 = oldest kept), ``days_before``, ``code``, ``contribution`` (RETAIN: exact;
        others: integrated gradients; the logistic model: its weights). Next visit: the logit
        of ``target`` (a code), by default each sample's most probable code (column
        ``target``)."""
        import pandas as pd
        import torch

        codes, days, mask = self._tensors(samples)
        net = self.network.eval()
        out_idx = torch.zeros(len(samples), dtype=torch.long)
        if self.multilabel:
            if target is not None:
                if target not in self.targets:
                    raise BadInputError(f"the model does not predict {target!r}")
                out_idx[:] = self.targets.index(target)
            else:
                out_idx = torch.from_numpy(self.logits(samples).argmax(1))
        if self.config.arch == "logistic":
            w = net.linear.weight.detach()[out_idx]  # (N, vocab)
            contrib = torch.gather(w, 1, codes.flatten(1)).view_as(codes).float() \
                * (codes != PAD)
            # a code repeated in a sample counts once in the bag: share its weight among its
            # occurrences (counted per sample)
            flat = codes.flatten(1)
            counts = torch.zeros(len(codes), len(self.vocab)).scatter_add_(
                1, flat, torch.ones(flat.shape))
            contrib = contrib / counts.gather(1, flat).view_as(codes)
        elif self.config.arch == "retain":
            with torch.no_grad():
                _, a, b = net.attention(codes, days, mask)
                e = net.embed.code_vectors(codes)  # (N, V, C, d)
                w = net.out.weight[out_idx][:, None, None, :]  # (N, 1, 1, d)
                contrib = a.unsqueeze(-1) * ((b.unsqueeze(2) * e) * w).sum(-1)
        else:
            # integrated gradients along the path alpha * (each code's embedding), alpha 0 -> 1,
            # with one scale per code: d logit / d scale_k is that code's gradient · embedding
            total = torch.zeros(codes.shape)
            for k in range(1, steps + 1):
                scale = torch.full(codes.shape + (1,), (k - 0.5) / steps, requires_grad=True)
                out = net(codes, days, mask, scale)
                if out.dim() == 2:
                    out = out.gather(1, out_idx[:, None])
                g, = torch.autograd.grad(out.sum(), scale)
                total += g[..., 0]
            contrib = total / steps * (codes != PAD)
        rows = []
        contrib = contrib.detach().numpy()
        for i, s in enumerate(samples):
            for j, (visit, d) in enumerate(zip(s.visits, s.days_before)):
                for k, tok in enumerate(visit):
                    rows.append((i, s.patient_id, j, d, tok, float(contrib[i, j, k])))
        frame = pd.DataFrame(rows, columns=["sample", "patient_id", "visit", "days_before",
                                            "code", "contribution"])
        if self.multilabel:
            names = np.asarray(self.targets, dtype=object)[out_idx.numpy()]
            frame.insert(1, "target", names[frame["sample"].to_numpy()] if len(frame) else [])
        return frame


def objective(pos_weight: float):
    """Binary cross-entropy (positives weighted by ``pos_weight``), or per-code binary
    cross-entropy for next-visit codes (labels ``(N, n_targets)``); validation loss on the
    whole epoch, AUPRC and AUROC (micro-averaged over codes)."""
    import torch

    from pmtoolkit.core.metrics import pr_auc, roc_auc
    from pmtoolkit.core.task import Objective, finite

    class RiskObjective(Objective):
        validation_loss = "epoch"
        keep_outputs = True

        def __init__(self):
            super().__init__()
            self.register_buffer("pos_weight", torch.tensor([pos_weight]))

        def outputs(self, net, batch):
            codes, days, mask, y = batch
            return net(codes, days, mask), y

        def loss(self, out, target, step=None):
            return torch.nn.functional.binary_cross_entropy_with_logits(
                out, target, pos_weight=self.pos_weight)

        def metrics(self, out, target):
            p = torch.sigmoid(torch.from_numpy(out)).numpy().ravel()  # float32, as scored
            y = target.ravel()
            return {"val_auprc": finite(pr_auc(y, p), 0.0),
                    "val_auroc": finite(roc_auc(y, p), 0.5)}

    return RiskObjective()


def optimizer(config: RiskModelConfig):
    from pmtoolkit.core.task import Optimizer

    return Optimizer(name="adamw", lr=config.lr, weight_decay=config.weight_decay)


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of ``sigmoid(z / T)``."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = 1.0 / (1.0 + np.exp(-z / math.exp(log_t)))
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(math.exp(res.x))


def next_visit_metrics(y: np.ndarray, p: np.ndarray, ks: tuple[int, ...] = (5, 10, 20)
                       ) -> dict[str, float]:
    """Next-visit codes: ``recall@k`` (Doctor AI's measure: the share of a visit's true codes
    among its k most probable, averaged over samples with any), micro AUPRC and AUROC over
    every (sample, code), and macro AUROC over the codes with both outcomes."""
    from pmtoolkit.core.metrics import pr_auc, roc_auc

    out: dict[str, float] = {"samples": len(y), "codes": int(y.shape[1])}
    has = y.sum(1) > 0
    order = np.argsort(-p, axis=1, kind="stable")
    for k in ks:
        hits = np.take_along_axis(y, order[:, :k], axis=1).sum(1)
        out[f"recall@{k}"] = float((hits[has] / y[has].sum(1)).mean()) if has.any() \
            else float("nan")
    out["micro_auprc"] = pr_auc(y.ravel(), p.ravel())
    out["micro_auroc"] = roc_auc(y.ravel(), p.ravel())
    both = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    out["macro_auroc"] = float(np.mean([roc_auc(y[:, j], p[:, j]) for j in both])) if both \
        else float("nan")
    return out


def fit_platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: the (a, b) minimising the negative log-likelihood of
    ``sigmoid(a z + b)``. Unlike a temperature alone it moves the intercept, which a
    positively weighted loss shifts by about log(negatives / positives)."""
    from scipy.optimize import minimize

    z = z.astype(np.float64)
    y = y.astype(np.float64)

    def nll(ab: np.ndarray) -> tuple[float, np.ndarray]:
        t = ab[0] * z + ab[1]
        loss = np.logaddexp(0.0, t) - y * t  # -log-likelihood of each sample, stably
        g = 1.0 / (1.0 + np.exp(-t)) - y
        return float(loss.mean()), np.array([(g * z).mean(), g.mean()])

    res = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def _targets(train: list[Sample], config: RiskModelConfig) -> list[str] | None:
    """Next-visit samples: the codes to predict (seen in ``min_code_count`` samples)."""
    if not any(s.targets is not None for s in train):
        return None
    counts: Counter = Counter(t for s in train for t in set(s.targets or ()))
    return sorted(t for t, n in counts.items() if n >= config.min_code_count)


def check_training(train: list[Sample], config: RiskModelConfig) -> None:
    """Refuse what cannot be trained, before anything is written: settings out of range,
    no samples, a single outcome, next-visit samples without target codes."""
    from pmtoolkit.core.config import check_ranges

    check_ranges(config, source="EHR risk model config")
    check_size(config, 2)
    if not train:
        raise BadInputError("no training samples")
    targets = _targets(train, config)
    if targets is not None and not targets:
        raise BadInputError("the training samples have no target codes")
    if targets is None and len({s.label for s in train}) < 2:
        raise BadInputError(f"every training sample has label {train[0].label}; need both "
                            "outcomes")


def fit_risk_model(train: list[Sample], valid: list[Sample] | None = None,
                   config: RiskModelConfig | None = None, *, task: dict[str, Any] | None = None,
                   workdir: str | Path | None = None, checkpoints: str | Path | None = None,
                   resume: bool = False) -> RiskModel:
    """Train a risk model on labelled samples; ``valid`` decides early stopping, the
    calibration and the decision threshold. Logs go to ``workdir``, the resume checkpoint
    to ``checkpoints`` (default: inside ``workdir``), from which ``resume`` continues an
    interrupted run."""
    import torch

    from pmtoolkit.core.metrics import youden_threshold
    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    config = config or RiskModelConfig()
    check_training(train, config)
    targets = _targets(train, config)
    multilabel = targets is not None
    if multilabel:
        log.info("next-visit task: %d target codes (seen in at least %d training samples)",
                 len(targets), config.min_code_count)
    else:
        y = np.array([s.label for s in train], np.float32)
    vocab = Vocabulary.fit(train, config.min_code_count)
    check_size(config, len(vocab), len(targets or ()) or 1)
    seed_everything(config.seed)
    model = RiskModel.untrained(config, {"tokens": vocab.tokens, "task": task, "targets": targets})

    def labels(samples):
        if multilabel:
            return model.target_matrix(samples)
        return np.array([s.label for s in samples], np.float32)

    def loader(samples, shuffle):
        codes, days, mask = model.vocab.encode(samples)
        data = torch.utils.data.TensorDataset(torch.from_numpy(codes), torch.from_numpy(days),
                                              torch.from_numpy(mask),
                                              torch.from_numpy(labels(samples)))
        return torch.utils.data.DataLoader(data, batch_size=config.batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(config.seed))

    has_val = bool(valid) and (multilabel or len({s.label for s in valid}) == 2)
    pos_weight = float((1 - y).sum() / y.sum()) if config.pos_weight and not multilabel \
        else 1.0
    # a resume checkpoint every few epochs where it can outlive the run; else only at the end
    cfg = train_config(config, monitor="val_auprc", mode="max", validating=has_val,
                       resume=resume,
                       checkpoint_every=None if checkpoints else max(10, config.epochs))
    start = time.perf_counter()
    result = train_network(model.network, objective(pos_weight), loader(train, True),
                           loader(valid, False) if has_val else None,
                           optimizer=optimizer(config), config=cfg, workdir=workdir,
                           checkpoint_dir=checkpoints)
    metrics: dict[str, Any] = {"train_seconds": time.perf_counter() - start,
                               "epochs_run": result.epochs_run, "n_train": len(train),
                               "n_valid": len(valid or []), "vocabulary": len(vocab)}
    if has_val and multilabel:
        best = result.metrics()
        metrics.update({"val_auprc": best.get("val_auprc"), "val_auroc": best.get("val_auroc"),
                        "targets": len(targets)})
        metrics.update({f"val_{k}": v for k, v in next_visit_metrics(
            model.target_matrix(valid), model.predict_proba(valid)).items()
            if k.startswith("recall")})
    elif has_val:
        z = model.logits(valid)
        yv = np.array([s.label for s in valid])
        if config.calibration == "platt":
            a, b = fit_platt(z, yv)
            model.calibration = {"method": "platt", "a": a, "b": b}
        elif config.calibration == "temperature":
            model.calibration = {"method": "temperature", "temperature": fit_temperature(z, yv)}
        elif config.calibration == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            p = 1.0 / (1.0 + np.exp(-z))
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, yv)
            model.calibration = {"method": "isotonic", "x": iso.X_thresholds_.tolist(),
                                 "y": iso.y_thresholds_.tolist()}
        pv = model.calibrate(z)
        model.threshold = youden_threshold(yv == 1, pv)
        best = result.metrics()
        metrics.update({"val_auprc": best.get("val_auprc"), "val_auroc": best.get("val_auroc"),
                        "threshold": model.threshold})
    else:
        log.warning("no validation samples with both outcomes: no early stopping, calibration "
                    "or threshold")
    model.metadata = {"metrics": metrics}
    return model
