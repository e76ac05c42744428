"""The one way every pmtoolkit model trains: a Lightning Trainer with the project's defaults.

Seeded; early stopping on a validation metric; a ``last.ckpt`` in the work folder so an
interrupted run resumes where it stopped (``resume=True``); the best epoch's weights restored
at the end; a progress bar only when stderr is a terminal; CSV logs of every epoch; the device
from the same ``--device`` string as everywhere else (several GPUs, ``cpu:N`` or
several nodes mean DDP: :mod:`pmtoolkit.core.devices`).

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

from pmtoolkit.core.config import (
    EPOCHS,
    PATIENCE,
    PRECISIONS,
    SEED,
    Precision,
    Range,
    check_precision,
)
from pmtoolkit.core.devices import DEVICE_HELP, lightning_devices
from pmtoolkit.core.progress import console_level, show_progress
from pmtoolkit.core.seeds import seed_everything

log = logging.getLogger(__name__)

LAST = "last.ckpt"
#: precisions that train the whole network in another floating-point type than float32
WHOLE_NETWORK_PRECISIONS = ("64-true", "16-true", "bf16-true")


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
    precision: Precision = field(default="32-true", metadata={
        "help": "Lightning precision: " + ", ".join(PRECISIONS)})
    gradient_clip: float | None = field(default=None, metadata={
        "range": Range(0, None, min_open=True), "help": "clip gradient norm to this value"})
    resume: bool = field(default=False, metadata={
        "help": "continue from the last checkpoint in the work folder, if there is one"})
    checkpoint_every: int = field(default=5, metadata={"range": Range(1, 100_000),
        "help": "write the resume checkpoint every this many epochs"})


def train_config(config: Any, *, monitor: str = "val_loss", mode: Literal["min", "max"] = "min",
                 validating: bool = True, resume: bool = False,
                 checkpoint_every: int | None = None, epochs: int | None = None,
                 seed: int | None = None, gradient_clip: float | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of a run of the model config ``config`` (one with
    :func:`~pmtoolkit.core.config.training_fields`): its epochs, patience, seed, device and
    precision, with what the fit decides itself: the metric to ``monitor`` and whether it
    improves going down or up (``mode``), ``resume``, how often to write the resume
    checkpoint (``checkpoint_every``, default every 5 epochs). ``validating=False``: there is
    nothing to validate on, so no early stopping (patience 0). ``epochs`` and ``seed``
    override the config's (epochs the model worked out from the data; an ensemble member's
    seed); ``gradient_clip``: clip the gradient norm."""
    max_epochs = config.epochs if epochs is None else epochs
    if max_epochs is None:
        raise ValueError(f"{type(config).__name__}.epochs is None: pass epochs=")
    extra = {} if checkpoint_every is None else {"checkpoint_every": checkpoint_every}
    return TrainConfig(max_epochs=max_epochs, patience=config.patience if validating else 0,
                       monitor=monitor, mode=mode,
                       seed=config.seed if seed is None else seed, device=config.device,
                       precision=check_precision(config.precision),
                       gradient_clip=gradient_clip, resume=resume, **extra)


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
            # every DDP process takes part in save_checkpoint; only the first writes the file
            first = trainer.is_global_zero
            if first:
                path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".pmt-tmp")
            try:
                trainer.save_checkpoint(tmp)
                if first:
                    tmp.replace(path)
            except BaseException:
                if first:
                    tmp.unlink(missing_ok=True)
                raise
            self._written_step = trainer.global_step

    return LastCheckpoint()


def _keep_dtypes_callback():
    from lightning.pytorch.callbacks import Callback

    class KeepDtypes(Callback):
        """Training in 64-true, 16-true or bf16-true converts the whole module to that type;
        afterwards its weights and buffers go back to the types they had (float32), so the
        trained model is saved and predicts as any other."""

        def setup(self, trainer, pl_module, stage):
            self.dtypes = {**{n: p.dtype for n, p in pl_module.named_parameters()},
                           **{n: b.dtype for n, b in pl_module.named_buffers()}}

        def teardown(self, trainer, pl_module, stage):
            dtypes = getattr(self, "dtypes", {})
            for name, t in [*pl_module.named_parameters(), *pl_module.named_buffers()]:
                if name in dtypes and t.dtype != dtypes[name]:
                    t.data = t.data.to(dtypes[name])

    return KeepDtypes()


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
    accelerator, devices, nodes = lightning_devices(config.device)
    check_precision(config.precision)
    if devices == "auto":  # every visible GPU
        import torch

        count = torch.cuda.device_count()
    else:
        count = devices if isinstance(devices, int) else len(devices)
    several = nodes > 1 or count > 1
    cbs = list(callbacks or [])
    if config.precision in WHOLE_NETWORK_PRECISIONS:
        cbs.append(_keep_dtypes_callback())
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
        num_nodes=nodes,
        # DDP when there are several processes; some networks leave a head unused in a step
        strategy="ddp_find_unused_parameters_true" if several else "auto",
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
    try:
        _run_interruptible(trainer.fit, module, train_dataloaders, val_dataloaders,
                           ckpt_path=ckpt_path, weights_only=True)
    except RuntimeError as exc:
        _refuse_precision(config.precision, exc)
        raise
    if trainer.world_size > 1:
        log.info("trained on %d processes (DDP over %d node(s))", trainer.world_size,
                 trainer.num_nodes)
    best_epoch = best_score = None
    if has_val:
        if best.state is not None:
            module.load_state_dict(best.state)
            best_epoch, best_score = best.epoch, best.best
        elif history.rows:
            log.warning("no finite %s was logged; keeping the last epoch's weights",
                        config.monitor)
    if config.precision in WHOLE_NETWORK_PRECISIONS:
        _check_finite_weights(module, config.precision)
    stopped = bool(getattr(trainer, "early_stopping_callback", None)
                   and trainer.early_stopping_callback.stopped_epoch > 0)
    write_history(workdir / "history.csv", history.rows)
    return FitResult(workdir=workdir, epochs_run=trainer.current_epoch, best_epoch=best_epoch,
                     best_score=best_score, stopped_early=stopped, history=history.rows)


_PRECISION_HINT = "use 32-true, or a mixed precision: bf16-mixed, 16-mixed"


def _check_finite_weights(module, precision: str) -> None:
    """Pure 16-bit training (no loss scaling, Adam's epsilon below float16's smallest step)
    can end in NaN weights: a one-line error rather than a model that predicts NaN."""
    from pmtoolkit.core.errors import BadInputError

    for name, t in module.state_dict().items():
        if t.is_floating_point() and t.numel() and not bool(t.isfinite().all()):
            raise BadInputError(f"training with --precision {precision} diverged (NaN or "
                                f"infinite weights in {name!r})", hint=_PRECISION_HINT)


#: words of PyTorch's errors for tensors of two floating-point types meeting in one operation
_DTYPE_CLASH = ("dtype", "scalar type", "Half", "BFloat16", "Double")


def _refuse_precision(precision: str, exc: RuntimeError) -> None:
    """A network that mixes in float32 tensors of its own cannot train with its weights in
    another type (64-true, 16-true, bf16-true): a one-line error, not a traceback from deep
    inside torch."""
    from pmtoolkit.core.errors import BadInputError, first_line

    if precision in WHOLE_NETWORK_PRECISIONS and any(
            w in str(exc) for w in _DTYPE_CLASH):
        raise BadInputError(f"this model cannot train with --precision {precision} "
                            f"({first_line(exc)})",
                            hint=_PRECISION_HINT) from None


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
