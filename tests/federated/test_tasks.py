"""The adapters: each domain's data dealt, written and read back in its own format, the
shared set-up from site summaries only, and local training with the domain's loss (FedProx
keeping a site near the global weights)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.federated.local import train_local
from pmtoolkit.federated.params import get_weights, set_weights
from pmtoolkit.federated.split import plan
from pmtoolkit.federated.tasks import make_task

SMALL_GNN = {"hidden_size": 16, "ffn_hidden_size": 16, "depth": 2, "batch_size": 16,
             "lr": 0.005, "device": "cpu"}
ESOL_TARGET = "measured log solubility in mols per litre"


@pytest.fixture(scope="module")
def esol_task():
    task = make_task("property", SMALL_GNN, {"target_columns": [ESOL_TARGET]})
    data = task.load("esol")
    return task, data.subset(np.arange(120))


def _distance(a, b):
    return float(np.sqrt(sum(((x - y) ** 2).sum() for x, y in zip(a, b)
                             if x.dtype == np.float32)))


def test_property_setup_from_site_summaries_equals_pooled_statistics(esol_task):
    task, data = esol_task
    p = plan(task.labels(data), sites=3, method="dirichlet", alpha=0.5, test_fraction=0.2)
    setup = task.setup([task.summary(task.subset(data, idx)) for idx in p.train])
    pooled = data.y[np.concatenate(p.train), 0].astype(np.float64)
    assert setup["y_mean"][0] == pytest.approx(pooled.mean(), rel=1e-6)
    assert setup["y_std"][0] == pytest.approx(pooled.std(), rel=1e-5)
    assert setup["targets"] == [ESOL_TARGET]


def test_property_site_file_round_trip(esol_task, tmp_path):
    task, data = esol_task
    part = task.subset(data, np.arange(0, 120, 7))
    task.write(part, tmp_path / task.site_file)
    back = task.read(tmp_path / task.site_file)
    assert back.smiles == part.smiles
    np.testing.assert_allclose(back.y, part.y, rtol=1e-6)


def test_local_training_lowers_the_loss_and_fedprox_stays_near_the_global_model(esol_task):
    task, data = esol_task
    setup = task.setup([task.summary(data)])
    model = task.new_model(setup, seed=0)
    net = task.network(model)
    start = get_weights(net)
    before, _ = task.evaluate(model, data)
    info = train_local(task, model, data, setup, epochs=4, seed=1)
    after, metrics = task.evaluate(model, data)
    assert after < before and "rmse" in metrics and info["train_loss"] > 0
    free = _distance(get_weights(net), start)
    set_weights(net, start)
    info = train_local(task, model, data, setup, epochs=4, seed=1, mu=50.0)
    held = _distance(get_weights(net), start)
    assert info["train_proximal"] > 0
    assert held < 0.5 * free


def test_property_refuses_what_cannot_be_averaged():
    with pytest.raises(BadInputError, match="tree ensemble"):
        make_task("property", {"architecture": "forest"})
    with pytest.raises(BadInputError, match="ensemble_size"):
        make_task("property", {"ensemble_size": 3})
    with pytest.raises(BadInputError, match="unknown key"):
        make_task("property", {"hiden_size": 3})
    with pytest.raises(MissingInputError, match="shipped"):
        make_task("property", {}, {"target_columns": ["y"]}).load("no/such/file.csv")


def test_ehr_patients_stay_at_one_site_and_the_vocabulary_comes_from_site_counts(tmp_path):
    task = make_task("ehr", {"arch": "gru", "embedding_dim": 8, "hidden_dim": 8,
                             "device": "cpu", "batch_size": 64},
                     {"index": "each_visit"})
    samples = task.load("synthea_example")
    units = task.units(samples)
    p = plan(task.labels(samples), sites=2, method="dirichlet", alpha=1.0, units=units,
             test_fraction=0.25, seed=0)
    site, _ = p.site_of(len(samples))
    by_patient = pd.Series(site).groupby(pd.Series(units)).nunique()
    assert (by_patient == 1).all()
    parts = [task.subset(samples, idx) for idx in p.train]
    setup = task.setup([task.summary(x) for x in parts])
    codes = {c for x in parts for s in x for v in s.visits for c in v}
    assert set(setup["tokens"][2:]) == codes
    positives = sum(s.label for x in parts for s in x)
    n = sum(len(x) for x in parts)
    assert setup["pos_weight"] == pytest.approx((n - positives) / positives)
    # a site's share in the domain's dataset format, read back by pmt ehr's reader
    task.write(parts[0], tmp_path / task.site_file)
    back = task.read(tmp_path / task.site_file)
    assert [s.patient_id for s in back] == [s.patient_id for s in parts[0]]
    model = task.new_model(setup, seed=0)
    train_local(task, model, parts[0], setup, epochs=1, seed=0, mu=0.1)
    loss, metrics = task.evaluate(model, task.subset(samples, p.test))
    assert np.isfinite(loss) and 0.0 <= metrics["auroc"] <= 1.0


def test_ehr_refuses_next_visit():
    with pytest.raises(BadInputError, match="next_visit"):
        make_task("ehr", {}, {"kind": "next_visit"})
