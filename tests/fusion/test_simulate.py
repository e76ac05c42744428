"""The cohort simulator: files every domain reads, with the planted signal where it says."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.fusion.simulate import CohortConfig, simulate_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "cohort"
    summary = simulate_cohort(out, CohortConfig(patients=300, seed=1))
    return out, summary


def test_files_are_read_by_the_domains(cohort):
    from pmtoolkit.ehr.events import read_event_table
    from pmtoolkit.expression.io import read
    from pmtoolkit.imaging.io import read_image

    out, summary = cohort
    truth = pd.read_csv(out / "outcomes.csv")
    assert len(truth) == 300 and 0.15 < truth["outcome"].mean() < 0.45
    events = read_event_table(out / "ehr" / "events.csv", patients=out / "ehr" / "patients.csv")
    assert events.summary()["patients"] == 300 and summary["events"] == len(events.events)
    adata = read(out / "expression.h5ad")
    assert adata.n_vars == 300 and adata.n_obs == truth["has_expression"].sum()
    images = pd.read_csv(out / "imaging" / "images.csv")
    assert len(images) == truth["has_imaging"].sum()
    assert read_image(out / "imaging" / images["path"][0]).array.shape[-2:] == (32, 32)
    geno = pd.read_csv(out / "genotypes.csv")
    assert geno.shape[1] == 101 and set(np.unique(geno.iloc[:, 1:])) <= {0, 1, 2}


def test_planted_signal_lives_in_each_modality(cohort):
    from pmtoolkit.ehr.events import read_event_table
    from pmtoolkit.expression.io import read

    out, _ = cohort
    truth = pd.read_csv(out / "outcomes.csv").set_index("patient_id")
    ev = read_event_table(out / "ehr" / "events.csv").events
    risk = ev[ev["code"].str.startswith("R")].groupby("patient_id").size()
    risk = risk.reindex(truth.index, fill_value=0)
    assert np.corrcoef(risk, truth["ehr_factor"])[0, 1] > 0.4
    adata = read(out / "expression.h5ad")
    x = np.asarray(adata.X)
    module = np.log1p(x[:, :20]).mean(1) - np.log1p(x[:, 20:]).mean(1)
    assert np.corrcoef(module, truth.loc[adata.obs_names, "expression_factor"])[0, 1] > 0.6
    # every factor with a positive weight raises the outcome
    for m in ("ehr", "expression", "imaging", "genotype"):
        assert truth.groupby("outcome")[f"{m}_factor"].mean().diff().iloc[-1] > 0, m


def test_bad_specs(tmp_path):
    with pytest.raises(BadInputError, match="unknown modality 'mri'"):
        simulate_cohort(tmp_path / "x", CohortConfig(weights={"mri": 1.0}))
    with pytest.raises(BadInputError, match="prevalence"):
        simulate_cohort(tmp_path / "y", CohortConfig(prevalence=1.5))
    assert not (tmp_path / "x").exists()


def test_interaction_is_a_product_of_two_modalities(tmp_path):
    weights = dict.fromkeys(("ehr", "expression", "imaging", "genotype"), 0.0)
    simulate_cohort(tmp_path / "c", CohortConfig(patients=2000, seed=4, weights=weights,
                                               interaction=3.0, prevalence=0.5))
    truth = pd.read_csv(tmp_path / "c" / "outcomes.csv")
    y = truth["outcome"].to_numpy()
    product = truth["ehr_factor"] * truth["expression_factor"]
    assert np.corrcoef(product, y)[0, 1] > 0.4
    # neither factor alone says anything
    for m in ("ehr", "expression"):
        assert abs(np.corrcoef(truth[f"{m}_factor"], y)[0, 1]) < 0.08
