"""Recurrent SMILES generators: a GRU or LSTM language model over SMILES tokens (the REINVENT
prior and MOSES CharRNN family).

``fit(smiles, config)`` trains one from scratch, ``finetune(model, smiles)`` continues training
on a focused set with the model's own vocabulary (transfer learning), ``model.sample(n)``
draws SMILES with their log-likelihoods, ``model.log_likelihood(smiles)`` scores given ones.

Sampling does not run ``torch.nn.GRU`` step by step: the first layer's input projection
depends only on the token, so it is one lookup in a precomputed (vocabulary x gates) table,
every other step is two matrix products per layer on the sequences still running, and a
sequence leaves the batch as soon as it emits its end token.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Rejects
from pmtoolkit.core.model import TorchModel
from pmtoolkit.design.config import GeneratorConfig
from pmtoolkit.design.tokenizer import TokenError, Vocabulary

log = logging.getLogger(__name__)

#: the most memory one batch of sampling may take (the samples stream out batch by batch)
MAX_BATCH_BYTES = 4 * 2**30


# ----------------------------------------------------------------------------- data

@dataclass
class TokenData:
    """Encoded SMILES stored flat (one uint8/int16 array and offsets): a million SMILES as
    Python lists of ints would take gigabytes."""

    flat: np.ndarray
    offsets: np.ndarray  # len n + 1
    smiles: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def get(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i]:self.offsets[i + 1]]

    def subset(self, index: Sequence[int]) -> TokenData:
        index = np.asarray(index, dtype=np.int64)
        parts = [self.get(int(i)) for i in index]
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        flat = np.concatenate(parts) if parts else self.flat[:0]
        return TokenData(flat, np.r_[0, np.cumsum(lengths)], [self.smiles[i] for i in index],
                         [self.lines[i] for i in index])

    def padded(self, index: Sequence[int]):
        """A (batch, longest) int64 tensor of the sequences at ``index``, padded with 0."""
        import torch

        lengths = self.lengths[index]
        out = np.zeros((len(index), int(lengths.max())), dtype=np.int64)
        for row, i in enumerate(index):
            out[row, :lengths[row]] = self.get(int(i))
        return torch.from_numpy(out)


def encode_smiles(smiles: Sequence[str], vocabulary: Vocabulary, *, max_length: int,
                  source: str = "", lines: Sequence[int] | None = None
                  ) -> tuple[TokenData, Rejects]:
    """Encode ``smiles`` with ``vocabulary``; unknown tokens, untokenisable or too long SMILES
    are rejects with their reason (and input line), never exceptions."""
    rejects = Rejects(source=source, item_name="smiles")
    dtype = np.uint8 if len(vocabulary) <= 256 else np.int16
    parts, kept, kept_lines = [], [], []
    for k, s in enumerate(smiles):
        line = lines[k] if lines is not None else k + 1
        text = "" if s is None else str(s).strip()
        if not text:
            rejects.add(text, line, "empty SMILES")
            continue
        try:
            ids = vocabulary.encode(text, max_length=max_length)
        except TokenError as exc:
            rejects.add(text, line, str(exc))
            continue
        parts.append(np.asarray(ids, dtype=dtype))
        kept.append(text)
        kept_lines.append(line)
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    return TokenData(flat, np.r_[0, np.cumsum(lengths)], kept, kept_lines), rejects


def _bucket_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator
                    ) -> list[np.ndarray]:
    """Batches of similar length (little padding), in random order: shuffle, sort within
    windows of 50 batches, cut, shuffle the batches."""
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class _BucketSampler:
    """A batch sampler for ``DataLoader``: a new bucketed order every epoch, seeded.

    ``epoch_size`` (0: all rows) makes an epoch a slice of the data: each pass over the data is
    a fresh seeded permutation cut into ``ceil(n / epoch_size)`` near-equal epochs, so a large
    set is checkpointed and validated every ``epoch_size`` SMILES and a resumed run (Lightning
    calls :meth:`set_epoch`) continues with the rows it had not yet seen in that pass."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, shuffle: bool = True,
                 epoch_size: int = 0):
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.shuffle = shuffle
        n = len(lengths)
        self.chunks = math.ceil(n / epoch_size) if shuffle and 0 < epoch_size < n else 1
        self.epoch = 0
        # Lightning calls set_epoch on ``batch_sampler.sampler``, not on the batch sampler
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rows(self) -> np.ndarray:
        n = len(self.lengths)
        if self.chunks == 1:
            return np.arange(n)
        passes, chunk = divmod(self.epoch, self.chunks)
        order = np.random.default_rng((self.seed, passes, 7)).permutation(n)
        return np.array_split(order, self.chunks)[chunk]

    def __iter__(self):
        if self.shuffle:
            rows = self._rows()
            rng = np.random.default_rng((self.seed, self.epoch))
            self.epoch += 1
            for batch in _bucket_batches(self.lengths[rows], self.batch_size, rng):
                yield rows[batch]
        else:
            order = np.argsort(self.lengths, kind="stable")
            for i in range(0, len(order), self.batch_size):
                yield order[i:i + self.batch_size]

    def __len__(self) -> int:
        # the largest epoch (array_split sizes differ by at most one row)
        return math.ceil(math.ceil(len(self.lengths) / self.chunks) / self.batch_size)


