"""The model contract's base classes: save, load, and refusal of foreign classes."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from pmtoolkit.core import model as core_model
from pmtoolkit.core.checkpoint import save_checkpoint
from pmtoolkit.core.errors import BadInputError


@dataclass
class LinearConfig:
    inputs: int = 3
    outputs: int = 1


class Linear(core_model.TorchModel):
    Config = LinearConfig

    @classmethod
    def build_network(cls, config, extra):
        return torch.nn.Linear(config.inputs, config.outputs)

    def predict(self, x):
        with torch.no_grad():
            return self.network(torch.as_tensor(x, dtype=torch.float32))


@pytest.fixture
def trusted_tests(monkeypatch):
    monkeypatch.setattr(core_model, "TRUSTED_PACKAGES", ("pmtoolkit.", "tests."))


def test_save_load_gives_the_same_predictions(tmp_path, trusted_tests):
    torch.manual_seed(0)
    m = Linear(LinearConfig(inputs=4, outputs=2))
    x = torch.randn(5, 4)
    meta = m.save(tmp_path / "lin.safetensors", metrics={"rmse": 0.1},
                  training_data_sha256="0" * 64)
    assert meta["config"] == {"inputs": 4, "outputs": 2}
    back = core_model.load_model(tmp_path / "lin.safetensors")
    assert isinstance(back, Linear) and back.config == m.config
    assert torch.equal(back.predict(x), m.predict(x))
    assert back.metadata["metrics"] == {"rmse": 0.1}
    assert Linear.load(tmp_path / "lin.safetensors").config.outputs == 2


def test_foreign_and_mismatched_classes_are_refused(tmp_path, trusted_tests):
    path = tmp_path / "evil.safetensors"
    save_checkpoint(path, {"w": torch.ones(1)}, model_class="os:system")
    with pytest.raises(BadInputError, match="not part of pmtoolkit; refusing"):
        core_model.load_model(path)
    path = tmp_path / "gone.safetensors"
    save_checkpoint(path, {"w": torch.ones(1)}, model_class="pmtoolkit.nowhere:Model")
    with pytest.raises(BadInputError, match="upgrade pmtoolkit"):
        core_model.load_model(path)
    path = tmp_path / "wrong.safetensors"
    save_checkpoint(path, {"w": torch.ones(1)}, model_class=Linear.class_path(),
                    config={"inputs": 3, "outputs": 1})
    with pytest.raises(BadInputError, match="do not fit Linear"):
        core_model.load_model(path)


def test_half_precision_files_are_smaller_and_load_as_float32(tmp_path, trusted_tests):
    torch.manual_seed(0)
    m = Linear(LinearConfig(inputs=64, outputs=16))
    m.save(tmp_path / "full.safetensors")
    m.save(tmp_path / "half.safetensors", half=True)
    full, half = (tmp_path / "full.safetensors").stat().st_size, \
        (tmp_path / "half.safetensors").stat().st_size
    assert half < 0.6 * full
    back = core_model.load_model(tmp_path / "half.safetensors")
    assert back.network.weight.dtype == torch.float32
    x = torch.randn(5, 64)
    assert torch.allclose(back.predict(x), m.predict(x), atol=1e-2)
    assert not torch.equal(back.network.weight, m.network.weight)   # rounded, not copied


def test_a_folder_named_like_a_shipped_model_does_not_hide_it(tmp_path, monkeypatch):
    from pmtoolkit.genomics.run import load

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mpra").mkdir()
    model = load("mpra")  # the shipped model, not the folder
    assert model.metadata["model_class"].startswith("pmtoolkit.genomics")
    (tmp_path / "mine").mkdir()
    with pytest.raises(BadInputError, match="is a directory"):
        load("mine")


def test_non_finite_weights_are_refused(tmp_path, trusted_tests):
    m = Linear(LinearConfig())
    with torch.no_grad():
        m.network.weight[0, 0] = float("nan")
    m.save(tmp_path / "nan.safetensors")  # saved with a matching sha256
    with pytest.raises(BadInputError, match="contain NaN or infinite values"):
        core_model.load_model(tmp_path / "nan.safetensors")


def test_a_config_edited_to_absurd_sizes_is_refused_before_allocating(tmp_path, trusted_tests,
                                                                      monkeypatch):
    from pmtoolkit.core import checkpoint as ck

    m = Linear(LinearConfig())
    path = tmp_path / "lin.safetensors"
    m.save(path)
    ckpt = ck.load_checkpoint(path)
    # a config whose network would need 120,000 x 120,000 weights (57.6 GB), written with a
    # valid metadata sha256: the shapes are compared on the meta device, nothing is allocated
    ck.save_checkpoint(path, ckpt.tensors, model_class=Linear.class_path(),
                       config={"inputs": 120_000, "outputs": 120_000})
    real = Linear.build_network
    sizes = []

    def watched(cls, config, extra):
        net = real.__func__(cls, config, extra)
        sizes.append(net.weight.device.type)
        return net

    monkeypatch.setattr(Linear, "build_network", classmethod(watched))
    with pytest.raises(BadInputError, match="do not fit Linear built from the saved config"):
        core_model.load_model(path)
    assert sizes == ["meta"]  # built once, on the meta device, and refused
