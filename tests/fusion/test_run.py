"""Embedding tables: aligned on patient_id, a patient missing from a table lacks that
modality, and a model trained on them predicts from whichever modalities are given."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.fusion.config import FusionConfig
from pmtoolkit.fusion.run import predict_file, read_embeddings, train_file


def test_tables_align_on_patient_id(tmp_path):
    pd.DataFrame({"patient_id": ["b", "a"], "x": [2.0, 1.0]}).to_csv(tmp_path / "m1.csv",
                                                                     index=False)
    pd.DataFrame({"patient_id": ["c", "a"], "y": [3.0, 4.0], "z": [5.0, 6.0]}).to_csv(
        tmp_path / "m2.tsv", sep="\t", index=False)
    ids, data, mask = read_embeddings({"one": tmp_path / "m1.csv", "two": tmp_path / "m2.tsv"})
    assert ids == ["b", "a", "c"]
    assert mask.tolist() == [[True, False], [True, True], [False, True]]
    assert data["one"][:, 0].tolist() == [2.0, 1.0, 0.0]
    assert data["two"].tolist() == [[0, 0], [4, 6], [3, 5]]
    # given ids: only those, in that order
    ids, data, mask = read_embeddings({"two": tmp_path / "m2.tsv"}, ids=["a", "zz"])
    assert mask[:, 0].tolist() == [True, False] and data["two"][0].tolist() == [4, 6]


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"id": ["a"], "x": [1.0]}), "no 'patient_id' column"),
    (pd.DataFrame({"patient_id": ["a", "a"], "x": [1.0, 2.0]}), "appears twice"),
    (pd.DataFrame({"patient_id": ["a", "b"], "x": [1.0, np.nan]}), "'b' has a missing"),
    (pd.DataFrame({"patient_id": ["a"]}), "no feature columns"),
])
def test_bad_tables(tmp_path, frame, message):
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(BadInputError, match=message):
        read_embeddings({"m": tmp_path / "t.csv"})


def test_train_then_predict_uses_the_informative_modality(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    ids = [f"p{i}" for i in range(n)]
    signal = rng.normal(size=n)
    y = (signal + 0.3 * rng.normal(size=n) > 0).astype(int)
    pd.DataFrame({"patient_id": ids, "s0": signal, "s1": rng.normal(size=n)}).to_csv(
        tmp_path / "good.csv", index=False)
    pd.DataFrame({"patient_id": ids[::2], "n0": rng.normal(size=n // 2)}).to_csv(
        tmp_path / "noise.csv", index=False)
    pd.DataFrame({"patient_id": ids, "outcome": y}).to_csv(tmp_path / "y.csv", index=False)
    tables = {"good": tmp_path / "good.csv", "noise": tmp_path / "noise.csv"}
    m = train_file(tables, tmp_path / "y.csv", tmp_path / "m.safetensors",
                   config=FusionConfig(fusion="gated", epochs=40, seed=0, device="cpu"))
    assert m["valid_auroc"] > 0.9 and m["patients_by_modality"] == {"good": n, "noise": n // 2}
    from pmtoolkit.fusion.model import FusionModel

    model = FusionModel.load(tmp_path / "m.safetensors")
    assert predict_file(model, tables, tmp_path / "p.csv") == n
    p = pd.read_csv(tmp_path / "p.csv")
    both = p["modalities"] == "good,noise"
    assert p.loc[both, "contribution_good"].abs().mean() > \
        3 * p.loc[both, "contribution_noise"].abs().mean()
    with pytest.raises(BadInputError, match="exists"):
        train_file(tables, tmp_path / "y.csv", tmp_path / "m.safetensors",
                   config=FusionConfig())
