"""What the fusion readers and trainers refuse (issue 23): embedding and outcome tables with
missing or non-finite values or repeated ids, settings out of range, sizes beyond what the
simulator can draw; and where fusion training keeps its resume checkpoint."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError, ConfigError


def _table(path, **columns):
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------- fusion


@pytest.mark.parametrize("column, message", [
    ([1.0, np.inf, 2.0], "line 3: patient 'b' has a missing, infinite or out-of-range value"),
    ([1.0, 1e39, 2.0], "out-of-range value in 'x'"),
    ([1.0, np.nan, 2.0], "line 3: patient 'b'"),
])
def test_embedding_values_must_be_finite_float32(tmp_path, column, message):
    from pmtoolkit.fusion.run import read_embeddings

    path = _table(tmp_path / "e.csv", patient_id=["a", "b", "c"], x=column)
    with pytest.raises(BadInputError) as err:
        read_embeddings({"m": path})
    assert message in str(err.value) and "e.csv" in str(err.value)


@pytest.mark.parametrize("ids, message", [
    (["a", None, "c"], "line 3: no patient_id"),
    (["a", " ", "c"], "line 3: no patient_id"),
    (["a", "c", "c"], "line 4: patient 'c' appears twice"),
])
def test_embedding_and_outcome_ids_are_one_per_patient(tmp_path, ids, message):
    from pmtoolkit.fusion.data import read_embeddings, read_outcomes

    path = _table(tmp_path / "e.csv", patient_id=ids, x=[1.0, 2.0, 3.0], outcome=[0, 1, 0])
    with pytest.raises(BadInputError, match=message):
        read_embeddings({"m": path})
    with pytest.raises(BadInputError, match=message):
        read_outcomes(path, "binary")


@pytest.mark.parametrize("task, values, message", [
    ("binary", ["0", "yes", "1"], "line 3: outcome 'yes' of patient 'b' is not 0 or 1"),
    ("binary", [0, 2, 1], "line 3: outcome 2 of patient 'b' is not 0 or 1"),
    ("binary", [0, None, 1], "line 3"),
    ("regression", [0.5, np.inf, 1.0], "line 3: outcome inf of patient 'b' is not a finite"),
])
def test_outcomes_must_fit_the_task(tmp_path, task, values, message):
    from pmtoolkit.fusion.data import read_outcomes

    path = _table(tmp_path / "y.csv", patient_id=["a", "b", "c"], outcome=values)
    with pytest.raises(BadInputError, match=message):
        read_outcomes(path, task)
    assert read_outcomes(_table(tmp_path / "ok.csv", patient_id=[1, 2], outcome=[0, 1]),
                     task) == {"1": 0.0, "2": 1.0}


def _fusion_data(n=20):
    rng = np.random.default_rng(0)
    y = np.tile([0.0, 1.0], n // 2)
    data = {"a": rng.normal(size=(n, 3)), "b": rng.normal(size=(n, 2))}
    mask = np.ones((n, 2), bool)
    mask[::3, 1] = False
    return data, mask, y


def test_fusion_check_training_names_what_cannot_be_trained():
    from pmtoolkit.fusion.config import FusionConfig
    from pmtoolkit.fusion.model import check_training

    data, mask, y = _fusion_data()
    config = FusionConfig(device="cpu")
    data["b"][0] = np.nan  # a missing modality's row may hold anything
    check_training((data, mask, y), config)
    bad = {**data, "a": data["a"].copy()}
    bad["a"][1, 0] = np.inf
    with pytest.raises(BadInputError, match="modality 'a' hold a missing or infinite"):
        check_training((bad, mask, y), config)
    with pytest.raises(BadInputError, match="not a \\(patients, features\\) matrix"):
        check_training(({**data, "a": data["a"][:, 0]}, mask, y), config)
    with pytest.raises(BadInputError, match="one class"):
        check_training((data, mask, np.zeros_like(y)), config)
    with pytest.raises(BadInputError, match="no training patient has modality 'b'"):
        check_training((data, np.c_[mask[:, 0], np.zeros(len(y), bool)], y), config)
    with pytest.raises(BadInputError, match="not a finite number"):
        check_training((data, mask, np.r_[y[:-1], np.nan]), config)
    with pytest.raises(ConfigError, match="hidden-dim"):
        check_training((data, mask, y), FusionConfig(hidden_dim=0))


def test_fusion_train_keeps_checkpoints_beside_the_model_only_while_running(tmp_path):
    from pmtoolkit.fusion.config import FusionConfig
    from pmtoolkit.fusion.run import train_file

    data, _, y = _fusion_data(40)
    ids = [f"p{i}" for i in range(40)]
    frame = pd.DataFrame(data["a"], columns=["x0", "x1", "x2"])
    frame.insert(0, "patient_id", ids)
    frame.to_csv(tmp_path / "a.csv", index=False)
    _table(tmp_path / "y.csv", patient_id=ids, outcome=y)
    out = tmp_path / "m.safetensors"
    metrics = train_file({"a": tmp_path / "a.csv"}, tmp_path / "y.csv", out,
                         config=FusionConfig(epochs=2, device="cpu"))
    assert metrics["epochs_run"] == 2 and out.is_file()
    assert not (tmp_path / "m.safetensors.work").exists()


@pytest.mark.parametrize("weights, missing, message", [
    ({"ehr": float("nan")}, {}, "a number in \\[-100, 100\\]"),
    ({"ehr": 1e6}, {}, "a number in \\[-100, 100\\]"),
    ({}, {"ehr": 1.0}, "a share in \\[0, 1\\)"),
    ({"liver": 1.0}, {}, "unknown modality 'liver'"),
])
def test_simulated_cohort_settings_are_checked_before_anything_is_written(tmp_path, weights,
                                                                          missing, message):
    from pmtoolkit.fusion.simulate import CohortConfig, simulate_cohort

    spec = CohortConfig(patients=10)
    spec.weights.update(weights)
    spec.missing.update(missing)
    with pytest.raises(BadInputError, match=message):
        simulate_cohort(tmp_path / "out", spec)
    with pytest.raises(ConfigError, match="patients"):
        simulate_cohort(tmp_path / "out", CohortConfig(patients=10 ** 9))
    assert not list(tmp_path.iterdir())