# ----------------------------------------------------------------------------- network

def _network(vocab_size: int, config: GeneratorConfig):
    import torch
    from torch import nn

    class SmilesRNN(nn.Module):
        """Embedding -> stacked GRU/LSTM -> linear head over the vocabulary."""

        def __init__(self):
            super().__init__()
            self.cell = config.cell
            self.embedding = nn.Embedding(vocab_size, config.embedding_size)
            rnn = nn.GRU if config.cell == "gru" else nn.LSTM
            self.rnn = rnn(config.embedding_size, config.hidden_size, config.layers,
                           batch_first=True, dropout=config.dropout if config.layers > 1 else 0.0)
            self.head = nn.Linear(config.hidden_size, vocab_size)
            # padding and start are never a next token: their logits are pinned at -inf
            block = torch.zeros(vocab_size)
            block[:2] = float("-inf")
            self.register_buffer("block", block, persistent=False)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            out, _ = self.rnn(self.embedding(ids))
            return self.head(out) + self.block

        def sequence_log_likelihood(self, ids: torch.Tensor) -> torch.Tensor:
            """Sum of token log-probabilities of each padded sequence (start token first)."""
            logits = self(ids[:, :-1])
            target = ids[:, 1:]
            logp = torch.log_softmax(logits, dim=-1).gather(2, target.unsqueeze(2)).squeeze(2)
            return torch.where(target != 0, logp, 0.0).sum(dim=1)

    return SmilesRNN()


# ----------------------------------------------------------------------------- model

@dataclass
class Samples:
    """Sampled SMILES, their log-likelihood under the model, and whether each ended with the
    end token (``False``: cut off at ``max_length``)."""

    smiles: list[str]
    log_likelihood: np.ndarray
    finished: np.ndarray
    tokens: int  # tokens generated in all (for throughput accounting)
    ids: np.ndarray | None = None  # (n, max_length) token ids after the start token, 0-padded


