"""core.io.write_json: strict JSON (NaN and infinities as null), written atomically."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pmtoolkit.core.io import write_json


def test_nan_and_infinities_become_null(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"rmse": float("nan"), "r2": np.float32("inf"), "n": np.int64(3),
                      "folds": (1.5, float("-inf")), "file": Path("a/b.csv")})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict {c}")) == {
        "rmse": None, "r2": None, "n": 3, "folds": [1.5, None], "file": "a/b.csv"}


def test_compact_and_default(tmp_path):
    write_json(tmp_path / "s.json", {"train": [1, 2]}, indent=None)
    assert (tmp_path / "s.json").read_text() == '{"train": [1, 2]}\n'
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"x": object()})
    write_json(tmp_path / "ok.json", {"x": {1, 2}}, default=sorted)
    assert json.loads((tmp_path / "ok.json").read_text()) == {"x": [1, 2]}


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
