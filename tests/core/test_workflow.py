"""core.workflow: the generic file workflows and their optional hooks, with a task that needs
neither torch nor data files."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pmtoolkit.core import workflow
from pmtoolkit.core.io import Rejects
from pmtoolkit.core.workflow import Parts


class _Records(list):
    """Labelled numbers; ``fingerprint`` only when asked for."""


class _Fingerprinted(_Records):
    def fingerprint(self) -> str:
        return "f" * 64


class _MeanModel:
    """Predicts the mean label of its training records."""

    def __init__(self, train):
        self.mean = sum(train) / len(train)
        self.saved = None

    def save(self, path, *, metrics=None, training_data_sha256=None):
        self.saved = {"metrics": metrics, "training_data_sha256": training_data_sha256}
        Path(path).write_text(json.dumps(self.saved))


@dataclass
class _Task:
    records: list
    given: bool = False
    bad_lines: int = 0
    records_type: type = _Records
    noun: str = "numbers"
    min_records: int = 3
    calls: list = field(default_factory=list)

    def settings(self):
        return {"data": {"given": self.given}}

    def read(self):
        rejects = Rejects("numbers.txt", "number")
        for i in range(self.bad_lines):
            rejects.add("x", i + 1, "not a number")
        return self.records_type(self.records), rejects

    def split(self, data):
        cut = self.records_type
        parts = (cut(data[:-2]), cut(data[-2:-1]), cut(data[-1:]))
        save = None if self.given else (
            lambda folder: (folder / "split.json").write_text("{}"))
        return Parts(*parts, method="given" if self.given else "ordered", save=save)

    def fit(self, train, valid, *, workdir, checkpoints, resume):
        return _MeanModel(train)

    def evaluate(self, model, data):
        return {"mae": sum(abs(v - model.mean) for v in data) / len(data), "n": len(data)}

    def write_test(self, model, test, folder):
        (folder / "test_predictions.csv").write_text(f"prediction\n{model.mean}\n")


def test_train_file_without_optional_hooks_records_split_and_fingerprint(tmp_path):
    task = _Task([1.0, 2.0, 3.0, 4.0, 5.0], records_type=_Fingerprinted)
    metrics = workflow.train_file(task, tmp_path / "run", source="numbers.txt")
    out = tmp_path / "run"
    assert (out / "split.json").is_file()
    saved = json.loads((out / "model.safetensors").read_text())
    assert saved["training_data_sha256"] == "f" * 64
    assert metrics["n_train"] == 3 and metrics["test"]["n"] == 1
    assert "baselines" not in metrics


def test_extras_hook_adds_metrics_entries_and_files_before_the_model_is_saved(tmp_path):
    class WithExtras(_Task):
        def extras(self, model, parts, folder):
            (folder / "extra.csv").write_text("a\n1\n")
            base = sum(parts.train) / len(parts.train)
            return {"baselines": {"mean": self.evaluate(_MeanModel([base]), parts.test)}}

    metrics = workflow.train_file(WithExtras([1.0, 2.0, 3.0, 4.0, 9.0]), tmp_path / "run",
                                  source="numbers.txt")
    out = tmp_path / "run"
    assert (out / "extra.csv").read_text() == "a\n1\n"
    assert metrics["baselines"]["mean"] == {"mae": 7.0, "n": 1}
    written = json.loads((out / "metrics.json").read_text())
    assert written["baselines"] == metrics["baselines"]
    saved = json.loads((out / "model.safetensors").read_text())
    assert saved["metrics"]["baselines"] == metrics["baselines"]


def test_a_given_split_writes_no_split_json_and_records_without_fingerprint_save(tmp_path):
    metrics = workflow.train_file(_Task([1.0, 2.0, 3.0, 4.0], given=True), tmp_path / "run",
                                  source="numbers.txt")
    out = tmp_path / "run"
    assert not (out / "split.json").exists()
    assert json.loads((out / "model.safetensors").read_text())["training_data_sha256"] is None
    assert metrics["split"] == "given" and (out / "metrics.json").is_file()


def test_evaluate_file_with_outdir_writes_the_tasks_evaluation_and_rejects(tmp_path):
    class WithReport(_Task):
        def write_evaluation(self, model, data, folder):
            (folder / "report.html").write_text("<p>report</p>")
            return {**self.evaluate(model, data), "rejected": 2}

    model = _MeanModel([2.0])
    task = WithReport([1.0, 3.0], bad_lines=2)
    out = tmp_path / "eval"
    metrics = workflow.evaluate_file(task, model, source="numbers.txt", on_invalid="skip",
                                     outdir=out)
    assert metrics == {"mae": 1.0, "n": 2, "rejected": 2}
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert (out / "report.html").is_file()
    assert (out / "rejected.csv").read_text().splitlines()[0] == "line,number,reason"
    # an existing folder is refused before anything is read
    with pytest.raises(Exception, match="exists"):
        workflow.evaluate_file(task, model, source="numbers.txt", on_invalid="skip",
                               outdir=out)


def test_evaluate_file_with_outdir_and_no_hook_writes_the_task_metrics(tmp_path):
    out = tmp_path / "eval"
    metrics = workflow.evaluate_file(_Task([1.0, 3.0]), _MeanModel([2.0]), source="n.txt",
                                     outdir=out)
    assert metrics == {"mae": 1.0, "n": 2}
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        ["metrics.json"]
    assert workflow.evaluate_file(_Task([1.0, 3.0]), _MeanModel([2.0]),
                                  source="n.txt") == metrics


def test_evaluate_valid_false_leaves_the_validation_part_to_the_fit(tmp_path):
    class ScoredInFit(_Task):
        evaluate_valid = False

        def evaluate(self, model, data):
            self.calls.append(len(data))
            return super().evaluate(model, data)

    task = ScoredInFit([1.0, 2.0, 3.0, 4.0, 5.0])
    metrics = workflow.train_file(task, tmp_path / "run", source="numbers.txt")
    assert "valid" not in metrics and metrics["n_valid"] == 1
    assert task.calls == [1] and metrics["test"]["n"] == 1  # the test part only
    plain = _Task([1.0, 2.0, 3.0, 4.0, 5.0])
    assert workflow.train_file(plain, tmp_path / "run2", source="numbers.txt")["valid"] == \
        {"mae": 2.0, "n": 1}


# --------------------------------------------------------------------------- predict_file


@dataclass
class _TablePredict:
    """A :class:`~pmtoolkit.core.workflow.PredictTask` over a CSV of numbers ``x``: a cell
    that is not a number is a reject; the model multiplies."""

    input: Path
    chunksize: int = 3
    events: list = field(default_factory=list)
    #: Ctrl-C while the second chunk is predicted
    interrupt: bool = False
    noun: str = "numbers"
    item_name: str = "x"

    @property
    def source(self) -> str:
        return str(self.input)

    def chunks(self):
        from pmtoolkit.core.io import iter_table

        for rows in iter_table(self.input, columns=["x"], chunksize=self.chunksize,
                               dtype={"x": str}):
            rejects = Rejects(source=self.source, item_name=self.item_name)
            records = []
            for line, x in zip(rows.index, rows["x"]):
                try:
                    records.append(float(x))
                except (TypeError, ValueError):
                    rejects.add(x, int(line), "not a number")
            self.events.append(("read", int(rows.index[0])))
            yield workflow.InputChunk(rows, records, rejects)

    def predict(self, model, records):
        import pandas as pd

        if self.interrupt and len(self.events) > 1:
            raise KeyboardInterrupt
        return pd.DataFrame({"y": [model * r for r in records],
                             "half": [r / 2 for r in records]})


def _numbers(tmp_path, cells) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("name,x\n" + "".join(f"n{i},{c}\n" for i, c in enumerate(cells)))
    return path


#: rejects at a chunk's first row (line 5), last row (line 4) and a chunk of rejects only
_CELLS = ["1", "2", "bad", "oops", "5", "6", "no", "nan?", "x", "10"]


def test_predict_file_keeps_every_row_aligned_across_chunks(tmp_path):
    import numpy as np
    import pandas as pd

    task = _TablePredict(_numbers(tmp_path, _CELLS))
    assert workflow.predict_file(task, 10, tmp_path / "out.csv") == len(_CELLS)
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, na_values=[""])
    assert list(out.columns) == ["name", "x", "y", "half", "error"]
    assert out["name"].tolist() == [f"n{i}" for i in range(len(_CELLS))]
    good = [i for i, c in enumerate(_CELLS) if c.isdigit()]
    expect = np.full(len(_CELLS), np.nan)
    expect[good] = [10 * float(_CELLS[i]) for i in good]
    np.testing.assert_array_equal(out["y"].to_numpy(), expect)
    assert out["error"].isna().tolist() == [i in good for i in range(len(_CELLS))]
    assert set(out["error"].dropna()) == {"not a number"}
    rejected = pd.read_csv(tmp_path / "out.rejected.csv", dtype=str)
    assert list(rejected.columns) == ["line", "x", "reason"]
    assert rejected["line"].astype(int).tolist() == [i + 2 for i in range(len(_CELLS))
                                                     if i not in good]  # header = line 1
    assert rejected["x"].tolist() == ["bad", "oops", "no", "nan?", "x"]


def test_predict_file_streams_chunk_by_chunk(tmp_path, monkeypatch):
    from pmtoolkit.core import io

    task = _TablePredict(_numbers(tmp_path, _CELLS))
    write = io.TableWriter.write

    def logged(self, frame):
        task.events.append(("write", len(frame)))
        write(self, frame)

    monkeypatch.setattr(io.TableWriter, "write", logged)
    workflow.predict_file(task, 1, tmp_path / "out.csv")
    # each chunk is written before the next one is read: memory holds one chunk
    assert task.events == [("read", 2), ("write", 3), ("read", 5), ("write", 3),
                           ("read", 8), ("write", 3), ("read", 11), ("write", 1)]


def test_predict_file_on_invalid_error_names_the_input_line_and_writes_nothing(tmp_path):
    from pmtoolkit.core.errors import BadInputError

    cells = ["1", "2", "3", "4", "bad", "worse"]  # the first reject is in the second chunk
    task = _TablePredict(_numbers(tmp_path, cells))
    with pytest.raises(BadInputError) as info:
        workflow.predict_file(task, 1, tmp_path / "out.csv", on_invalid="error")
    message = str(info.value)
    assert "line 6: not a number: 'bad'" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # not even chunk 1
    with pytest.raises(BadInputError, match="on_invalid"):
        workflow.predict_file(task, 1, tmp_path / "out.csv", on_invalid="ignore")


def test_predict_file_to_stdout_writes_csv_and_no_rejects_file(tmp_path, capsys):
    task = _TablePredict(_numbers(tmp_path, ["1", "bad", "3", "4"]))
    assert workflow.predict_file(task, 2, "-") == 4
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["name,x,y,half,error", "n0,1,2.0,0.5,", "n1,bad,,,not a number",
                     "n2,3,6.0,1.5,", "n3,4,8.0,2.0,"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_predict_file_writes_parquet_and_tsv_by_suffix(tmp_path):
    import pandas as pd

    task = _TablePredict(_numbers(tmp_path, ["1", "bad", "3", "no", "no", "no", "7"]))
    workflow.predict_file(task, 3, tmp_path / "out.parquet")
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["y"].dtype == "float64" and out["y"].isna().tolist() == [
        False, True, False, True, True, True, False]  # a chunk of rejects only, same schema
    assert out["error"].tolist()[:2] == ["", "not a number"]
    assert (tmp_path / "out.rejected.csv").is_file()
    workflow.predict_file(task, 3, tmp_path / "out.tsv")
    assert pd.read_csv(tmp_path / "out.tsv", sep="\t")["y"].tolist()[-1] == 21.0


def test_predict_file_replaces_input_columns_it_adds(tmp_path):
    import pandas as pd

    path = tmp_path / "in.csv"
    path.write_text("y,x,error\nold,1,old\nold,bad,old\n")
    workflow.predict_file(_TablePredict(path), 2, tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(out.columns) == ["x", "y", "half", "error"]
    assert out["y"].tolist() == ["2.0", ""] and out["error"].tolist() == ["", "not a number"]


def test_an_interrupted_predict_file_leaves_no_file(tmp_path):
    task = _TablePredict(_numbers(tmp_path, _CELLS), interrupt=True)
    with pytest.raises(KeyboardInterrupt):
        workflow.predict_file(task, 1, tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_predict_file_refuses_predictions_out_of_step_with_the_records(tmp_path):
    class Short(_TablePredict):
        def predict(self, model, records):
            return super().predict(model, records[1:])

    with pytest.raises(ValueError, match="2 predictions for 3 usable rows"):
        workflow.predict_file(Short(_numbers(tmp_path, ["1", "2", "3"])), 1,
                              tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_predict_file_to_parquet_takes_chunks_that_read_a_column_otherwise(tmp_path):
    import pandas as pd

    path = tmp_path / "in.csv"  # chunk 2 reads name as empty floats, n as whole numbers
    path.write_text("name,n,x\na,1.5,1\nb,2.5,2\nc,,3\n,4,4\n,5,5\n,6,6\n")
    assert workflow.predict_file(_TablePredict(path), 1, tmp_path / "out.parquet") == 6
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["name"].tolist() == ["a", "b", "c", None, None, None]
    assert out["n"].tolist()[3:] == [4.0, 5.0, 6.0]


def test_predict_file_refuses_a_column_parquet_cannot_keep_in_one_type(tmp_path):
    from pmtoolkit.core.errors import BadInputError

    path = tmp_path / "in.csv"
    path.write_text("n,x\n1,1\n2,2\n3,3\nfour,4\n")
    with pytest.raises(BadInputError, match="column 'n' holds string values from row 4"):
        workflow.predict_file(_TablePredict(path), 1, tmp_path / "out.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_predict_file_keeps_the_columns_of_its_first_rows(tmp_path, caplog):
    import pandas as pd

    class Varying(_TablePredict):  # as an SDF whose later records carry other properties
        def chunks(self):
            for i, chunk in enumerate(super().chunks()):
                chunk.rows = chunk.rows.drop(columns="name") if i == 1 else chunk.rows
                chunk.rows["extra"] = "e" if i == 2 else None
                if i != 2:
                    chunk.rows = chunk.rows.drop(columns="extra")
                yield chunk

    task = Varying(_numbers(tmp_path, [str(i) for i in range(9)]))
    workflow.predict_file(task, 1, tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["name", "x", "y", "half", "error"]
    assert out["name"].isna().tolist() == [False] * 3 + [True] * 3 + [False] * 3
    assert out["y"].tolist() == list(range(9))
    assert "column(s) extra from line 8 on are left out" in caplog.text
