"""Seeds, devices, the registry of named blocks and the shipped-data manifest."""
from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
import torch

from pmtoolkit.core import shipped
from pmtoolkit.core.devices import lightning_devices, resolve_device, torch_device
from pmtoolkit.core.errors import BadInputError, MissingResourceError
from pmtoolkit.core.registry import Registry
from pmtoolkit.core.seeds import seed_everything


def test_seed_everything_repeats_every_generator():
    def draw():
        rng = seed_everything(123)
        return random.random(), np.random.rand(), torch.rand(1).item(), rng.random()

    assert draw() == draw()
    with pytest.raises(BadInputError):
        seed_everything(-1)
    with pytest.raises(BadInputError):
        seed_everything(1.5)


def test_devices():
    assert str(resolve_device("cpu")) == "cpu"
    assert torch_device("cpu") == torch.device("cpu")
    assert lightning_devices("cpu") == ("cpu", 1)
    auto = resolve_device("auto")
    assert auto.kind == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:x", "tpu", "cuda:0,"):
        with pytest.raises(BadInputError, match="invalid device"):
            resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_asking_for_a_missing_gpu_is_a_user_error():
    with pytest.raises(BadInputError, match="no CUDA GPU"):
        resolve_device("cuda:0")


def test_registry_lists_names_and_loads_lazily():
    reg = Registry("featurizer")
    reg.add("sqrt", "math:sqrt", help="square root")
    reg.add("abs", abs)
    assert reg.names() == ["sqrt", "abs"] and "sqrt" in reg
    assert reg.get("sqrt")(9) == 3.0
    with pytest.raises(MissingResourceError, match="unknown featurizer 'sqr'.*did you mean 'sqrt'"):
        reg.get("sqr")
    with pytest.raises(ValueError, match="twice"):
        reg.add("abs", abs)


def test_every_shipped_file_matches_the_manifest():
    entries = shipped.manifest()
    assert entries, "data/MANIFEST lists nothing"
    for e in entries:
        assert e.kind in shipped.KINDS
        assert shipped.verify(e).stat().st_size == e.bytes
        assert e.source and e.licence
    total = sum(e.bytes for e in entries)
    assert total < 50 * 1024 * 1024, "data/ must stay well under 50 MB"


def test_shipped_lookup_errors(tmp_path, monkeypatch):
    with pytest.raises(MissingResourceError, match="unknown shipped dataset 'esoll'.*'esol'"):
        shipped.path("esoll", "dataset")
    # a copy of the data folder with one file altered
    copy = tmp_path / "data"
    shutil.copytree(shipped.data_dir(), copy)
    monkeypatch.setenv("PMT_DATA_DIR", str(copy))
    target = copy / shipped.entry("esol").path
    target.write_text(target.read_text().replace("Amigdalin", "Amygdalin"))
    with pytest.raises(MissingResourceError, match="does not match the sha256"):
        shipped.path("esol")
    target.unlink()
    with pytest.raises(MissingResourceError, match="is missing"):
        shipped.path("esol")
