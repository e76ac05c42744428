"""``pmt expr annotate`` and ``pmt expr embed`` on an .h5ad in partitions of cells: the values
of a single-process run on two Dask worker processes, bad input, and a worker that reads only
its own rows."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.distributed import PARTS_SUFFIX
from tests.cli.conftest import torch_threads
from tests.expression.conftest import simulate

distributed = pytest.importorskip("distributed")
ad = pytest.importorskip("anndata")


def _cells(n_per_group: int, seed: int = 0):
    adata = simulate(n_per_group=n_per_group, n_genes=150, groups=3, samples_per_group=2,
                     seed=seed)
    adata.X = adata.X * 4
    return adata


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A query of 5,100 cells (two partitions of the classifier's 4,096-cell batches, five
    of the VAE's 1,024), and a classifier and a VAE trained on a small reference."""
    from pmtoolkit.expression.classifier import fit_classifier
    from pmtoolkit.expression.config import ExpressionClassifierConfig, VAEConfig
    from pmtoolkit.expression.vae import fit_vae

    folder = tmp_path_factory.mktemp("expr_dask")
    query = folder / "query.h5ad"
    _cells(1700, seed=1).write_h5ad(query)
    ref = _cells(70)
    fit_classifier(ref, "group", ExpressionClassifierConfig(epochs=5)).save(
        folder / "classifier.safetensors")
    fit_vae(ref, VAEConfig(epochs=2, n_latent=4)).save(folder / "vae.safetensors")
    return {"query": query, "classifier": folder / "classifier.safetensors",
            "vae": folder / "vae.safetensors", "folder": folder}


def test_annotate_on_two_workers_writes_the_single_process_values(pmt, files, scheduler,
                                                                  tmp_path):
    args = ("expr", "annotate", "-i", files["query"], "--reference", files["classifier"])
    here, there = tmp_path / "here.h5ad", tmp_path / "there.h5ad"
    with torch_threads(1):
        result = pmt(*args, "-o", here, "--predictions", tmp_path / "here.csv")
    assert result.exit_code == 0, result.stderr
    result = pmt(*args, "-o", there, "--predictions", tmp_path / "there.csv",
                 "--scheduler", scheduler, "--partition-size", "4096")
    assert result.exit_code == 0, result.stderr
    assert "2 partitions (0 from an earlier run)" in result.stderr
    assert "dashboard http://" in result.stderr
    a, b = ad.read_h5ad(here), ad.read_h5ad(there)
    assert a.n_obs == 5100 and list(a.obs_names) == list(b.obs_names)
    assert (a.obs["pmt_label"] == b.obs["pmt_label"]).all()
    assert np.array_equal(a.obs["pmt_label_confidence"].to_numpy(),
                          b.obs["pmt_label_confidence"].to_numpy())
    assert np.array_equal(a.obsm["pmt_label_probabilities"].to_numpy(),
                          b.obsm["pmt_label_probabilities"].to_numpy())
    assert (tmp_path / "here.csv").read_bytes() == (tmp_path / "there.csv").read_bytes()
    assert not (tmp_path / f"there.h5ad{PARTS_SUFFIX}").exists()

    # the input's own elements are kept, and the values are today's in-memory ones
    from pmtoolkit.expression.classify import load

    whole = ad.read_h5ad(files["query"])
    with torch_threads(1):
        load(files["classifier"]).annotate(whole)
    assert list(a.obs.columns) == list(whole.obs.columns)
    assert (a.obs["group"] == whole.obs["group"]).all()
    assert (a.X != whole.X).nnz == 0
    assert np.array_equal(a.obsm["pmt_label_probabilities"].to_numpy(),
                          whole.obsm["pmt_label_probabilities"].to_numpy())
    assert list(a.obsm["pmt_label_probabilities"].columns) == ["type0", "type1", "type2"]
    assert (a.obs["pmt_label"] == whole.obs["pmt_label"]).mean() == 1.0


def test_embed_with_a_saved_vae_on_two_workers_writes_the_single_process_values(
        pmt, files, scheduler, tmp_path):
    args = ("expr", "embed", "-i", files["query"], "-m", files["vae"])
    here, there = tmp_path / "here.h5ad", tmp_path / "there.h5ad"
    with torch_threads(1):
        result = pmt(*args, "-o", here)
    assert result.exit_code == 0, result.stderr
    result = pmt(*args, "-o", there, "--scheduler", scheduler, "--partition-size", "1024")
    assert result.exit_code == 0, result.stderr
    assert "5 partitions (0 from an earlier run)" in result.stderr
    a, b = ad.read_h5ad(here).obsm["X_pmt_vae"], ad.read_h5ad(there).obsm["X_pmt_vae"]
    assert a.shape == (5100, 4) and a.dtype == np.float32
    assert np.array_equal(a, b)

    from pmtoolkit.expression.vae import load_vae

    whole = ad.read_h5ad(files["query"])
    with torch_threads(1):
        assert np.array_equal(load_vae(files["vae"]).latent(whole), a)


