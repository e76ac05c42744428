"""Small simulated count matrices with known structure, built in memory."""
from __future__ import annotations

import numpy as np
import pytest


def simulate(n_per_group: int = 80, n_genes: int = 120, groups: int = 3, seed: int = 0,
             samples_per_group: int = 0):
    """Negative-binomial counts: ``groups`` cell populations, each with 10 marker genes at 8x;
    genes named G0.. plus 5 MT- and 5 RPS genes; obs ``group`` and (when
    ``samples_per_group``) ``sample`` and ``condition``."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n = n_per_group * groups
    base = rng.gamma(0.6, 1.0, n_genes) + 0.05
    group = np.repeat(np.arange(groups), n_per_group)
    mean = np.tile(base, (n, 1))
    for g in range(groups):
        mean[group == g, 10 * g:10 * g + 10] *= 8.0
    lib = rng.lognormal(0.0, 0.3, n)[:, None]
    theta = 5.0
    counts = rng.negative_binomial(theta, theta / (theta + mean * lib * 2)).astype(np.float32)
    names = ([f"MT-{i}" for i in range(5)] + [f"RPS{i}" for i in range(5)]
             + [f"G{i}" for i in range(n_genes - 10)])
    # the first 10 columns are markers of group 0: keep them ordinary genes, put MT/RPS last
    names = [f"G{i}" for i in range(n_genes - 10)] + names[:10]
    obs = pd.DataFrame({"group": pd.Categorical([f"type{g}" for g in group])},
                       index=[f"cell{i}" for i in range(n)])
    if samples_per_group:
        sample = np.array([f"s{i % (2 * samples_per_group)}" for i in range(n)])
        obs["sample"] = sample
        obs["condition"] = np.where(np.char.lstrip(sample, "s").astype(int) < samples_per_group,
                                    "ctrl", "case")
    return ad.AnnData(X=sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=names))


@pytest.fixture
def counts():
    return simulate()
