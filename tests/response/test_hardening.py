"""What the drug-response readers and trainers refuse (issue 23): feature tables with
non-finite values, responses whose spread overflows, panel sizes beyond what the simulator
can draw."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError, ConfigError


def _table(path, **columns):
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_response_features_must_be_finite_float32_naming_sample_and_feature(tmp_path):
    from pmtoolkit.response.data import read_features

    path = _table(tmp_path / "f.csv", sample_id=["s1", "s2"], g1=[1.0, 2.0], g2=[3.0, 1e39])
    with pytest.raises(BadInputError, match="sample 's2' has a missing, infinite or "
                                            "out-of-range value of feature 'g2'"):
        read_features(path)
    path = _table(tmp_path / "f.csv", sample_id=["s1", "s2"], g1=[1.0, -np.inf])
    with pytest.raises(BadInputError, match="sample 's2'.*feature 'g1' \\(-inf\\)"):
        read_features(path)


def test_response_check_training_refuses_responses_whose_spread_overflows():
    from pmtoolkit.response.config import ResponseConfig
    from pmtoolkit.response.data import Drugs, ResponseData, SampleFeatures
    from pmtoolkit.response.model import check_training

    samples = SampleFeatures(["s1", "s2"], np.ones((2, 3), np.float32), ["a", "b", "c"],
                             counts=False)
    data = ResponseData(samples, Drugs(["d1"], ["CCO"]), np.array([0, 1]), np.array([0, 0]),
                        np.array([1e300, -1e300]))
    with pytest.raises(BadInputError, match="not all finite"):
        check_training(data, ResponseConfig(device="cpu"))
    with pytest.raises(ConfigError, match="epochs"):
        check_training(data, ResponseConfig(epochs=0))


@pytest.mark.parametrize("spec, message", [
    ({"samples": 20_000, "genes": 100_000}, "samples x genes must be at most"),
    ({"module_strength": 50.0}, "module-strength"),
])
def test_simulated_panel_sizes_are_bounded(tmp_path, spec, message):
    from pmtoolkit.response.config import PanelConfig
    from pmtoolkit.response.simulate import simulate_panel

    with pytest.raises(BadInputError, match=message):
        simulate_panel(tmp_path / "out", PanelConfig(**spec))
    assert not list(tmp_path.iterdir())
