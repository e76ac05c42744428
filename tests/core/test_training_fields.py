"""The settings of a training run, declared once (core.config.training_fields) and turned into
a run's TrainConfig once (core.training.train_config): every model config has them with the
same ranges and help and its own defaults, saved models keep them as flat keys, and
``precision`` reaches the Lightning Trainer."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

import click
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from pmtoolkit.core import config as cfg
from pmtoolkit.core.config import PRECISIONS, TRAINING_FIELDS, training_fields
from pmtoolkit.core.devices import DEVICE_HELP
from pmtoolkit.core.errors import BadInputError, ConfigError
from pmtoolkit.core.training import TrainConfig, build_trainer, train_config
from pmtoolkit.design.config import GeneratorConfig
from pmtoolkit.dti.config import DTIConfig
from pmtoolkit.ehr.config import RiskModelConfig
from pmtoolkit.expression.config import ExpressionClassifierConfig, VAEConfig
from pmtoolkit.fusion.config import FusionConfig
from pmtoolkit.genomics.config import SequenceModelConfig
from pmtoolkit.imaging.config import ImageClassifierConfig, SegmenterConfig
from pmtoolkit.property.config import PropertyConfig
from pmtoolkit.response.config import ResponseConfig

#: each model config's own defaults: (epochs, patience, batch_size); None: no such field
DEFAULTS = {
    PropertyConfig: (50, 0, 64),
    DTIConfig: (100, 0, None),  # batches by pairs_per_batch (blocks of drugs x proteins)
    SequenceModelConfig: (30, 5, 128),
    GeneratorConfig: (10, 0, 128),
    RiskModelConfig: (30, 5, 64),
    VAEConfig: (None, 45, 128),  # epochs from the number of cells
    ExpressionClassifierConfig: (60, 10, 128),
    ImageClassifierConfig: (30, 10, 128),
    SegmenterConfig: (40, 10, 16),
    FusionConfig: (60, 10, 64),
    ResponseConfig: (100, 10, 256),
}
CONFIGS = list(DEFAULTS)
IDS = [f"{c.__module__.split('.')[1]}.{c.__name__}" for c in CONFIGS]


def _fields(cls):
    return {f.name: f for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", CONFIGS, ids=IDS)
def test_every_model_config_has_the_training_fields_with_its_own_defaults(cls):
    epochs, patience, batch_size = DEFAULTS[cls]
    fields = _fields(cls)
    expected = [n for n in TRAINING_FIELDS if n != "batch_size" or batch_size is not None]
    assert [n for n in fields if n in TRAINING_FIELDS] == expected
    c = cls()
    assert (c.epochs, c.patience, getattr(c, "batch_size", None)) == (epochs, patience,
                                                                        batch_size)
    assert (c.seed, c.device, c.precision) == (0, "auto", "32-true")


@pytest.mark.parametrize("name, limits", [("epochs", cfg.EPOCHS), ("patience", cfg.PATIENCE),
                                          ("batch_size", cfg.BATCH_SIZE), ("seed", cfg.SEED),
                                          ("device", None), ("precision", None)])
def test_ranges_types_and_help_are_declared_once(name, limits):
    owners = [c for c in CONFIGS if name in _fields(c)]
    assert len(owners) >= len(CONFIGS) - 1
    for cls in owners:
        f = _fields(cls)[name]
        assert f.metadata.get("range") is limits, cls
        hint = typing.get_type_hints(cls)[name]
        if name == "precision":
            assert typing.get_args(hint) == PRECISIONS
        elif name == "device":
            assert hint is str and f.metadata["help"] == DEVICE_HELP
        elif cls is VAEConfig and name == "epochs":
            assert hint == int | None
        else:
            assert hint is int
    helps = {_fields(c)[name].metadata["help"] for c in owners}
    if name in ("seed", "device", "precision"):
        assert len(helps) == 1  # one text; the others name what is monitored or batched
    assert all(h.strip() for h in helps)


def test_help_names_what_patience_watches_and_what_a_batch_holds():
    assert "validation AUPRC" in _fields(RiskModelConfig)["patience"].metadata["help"]
    assert "validation Dice" in _fields(SegmenterConfig)["patience"].metadata["help"]
    assert _fields(ImageClassifierConfig)["batch_size"].metadata["help"] == "images per batch"
    assert "scvi-tools" in _fields(VAEConfig)["epochs"].metadata["help"]


def test_decorator_adds_dataclass_fields_and_refuses_declaring_them_twice():
    @dataclass
    @training_fields(epochs=7, patience=2, batch_size=None)
    class Small:
        width: int = 3

    assert [f.name for f in dataclasses.fields(Small)] == [
        "width", "epochs", "patience", "seed", "device", "precision"]
    assert Small(epochs=9) == Small(width=3, epochs=9, patience=2, seed=0, device="auto",
                                    precision="32-true")
    with pytest.raises(TypeError, match="'seed' itself"):
        @training_fields(epochs=1, patience=0, batch_size=8)
        class Twice:
            seed: int = 1
    with pytest.raises(TypeError, match="below @dataclass"):
        training_fields(epochs=1, patience=0, batch_size=8)(dataclass(type("Late", (), {})))
    with pytest.raises(TypeError, match="auto_epochs"):
        training_fields(epochs=None, patience=0, batch_size=8)


@pytest.mark.parametrize("cls", CONFIGS, ids=IDS)
def test_metadata_without_precision_loads_with_the_default(cls):
    """Saved models keep their config as flat keys; those saved before ``precision`` existed
    load with 32-true and nothing else changes."""
    c = dataclasses.replace(cls(), seed=7, device="cpu", patience=3)
    saved = cfg.to_dict(c)
    assert saved["precision"] == "32-true" and "seed" in saved  # flat, no [training] table
    del saved["precision"]
    again = cfg.from_mapping(cls, saved, source="saved model config")
    assert again == c
    assert cfg.from_mapping(cls, {**saved, "precision": "bf16-mixed"}).precision == "bf16-mixed"


def test_shipped_models_config_loads_and_round_trips():
    from pmtoolkit.core import shipped
    from pmtoolkit.core.checkpoint import read_metadata
    from pmtoolkit.core.registry import import_object

    seen = 0
    for entry in shipped.manifest("model"):
        meta = read_metadata(entry.file, verified=True)
        cls = import_object(meta["model_class"]).Config
        if "precision" not in _fields(cls):
            continue
        config = cfg.from_mapping(cls, meta["config"], source="saved model config")
        assert config.precision == meta["config"].get("precision", "32-true")
        written = cfg.to_dict(config)
        assert {k: written[k] for k in meta["config"]} == meta["config"], entry.name
        seen += 1
    assert seen >= 5


def test_precision_outside_lightnings_values_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"precision: invalid value 'fp8' \(choose from "
                                          r"32-true, 16-mixed"):
        cfg.from_mapping(FusionConfig, {"precision": "fp8"})
    for bad in ("fp8", "32", 16, None):
        with pytest.raises(BadInputError) as err:
            train_config(FusionConfig(precision=bad))
        assert "\n" not in str(err.value) and "32-true" in str(err.value)
    with pytest.raises(BadInputError, match="invalid precision"):
        build_trainer(TrainConfig(precision="half", device="cpu"), "unused")


def test_train_config_takes_the_models_settings_and_the_fits_choices():
    c = RiskModelConfig(epochs=12, patience=4, seed=3, device="cpu", precision="bf16-mixed")
    tc = train_config(c, monitor="val_auprc", mode="max", resume=True, checkpoint_every=2)
    assert tc == TrainConfig(max_epochs=12, patience=4, monitor="val_auprc", mode="max", seed=3,
                             device="cpu", precision="bf16-mixed", resume=True,
                             checkpoint_every=2)
    assert train_config(c, validating=False).patience == 0
    assert train_config(c).checkpoint_every == TrainConfig().checkpoint_every
    assert train_config(c, seed=9, epochs=2).seed == 9
    assert train_config(c, epochs=2).max_epochs == 2
    assert train_config(GeneratorConfig(), gradient_clip=1.0).gradient_clip == 1.0
    assert train_config(VAEConfig(), epochs=33).max_epochs == 33
    with pytest.raises(ValueError, match="epochs"):
        train_config(VAEConfig())


@pytest.mark.parametrize("precision, plugin", [
    ("32-true", "Precision"), ("bf16-mixed", "MixedPrecision"), ("64-true", "DoublePrecision"),
    ("bf16-true", "HalfPrecision")])
def test_precision_reaches_the_trainer(tmp_path, precision, plugin):
    trainer = build_trainer(train_config(FusionConfig(device="cpu", precision=precision)),
                            tmp_path)
    assert type(trainer.precision_plugin).__name__ == plugin
    assert trainer.precision == precision


def test_a_fit_builds_its_trainer_with_the_configs_precision(monkeypatch):
    """From the model config through the domain's fit to the Trainer it trains with."""
    from pmtoolkit.core import training
    from pmtoolkit.fusion.model import fit_fusion

    built = []
    real = training.build_trainer

    def spy(config, *args, **kwargs):
        trainer = real(config, *args, **kwargs)
        built.append((config, trainer.precision))
        return trainer

    monkeypatch.setattr(training, "build_trainer", spy)
    rng = np.random.default_rng(0)
    data = {"a": rng.normal(size=(40, 4)), "b": rng.normal(size=(40, 3))}
    mask, y = np.ones((40, 2), bool), (rng.random(40) < 0.5).astype(np.float32)
    fit_fusion((data, mask, y), None, FusionConfig(epochs=1, hidden_dim=8, device="cpu",
                                                   precision="bf16-mixed", seed=5))
    [(config, precision)] = built
    assert precision == "bf16-mixed" and config.seed == 5 and config.patience == 0


