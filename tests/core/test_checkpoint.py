from __future__ import annotations

import pickle

import pytest
import torch

from pmtoolkit.core.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from pmtoolkit.core.errors import BadInputError, MissingInputError, UnsafeFileError


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "w": torch.randn(4, 3, generator=g),
        "b64": torch.randn(5, generator=g, dtype=torch.float64),
        "bf16": torch.randn(2, 2, generator=g).to(torch.bfloat16),
        "idx": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
        "special": torch.tensor([float("nan"), float("inf"), -0.0]),
    }


def test_round_trip_is_bit_identical(tmp_path):
    tensors = _tensors()
    path = tmp_path / "m.safetensors"
    meta = save_checkpoint(path, tensors, model_class="pmtoolkit.x:Y", config={"hidden": 8},
                           metrics={"rmse": 0.5}, training_data_sha256="ab" * 32,
                           extra={"vocab": ["C", "c", "("]})
    ckpt = load_checkpoint(path)
    assert set(ckpt.tensors) == set(tensors)
    for name, t in tensors.items():
        back = ckpt.tensors[name]
        assert back.dtype == t.dtype and back.shape == t.shape
        # compare raw bytes: NaN != NaN and -0.0 == 0.0 would fool a value comparison
        assert back.reshape(-1).view(torch.uint8).tolist() == t.reshape(-1).view(torch.uint8).tolist()
    assert ckpt.metadata == meta
    for key in ("format_version", "config", "pmtoolkit_version", "created", "uuid",
                "training_data_sha256", "metrics", "weights_sha256"):
        assert key in meta
    assert ckpt.config == {"hidden": 8}
    assert read_metadata(path)["extra"] == {"vocab": ["C", "c", "("]}


def test_module_state_dict_round_trip_with_tied_weights(tmp_path):
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = emb.weight  # tied, as in language models
    net = torch.nn.ModuleDict({"emb": emb, "head": head})
    save_checkpoint(tmp_path / "m.st", net.state_dict(), model_class="pmtoolkit.x:Y")
    net2 = torch.nn.ModuleDict({"emb": torch.nn.Embedding(10, 4),
                                "head": torch.nn.Linear(4, 10, bias=False)})
    net2.load_state_dict(load_checkpoint(tmp_path / "m.st").tensors)
    assert torch.equal(net2["emb"].weight, emb.weight)


def test_pickles_are_refused_before_loading(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    plain = tmp_path / "model.safetensors"
    plain.write_bytes(pickle.dumps({"w": Exploit()}, protocol=4))
    with pytest.raises(UnsafeFileError, match="Python pickle, refused"):
        load_checkpoint(plain)
    zipped = tmp_path / "model2.safetensors"
    torch.save({"w": torch.ones(2)}, zipped)
    with pytest.raises(UnsafeFileError, match="zip archive of pickles"):
        load_checkpoint(zipped)
    assert not marker.exists()
    assert "\n" not in str(UnsafeFileError("x", hint="y"))


def test_other_bad_files(tmp_path):
    with pytest.raises(MissingInputError):
        load_checkpoint(tmp_path / "absent.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(BadInputError, match="not a pmtoolkit model file"):
        load_checkpoint(junk)
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"ab")
    with pytest.raises(BadInputError, match="too short"):
        load_checkpoint(tiny)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(1)}, str(foreign))
    with pytest.raises(BadInputError, match="without pmtoolkit metadata"):
        load_checkpoint(foreign)


def test_tampered_weights_fail_the_sha256(tmp_path):
    path = tmp_path / "m.st"
    save_checkpoint(path, {"w": torch.zeros(16)}, model_class="pmtoolkit.x:Y")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BadInputError, match="do not match their recorded sha256"):
        load_checkpoint(path)


def _edit_metadata(path, edit):
    """Rewrite the pmtoolkit metadata in a safetensors header, weights untouched (as a user
    editing the JSON would)."""
    import json
    import struct

    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = json.loads(header["__metadata__"]["pmtoolkit"])
    edit(meta)
    header["__metadata__"]["pmtoolkit"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])


def test_edited_metadata_fails_its_sha256(tmp_path):
    path = tmp_path / "m.st"
    save_checkpoint(path, {"w": torch.zeros(4)}, model_class="pmtoolkit.x:Y",
                    config={"ensemble_size": 3}, extra={"n_members": 3})
    assert read_metadata(path)["format_version"] == 2

    def fewer_members(meta):
        meta["extra"]["n_members"] = 1

    _edit_metadata(path, fewer_members)
    with pytest.raises(BadInputError, match="metadata in .* does not match its recorded sha256"):
        load_checkpoint(path)


def test_a_recomputed_metadata_sha256_passes_and_format_1_files_warn(tmp_path, caplog):
    from pmtoolkit.core import checkpoint as ck

    path = tmp_path / "m.st"
    save_checkpoint(path, {"w": torch.zeros(4)}, model_class="pmtoolkit.x:Y")

    def old_format(meta):
        meta["format_version"] = 1
        del meta["metadata_sha256"]

    _edit_metadata(path, old_format)
    with caplog.at_level("WARNING", logger="pmtoolkit.core.checkpoint"):
        load_checkpoint(path)
    assert "not covered by a checksum" in caplog.text
    caplog.clear()
    ck._warned.clear()
    with caplog.at_level("WARNING", logger="pmtoolkit.core.checkpoint"):
        load_checkpoint(path, verified=True)  # a shipped file, checked against the MANIFEST
    assert "not covered" not in caplog.text


def test_metadata_that_is_not_json_is_a_bad_input(tmp_path):
    path = tmp_path / "m.st"
    save_checkpoint(path, {"w": torch.zeros(4)}, model_class="pmtoolkit.x:Y")
    import json
    import struct

    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header["__metadata__"]["pmtoolkit"] = "{not json"
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    with pytest.raises(BadInputError, match="not a pmtoolkit model file"):
        read_metadata(path)