def test_a_partition_of_bad_cells_fails_alone_with_exit_2_and_nothing_written(
        pmt, files, scheduler, tmp_path):
    # the second partition (cells 4,097 on) holds a cell without counts
    adata = ad.read_h5ad(files["query"])
    X = adata.X.tolil()
    X[4500, :] = 0
    adata.X = X.tocsr()
    bad = tmp_path / "bad.h5ad"
    adata.write_h5ad(bad)
    out = tmp_path / "out.h5ad"
    result = pmt("expr", "annotate", "-i", bad, "--reference", files["classifier"], "-o", out,
                 "--scheduler", scheduler, "--partition-size", "4096")
    assert result.exit_code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "cells 4,097-5,100" in errors[0] and "have no counts" in errors[0]
    assert not out.exists()
    # the good partition is kept for a rerun to resume from
    parts = tmp_path / f"out.h5ad{PARTS_SUFFIX}"
    assert sorted(p.name for p in parts.glob("part-*.json")) == ["part-00000-0000000.json"]


def test_a_truncated_h5ad_is_a_one_line_error(pmt, files, tmp_path):
    cut = tmp_path / "cut.h5ad"
    data = files["query"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    for extra in ((), ("--workers", "2")):
        out = tmp_path / "out.h5ad"
        result = pmt("expr", "annotate", "-i", cut, "--reference", files["classifier"],
                     "-o", out, *extra)
        assert result.exit_code == 2, result.stderr
        assert "cannot read" in result.stderr and "cut.h5ad" in result.stderr
        assert "Traceback" not in result.stderr
        assert not out.exists() and not (tmp_path / f"out.h5ad{PARTS_SUFFIX}").exists()


def test_a_run_on_dask_needs_an_h5ad(pmt, files, tmp_path):
    table = tmp_path / "cells.csv"
    pd.DataFrame(np.ones((3, 2), int), index=["c1", "c2", "c3"],
                 columns=["G0", "G1"]).rename_axis("cell").to_csv(table)
    result = pmt("expr", "embed", "-i", table, "-m", files["vae"], "-o", tmp_path / "e.h5ad",
                 "--workers", "2")
    assert result.exit_code == 2
    assert "is not an .h5ad file; a run on Dask reads .h5ad files" in result.stderr
    assert not (tmp_path / "e.h5ad").exists()


def test_a_partition_ships_row_numbers_and_its_worker_reads_only_its_rows(files, tmp_path):
    from pmtoolkit.core.distributed import WorkerModel
    from pmtoolkit.expression.classify import load
    from pmtoolkit.expression.partitioned import CellJob

    job = CellJob("annotate", str(files["query"]), WorkerModel.named(load, files["classifier"]),
                  "pmt_label", 4096)
    payloads = list(job.read(job.input))
    assert [(p["start"], p["stop"]) for p in payloads] == [(0, 4096), (4096, 5100)]
    assert all(len(pickle.dumps(p)) < 200 for p in payloads)  # no matrix data travels

    # a worker of the second partition never touches the first partition's rows: values
    # there that no model could take change nothing
    import h5py

    damaged = tmp_path / "damaged.h5ad"
    damaged.write_bytes(files["query"].read_bytes())
    with h5py.File(damaged, "r+") as f:
        end = int(f["X/indptr"][4096])
        f["X/data"][:end] = np.nan
    first = job.run(payloads[1]).tables[0]
    other = CellJob("annotate", str(damaged), job.model, "pmt_label", 4096)
    again = other.run(payloads[1]).tables[0]
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.slow
def test_a_partition_takes_the_same_memory_from_a_file_ten_times_larger(files, tmp_path):
    import tracemalloc

    from pmtoolkit.core.distributed import WorkerModel
    from pmtoolkit.expression.classify import load
    from pmtoolkit.expression.partitioned import CellJob

    model = WorkerModel.named(load, files["classifier"])
    peaks = []
    for n_per_group in (2000, 20000):
        path = tmp_path / f"cells{n_per_group}.h5ad"
        _cells(n_per_group).write_h5ad(path)
        job = CellJob("annotate", str(path), model, "pmt_label", 4096)
        payload = next(iter(job.read(job.input)))
        job.run(payload)  # the model and libraries loaded, outside the measure
        tracemalloc.start()
        job.run(payload)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.2 * peaks[0], peaks


def test_an_interrupted_run_resumes_from_its_finished_partitions(pmt, files, tmp_path,
                                                                 monkeypatch):
    from pmtoolkit.expression import partitioned
    from pmtoolkit.expression.partitioned import CellJob

    monkeypatch.setattr(partitioned, "PARTITION_CELLS", 1024)  # five partitions in-process
    args = ("expr", "embed", "-i", files["query"], "-m", files["vae"])
    whole, out = tmp_path / "whole.h5ad", tmp_path / "out.h5ad"
    assert pmt(*args, "-o", whole).exit_code == 0
    run = CellJob.run

    def interrupted(self, payload):
        if payload["start"] >= 4096:
            raise KeyboardInterrupt
        return run(self, payload)

    monkeypatch.setattr(CellJob, "run", interrupted)
    assert pmt(*args, "-o", out).exit_code == 130  # as Ctrl-C
    assert not out.exists()
    assert len(list((tmp_path / f"out.h5ad{PARTS_SUFFIX}").glob("part-*.json"))) == 4
    monkeypatch.setattr(CellJob, "run", run)
    result = pmt(*args, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "(4 from an earlier run)" in result.stderr
    assert np.array_equal(ad.read_h5ad(out).obsm["X_pmt_vae"],
                          ad.read_h5ad(whole).obsm["X_pmt_vae"])
    assert not (tmp_path / f"out.h5ad{PARTS_SUFFIX}").exists()
