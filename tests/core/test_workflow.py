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