class SmilesGenerator(TorchModel):
    """A trained SMILES language model with its vocabulary."""

    Config = GeneratorConfig

    def __init__(self, config: GeneratorConfig, vocabulary: Vocabulary, network=None):
        self.vocabulary = vocabulary
        super().__init__(config, network if network is not None
                         else _network(len(vocabulary), config))

    @classmethod
    def build_network(cls, config: GeneratorConfig, extra: dict[str, Any]):
        return _network(len(extra["vocabulary"]), config)

    @classmethod
    def untrained(cls, config: GeneratorConfig, extra: dict[str, Any]) -> SmilesGenerator:
        tokens = extra.get("vocabulary")
        if not tokens:
            raise BadInputError("saved generator has no vocabulary")
        vocab = Vocabulary(tuple(tokens))
        return cls(config, vocab, _network(len(vocab), config))

    def extra_metadata(self) -> dict[str, Any]:
        return {"vocabulary": list(self.vocabulary.tokens)}

    # -- sampling ------------------------------------------------------------------------
    def flops_per_token(self) -> float:
        """Multiply-adds x 2 of one sampling step for one sequence (the embedding lookup and
        first-layer input projection are a table read)."""
        c = self.config
        gates = 3 if c.cell == "gru" else 4
        h = c.hidden_size
        per = gates * h * h  # first layer: recurrent product only
        per += (c.layers - 1) * 2 * gates * h * h
        per += h * len(self.vocabulary)
        return 2.0 * per

    def sample(self, n: int, *, temperature: float = 1.0, batch_size: int = 1024,
               seed: int | None = None, max_length: int | None = None,
               show_progress: bool | None = None) -> Samples:
        """Draw ``n`` SMILES. ``temperature`` < 1 sharpens the distribution, > 1 flattens it;
        the log-likelihood is under the model itself (temperature 1), as REINVENT reports."""
        parts = list(self.iter_samples(n, temperature=temperature, batch_size=batch_size,
                                       seed=seed, max_length=max_length,
                                       show_progress=show_progress))
        if not parts:
            return Samples([], np.zeros(0), np.zeros(0, dtype=bool), 0)
        return Samples([s for p in parts for s in p.smiles],
                       np.concatenate([p.log_likelihood for p in parts]),
                       np.concatenate([p.finished for p in parts]),
                       sum(p.tokens for p in parts),
                       np.concatenate([p.ids for p in parts]))

    def iter_samples(self, n: int, *, temperature: float = 1.0, batch_size: int = 1024,
                     seed: int | None = None, max_length: int | None = None,
                     show_progress: bool | None = None):
        """:meth:`sample` one batch at a time (for streaming to a file)."""
        import torch

        from pmtoolkit.core.progress import progress

        if n < 0:
            raise BadInputError("the number of samples must be at least 0")
        if temperature <= 0:
            raise BadInputError("temperature must be positive")
        if batch_size < 1:
            raise BadInputError("batch size must be at least 1")
        max_length = max_length or self.config.max_length
        need = self.batch_bytes(min(batch_size, n), max_length)
        if need > MAX_BATCH_BYTES:
            raise BadInputError(f"sampling {min(batch_size, n):,} sequences of up to "
                                f"{max_length:,} tokens at once needs about "
                                f"{need / 2**30:.1f} GiB", hint="lower --batch-size (the "
                                "samples stream to the output batch by batch)")
        gen = torch.Generator().manual_seed(int(seed if seed is not None else self.config.seed))
        starts = range(0, n, batch_size)
        for start in progress(starts, desc="sample", unit="batch", total=len(starts),
                              enabled=show_progress):
            b = min(batch_size, n - start)
            ids, logl, done, count = self._sample_batch(b, temperature, max_length, gen)
            yield Samples([self.vocabulary.decode(row) for row in ids], logl, done, count, ids)

    def batch_bytes(self, b: int, max_length: int) -> int:
        """Memory one sampling batch of ``b`` sequences takes: the token ids, the recurrent
        states and gates, and three vocabulary-wide rows (logits, log-probabilities,
        probabilities) per sequence."""
        c = self.config
        states = (2 if c.cell == "lstm" else 1) * c.layers * c.hidden_size
        gates = (4 if c.cell == "lstm" else 3) * c.hidden_size * 2
        return b * (8 * max_length + 4 * (states + gates + 3 * len(self.vocabulary)))

    def _weights(self):
        import torch

        net = self.network

        def cpu(t):  # sampling runs on the CPU whatever device the network is on
            return t.detach().float().cpu()

        layers = []
        for k in range(self.config.layers):
            w_ih = cpu(getattr(net.rnn, f"weight_ih_l{k}"))
            w_hh = cpu(getattr(net.rnn, f"weight_hh_l{k}"))
            b_ih = cpu(getattr(net.rnn, f"bias_ih_l{k}"))
            b_hh = cpu(getattr(net.rnn, f"bias_hh_l{k}"))
            layers.append((w_ih.t().contiguous(), b_ih, w_hh.t().contiguous(), b_hh))
        # first layer: embedding -> input gates, for every token at once
        w_ih0, b_ih0 = layers[0][0], layers[0][1]
        table = torch.addmm(b_ih0, cpu(net.embedding.weight), w_ih0)
        head_w = cpu(net.head.weight).t().contiguous()
        return table, layers, head_w, cpu(net.head.bias) + cpu(net.block)

    def _sample_batch(self, b: int, temperature: float, max_length: int, gen):
        import torch

        table, layers, head_w, head_b = self._weights()
        h_size = self.config.hidden_size
        lstm = self.config.cell == "lstm"
        vocab = self.vocabulary
        out = np.zeros((b, max_length), dtype=np.int64)
        loglik = torch.zeros(b, dtype=torch.float64)
        finished = np.zeros(b, dtype=bool)
        with torch.inference_mode():
            h = [torch.zeros(b, h_size) for _ in layers]
            c = [torch.zeros(b, h_size) for _ in layers] if lstm else None
            active = torch.arange(b)
            token = torch.full((b,), vocab.bos, dtype=torch.long)
            all_alive, alive = True, None  # alive: bool mask over the rows of the batch
            count = 0
            for t in range(max_length - 1):
                x = None
                for k, (w_ih, b_ih, w_hh, b_hh) in enumerate(layers):
                    gi = table.index_select(0, token) if k == 0 else torch.addmm(b_ih, x, w_ih)
                    gh = torch.addmm(b_hh, h[k], w_hh)
                    # gi and gh are fresh tensors: the gate arithmetic runs in place
                    if lstm:
                        g = gi.add_(gh)
                        g[:, :2 * h_size].sigmoid_()
                        g[:, 2 * h_size:3 * h_size].tanh_()
                        g[:, 3 * h_size:].sigmoid_()
                        i_g, f_g, c_g, o_g = g.chunk(4, dim=1)
                        c[k] = torch.addcmul(f_g * c[k], i_g, c_g)
                        h[k] = o_g.mul_(torch.tanh(c[k]))
                    else:
                        rz = gi[:, :2 * h_size].add_(gh[:, :2 * h_size]).sigmoid_()
                        r, z = rz[:, :h_size], rz[:, h_size:]
                        cand = torch.addcmul(gi[:, 2 * h_size:], r, gh[:, 2 * h_size:]).tanh_()
                        # h' = (1 - z) * cand + z * h, i.e. lerp from cand towards h by z
                        h[k] = cand.lerp_(h[k], z)
                    x = h[k]
                logits = torch.addmm(head_b, x, head_w)
                logp = torch.log_softmax(logits, dim=1)
                probs = torch.softmax(logits / temperature, dim=1) if temperature != 1.0 \
                    else logp.exp()
                token = torch.multinomial(probs, 1, generator=gen).squeeze(1)
                step_ll = logp.gather(1, token.unsqueeze(1)).squeeze(1).double()
                tok = token.numpy()
                rows = active.numpy()
                if all_alive:
                    out[rows, t] = tok
                    loglik.index_add_(0, active, step_ll)
                    count += len(rows)
                    ended = tok == vocab.eos
                else:
                    out[rows[alive], t] = tok[alive]
                    loglik.index_add_(0, active[torch.from_numpy(alive)],
                                      step_ll[torch.from_numpy(alive)])
                    count += int(alive.sum())
                    ended = alive & (tok == vocab.eos)
                if ended.any():
                    finished[rows[ended]] = True
                    alive = ~ended if all_alive else alive & ~ended
                    all_alive = False
                    n_alive = int(alive.sum())
                    if n_alive == 0:
                        break
                    # finished sequences leave the batch once they are an eighth of it; until
                    # then they ride along (cheaper than copying the states every step)
                    if 8 * (len(rows) - n_alive) >= len(rows):
                        keep = torch.from_numpy(alive)
                        active, token = active[keep], token[keep]
                        h = [s[keep] for s in h]
                        if lstm:
                            c = [s[keep] for s in c]
                        all_alive = True
        return out, loglik.numpy(), finished, count

    # -- scoring -------------------------------------------------------------------------
    def log_likelihood(self, smiles: Sequence[str], *, batch_size: int = 512) -> np.ndarray:
        """Log-likelihood of each SMILES under the model; NaN where it cannot be encoded."""
        import torch

        data, _ = encode_smiles(smiles, self.vocabulary, max_length=10**9)
        out = np.full(len(smiles), np.nan)
        rows = np.array([line - 1 for line in data.lines], dtype=np.int64)
        net = self.network.eval()
        with torch.inference_mode():
            for start in range(0, len(data), batch_size):
                idx = np.arange(start, min(start + batch_size, len(data)))
                ids = data.padded(idx)
                out[rows[idx]] = net.sequence_log_likelihood(ids).double().numpy()
        return out


