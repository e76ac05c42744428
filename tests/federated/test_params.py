"""Weights as Flower exchanges them, the FedProx term, and Flower's FedAvg/FedProx as the
server runs them (aggregation order, byte counts, failures)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.task import Objective
from pmtoolkit.federated.local import local_optimizer
from pmtoolkit.federated.params import (
    get_weights,
    proximal_objective,
    proximal_term,
    set_weights,
)
from pmtoolkit.federated.server import make_strategy, payload_bytes


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 1))


def test_weights_round_trip_exactly_with_buffers():
    a, b = _net(0), _net(1)
    a(torch.randn(16, 4))  # moves the batch-norm statistics and counter
    set_weights(b, get_weights(a))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and va.dtype == vb.dtype and torch.equal(va, vb)
    w = get_weights(a)
    assert sum(x.dtype == np.int64 for x in w) == 1  # num_batches_tracked travels too
    # an averaged (float) counter goes back into the integer buffer
    set_weights(b, [x.astype(np.float64) if x.dtype == np.int64 else x for x in w])
    assert b[1].num_batches_tracked.dtype == torch.int64


def test_wrong_weights_are_refused():
    w = get_weights(_net())
    with pytest.raises(BadInputError, match="weight arrays"):
        set_weights(_net(), w[:-1])
    w[0] = np.zeros((3, 3), np.float32)
    with pytest.raises(BadInputError, match="shape"):
        set_weights(_net(), w)


class _Squares(Objective):
    """The least a domain's objective has: outputs and a loss."""

    def outputs(self, net, batch):
        x, y = batch
        return net(x), y

    def loss(self, out, target, step=None):
        return ((out - target) ** 2).mean()


def _training_loss(objective, net, batch):
    out, target = objective.training_outputs(net, batch, 0)
    return objective.loss(out, target, 0)


def test_proximal_term_is_zero_at_the_global_weights_and_pulls_back():
    net = _net()
    net.eval()
    batch = (torch.randn(8, 4), torch.randn(8, 1))
    plain = _training_loss(_Squares(), net, batch).item()
    mu = 0.5
    objective = proximal_objective(_Squares(), net, mu=mu)
    anchor = {k: p.detach().clone() for k, p in net.named_parameters()}
    assert proximal_term(net, anchor).item() == 0.0
    assert _training_loss(objective, net, batch).item() == pytest.approx(plain)
    assert objective.training_logs()["train_proximal"].item() == 0.0
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)
    d2 = proximal_term(net, anchor)
    n_params = sum(p.numel() for p in net.parameters())
    assert d2.item() == pytest.approx(0.01 * n_params, rel=1e-4)
    moved = _training_loss(_Squares(), net, batch).item()
    assert _training_loss(objective, net, batch).item() == pytest.approx(
        moved + mu / 2 * d2.item(), rel=1e-5)
    # validation scores the domain's loss alone
    out, target = objective.validation_outputs(net, batch)
    assert objective.loss(out, target).item() == pytest.approx(moved, rel=1e-6)
    # gradient descent on the term alone walks back to the global weights
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(20):
        opt.zero_grad()
        (0.5 * mu * proximal_term(net, anchor)).backward()
        opt.step()
    assert proximal_term(net, anchor).item() < 1e-3 * d2.item()


def test_local_training_drops_the_learning_rate_schedule():
    from pmtoolkit.core.task import Optimizer

    optimizer = Optimizer(name="adam", lr=0.1, schedule="cosine")
    assert isinstance(optimizer.build(_net().parameters(), 10, 1), dict)
    local = local_optimizer(optimizer).build(_net().parameters(), 10, 1)
    assert isinstance(local, torch.optim.Adam) and local.defaults["lr"] == 0.1


def _fit_res(weights, n, site):
    return (None, FitRes(status=Status(Code.OK, ""), parameters=ndarrays_to_parameters(weights),
                         num_examples=n, metrics={"site": site}))


@pytest.mark.parametrize("name", ["fedavg", "fedprox"])
def test_flower_fedavg_of_identical_sites_is_that_site(name):
    w = get_weights(_net())
    strategy = make_strategy(name, sites=3, proximal_mu=0.1)
    params, _ = strategy.aggregate_fit(1, [_fit_res(w, n, s) for s, n in enumerate((5, 40, 7))],
                                       [])
    for a, b in zip(parameters_to_ndarrays(params), w):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_flower_fedavg_is_the_example_weighted_mean_in_site_order():
    w1, w2 = get_weights(_net(1)), get_weights(_net(2))
    strategy = make_strategy("fedavg", sites=2)
    forward = strategy.aggregate_fit(1, [_fit_res(w1, 10, 0), _fit_res(w2, 30, 1)], [])[0]
    backward = make_strategy("fedavg", sites=2).aggregate_fit(
        1, [_fit_res(w2, 30, 1), _fit_res(w1, 10, 0)], [])[0]
    for a, b, x, y in zip(parameters_to_ndarrays(forward), parameters_to_ndarrays(backward),
                          w1, w2):
        assert np.array_equal(a, b)  # the arrival order of the sites does not matter
        if x.dtype == np.float32:
            np.testing.assert_allclose(a, (10 * x + 30 * y) / 40, rtol=1e-5, atol=1e-6)
    rec = strategy.records[1]
    assert rec["bytes_up"] == 2 * payload_bytes(ndarrays_to_parameters(w1))
    assert payload_bytes(ndarrays_to_parameters(w1)) > sum(x.nbytes for x in w1)


def test_a_failed_site_stops_the_round():
    strategy = make_strategy("fedavg", sites=2)
    with pytest.raises(RuntimeError, match="failed to train"):
        strategy.aggregate_fit(1, [_fit_res(get_weights(_net()), 3, 0)], [RuntimeError("gone")])
