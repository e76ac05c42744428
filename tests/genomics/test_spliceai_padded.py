"""SpliceAI on a short sequence given alone (padded with N to the full context): the padded
forward that computes each layer only where the N do not make it constant must give the
numbers of the plain forward on the whole padded input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from pmtoolkit.genomics import spliceai as S

LENGTHS = (1, 2, 23, 170, 401)


def _plain(net: S.SpliceAINet, x: torch.Tensor) -> torch.Tensor:
    """The network on ``x`` with FLANK all-zero (N) positions each side, every position."""
    return net(F.pad(x, (S.FLANK, S.FLANK)))


def _sequences(rng, length: int, n: int, letters: str = "ACGTN") -> torch.Tensor:
    return torch.from_numpy(np.stack([
        S.one_hot("".join(rng.choice(list(letters), length))).T for _ in range(n)]))


@pytest.fixture(scope="module")
def random_net() -> S.SpliceAINet:
    torch.manual_seed(0)
    net = S.SpliceAINet().eval()
    with torch.no_grad():
        for m in net.modules():  # non-trivial batch-norm statistics and biases
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.3, 0.3)
            elif isinstance(m, torch.nn.Conv1d):
                m.bias.uniform_(-0.3, 0.3)
    return net


@pytest.mark.parametrize("length", LENGTHS)
def test_padded_forward_equals_the_plain_padded_one_random_weights(random_net, length):
    rng = np.random.default_rng(length)
    x = _sequences(rng, length, 3)
    with torch.inference_mode():
        fast, plain = S.padded_forward(random_net, x), _plain(random_net, x)
    assert fast.shape == plain.shape == (3, 3, length)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)


def test_an_all_n_sequence_is_the_constant_everywhere(random_net):
    x = torch.zeros(1, 4, 5)
    with torch.inference_mode():
        fast, plain = S.padded_forward(random_net, x), _plain(random_net, x)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)
    assert float((fast - fast[..., :1]).abs().max()) < 1e-6  # the same at every position


@pytest.fixture
def model(spliceai_model):
    return spliceai_model


@pytest.mark.parametrize("length", (1, 60, 170, 301))
def test_padded_forward_equals_the_plain_padded_one_real_weights(model, length):
    rng = np.random.default_rng(100 + length)
    x = _sequences(rng, length, 2, "ACGT")
    with torch.inference_mode():
        for net in model.nets[:2]:
            torch.testing.assert_close(S.padded_forward(net, x), _plain(net, x), atol=1e-5,
                                       rtol=0)


def test_predict_padded_is_predict_on_the_n_padded_sequences(model):
    rng = np.random.default_rng(7)
    seqs = ["".join(rng.choice(list("ACGT"), 170)) for _ in range(3)]
    seqs[1] = seqs[0][:84] + ("A" if seqs[0][84] != "A" else "C") + seqs[0][85:]  # an SNV
    onehot = np.stack([S.one_hot(s) for s in seqs])
    padded = np.stack([S.one_hot("N" * S.FLANK + s + "N" * S.FLANK) for s in seqs])
    fast = model.predict_padded(onehot, batch_size=2)
    assert fast.shape == (3, 170, 3)
    np.testing.assert_allclose(fast, model.predict(padded, batch_size=3), atol=1e-5, rtol=0)
    assert model.predict_padded(np.zeros((0, 170, 4), np.float32)).shape[0] == 0
