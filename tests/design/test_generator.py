"""Recurrent SMILES generators: the fast sampler agrees with the network, training learns,
fine-tuning keeps the vocabulary, save/load round trip."""
from __future__ import annotations

import numpy as np
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import load_model
from pmtoolkit.design.config import GeneratorConfig
from pmtoolkit.design.generator import SmilesGenerator, encode_smiles, finetune, fit
from pmtoolkit.design.tokenizer import Vocabulary

TINY = dict(hidden_size=32, embedding_size=16, layers=2, batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def moses_tiny():
    from pathlib import Path

    return (Path(__file__).parents[1] / "data" / "moses_tiny.smi").read_text().split()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_sampler_log_likelihood_matches_the_network(cell, moses_tiny):
    """The step-by-step sampler (precomputed input table, sequences leaving the batch) must
    give each SMILES the log-likelihood the torch RNN gives it."""
    vocab = Vocabulary.build(moses_tiny)
    model = SmilesGenerator(GeneratorConfig(cell=cell, **TINY), vocab)
    s = model.sample(64, seed=3, batch_size=16)
    assert len(s.smiles) == 64 and s.log_likelihood.shape == (64,)
    again = model.log_likelihood(s.smiles)
    ok = s.finished & np.array([x != "" for x in s.smiles])
    assert ok.sum() > 10
    np.testing.assert_allclose(again[ok], s.log_likelihood[ok], atol=1e-3)
    # same seed, same samples; padding and start tokens are never sampled
    assert model.sample(64, seed=3, batch_size=16).smiles == s.smiles
    assert all("<" not in x for x in s.smiles)


def test_sampling_stops_at_max_length_and_counts_tokens(moses_tiny):
    model = SmilesGenerator(GeneratorConfig(**TINY), Vocabulary.build(moses_tiny))
    s = model.sample(20, seed=0, max_length=4)
    assert all(len(x) <= 3 * 12 for x in s.smiles)
    assert s.tokens <= 20 * 3
    assert model.flops_per_token() > 0
    with pytest.raises(BadInputError):
        model.sample(5, temperature=0)


def test_training_lowers_the_loss_and_round_trips(moses_tiny, tmp_path):
    cfg = GeneratorConfig(epochs=3, lr=1e-2, **TINY)
    model, rejects = fit(moses_tiny[:300], cfg, valid=moses_tiny[300:],
                         workdir=tmp_path / "w")
    assert not rejects
    hist = model.metadata["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    # held-out molecules are likelier under the trained model than under an untrained one
    untrained = SmilesGenerator(cfg, model.vocabulary)
    held_out = moses_tiny[300:350]
    assert model.log_likelihood(held_out).mean() > untrained.log_likelihood(held_out).mean() + 10
    model.save(tmp_path / "g.safetensors")
    back = load_model(tmp_path / "g.safetensors")
    assert isinstance(back, SmilesGenerator) and back.vocabulary == model.vocabulary
    assert back.sample(10, seed=1).smiles == model.sample(10, seed=1).smiles


def test_finetune_rejects_unknown_tokens_and_keeps_vocabulary(moses_tiny):
    model = SmilesGenerator(GeneratorConfig(**TINY), Vocabulary.build(moses_tiny))
    focused = ["CC(=O)Nc1ccc(O)cc1", "C[S@+]([O-])c1ccccc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1"]
    tuned, rejects = finetune(model, focused, epochs=1)
    assert [r.line for r in rejects] == [2]
    assert "'[S@+]' is not in the model's vocabulary" in rejects.items[0].reason
    assert tuned.vocabulary == model.vocabulary
    # the original model is untouched
    assert any((a != b).any() for a, b in zip(model.network.parameters(),
                                               tuned.network.parameters()))


def test_encode_reports_every_bad_row_with_its_line():
    vocab = Vocabulary.build(["CCO", "CCN"])
    data, rejects = encode_smiles(["CCO", "", "CCCl", "CC[N", "C" * 50], vocab, max_length=20)
    assert data.smiles == ["CCO"]
    assert [(r.line, r.reason.split(" ")[0]) for r in rejects] == [
        (2, "empty"), (3, "token"), (4, "cannot"), (5, "50")]


def test_epochs_slice_each_pass_over_the_data():
    from pmtoolkit.design.generator import _BucketSampler

    lengths = np.random.default_rng(0).integers(5, 40, size=1003)
    sampler = _BucketSampler(lengths, 16, seed=3, epoch_size=250)
    assert sampler.chunks == 5 and len(sampler) == 13
    epochs = []
    for e in range(7):
        sampler.set_epoch(e)
        epochs.append(np.concatenate(list(sampler)))
    first_pass = np.concatenate(epochs[:5])
    assert sorted(first_pass) == list(range(1003))  # every row once per pass
    assert set(epochs[5]) != set(epochs[0])  # the next pass is a new permutation
    whole = _BucketSampler(lengths, 16, seed=3)
    assert whole.chunks == 1 and sorted(np.concatenate(list(whole))) == list(range(1003))


def test_resumed_training_continues_with_the_next_epoch(moses_tiny, tmp_path, monkeypatch):
    from pmtoolkit.design import generator

    calls = []
    original = generator._BucketSampler.set_epoch
    monkeypatch.setattr(generator._BucketSampler, "set_epoch",
                        lambda self, e: (calls.append(e), original(self, e)))
    cfg = GeneratorConfig(epochs=1, epoch_size=150, lr=1e-2, **TINY)
    fit(moses_tiny[:300], cfg, workdir=tmp_path / "w", resume=True)
    assert calls == [0]
    calls.clear()
    cfg = GeneratorConfig(epochs=3, epoch_size=150, lr=1e-2, **TINY)
    model, _ = fit(moses_tiny[:300], cfg, workdir=tmp_path / "w", resume=True)
    assert calls == [1, 2]  # epoch 0 was not trained again
    assert len(model.metadata["history"]) == 3


def test_configs_are_range_checked_and_sampling_batches_bounded(moses_tiny):
    from pmtoolkit.core.errors import ConfigError

    with pytest.raises(ConfigError, match="generator config: lr: nan is not a finite number"):
        fit(moses_tiny[:50], GeneratorConfig(lr=float("nan"), **TINY))
    with pytest.raises(ConfigError, match="generator config: hidden-size: 0 is out of range"):
        fit(moses_tiny[:50], GeneratorConfig(**{**TINY, "hidden_size": 0}))
    model = SmilesGenerator(GeneratorConfig(**TINY), Vocabulary.build(moses_tiny))
    with pytest.raises(ConfigError, match="fine-tuning config: lr: -1 is out of range"):
        finetune(model, moses_tiny[:50], lr=-1.0)
    with pytest.raises(BadInputError, match="lower --batch-size"):
        next(model.iter_samples(10**6, batch_size=10**6, max_length=1000))
    assert model.batch_bytes(1024, 128) < 2**24  # the default batch: a few MB


def test_optimize_checks_python_built_runs(moses_tiny):
    from pmtoolkit.core.errors import ConfigError
    from pmtoolkit.design.optimize import OptimizeConfig, ReplayConfig, optimize
    from pmtoolkit.design.scoring import ComponentConfig, ScoringConfig, ScoringFunction

    prior = SmilesGenerator(GeneratorConfig(**TINY), Vocabulary.build(moses_tiny))
    scoring = ScoringFunction(ScoringConfig(component=[ComponentConfig("qed")]))
    with pytest.raises(ConfigError, match="optimize: sigma: nan is not a finite number"):
        optimize(prior, scoring, OptimizeConfig(sigma=float("nan")))
    with pytest.raises(ConfigError, match="optimize.replay: size: -1 is out of range"):
        optimize(prior, scoring, OptimizeConfig(replay=ReplayConfig(size=-1)))