class _Linear(torch.nn.Module):
    """y = w.x, with a float32 tensor of its own mixed in when ``mix``."""

    def __init__(self, mix=False):
        super().__init__()
        self.lin, self.mix = torch.nn.Linear(3, 1), mix

    def forward(self, x):
        return self.lin(x.float() if self.mix else x).squeeze(-1)


def _objective(seen):
    from pmtoolkit.core.task import Objective

    class Regression(Objective):
        def outputs(self, net, batch):
            x, y = batch
            out = net(x)
            seen.add(out.dtype)
            return out, y

        def loss(self, out, target, step=None):
            return torch.nn.functional.mse_loss(out, target.to(out.dtype))

    return Regression()


def _train(net, precision, lr=0.05):
    from pmtoolkit.core.task import Optimizer, train_network

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    seen = set()
    train_network(net, _objective(seen), DataLoader(TensorDataset(x, y), batch_size=16),
                  DataLoader(TensorDataset(x, y), batch_size=64), optimizer=Optimizer(lr=lr),
                  config=TrainConfig(max_epochs=3, device="cpu", precision=precision))
    return seen


def test_whole_network_precision_trains_in_that_type_and_hands_back_float32():
    net = _Linear()
    before = net.lin.weight.detach().clone()
    assert _train(net, "64-true") == {torch.float64}
    assert {t.dtype for t in net.state_dict().values()} == {torch.float32}
    assert not torch.equal(net.lin.weight, before)
    assert net(torch.zeros(2, 3)).dtype == torch.float32


