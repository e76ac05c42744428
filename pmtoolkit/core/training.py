"""The one way every pmtoolkit model trains: a Lightning Trainer with the project's defaults.

Seeded; early stopping on a validation metric; a ``last.ckpt`` in the work folder so an
interrupted run resumes where it stopped (``resume=True``); the best epoch's weights restored
at the end; a progress bar only when stderr is a terminal; CSV logs of every epoch; the device
from the same ``--device`` string as everywhere else (several GPUs mean DDP).

Lightning checkpoints are pickles, so they are only ever read with ``weights_only=True``:
a LightningModule used here keeps its hyper-parameters as plain values, never as objects.
Shipped and user-facing model files are the safetensors files of :mod:`pmtoolkit.core.checkpoint`.
"""
from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pmtoolkit.core.config import EPOCHS, PATIENCE, SEED, Range
from pmtoolkit.core.devices import DEVICE_HELP, lightning_devices
from pmtoolkit.core.progress import console_level, show_progress
from pmtoolkit.core.seeds import seed_everything

log = logging.getLogger(__name__)

LAST = "last.ckpt"


@dataclass
class TrainConfig:
    """How to train, shared by every model (the model's own config says what to train)."""

    max_epochs: int = field(default=100, metadata={"range": EPOCHS,
        "help": "maximum number of epochs"})
    patience: int = field(default=10, metadata={"range": PATIENCE,
        "help": "stop after this many epochs without improvement of --monitor (0: never)"})
    monitor: str = field(default="val_loss", metadata={"help": "validation metric to watch"})
    mode: Literal["min", "max"] = field(default="min", metadata={
        "help": "whether --monitor improves by going down (min) or up (max)"})
    seed: int = field(default=0, metadata={"range": SEED,
        "help": "model seed (initialisation, shuffling)"})
    device: str = field(default="auto", metadata={"help": DEVICE_HELP})
    precision: str = field(default="32-true", metadata={
        "help": "Lightning precision, e.g. 32-true, bf16-mixed, 16-mixed"})
    gradient_clip: float | None = field(default=None, metadata={
        "range": Range(0, None, min_open=True), "help": "clip gradient norm to this value"})
    resume: bool = field(default=False, metadata={
        "help": "continue from the last checkpoint in the work folder, if there is one"})
    checkpoint_every: int = field(default=5, metadata={"range": Range(1, 100_000),
        "help": "write the resume checkpoint every this many epochs"})


@dataclass
class FitResult:
    """What a training run did: the epochs it ran, its best score, and every epoch's metrics."""

    workdir: Path
    epochs_run: int
    best_epoch: int | None
    best_score: float | None
    stopped_early: bool
    history: list[dict[str, float]]

    def metrics(self) -> dict[str, float]:
        """The metrics logged at the best epoch (the weights the model now holds)."""
        if not self.history:
            return {}
        if self.best_epoch is None:
            return dict(self.history[-1])
        for row in self.history:
            if row.get("epoch") == self.best_epoch:
                return dict(row)
        return dict(self.history[-1])


def _history_callback():
    from lightning.pytorch.callbacks import Callback

    class History(Callback):
        """Every epoch's logged metrics as floats; saved in checkpoints so resume keeps them."""

        def __init__(self):
            self.rows: list[dict[str, float]] = []

        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.sanity_checking:
                return
            row = {"epoch": float(trainer.current_epoch)}
            for k, v in trainer.callback_metrics.items():
                try:
                    row[k] = float(v)
                except (TypeError, ValueError):
                    continue
            self.rows.append(row)

        def state_dict(self) -> dict[str, Any]:
            return {"rows": [dict(r) for r in self.rows]}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self.rows = [dict(r) for r in state_dict.get("rows", [])]

    return History()


def _best_weights_callback(monitor: str, mode: str):
    from lightning.pytorch.callbacks import Callback

    class BestWeights(Callback):
        """A copy of the weights at the best value of ``monitor``, kept in memory; saved in
        checkpoints so a resumed run still ends on its best epoch."""

        def __init__(self):
            self.best: float | None = None
            self.epoch: int | None = None
            self.state: dict | None = None

        def on_validation_end(self, trainer, pl_module):
            # not on_validation_epoch_end: Lightning calls callbacks' epoch-end hooks before
            # the module's, so a metric the module logs at epoch end (an AUC over the whole
            # validation set) would be read one epoch late
            if trainer.sanity_checking or monitor not in trainer.callback_metrics:
                return
            value = float(trainer.callback_metrics[monitor])
            if math.isnan(value):
                return
            if self.best is None or (value < self.best if mode == "min" else value > self.best):
                self.best, self.epoch = value, int(trainer.current_epoch)
                self.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

        def state_dict(self) -> dict[str, Any]:
            return {"best": self.best, "epoch": self.epoch, "state": self.state}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self.best, self.epoch = state_dict.get("best"), state_dict.get("epoch")
            self.state = state_dict.get("state")

    return BestWeights()


