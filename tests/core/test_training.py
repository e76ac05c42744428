"""The shared Lightning helper: seeded, early stopping, best weights restored, resume."""
from __future__ import annotations

import os
import signal
from signal import SIGTERM

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from pmtoolkit.core.seeds import seed_everything
from pmtoolkit.core.training import TrainConfig, fit


class Regressor(L.LightningModule):
    def __init__(self, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()  # plain values only: checkpoints load with weights_only
        self.net = torch.nn.Linear(3, 1)

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def training_step(self, batch, _):
        loss = self._loss(batch)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, _):
        self.log("val_loss", self._loss(batch), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _loaders(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(n, generator=g)
    return (DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
            DataLoader(TensorDataset(x[:32], y[:32]), batch_size=32))


def test_fit_learns_records_history_and_restores_best(tmp_path):
    train, val = _loaders()
    model = Regressor()
    res = fit(model, train, val, config=TrainConfig(max_epochs=15, patience=3, device="cpu"),
              workdir=tmp_path)
    assert res.epochs_run <= 15 and len(res.history) == res.epochs_run
    assert res.history[-1]["val_loss"] < res.history[0]["val_loss"]
    assert res.best_score == pytest.approx(min(r["val_loss"] for r in res.history), rel=1e-5)
    assert res.metrics()["epoch"] == res.best_epoch
    with torch.no_grad():
        x, y = next(iter(val))
        now = torch.nn.functional.mse_loss(model.net(x).squeeze(-1), y).item()
    assert now == pytest.approx(res.best_score, rel=1e-4)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert len((tmp_path / "history.csv").read_text().splitlines()) == res.epochs_run + 1


def test_same_seed_same_weights(tmp_path):
    weights = []
    for run in range(2):
        train, val = _loaders()
        seed_everything(7)  # a domain's fit() seeds before it builds the network
        model = Regressor()
        fit(model, train, val, config=TrainConfig(max_epochs=3, device="cpu", seed=7),
            workdir=tmp_path / str(run))
        weights.append(model.net.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_early_stopping_stops(tmp_path):
    train, val = _loaders()
    res = fit(Regressor(lr=0.0), train, val,  # nothing improves
              config=TrainConfig(max_epochs=50, patience=2, device="cpu"), workdir=tmp_path)
    assert res.stopped_early and res.epochs_run <= 4


def test_resume_continues_from_last_checkpoint(tmp_path):
    train, val = _loaders()
    first = fit(Regressor(), train, val, config=TrainConfig(max_epochs=3, patience=0,
                                                            device="cpu"), workdir=tmp_path)
    assert first.epochs_run == 3
    second = fit(Regressor(), train, val,
                 config=TrainConfig(max_epochs=5, patience=0, device="cpu", resume=True),
                 workdir=tmp_path)
    # epochs 0-2 came from the checkpoint (history included); only 3 and 4 were trained now
    assert second.epochs_run == 5
    assert [r["epoch"] for r in second.history] == [0, 1, 2, 3, 4]
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 6


def test_without_validation_keeps_last_epoch(tmp_path):
    train, _ = _loaders()
    res = fit(Regressor(), train, None, config=TrainConfig(max_epochs=2, device="cpu"),
              workdir=tmp_path)
    assert res.best_epoch is None and res.epochs_run == 2 and len(res.history) == 2


class _CutOff(L.Callback):
    """Stops the process mid-run, as a session ending would."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 2:
            raise KeyboardInterrupt


def test_a_run_cut_off_midway_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    from pmtoolkit.core import training

    train, val = _loaders()
    real = training.build_trainer

    def with_cut_off(config, workdir, **kw):
        kw["callbacks"] = [*kw.get("callbacks", []), _CutOff()]
        return real(config, workdir, **kw)

    monkeypatch.setattr(training, "build_trainer", with_cut_off)
    cfg = TrainConfig(max_epochs=4, patience=0, device="cpu", checkpoint_every=1)
    with pytest.raises(KeyboardInterrupt):  # not Lightning's SystemExit(1)
        fit(Regressor(), train, val, config=cfg, workdir=tmp_path)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    monkeypatch.setattr(training, "build_trainer", real)
    res = fit(Regressor(), train, val, config=TrainConfig(max_epochs=4, patience=0,
                                                          device="cpu", resume=True),
              workdir=tmp_path)
    assert [r["epoch"] for r in res.history] == [0, 1, 2, 3]
    assert not list(tmp_path.rglob("*.pmt-tmp")) and not list(tmp_path.rglob("epoch=*.ckpt"))


class _Signal(L.Callback):
    """Sends this process a signal in the middle of an epoch."""

    def __init__(self, signum):
        self.signum = signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("ours", [True, False])
def test_sigterm_stops_training_as_an_interrupt(tmp_path, monkeypatch, ours):
    """With the CLI's handler (ours) SIGTERM raises at once; with Lightning's alone it stops at
    the end of the batch and exits 0 (SIGTERMException): both become Interrupted(SIGTERM)."""
    from pmtoolkit.cli.main import _raise_interrupted
    from pmtoolkit.core import training
    from pmtoolkit.core.errors import Interrupted

    train, val = _loaders()
    real = training.build_trainer
    monkeypatch.setattr(training, "build_trainer", lambda config, workdir, **kw: real(
        config, workdir, **{**kw, "callbacks": [*kw.get("callbacks", []), _Signal(SIGTERM)]}))
    previous = signal.signal(SIGTERM, _raise_interrupted if ours else signal.SIG_DFL)
    try:
        with pytest.raises(Interrupted) as info:
            fit(Regressor(), train, val, config=TrainConfig(max_epochs=5, device="cpu",
                                                            checkpoint_every=1),
                workdir=tmp_path / "logs", checkpoint_dir=tmp_path / "work")
    finally:
        signal.signal(SIGTERM, previous)
    assert info.value.exit_code == 143
    assert (tmp_path / "work" / "last.ckpt").is_file()  # epoch 0, kept for --resume
    assert not (tmp_path / "logs" / "checkpoints").exists()
    assert signal.getsignal(SIGTERM) is previous  # Lightning's handler is gone again


def test_ctrl_c_is_not_ignored_after_an_interrupted_fit(tmp_path, monkeypatch):
    from pmtoolkit.core import training

    train, val = _loaders()
    real = training.build_trainer
    monkeypatch.setattr(training, "build_trainer", lambda config, workdir, **kw: real(
        config, workdir, **{**kw, "callbacks": [*kw.get("callbacks", []), _CutOff()]}))
    with pytest.raises(KeyboardInterrupt):
        fit(Regressor(), train, val, config=TrainConfig(max_epochs=4, device="cpu"),
            workdir=tmp_path)
    # Lightning sets SIGINT to SIG_IGN while it shuts down; a later Ctrl-C must still stop us
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