def test_a_network_that_cannot_train_in_that_type_is_a_one_line_error():
    with pytest.raises(BadInputError, match=r"cannot train with --precision bf16-true .*dtype"):
        _train(_Linear(mix=True), "bf16-true")


def test_pure_16_bit_training_that_diverges_is_an_error_not_a_nan_model():
    with pytest.raises(BadInputError, match="precision 16-true diverged"):
        _train(_Linear(), "16-true", lr=1e30)


def _training_commands():
    from tests.hostile.cli_tree import leaf_commands

    for path, cmd in leaf_commands():
        names = {p.name for p in cmd.params}
        if "epochs" in names and "patience" in names:
            yield " ".join(path), cmd


TRAINING_COMMANDS = list(_training_commands())


@pytest.mark.parametrize("path, cmd", TRAINING_COMMANDS, ids=[p for p, _ in TRAINING_COMMANDS])
def test_every_training_command_takes_precision_as_a_choice(path, cmd):
    [param] = [p for p in cmd.params if p.name == "precision"]
    assert isinstance(param.type, click.Choice) and tuple(param.type.choices) == PRECISIONS
    assert param.default is None  # unset: the config file's, else 32-true


def test_precision_on_the_command_line_is_checked_before_anything_runs(pmt, tmp_path):
    r = pmt("fusion", "train", "--precision", "fp8", "-o", tmp_path / "model.safetensors")
    assert r.exit_code == 2
    [line] = r.stderr.strip().splitlines()
    assert "--precision" in line and "'fp8' is not one of '32-true'" in line