def _last_checkpoint_callback(path: Path, every: int):
    from lightning.pytorch.callbacks import Callback

    class LastCheckpoint(Callback):
        """Write ``path`` (weights, optimizer, schedule, callback states) after every
        ``every``-th epoch and after the last one, atomically. (Lightning's ModelCheckpoint
        with ``save_top_k=0`` never writes ``last.ckpt`` before training ends, so a run cut
        off midway had nothing to resume from.)"""

        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.sanity_checking:
                return
            epoch = trainer.current_epoch + 1
            if epoch % max(1, every) and epoch < (trainer.max_epochs or 0):
                return
            self._write(trainer)

        def on_train_end(self, trainer, pl_module):
            if getattr(self, "_written_step", None) != trainer.global_step:
                self._write(trainer)  # stopped early between two scheduled writes

        def _write(self, trainer):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".pmt-tmp")
            try:
                trainer.save_checkpoint(tmp)
                tmp.replace(path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._written_step = trainer.global_step

    return LastCheckpoint()


def _quiet_lightning() -> None:
    """Lightning logs tips and hardware banners at INFO; keep them unless we are debugging."""
    if console_level() > logging.DEBUG:
        for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*litlogger.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*`isinstance\(treespec, LeafSpec\)`.*")
    # expected when resuming in the same work folder, or training a model without validation
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r".*`validation_step` but have no `val_dataloader`")


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    """Every epoch's metrics in one CSV, across resumed runs."""
    import csv

    from pmtoolkit.core.io import atomic_write

    columns = ["epoch"] + sorted({k for r in rows for k in r} - {"epoch"})
    with atomic_write(path, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "epoch": int(r["epoch"])})


def cosine_schedule(optimizer, total_steps: int, floor: float = 0.1) -> dict:
    """Lightning's ``configure_optimizers`` answer for ``optimizer`` with its learning rate
    decaying per step along a cosine to ``floor`` times itself over ``total_steps``."""
    import torch

    total = max(1, int(total_steps))

    def factor(step: int) -> float:
        frac = min(1.0, step / total)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def build_trainer(config: TrainConfig, workdir: str | Path, *, has_validation: bool = True,
                  callbacks: list | None = None, progress: bool | None = None,
                  checkpoint_dir: str | Path | None = None):
    """A ``lightning.Trainer`` with the project's defaults, writing its logs under ``workdir``
    and its resume checkpoint under ``checkpoint_dir`` (default: ``workdir/checkpoints``)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping
    from lightning.pytorch.loggers import CSVLogger

    _quiet_lightning()
    workdir = Path(workdir)
    accelerator, devices = lightning_devices(config.device)
    cbs = list(callbacks or [])
    # last.ckpt (for resume) every few epochs: writing optimizer state each epoch costs more
    # than the epochs of a small model; the best weights are kept in memory instead
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else workdir / "checkpoints"
    cbs.append(_last_checkpoint_callback(ckpt_dir / LAST, config.checkpoint_every))
    if has_validation and config.patience > 0:
        cbs.append(EarlyStopping(monitor=config.monitor, mode=config.mode,
                                 patience=config.patience, check_finite=True))
    return L.Trainer(
        default_root_dir=workdir,
        max_epochs=config.max_epochs,
        accelerator=accelerator,
        devices=devices,
        precision=config.precision,
        gradient_clip_val=config.gradient_clip,
        callbacks=cbs,
        logger=CSVLogger(workdir, name="logs"),  # a new version folder per (resumed) run
        enable_progress_bar=show_progress() if progress is None else progress,
        enable_model_summary=console_level() <= logging.DEBUG,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        enable_checkpointing=False,  # LastCheckpoint writes the one checkpoint we keep
    )


def fit(module, train_dataloaders, val_dataloaders=None, *, config: TrainConfig | None = None,
        workdir: str | Path, checkpoint_dir: str | Path | None = None) -> FitResult:
    """Train ``module`` (a LightningModule) with :func:`build_trainer`; afterwards the module
    holds the weights of its best validation epoch (the last epoch without validation).

    ``checkpoint_dir`` (default ``workdir/checkpoints``) holds ``last.ckpt``; put it where an
    interruption does not delete it (:func:`pmtoolkit.core.io.work_dir` of the output) so
    ``config.resume`` can continue the run. Ctrl-C and SIGTERM stop training with
    KeyboardInterrupt and :class:`~pmtoolkit.core.errors.Interrupted` (Lightning would exit
    with status 1 or, for SIGTERM, 0)."""

    config = config or TrainConfig()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    history = _history_callback()
    has_val = val_dataloaders is not None
    best = _best_weights_callback(config.monitor, config.mode)
    trainer = build_trainer(config, workdir, has_validation=has_val, callbacks=[history, best],
                            checkpoint_dir=checkpoint_dir)
    last = (Path(checkpoint_dir) if checkpoint_dir is not None else workdir / "checkpoints") / LAST
    ckpt_path = None
    if config.resume:
        if last.is_file():
            ckpt_path = str(last)
            log.info("resuming from %s", last)
        else:
            log.info("nothing to resume in %s; training from the start", last.parent)
    _run_interruptible(trainer.fit, module, train_dataloaders, val_dataloaders,
                       ckpt_path=ckpt_path, weights_only=True)

    best_epoch = best_score = None
    if has_val:
        if best.state is not None:
            module.load_state_dict(best.state)
            best_epoch, best_score = best.epoch, best.best
        elif history.rows:
            log.warning("no finite %s was logged; keeping the last epoch's weights",
                        config.monitor)
    stopped = bool(getattr(trainer, "early_stopping_callback", None)
                   and trainer.early_stopping_callback.stopped_epoch > 0)
    write_history(workdir / "history.csv", history.rows)
    return FitResult(workdir=workdir, epochs_run=trainer.current_epoch, best_epoch=best_epoch,
                     best_score=best_score, stopped_early=stopped, history=history.rows)


def _run_interruptible(trainer_fn, *args, **kwargs):
    """Call a Trainer entry point, turning Lightning's own handling of a stop back into the
    exceptions the rest of pmtoolkit (and the CLI's exit codes) expect: Lightning catches
    KeyboardInterrupt, ignores SIGINT from then on and exits with status 1, and answers SIGTERM
    by finishing the batch and exiting with status 0 (SIGTERMException)."""
    import signal

    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from pmtoolkit.core.errors import Interrupted

    try:
        return trainer_fn(*args, **kwargs)
    except SIGTERMException:
        raise Interrupted(signal.SIGTERM) from None
    except SystemExit as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
        raise
