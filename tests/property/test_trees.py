"""The tree baselines: flattened scikit-learn ensembles predict exactly what scikit-learn does,
and the boost architecture trains, saves and loads under the model contract."""
import numpy as np
import pandas as pd
import pytest

from pmtoolkit.property.config import PropertyConfig
from pmtoolkit.property.data import read_property_data
from pmtoolkit.property.forest import FlatForest, fit_boosting
from pmtoolkit.core.model import load_model
from pmtoolkit.property.model import evaluate, fit


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    y = X[:, 0] * 2 - X[:, 1] ** 2 + 0.1 * rng.normal(size=300)
    return X, y


def test_flattened_boosting_matches_scikit_learn(xy):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    X, y = xy
    reg = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X, y)
    flat = FlatForest.from_boosting(reg, classification=False)
    np.testing.assert_allclose(flat.predict(X), reg.predict(X), rtol=1e-9, atol=1e-9)
    labels = (y > 0).astype(float)
    clf = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, labels)
    flat = FlatForest.from_boosting(clf, classification=True)
    np.testing.assert_allclose(flat.predict(X), clf.predict_proba(X)[:, 1], rtol=1e-9,
                               atol=1e-12)


def test_boosting_tensors_round_trip(xy):
    X, y = xy
    flat = fit_boosting(X, y, classification=False, n_estimators=20, learning_rate=0.1, seed=0)
    back = FlatForest.from_tensors(flat.tensors("m"), "m")
    assert back.boosted and back.base == flat.base
    np.testing.assert_array_equal(back.predict(X), flat.predict(X))
    # the fit is real: far better than predicting the mean
    assert np.mean((flat.predict(X) - y) ** 2) < 0.3 * np.var(y)


def test_boosting_single_class_task_predicts_that_class(xy):
    X, _ = xy
    flat = fit_boosting(X, np.ones(len(X)), classification=True, n_estimators=5,
                        learning_rate=0.1, seed=0)
    assert (flat.predict(X) == 1.0).all()


def test_boost_architecture_round_trip(test_data, tmp_path):
    data, _ = read_property_data(test_data / "esol_tiny.csv", target_columns=["logS"])
    model = fit(data, None, PropertyConfig(architecture="boost", n_estimators=50,
                                           min_samples_leaf=3, ensemble_size=2))
    assert evaluate(model, data)["mean"]["r2"] > 0.8  # training fit
    model.save(tmp_path / "boost.safetensors")
    back = load_model(tmp_path / "boost.safetensors")
    smiles = data.smiles[:5] + ["not a smiles"]
    a, b = model.predict(smiles).frame, back.predict(smiles).frame
    pd.testing.assert_frame_equal(a, b)
    assert (a["logS_uncertainty"][:5] > 0).all()  # two seeds subsample different features
    assert np.isnan(a["logS_pred"].iloc[5])


def test_boost_multitask_classification_with_missing_labels(test_data):
    data, _ = read_property_data(test_data / "tox21_tiny.csv",
                                 target_columns=["NR-AR", "NR-AhR", "SR-p53"],
                                 task="classification")
    model = fit(data, None, PropertyConfig(task="classification", architecture="boost",
                                           n_estimators=50, min_samples_leaf=3))
    probs = model.predict(data.smiles).frame[["NR-AR_pred", "NR-AhR_pred", "SR-p53_pred"]]
    assert ((probs >= 0) & (probs <= 1)).all().all()
    assert evaluate(model, data)["mean"]["roc_auc"] > 0.8
