"""The Task contract (core.task): one LightningModule trains every model from a domain's
Objective and Optimizer."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from pmtoolkit.core.task import Objective, Optimizer, finite, masked_mean, train_network
from pmtoolkit.core.training import TrainConfig


class Squares(Objective):
    keep_outputs = True

    def outputs(self, net, batch):
        x, y = batch
        return net(x).squeeze(-1), y

    def loss(self, out, target, step=None):
        return torch.nn.functional.mse_loss(out, target)

    def metrics(self, out, target):
        return {"val_mae": float(np.abs(out - target).mean()), "val_n": float(len(target))}


class WeightedEpochLoss(Squares):
    """A loss that is not a mean over samples: scored on the whole epoch at once."""

    validation_loss = "epoch"

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.tensor(2.0))

    def loss(self, out, target, step=None):
        return self.scale * ((out - target) ** 2).sum() / len(target) ** 2


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(n, generator=g)
    return x, y


def _loaders():
    x, y = _data()
    return (DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,
                       generator=torch.Generator().manual_seed(0)),
            DataLoader(TensorDataset(x[:40], y[:40]), batch_size=16))


def _fit(objective, tmp_path, **kw):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    train, val = _loaders()
    config = TrainConfig(max_epochs=kw.pop("epochs", 12), patience=3, device="cpu", **kw)
    result = train_network(net, objective, train, val, config=config, workdir=tmp_path,
                           optimizer=Optimizer(name="adam", lr=0.05))
    return net, result


def test_train_network_learns_logs_metrics_and_keeps_the_best_epoch(tmp_path):
    net, result = _fit(Squares(), tmp_path)
    assert not net.training and next(net.parameters()).device.type == "cpu"
    history = result.history
    assert history[-1]["val_loss"] < history[0]["val_loss"] / 5
    # metrics() of the whole epoch, logged as returned
    assert all(row["val_n"] == 40 for row in history)
    x, y = _data()
    with torch.no_grad():
        out = net(x[:40]).squeeze(-1)
    # the net holds the best epoch: its validation loss is the best logged (the batch mean
    # of 16, 16 and 8 samples weighted by size is the mean over all 40)
    assert torch.nn.functional.mse_loss(out, y[:40]).item() == pytest.approx(
        result.best_score, rel=1e-4)
    assert float((out - y[:40]).abs().mean()) == pytest.approx(
        result.metrics()["val_mae"], rel=1e-4)


def test_epoch_loss_is_the_loss_of_the_whole_epoch(tmp_path):
    objective = WeightedEpochLoss()
    net, result = _fit(objective, tmp_path, epochs=3)
    x, y = _data()
    with torch.no_grad():
        out = net(x[:40]).squeeze(-1)
    whole = (2.0 * ((out - y[:40]) ** 2).sum() / 40 ** 2).item()
    # not the mean of the batches' values (which would be about 40/16 times larger)
    assert result.best_score == pytest.approx(whole, rel=1e-4)
    assert objective.scale.device.type == "cpu"


def test_a_validation_without_loss_monitors_a_metric(tmp_path):
    class MetricOnly(Squares):
        validation_loss = None

    net, result = _fit(MetricOnly(), tmp_path, monitor="val_mae", mode="min")
    assert all("val_loss" not in row for row in result.history)
    assert result.best_score == pytest.approx(min(r["val_mae"] for r in result.history))


def test_training_and_validation_logs_and_training_outputs(tmp_path):
    seen = {"train": 0}

    class Logged(Squares):
        def training_outputs(self, net, batch, step):
            seen["train"] += 1
            x, y = batch
            return net(x + 0.0).squeeze(-1), y

        def loss(self, out, target, step=None):
            self._mse = super().loss(out, target)
            return self._mse + (0.0 if step is None else 1.0)

        def training_logs(self):
            return {"train_penalty": torch.tensor(1.0)}

        def validation_logs(self):
            return {"val_mse": self._mse}

    _, result = _fit(Logged(), tmp_path, epochs=2)
    assert seen["train"] == 2 * 4  # 64 samples in batches of 16, two epochs
    row = result.history[-1]
    assert row["train_penalty"] == 1.0
    assert row["val_mse"] == pytest.approx(row["val_loss"], rel=1e-6)  # no penalty there
    assert row["train_loss"] > 1.0


def test_resume_continues_from_a_weights_only_checkpoint(tmp_path):
    ckpt = tmp_path / "work"
    _, first = _fit(Squares(), tmp_path / "a", epochs=4, checkpoint_every=1)
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    train, val = _loaders()
    train_network(net, Squares(), train, val, optimizer=Optimizer(lr=0.05),
                  config=TrainConfig(max_epochs=2, patience=0, device="cpu"),
                  workdir=tmp_path / "c", checkpoint_dir=ckpt)
    net.train()
    state = torch.load(ckpt / "last.ckpt", weights_only=True)
    assert state["epoch"] == 1 and any(k.startswith("net.") for k in state["state_dict"])
    resumed = train_network(net, Squares(), train, val, optimizer=Optimizer(lr=0.05),
                            config=TrainConfig(max_epochs=4, patience=0, device="cpu",
                                               resume=True),
                            workdir=tmp_path / "c", checkpoint_dir=ckpt)
    assert [int(r["epoch"]) for r in resumed.history] == [0, 1, 2, 3]
    assert first.epochs_run == 4


def test_resume_without_a_checkpoint_folder_is_refused():
    train, val = _loaders()
    with pytest.raises(ValueError, match="checkpoint folder"):
        train_network(torch.nn.Linear(3, 1), Squares(), train, val, optimizer=Optimizer(),
                      config=TrainConfig(max_epochs=1, resume=True, device="cpu"))


@pytest.mark.parametrize("schedule", ["none", "cosine", "warmup-exp"])
def test_optimizer_schedules(schedule):
    net = torch.nn.Linear(2, 1)
    opt = Optimizer(name="adamw", lr=0.1, weight_decay=0.01, schedule=schedule, floor=0.1,
                    warmup_epochs=1).build(net.parameters(), total_steps=100, epochs=10)
    if schedule == "none":
        assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 0.01
        return
    sched = opt["lr_scheduler"]["scheduler"]
    assert opt["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(100):
        lrs.append(opt["optimizer"].param_groups[0]["lr"])
        opt["optimizer"].step()
        sched.step()
    if schedule == "cosine":
        assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.01, rel=0.05)
        assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    else:  # up from lr/10 over one epoch (10 steps), then down to lr/10
        assert lrs[0] == pytest.approx(0.01) and max(lrs) == pytest.approx(0.1)
        assert int(np.argmax(lrs)) == 10 and lrs[-1] == pytest.approx(0.01, rel=0.05)


def test_optimizer_total_steps_overrides_the_run_length():
    opt = Optimizer(lr=1.0, schedule="cosine", floor=0.0, total_steps=10).build(
        torch.nn.Linear(2, 1).parameters(), total_steps=1000, epochs=1)
    factor = opt["lr_scheduler"]["scheduler"].lr_lambdas[0]
    assert factor(5) == pytest.approx(0.5) and factor(10) == pytest.approx(0.0, abs=1e-12)


def test_helpers():
    per = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert masked_mean(per, torch.tensor([1.0, 0.0, 1.0, 0.0])).item() == 2.0
    assert masked_mean(per, torch.zeros(4)).item() == 0.0
    assert finite(math.nan, 0.5) == 0.5 and finite(0.7, 0.5) == 0.7


def test_nothing_else_in_pmtoolkit_subclasses_lightning_module():
    root = Path(__file__).parents[2] / "pmtoolkit"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    if ast.unparse(base).endswith("LightningModule"):
                        found.append(f"{path.relative_to(root)}:{node.name}")
    assert found == ["core/task.py:TaskModule"]
