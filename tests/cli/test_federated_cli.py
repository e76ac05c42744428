"""`pmt federated` end to end: a real Flower server and site processes on loopback, the
outputs a user opens, the saved model used by the domain's own commands, and bad input."""
from __future__ import annotations

import json

import numpy as np
import psutil
import pytest

ESOL_TARGET = "measured log solubility in mols per litre"


def _one_line(result, code):
    assert result.exit_code == code, result.stderr
    errors = [ln for ln in result.stderr.strip().splitlines() if ln.startswith("pmt: error: ")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in result.stderr
    return errors[0]


def _no_children(before: frozenset = frozenset()):
    """The live child processes of this one, but those in ``before`` (helpers an earlier
    test left running for the life of the test process, such as multiprocessing's resource
    tracker after a Dask LocalCluster)."""
    return [p for p in psutil.Process().children(recursive=True) if p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE and p.pid not in before]


def _children_now() -> frozenset:
    return frozenset(p.pid for p in psutil.Process().children(recursive=True))


@pytest.fixture(scope="module")
def molecules(tmp_path_factory):
    import pandas as pd

    from pmtoolkit.core import shipped

    folder = tmp_path_factory.mktemp("fed")
    frame = pd.read_csv(shipped.path("esol", "dataset")).head(100)
    frame[["smiles", ESOL_TARGET]].to_csv(folder / "esol100.csv", index=False)
    return folder / "esol100.csv"


def _config(path, data, **fed):
    fed = {"task": "property", "data": str(data), "sites": 2, "rounds": 2,
           "test_fraction": 0.2, **fed}
    lines = ["[federated]"] + [f"{k} = {json.dumps(v)}" for k, v in fed.items()]
    lines += ["[data]", f'target_columns = ["{ESOL_TARGET}"]', "[model]",
              "hidden_size = 16", "ffn_hidden_size = 16", "depth = 2", "batch_size = 32",
              "lr = 0.005", 'device = "cpu"']
    path.write_text("\n".join(lines) + "\n")
    return path


def test_run_end_to_end_with_flower_and_use_the_model(pmt, molecules, tmp_path):
    from flwr.common import ndarrays_to_parameters

    from pmtoolkit.federated.params import get_weights
    from pmtoolkit.federated.server import payload_bytes
    from pmtoolkit.federated.tasks import make_task
    from pmtoolkit.property.run import load

    cfg = _config(tmp_path / "run.toml", molecules, split="dirichlet", alpha=1.0)
    out = tmp_path / "out"
    before = _children_now()
    result = pmt("federated", "run", "-c", cfg, "-o", out, "--set", "strategy=fedprox",
                 "--set", "proximal_mu=0.1")
    assert result.exit_code == 0, result.stderr
    assert "round 1/2" in result.stderr and "round 2/2" in result.stderr
    assert "centralised: round 2/2" in result.stderr
    assert not _no_children(before)
    for name in ("model.safetensors", "federated.json", "config.json", "sites.csv",
                 "convergence.png", "report.html", "logs/server.log", "logs/site0.log",
                 "logs/site1.log"):
        assert (out / name).is_file(), name
    s = json.loads((out / "federated.json").read_text())
    assert s["strategy"] == "fedprox" and s["flower"]["version"]
    assert [r["round"] for r in s["rounds_log"]] == [0, 1, 2]
    assert [r["round"] for r in s["centralised_log"]] == [0, 1, 2]
    # the proximal term reached the sites' loss
    assert all(site["train_proximal"] >= 0 for site in s["rounds_log"][1]["fit_sites"])
    # bytes: the global weights to each site twice a round (fit, evaluate), back once
    model = load(out / "model.safetensors")
    payload = payload_bytes(ndarrays_to_parameters(get_weights(model.members[0])))
    for r in s["rounds_log"][1:]:
        assert r["bytes_down"] == 4 * payload and r["bytes_up"] == 2 * payload
    assert s["bytes"]["total"] == 2 * 6 * payload
    # the saved model is the last global model: it scores the server's test set as the
    # server did in the last round
    sites = np.genfromtxt(out / "sites.csv", delimiter=",", names=True, dtype=None,
                          encoding="utf-8")
    task = make_task("property", json.loads((out / "config.json").read_text())["model"],
                     {"target_columns": [ESOL_TARGET]})
    data = task.load(str(molecules))
    test = task.subset(data, sites["item"][sites["part"] == "test"])
    _, metrics = task.evaluate(model, test)
    assert metrics["rmse"] == pytest.approx(s["final"]["federated"]["rmse"], rel=1e-5)
    report = (out / "report.html").read_text()
    assert "convergence.png" in report and "site 1" in report
    # the domain's own command loads it
    pred = tmp_path / "pred.csv"
    result = pmt("property", "predict", "-i", molecules, "-m", out / "model.safetensors",
                 "-o", pred)
    assert result.exit_code == 0, result.stderr
    assert len(pred.read_text().splitlines()) == 101
    # an existing output folder needs --overwrite
    line = _one_line(pmt("federated", "run", "-c", cfg, "-o", out), 2)
    assert "--overwrite" in line


@pytest.mark.slow  # ~1-2 min of Flower processes; test_run_end_to_end_... covers the run,
# tests/federated/test_tasks.py the EHR adapter
def test_ehr_risk_model_trains_across_sites(pmt, tmp_path, monkeypatch):
    import socket

    from pmtoolkit.federated import run as fed_run

    # the first port offered is taken by the time the server binds: the run moves on
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = [taken.getsockname()[1]]
    free = fed_run._free_port
    monkeypatch.setattr(fed_run, "_free_port", lambda: ports.pop() if ports else free())
    cfg = tmp_path / "ehr.toml"
    cfg.write_text("\n".join([
        "[federated]", 'task = "ehr"', 'data = "synthea_example"', "sites = 2", "rounds = 2",
        'split = "iid"', "test_fraction = 0.25", "centralised = false", "[data]",
        'index = "each_visit"', "[model]", 'arch = "gru"', "embedding_dim = 8",
        "hidden_dim = 8", 'device = "cpu"']) + "\n")
    out = tmp_path / "out"
    result = pmt("federated", "run", "-c", cfg, "-o", out)
    taken.close()
    assert result.exit_code == 0, result.stderr
    assert "retrying on another" in result.stderr
    s = json.loads((out / "federated.json").read_text())
    assert "auroc" in s["final"]["federated"] and s["centralised_log"] == []
    risk = tmp_path / "risk.csv"
    from pmtoolkit.core import shipped

    events = shipped.path("synthea_example", "dataset").parent
    result = pmt("ehr", "predict", "-i", events, "-m", out / "model.safetensors", "-o", risk)
    assert result.exit_code == 0, result.stderr
    assert "probability" in risk.read_text().splitlines()[0]


def test_split_preview(pmt, molecules, tmp_path):
    cfg = _config(tmp_path / "run.toml", molecules, split="dirichlet", alpha=0.1)
    result = pmt("federated", "split", "-c", cfg, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["site"] for r in rows] == ["site 0", "site 1", "test (server)"]
    assert sum(r["samples"] for r in rows) == 100
    means = [r["label_mean"] for r in rows[:2]]
    assert abs(means[0] - means[1]) > 0.5  # strong label skew at alpha 0.1
    table = pmt("federated", "split", "-c", cfg, "--set", "split=iid")
    assert table.exit_code == 0 and table.stdout.splitlines()[0].startswith("site\tsamples")


@pytest.mark.parametrize("sets, expected", [
    (["bogus=1"], "unknown key 'bogus'"),
    (["strategy=fedsgd"], "invalid value 'fedsgd'"),
    (["sites=1"], "at least 2 sites"),
    (["data=no/such.csv"], "does not exist"),
    (["model.architecture=forest"], "tree ensemble"),
    (["modle.depth=2"], "unknown table 'modle'"),
    (["split=group"], "group_by"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(pmt, molecules, tmp_path, sets,
                                                         expected):
    cfg = _config(tmp_path / "run.toml", molecules)
    out = tmp_path / "out"
    args = ["federated", "run", "-c", cfg, "-o", out]
    for s in sets:
        args += ["--set", s]
    assert expected in _one_line(pmt(*args), 2)
    assert not out.exists()


def test_unknown_table_in_the_file(pmt, molecules, tmp_path):
    cfg = _config(tmp_path / "run.toml", molecules)
    cfg.write_text(cfg.read_text() + "[training]\nepochs = 3\n")
    assert "unknown table 'training'" in _one_line(
        pmt("federated", "run", "-c", cfg, "-o", tmp_path / "out"), 2)


def test_a_failing_site_stops_the_run_and_every_process(pmt, molecules, tmp_path):
    cfg = _config(tmp_path / "run.toml", molecules, test_fraction=0.0, centralised=False)
    out = tmp_path / "out"
    before = _children_now()
    # a GPU the sites do not have: the settings are valid, each site fails as it trains
    # (the machine that starts the run cannot tell what the sites' hardware is)
    line = _one_line(pmt("federated", "run", "-c", cfg, "-o", out, "--set",
                         'model.device="cuda:99"'), 1)
    assert "federated run failed" in line and "cuda:99" in line
    assert not out.exists()
    assert not _no_children(before)