# ----------------------------------------------------------------------------- training

def objective():
    """Next-token cross-entropy over a padded batch of token ids (padding, id 0, ignored)."""
    import torch

    from pmtoolkit.core.task import Objective

    class NextToken(Objective):
        def outputs(self, net, batch):
            return net(batch[:, :-1]), batch[:, 1:]

        def loss(self, out, target, step=None):
            return torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]),
                                                     target.reshape(-1), ignore_index=0)

    return NextToken()


def optimizer(config: GeneratorConfig, total_steps: int):
    from pmtoolkit.core.task import Optimizer

    return Optimizer(name="adam", lr=config.lr, schedule="cosine", floor=0.1,
                     total_steps=total_steps)


def _loader(data: TokenData, batch_size: int, seed: int, shuffle: bool, epoch_size: int = 0):
    from torch.utils.data import DataLoader

    sampler = _BucketSampler(data.lengths, batch_size, seed, shuffle=shuffle,
                             epoch_size=epoch_size)
    return DataLoader(range(len(data)), batch_sampler=sampler,
                      collate_fn=lambda index: data.padded(np.asarray(index)))


def _train(model: SmilesGenerator, train: TokenData, valid: TokenData | None,
           config: GeneratorConfig, workdir: Path | None, checkpoints: Path | None = None,
           resume: bool = False) -> SmilesGenerator:
    from pmtoolkit.core.seeds import seed_everything
    from pmtoolkit.core.task import train_network
    from pmtoolkit.core.training import train_config

    if not len(train):
        raise BadInputError("no SMILES left to train on")
    seed_everything(config.seed)
    loader = _loader(train, config.batch_size, config.seed, shuffle=True,
                     epoch_size=config.epoch_size)
    val_loader = _loader(valid, 512, 0, shuffle=False) if valid is not None and len(valid) \
        else None
    # an epoch of a generator is long (``epoch_size`` slices big sets into epochs): a resume
    # checkpoint after each one where a run is meant to be resumed
    tc = train_config(config, validating=val_loader is not None,
                      gradient_clip=config.gradient_clip, resume=resume,
                      checkpoint_every=1 if checkpoints is not None or resume else 5)
    result = train_network(model.network, objective(), loader, val_loader,
                           optimizer=optimizer(config, len(loader) * config.epochs), config=tc,
                           workdir=workdir, checkpoint_dir=checkpoints)
    model.metadata = {"training_data_sha256": _fingerprint(train), "history": result.history}
    return model


