"""genomics' file workflow as a Python user calls it (tests/genomics/test_score.py runs it
through pmt): train_file on a sequence table -> load -> the model's predictions agree with the
run folder's test predictions and metrics."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.genomics.test_model import SMALL, _planted


def test_train_file_writes_a_run_folder_that_load_reads_back(tmp_path):
    from pmtoolkit.genomics.config import SequenceModelConfig
    from pmtoolkit.genomics.data import encode_sequences
    from pmtoolkit.genomics.run import load, train_file

    seqs, y = _planted(200, 64, seed=3)
    table = tmp_path / "seqs.csv"
    pd.DataFrame({"name": [f"s{i}" for i in range(len(seqs))], "sequence": seqs,
                  "ap1": y[:, 0].astype(int)}).to_csv(table, index=False)
    config = SequenceModelConfig(task="binary", epochs=3, **SMALL)
    metrics = train_file(table, tmp_path / "run", config=config, label_columns=["ap1"],
                         id_column="name", split_seed=1)
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"model.safetensors", "config.json", "split.json",
                                                "metrics.json", "test_predictions.csv",
                                                "training"}
    assert not (run / "work").exists()  # no resume checkpoint (a pickle) among the results
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["n_train"] + saved["n_valid"] + saved["n_test"] == 200
    assert saved["targets"] == ["ap1"] and saved["test"] == pytest.approx(metrics["test"])

    split = json.loads((run / "split.json").read_text())
    assert len(split["test"]) == saved["n_test"] and not set(split["test"]) & set(split["train"])
    pred = pd.read_csv(run / "test_predictions.csv")
    assert list(pred["id"]) == split["test"]

    model = load(run / "model.safetensors")
    index = [int(name[1:]) for name in split["test"]]
    codes, keep = encode_sequences([seqs[i] for i in index], 64)
    assert len(keep) == len(index)
    again = model.predict_codes(codes)[:, 0]
    np.testing.assert_allclose(again, pred["ap1_prediction"].to_numpy(), rtol=1e-4, atol=1e-5)


def test_too_few_sequences_are_refused_before_anything_is_written(tmp_path):
    from pmtoolkit.core.errors import BadInputError
    from pmtoolkit.genomics.config import SequenceModelConfig
    from pmtoolkit.genomics.run import train_file

    seqs, y = _planted(6, 64, seed=0)
    table = tmp_path / "few.csv"
    pd.DataFrame({"sequence": seqs, "ap1": y[:, 0]}).to_csv(table, index=False)
    with pytest.raises(BadInputError, match="only 6 usable sequences"):
        train_file(table, tmp_path / "run", config=SequenceModelConfig(task="binary", **SMALL),
                   label_columns=["ap1"])
    assert not (tmp_path / "run").exists()
