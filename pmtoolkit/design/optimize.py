"""Goal-directed generation in the REINVENT style (Olivecrona et al. 2017; REINVENT 4).

An *agent* (a copy of the prior) samples a batch, the scoring function scores it, and the
agent moves towards the *augmented likelihood* ``log P_prior(x) + sigma * score(x)`` by
minimising ``(augmented - log P_agent(x))²``: molecules that score well become likelier while
the prior keeps the agent writing sensible SMILES. Around that loop:

- experience replay: the best molecules seen so far are replayed in later steps;
- a diversity filter (REINVENT's identical-Murcko-scaffold filter): once ``bucket_size``
  molecules sharing a scaffold have scored at least ``min_score``, further molecules with that
  scaffold score 0, which pushes the agent to new chemotypes;
- duplicates within a batch count once in the loss.

Each step is one sample-score-update round, not an epoch over a dataset, so this is a plain
torch loop (seeded, on the CPU or the configured device) rather than a Lightning fit.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pmtoolkit.core.config import FRACTION, LEARNING_RATE, SEED, Range
from pmtoolkit.core.errors import BadInputError, ConfigError
from pmtoolkit.design.scoring import ScoringConfig, ScoringFunction

log = logging.getLogger(__name__)


@dataclass
class ReplayConfig:
    size: int = field(default=100, metadata={"range": Range(0, 1_000_000),
        "help": "best molecules kept for replay"})
    sample: int = field(default=10, metadata={"range": Range(0, 1_000_000),
        "help": "replayed molecules per step"})


@dataclass
class DiversityConfig:
    kind: Literal["none", "identical_murcko", "generic_murcko"] = field(
        default="identical_murcko", metadata={"help": "scaffold that defines a bucket"})
    bucket_size: int = field(default=25, metadata={"range": Range(1, 1_000_000),
        "help": "molecules per scaffold before its further molecules score 0"})
    min_score: float = field(default=0.4, metadata={"range": FRACTION,
        "help": "score that counts a molecule into its bucket"})


@dataclass
class OptimizeConfig:
    prior: str = field(default="prior", metadata={"help": "generator file or shipped name"})
    agent: str = field(default="", metadata={
        "help": "generator to start from (default: the prior), e.g. a fine-tuned one"})
    steps: int = field(default=100, metadata={"range": Range(1, 1_000_000),
        "help": "sample-score-update rounds"})
    batch_size: int = field(default=128, metadata={"range": Range(1, 100_000),
        "help": "molecules sampled per step"})
    sigma: float = field(default=120.0, metadata={"range": Range(0, 1e6),
        "help": "weight of the score in the augmented likelihood"})
    lr: float = field(default=1e-4, metadata={"range": LEARNING_RATE,
        "help": "agent learning rate"})
    temperature: float = field(default=1.0, metadata={"range": Range(0, 100, min_open=True),
        "help": "sampling temperature"})
    max_length: int = field(default=0, metadata={"range": Range(0, 10_000),
        "help": "token limit (0: the prior's)"})
    top: int = field(default=100, metadata={"range": Range(1, 10**7),
        "help": "best distinct molecules reported"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "seed"})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda or cuda:N"})
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    diversity: DiversityConfig = field(default_factory=DiversityConfig)


@dataclass
class OptimizeRunConfig:
    """A whole ``pmt generate optimize`` TOML file."""

    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)


class DiversityFilter:
    def __init__(self, config: DiversityConfig):
        self.config = config
        self.buckets: dict[str, int] = {}

    def key(self, mol) -> str:
        from pmtoolkit.chem.scaffolds import murcko_scaffold

        return murcko_scaffold(mol, generic=self.config.kind == "generic_murcko")

    def apply(self, mols: list, scores: np.ndarray) -> np.ndarray:
        """Scores with the penalty applied; buckets updated in place."""
        if self.config.kind == "none":
            return scores
        out = scores.copy()
        for i, m in enumerate(mols):
            if m is None or not scores[i] >= self.config.min_score:
                continue
            k = self.key(m)
            if self.buckets.get(k, 0) >= self.config.bucket_size:
                out[i] = 0.0
            else:
                self.buckets[k] = self.buckets.get(k, 0) + 1
        return out


class Replay:
    """The best distinct molecules so far (canonical SMILES -> score, token ids)."""

    def __init__(self, config: ReplayConfig):
        self.config = config
        self.items: dict[str, tuple[float, np.ndarray]] = {}

    def add(self, canon: list[str | None], scores: np.ndarray, ids: np.ndarray) -> None:
        for c, s, row in zip(canon, scores, ids):
            if c is None or not s > 0:
                continue
            if c not in self.items or self.items[c][0] < s:
                self.items[c] = (float(s), row)
        if len(self.items) > self.config.size:
            keep = sorted(self.items.items(), key=lambda kv: -kv[1][0])[:self.config.size]
            self.items = dict(keep)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        k = min(self.config.sample, len(self.items))
        if k == 0:
            return None
        keys = list(self.items)
        pick = rng.choice(len(keys), size=k, replace=False)
        return (np.array([self.items[keys[i]][0] for i in pick]),
                np.stack([self.items[keys[i]][1] for i in pick]))


@dataclass
class StepResult:
    step: int
    smiles: list[str]
    canonical: list[str | None]
    total: np.ndarray          # the scoring function's total (NaN where invalid)
    reward: np.ndarray         # after the diversity filter, invalid = 0
    components: dict[str, np.ndarray]
    prior_ll: np.ndarray
    agent_ll: np.ndarray
    loss: float


def optimize(prior, scoring: ScoringFunction, config: OptimizeConfig, *, agent=None,
             callback=None, show_progress: bool | None = None):
    """Run the loop with loaded models: ``prior`` (a
    :class:`~pmtoolkit.design.generator.SmilesGenerator`, kept fixed), ``agent`` (the generator
    that learns; default: a copy of the prior) and ``scoring``; ``config.prior`` and
    ``config.agent`` (names, for the run file) are not read here. ``callback(StepResult)`` sees
    every step. Returns the agent."""
    import copy

    import torch

    from pmtoolkit.chem._rdkit import quiet
    from pmtoolkit.chem.molecules import parse_smiles
    from pmtoolkit.core.devices import torch_device
    from pmtoolkit.core.progress import progress
    from pmtoolkit.core.seeds import seed_everything

    cfg = config
    _check(cfg)
    agent = copy.deepcopy(prior) if agent is None else agent
    if agent.vocabulary != prior.vocabulary:
        raise BadInputError("the agent and the prior have different vocabularies",
                            hint="start the agent from the prior or a model fine-tuned from it")
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = torch_device(cfg.device)
    prior_net = prior.network.to(device).eval()
    for p in prior_net.parameters():
        p.requires_grad_(False)
    agent_net = agent.network.to(device)
    opt = torch.optim.Adam(agent_net.parameters(), lr=cfg.lr)
    diversity = DiversityFilter(cfg.diversity)
    replay = Replay(cfg.replay)
    max_length = cfg.max_length or prior.config.max_length
    bos = agent.vocabulary.bos
    sampler = agent.iter_samples(cfg.steps * cfg.batch_size, temperature=cfg.temperature,
                                 batch_size=cfg.batch_size, seed=cfg.seed,
                                 max_length=max_length, show_progress=False)

    def with_bos(ids: np.ndarray):
        t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        return torch.cat([torch.full((len(t), 1), bos, dtype=torch.long), t], 1).to(device)

    for step in progress(range(cfg.steps), desc="optimize", unit="step", total=cfg.steps,
                         enabled=show_progress):
        agent_net.eval()  # the sampler reads the agent's current weights
        batch = next(sampler)
        mols = [parse_smiles(s)[0] if s else None for s in batch.smiles]
        with quiet():
            canon = [None if m is None else _canonical(m) for m in mols]
        scores = scoring(batch.smiles, mols)
        reward = diversity.apply(mols, np.nan_to_num(scores.total, nan=0.0))
        # each distinct sequence once in the loss
        _, first = np.unique(batch.ids, axis=0, return_index=True)
        first = np.sort(first)
        ids, r = batch.ids[first], reward[first]
        replayed = replay.sample(rng)
        if replayed is not None:
            ids = np.concatenate([ids, replayed[1]])
            r = np.concatenate([r, replayed[0]])
        agent_net.train()
        loss, prior_ll, agent_ll = agent_update(agent_net, prior_net, with_bos(ids), r,
                                                cfg.sigma, opt)
        replay.add(canon, reward, batch.ids)
        if callback is not None:
            n = len(first)
            full_prior = np.full(len(batch.smiles), np.nan)
            full_agent = np.full(len(batch.smiles), np.nan)
            full_prior[first] = prior_ll[:n]
            full_agent[first] = agent_ll[:n]
            callback(StepResult(step, batch.smiles, canon, scores.total, reward,
                                scores.components, full_prior, full_agent, loss))
    agent.network = agent_net.cpu().eval()
    prior.network = prior_net.cpu()
    return agent


def agent_update(agent_net, prior_net, seqs, reward: np.ndarray, sigma: float, opt
                 ) -> tuple[float, np.ndarray, np.ndarray]:
    """One policy step: move log P_agent towards log P_prior + sigma * reward (squared
    error, mean over sequences). Returns the loss and both log-likelihoods (before the step)."""
    import torch

    agent_ll = agent_net.sequence_log_likelihood(seqs)
    with torch.no_grad():
        prior_ll = prior_net.sequence_log_likelihood(seqs)
    augmented = prior_ll + sigma * torch.as_tensor(reward, dtype=prior_ll.dtype,
                                                   device=prior_ll.device)
    loss = ((augmented - agent_ll) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach()), prior_ll.cpu().numpy(), agent_ll.detach().cpu().numpy()


def _canonical(mol) -> str:
    from rdkit import Chem

    return Chem.MolToSmiles(mol)


def _check(cfg: OptimizeConfig) -> None:
    """The ranges of every optimisation setting (a run built in Python, not read from a
    file, has not been checked yet)."""
    from pmtoolkit.core.config import check_ranges

    check_ranges(cfg, source="optimize")
    check_ranges(cfg.replay, source="optimize.replay")
    check_ranges(cfg.diversity, source="optimize.diversity")


def load_run_file(path: str | os.PathLike, overrides: dict[str, Any] | None = None
                  ) -> OptimizeRunConfig:
    """A TOML/JSON run file (``[optimize]`` and ``[scoring]``, every table and key checked
    by :func:`pmtoolkit.core.config.from_mapping`: unknown keys, types, ranges, NaN);
    ``overrides`` (option values) replace keys of ``[optimize]``."""
    from pmtoolkit.core.config import from_mapping, load_file

    data = load_file(path)
    source = str(Path(path).name)
    if overrides:
        table = data.get("optimize", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: optimize: expected a table ([optimize]), got "
                              f"{table!r}")
        data = {**data, "optimize": {**table, **overrides}}
    run = from_mapping(OptimizeRunConfig, data, source=source)
    _check(run.optimize)
    return run
