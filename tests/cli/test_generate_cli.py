"""`pmt generate` end to end on tiny fixtures, including bad input."""
from __future__ import annotations

import json

import pandas as pd
import pytest

TINY = ["--hidden-size", "24", "--embedding-size", "8", "--layers", "2", "--epochs", "2",
        "--batch-size", "64", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny generator trained through the CLI (shared by the tests below)."""
    from click.testing import CliRunner
    from pmtoolkit.cli.main import cli

    out = tmp_path_factory.mktemp("gen") / "run"
    data = __import__("pathlib").Path(__file__).parents[1] / "data" / "moses_tiny.smi"
    result = CliRunner().invoke(cli, ["generate", "train", "-i", str(data), "-o", str(out),
                                      *TINY], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_the_run_folder(trained):
    for name in ("model.safetensors", "config.json", "metrics.json", "history.csv",
                 "samples.csv"):
        assert (trained / name).is_file(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["samples"]["n"] == 1000
    config = json.loads((trained / "config.json").read_text())
    assert config["model"]["hidden-size"] == 24


def test_sample_streams_a_table(pmt, trained, tmp_path):
    out = tmp_path / "s.parquet"
    result = pmt("generate", "sample", "-m", trained / "model.safetensors", "-n", 300,
                 "--batch-size", 128, "-o", out, "--seed", 7)
    assert result.exit_code == 0, result.stderr
    frame = pd.read_parquet(out)
    assert len(frame) == 300 and list(frame.columns) == ["smiles", "log_likelihood", "valid"]
    assert (frame["log_likelihood"] <= 0).all()
    again = tmp_path / "s.csv"
    pmt("generate", "sample", "-m", trained / "model.safetensors", "-n", 300, "--batch-size",
        128, "-o", again, "--seed", 7)
    assert pd.read_csv(again, keep_default_na=False)["smiles"].tolist() == \
        frame["smiles"].tolist()


def test_finetune_bad_tokens_error_then_skip(pmt, trained, tmp_path, test_data):
    model = trained / "model.safetensors"
    out = tmp_path / "ft"
    result = pmt("generate", "finetune", "-m", model, "-i", test_data / "focused_bad.smi",
                 "-o", out, "--epochs", 1)
    assert result.exit_code == 2
    assert "line 3" in result.stderr and not out.exists()
    result = pmt("generate", "finetune", "-m", model, "-i", test_data / "focused_bad.smi",
                 "-o", out, "--epochs", 1, "--on-invalid", "skip")
    assert result.exit_code == 0, result.stderr
    rejected = pd.read_csv(out / "rejected.csv")
    assert sorted(rejected["line"].tolist()) == [2, 3]
    assert any("not in the model's vocabulary" in r for r in rejected["reason"])
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize("args, message", [
    (["sample", "-m", "nope", "-o", "x.csv"], "unknown generator 'nope'"),
    (["sample", "-m", "missing.safetensors", "-o", "x.csv"], "does not exist"),
    (["sample", "-m", "{model}", "-o", "x.csv", "-t", "0"], "'--temperature': 0.0 is not in"),
    (["sample", "-m", "{model}", "-o", "x.csv", "-n", "1000000000"], "'--num': 1000000000 is not"),
    (["sample", "-m", "{model}", "-o", "x.csv", "-n", "100000", "--batch-size", "100000",
      "--max-length", "10000"], "lower --batch-size"),
])
def test_sample_bad_input(pmt, trained, tmp_path, args, message):
    args = [a.replace("{model}", str(trained / "model.safetensors")) for a in args]
    args = [str(tmp_path / a) if a == "x.csv" else a for a in args]
    result = pmt("generate", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "x.csv").exists()


def test_optimize_writes_scores_history_and_report(pmt, trained, tmp_path):
    run = tmp_path / "run.toml"
    run.write_text(f"""
[optimize]
prior = "{trained / 'model.safetensors'}"
steps = 3
batch-size = 24

[optimize.replay]
size = 10

[scoring]
[[scoring.component]]
type = "qed"
[[scoring.component]]
type = "forbidden"
smarts = ["[N+](=O)[O-]"]
""")
    out = tmp_path / "opt"
    result = pmt("generate", "optimize", "-c", run, "-o", out)
    assert result.exit_code == 0, result.stderr
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 3 * 24 and {"qed", "forbidden", "score"} <= set(scores.columns)
    hist = pd.read_csv(out / "history.csv")
    assert hist["step"].tolist() == [0, 1, 2]
    for name in ("agent.safetensors", "top.csv", "score_history.png", "report.html"):
        assert (out / name).is_file(), name
    assert "Top molecules" in (out / "report.html").read_text()


@pytest.mark.parametrize("body, message", [
    ('[optimize]\nstepz = 3\n[scoring]\n[[scoring.component]]\ntype = "qed"\n',
     "did you mean 'steps'"),
    ('[scoring]\n[[scoring.component]]\ntype = "qed"\nweight = "high"\n', "expected a number"),
    ('[scoring]\naggregation = "geometric"\n', "no components"),
    ('[scorng]\n', "did you mean 'scoring'"),
])
def test_optimize_bad_run_file(pmt, trained, tmp_path, body, message):
    run = tmp_path / "bad.toml"
    run.write_text(body)
    out = tmp_path / "opt"
    result = pmt("generate", "optimize", "-c", run, "-o", out, "--prior",
                 trained / "model.safetensors")
    assert result.exit_code == 2 and message in result.stderr
    assert not out.exists()


def test_evaluate_metrics_and_report(pmt, trained, tmp_path, test_data):
    samples = tmp_path / "s.csv"
    assert pmt("generate", "sample", "-m", trained / "model.safetensors", "-n", 200, "-o",
               samples).exit_code == 0
    smi = (test_data / "moses_tiny.smi").read_text().split()
    test = tmp_path / "test.smi"
    test.write_text("\n".join(smi[300:]) + "\n")
    out = tmp_path / "eval"
    result = pmt("generate", "evaluate", "-i", samples, "--train", test_data / "moses_tiny.smi",
                 "--test", test, "--reference-cache", tmp_path / "ref.npz", "--no-fcd",
                 "-o", out)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 200 and 0 <= metrics["valid"] <= 1
    assert {"novelty", "IntDiv1", "SNN", "Frag", "Scaf", "Filters"} <= set(metrics)
    assert (tmp_path / "ref.npz").is_file() and (out / "property_distributions.png").is_file()
    # bad input: a table without a SMILES column
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = pmt("generate", "evaluate", "-i", bad, "-o", tmp_path / "e2")
    assert result.exit_code == 2 and "no SMILES column" in result.stderr


# ----------------------------------------------------------------------------- resume

RESUME = ["--hidden-size", "16", "--embedding-size", "8", "--layers", "1", "--batch-size",
          "128", "--device", "cpu"]


def test_interrupted_training_resumes_from_its_checkpoint(pmt, tmp_path, monkeypatch,
                                                           test_data):
    """In-process: SIGTERM (Interrupted) at the start of epoch 3 leaves OUTPUT/work with the
    checkpoint of epoch 2; a plain rerun is refused, --resume trains epochs 3-5 only, and the
    finished folder replaces the work folder."""
    import signal

    from pmtoolkit.core.errors import Interrupted
    from pmtoolkit.design import generator

    out = tmp_path / "run"
    args = ["generate", "train", "-i", test_data / "moses_tiny.smi", "-o", out, "--epochs", 6,
            *RESUME]
    calls = []
    original = generator._BucketSampler.set_epoch

    def stop_at_3(self, epoch):
        calls.append(epoch)
        if epoch == 3:
            raise Interrupted(signal.SIGTERM)
        original(self, epoch)

    monkeypatch.setattr(generator._BucketSampler, "set_epoch", stop_at_3)
    result = pmt(*args)
    assert result.exit_code == 143 and "interrupted" in result.stderr
    assert (out / "work" / "last.ckpt").is_file() and not (out / "model.safetensors").exists()
    assert not list(tmp_path.glob(".*pmt-tmp*"))

    monkeypatch.setattr(generator._BucketSampler, "set_epoch",
                        lambda self, e: (calls.append(e), original(self, e)))
    again = pmt(*args)
    assert again.exit_code == 2 and "holds an interrupted run" in again.stderr
    other = pmt(*[a if a != 6 else 7 for a in args], "--resume")
    assert other.exit_code == 2 and "other settings" in other.stderr
    calls.clear()
    resumed = pmt(*args, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert sorted(set(calls)) == [3, 4, 5]  # epochs 0-2 were not trained again
    assert not (out / "work").exists() and (out / "model.safetensors").is_file()
    assert len(pd.read_csv(out / "history.csv")) == 6
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 6


@pytest.mark.slow
def test_sigterm_then_resume_in_a_real_process(tmp_path, test_data):
    """The same through a separate process and a real SIGTERM, as a scheduler sends it."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pmtoolkit.cli", "generate", "train", "-i",
           str(test_data / "moses_tiny.smi"), "-o", str(out), "--epochs", "40", *RESUME]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    checkpoint = out / "work" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists(), "no checkpoint appeared"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "pmt: error: interrupted"
    assert checkpoint.is_file() and not (out / "model.safetensors").exists()
    done = subprocess.run([*cmd, "--resume"], check=False, stderr=subprocess.PIPE, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stderr
    assert (out / "model.safetensors").is_file() and not (out / "work").exists()
    assert len(pd.read_csv(out / "history.csv")) == 40