def _fingerprint(data: TokenData) -> str:
    from pmtoolkit.core.io import sha256_rows

    return sha256_rows(data.smiles)


def _encoded(smiles: Sequence[str] | TokenData | None, vocabulary: Vocabulary,
             max_length: int, source: str = "") -> tuple[TokenData | None, Rejects]:
    """``smiles`` as TokenData (already-encoded data passes through unchanged)."""
    if smiles is None or isinstance(smiles, TokenData):
        return smiles, Rejects(source=source, item_name="smiles")
    return encode_smiles(smiles, vocabulary, max_length=max_length, source=source)


def fit(smiles: Sequence[str] | TokenData, config: GeneratorConfig | None = None, *,
        valid: Sequence[str] | TokenData | None = None, vocabulary: Vocabulary | None = None,
        workdir: str | os.PathLike | None = None, checkpoints: str | os.PathLike | None = None,
        source: str = "", resume: bool = False) -> tuple[SmilesGenerator, Rejects]:
    """Train a generator from scratch on ``smiles`` (or data :func:`encode_smiles` made with
    ``vocabulary``); the vocabulary is built from them unless given. Returns the model and the
    SMILES that could not be used (with reasons). Logs go to ``workdir``; a resume checkpoint
    is written every epoch to ``checkpoints`` (default: inside ``workdir``), from which
    ``resume`` continues an interrupted run."""
    from pmtoolkit.core.config import check_ranges

    config = config or GeneratorConfig()
    check_ranges(config, source="generator config")
    if vocabulary is None:
        if isinstance(smiles, TokenData):
            raise ValueError("encoded training data needs the vocabulary it was encoded with")
        vocabulary = Vocabulary.build(smiles)
    train, rejects = _encoded(smiles, vocabulary, config.max_length, source)
    val, _ = _encoded(valid, vocabulary, config.max_length)
    model = SmilesGenerator(config, vocabulary)
    return _train(model, train, val, config, Path(workdir) if workdir else None,
                  Path(checkpoints) if checkpoints else None, resume=resume), rejects


def finetune(model: SmilesGenerator, smiles: Sequence[str] | TokenData, *, epochs: int = 10,
             lr: float = 1e-4, batch_size: int | None = None, seed: int | None = None,
             valid: Sequence[str] | TokenData | None = None,
             workdir: str | os.PathLike | None = None,
             checkpoints: str | os.PathLike | None = None, source: str = "",
             resume: bool = False) -> tuple[SmilesGenerator, Rejects]:
    """Transfer learning: continue training ``model`` (a copy) on a focused set of SMILES (or
    data encoded with its vocabulary). The vocabulary is kept, so a SMILES with a token it
    lacks is a reject, not a crash. ``workdir``, ``checkpoints`` and ``resume`` as for
    :func:`fit`."""
    import copy
    from dataclasses import replace

    from pmtoolkit.core.config import check_ranges

    config = replace(model.config, epochs=epochs, lr=lr,
                     batch_size=batch_size or model.config.batch_size,
                     seed=model.config.seed if seed is None else seed)
    check_ranges(config, source="fine-tuning config")
    data, rejects = _encoded(smiles, model.vocabulary, config.max_length, source)
    val, _ = _encoded(valid, model.vocabulary, config.max_length)
    tuned = SmilesGenerator(config, model.vocabulary, copy.deepcopy(model.network))
    tuned = _train(tuned, data, val, config, Path(workdir) if workdir else None,
                   Path(checkpoints) if checkpoints else None, resume=resume)
    tuned.metadata["finetuned_from"] = model.metadata.get("uuid")
    return tuned, rejects
