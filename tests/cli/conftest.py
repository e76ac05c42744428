"""Fixtures of the CLI tests that run on Dask."""
from __future__ import annotations

import contextlib

import pytest


@pytest.fixture(scope="module")
def scheduler():
    """The address of one local Dask cluster for the module: two worker processes of one
    thread each (they load torch and the models once, for every test there)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0",
                                  env={"OMP_NUM_THREADS": "1"}) as cluster:
        yield cluster.scheduler_address


@contextlib.contextmanager
def torch_threads(n: int):
    """torch at ``n`` threads, as the workers: float32 sums may differ with the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
