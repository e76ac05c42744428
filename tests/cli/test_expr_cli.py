"""`pmt expr` end to end on small simulated matrices, including bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.expression.conftest import simulate


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    folder = tmp_path_factory.mktemp("expr")
    adata = simulate(n_per_group=70, n_genes=150, groups=3, samples_per_group=3)
    # whole-transcriptome-like depth so the default QC keeps the cells
    adata.X = adata.X * 4
    path = folder / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def test_run_writes_everything_a_person_and_a_script_need(pmt, cells, tmp_path):
    out = tmp_path / "run"
    markers = tmp_path / "markers.toml"
    markers.write_text('A = ["G0", "G1", "G2"]\nB = ["G10", "G11", "G12"]\nC = ["G20", "G21"]\n')
    result = pmt("expr", "run", "-i", cells, "-o", out, "--label-column", "group", "--min-genes",
                 "20",
                 "--n-top-genes", "100", "--resolution", "0.3", "--markers", markers)
    assert result.exit_code == 0, result.stderr
    assert "ARI" in result.stderr
    for name in ("adata.h5ad", "markers.csv", "report.html", "config.json",
                 "figures/qc_violins.png", "figures/umap_leiden.png", "figures/umap_label.png",
                 "figures/markers_dotplot.png", "figures/umap_cell_type.png"):
        assert (out / name).is_file(), name
    import anndata as ad

    adata = ad.read_h5ad(out / "adata.h5ad")
    assert {"X_pca", "X_umap"} <= set(adata.obsm) and "counts" in adata.layers
    assert {"leiden", "cell_type", "doublet_score", "pct_counts_mito"} <= set(adata.obs)
    assert adata.uns["pmt_run"]["metrics"]["leiden_ari"] > 0.9
    assert dict(zip(adata.obs["group"], adata.obs["cell_type"])) == {
        "type0": "A", "type1": "B", "type2": "C"}
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["resolution"] == 0.3
    assert [s["step"] for s in config["steps"]][:3] == ["counts", "qc_metrics", "filter"]
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 5 and "ARI" in html
    table = pd.read_csv(out / "markers.csv")
    assert {"group", "rank", "gene", "log2_fold_change", "padj"} <= set(table.columns)
    # existing output folder: refused without --overwrite
    again = pmt("expr", "run", "-i", cells, "-o", out)
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_annotate_embed_and_de(pmt, cells, tmp_path):
    out = tmp_path / "labelled.h5ad"
    result = pmt("expr", "annotate", "-i", cells, "--reference", cells, "--label-column", "group",
                 "-o", out,
                 "--predictions", tmp_path / "pred.csv", "--epochs", "20",
                 "--save-model", tmp_path / "c.safetensors")
    assert result.exit_code == 0, result.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    truth = pd.read_csv(tmp_path / "pred.csv")["cell"].map(
        dict(zip(*[np.asarray(x) for x in _obs(cells, "group")])))
    assert (pred["label"] == truth).mean() > 0.95
    again = pmt("expr", "annotate", "-i", cells, "--reference", tmp_path / "c.safetensors", "-o",
                tmp_path / "again.h5ad")
    assert again.exit_code == 0, again.stderr

    emb = tmp_path / "emb.h5ad"
    result = pmt("expr", "embed", "-i", cells, "-o", emb, "--epochs", "3", "--n-latent", "4")
    assert result.exit_code == 0, result.stderr
    import anndata as ad

    assert ad.read_h5ad(emb).obsm["X_pmt_vae"].shape == (210, 4)

    result = pmt("expr", "de", "-i", cells, "--condition-key", "condition", "--sample-key",
                 "sample",
                 "--case", "case", "--reference", "ctrl", "--groupby", "group", "--min-cells",
                 "5", "-o", tmp_path / "de.csv")
    assert result.exit_code == 0, result.stderr
    de = pd.read_csv(tmp_path / "de.csv")
    assert set(de["group"]) == {"type0", "type1", "type2"} and de["padj"].max() <= 1
    result = pmt("expr", "de", "-i", cells, "--condition-key", "condition", "--sample-key",
                 "sample",
                 "--case", "case", "--reference", "ctrl", "--groupby", "group", "--min-cells",
                 "5", "-o", "-")  # a table to stdout, for pipes
    import io

    assert pd.read_csv(io.StringIO(result.stdout)).shape == de.shape


def _obs(path, key):
    import anndata as ad

    a = ad.read_h5ad(path)
    return a.obs_names, a.obs[key].astype(str)


def test_classify_train_and_predict_bulk_tables(pmt, tmp_path):
    adata = simulate(n_per_group=30, n_genes=60, groups=2, seed=4)
    matrix = pd.DataFrame(adata.X.toarray().T, index=adata.var_names, columns=adata.obs_names)
    matrix.index.name = "gene"  # genes x samples, as bulk tables come
    matrix.to_csv(tmp_path / "bulk.csv")
    pd.DataFrame({"sample": adata.obs_names, "status": adata.obs["group"].astype(str)}).to_csv(
        tmp_path / "pheno.csv", index=False)
    out = tmp_path / "model"
    result = pmt("expr", "classify", "train", "-i", tmp_path / "bulk.csv", "--labels",
                 tmp_path / "pheno.csv", "--label-column", "status", "-o", out, "--folds", "3",
                 "--epochs", "30", "--n-top-genes", "40")
    assert result.exit_code == 0, result.stderr
    assert "3-fold CV accuracy" in result.stderr
    attr = pd.read_csv(out / "attributions.csv")
    top1 = attr[(attr["class"] == "type1") & (attr["rank"] <= 5)]["gene"]
    assert len(set(top1) & {f"G{i}" for i in range(10, 20)}) >= 3
    result = pmt("expr", "classify", "predict", "-i", tmp_path / "bulk.csv", "-m",
                 out / "model.safetensors", "-o", tmp_path / "pred.csv", "--attributions",
                 tmp_path / "attr.csv")
    assert result.exit_code == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 60
    assert pd.read_csv(tmp_path / "attr.csv").shape == (60, 41)


def test_bad_input_is_one_line_and_exit_2(pmt, cells, tmp_path):
    bad = tmp_path / "neg.csv"
    pd.DataFrame([[1, -2], [3, 4]], index=["c1", "c2"], columns=["A", "B"]).rename_axis(
        "cell").to_csv(bad)
    result = pmt("expr", "run", "-i", bad, "-o", tmp_path / "o1", "--orientation", "cells-by-genes")
    assert result.exit_code == 2 and "negative value -2" in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "o1").exists()

    frac = tmp_path / "lognorm.csv"
    pd.DataFrame([[1.5, 0.0], [0.7, 2.2]], index=["c1", "c2"], columns=["A", "B"]).rename_axis(
        "cell").to_csv(frac)
    result = pmt("expr", "embed", "-i", frac, "-o", tmp_path / "e.h5ad")
    assert result.exit_code == 2 and "non-integer" in result.stderr

    dup = tmp_path / "dup.csv"
    pd.DataFrame([[1, 2], [3, 4]], index=["c1", "c2"], columns=["A", "A"]).rename_axis(
        "cell").to_csv(dup)
    result = pmt("expr", "run", "-i", dup, "-o", tmp_path / "o2")
    assert result.exit_code == 2 and "duplicated gene name" in result.stderr

    empty = tmp_path / "empty.csv"
    pd.DataFrame([[0, 0], [3, 4]], index=["c1", "c2"], columns=["A", "B"]).rename_axis(
        "cell").to_csv(empty)
    result = pmt("expr", "embed", "-i", empty, "-o", tmp_path / "e.h5ad")
    assert result.exit_code == 2 and "have no counts, e.g. 'c1'" in result.stderr

    other = tmp_path / "other.csv"
    pd.DataFrame(np.ones((3, 4), int), index=["c1", "c2", "c3"],
                 columns=["X1", "X2", "X3", "X4"]).rename_axis("cell").to_csv(other)
    result = pmt("expr", "annotate", "-i", other, "--reference", "pbmc68k", "-o",
                 tmp_path / "q.h5ad")
    assert result.exit_code == 2 and "genes are missing" in result.stderr
    assert not (tmp_path / "q.h5ad").exists()

    result = pmt("expr", "annotate", "-i", cells, "--reference", "pbmc86k", "-o",
                 tmp_path / "q.h5ad")
    assert result.exit_code == 2 and "pbmc68k" in result.stderr
    result = pmt("expr", "embed", "-i", cells, "-o", tmp_path / "e.csv")
    assert result.exit_code == 2 and ".h5ad" in result.stderr


def test_run_on_real_cell_ranger_output(pmt, shared_data, tmp_path):
    folder = shared_data / "expression" / "scanpy_10x_v3"
    result = pmt("expr", "run", "-i", folder, "-o", tmp_path / "default")
    # a 507-feature panel: no cell has 200 genes, and the message says what to loosen
    assert result.exit_code == 2 and "no cells pass QC" in result.stderr
    result = pmt("expr", "run", "-i", folder, "-o", tmp_path / "run", "--min-genes", "5",
                 "--no-plots")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "run" / "adata.h5ad").is_file()


def _interrupt_at(monkeypatch, epoch, seen):
    """Make the Lightning module every domain trains with (core.task.task_module) record
    the epochs it trains in ``seen`` and raise SIGTERM's Interrupted at ``epoch``."""
    import signal

    from pmtoolkit.core import task as module_of
    from pmtoolkit.core.errors import Interrupted

    original = getattr(module_of.task_module, "unpatched", module_of.task_module)

    def build(*args, **kwargs):
        module = original(*args, **kwargs)
        step = module.training_step

        def training_step(batch, batch_idx):
            if module.current_epoch == epoch:
                raise Interrupted(signal.SIGTERM)
            seen.add(module.current_epoch)
            return step(batch, batch_idx)

        module.training_step = training_step
        return module

    build.unpatched = original
    monkeypatch.setattr(module_of, "task_module", build)


def test_embed_resumes_after_an_interruption(pmt, cells, tmp_path, monkeypatch):

    out = tmp_path / "emb.h5ad"
    work = tmp_path / "emb.h5ad.work"
    args = ["expr", "embed", "-i", cells, "-o", out, "--epochs", 10, "--n-latent", 3]
    seen: set[int] = set()
    _interrupt_at(monkeypatch, 7, seen)
    result = pmt(*args)
    assert result.exit_code == 143 and "interrupted" in result.stderr, result.stderr
    assert (work / "work" / "last.ckpt").is_file() and not out.exists()
    refused = pmt(*args)
    assert refused.exit_code == 2 and "holds an interrupted run" in refused.stderr
    seen.clear()
    _interrupt_at(monkeypatch, -1, seen)
    resumed = pmt(*args, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert seen == {5, 6, 7, 8, 9}  # from the checkpoint written after epoch 5
    assert out.is_file() and not work.exists()


def test_classify_train_resumes_after_an_interruption(pmt, cells, tmp_path, monkeypatch):

    out = tmp_path / "cls"
    args = ["expr", "classify", "train", "-i", cells, "--label-column", "group", "--folds", 0, "-o",
            out, "--epochs", 10, "--hidden-size", 8, "--patience", 0]
    seen: set[int] = set()
    _interrupt_at(monkeypatch, 7, seen)
    result = pmt(*args)
    assert result.exit_code == 143 and "interrupted" in result.stderr
    assert (out / "work" / "final" / "last.ckpt").is_file()
    assert not (out / "model.safetensors").exists()
    seen.clear()
    _interrupt_at(monkeypatch, -1, seen)
    other = pmt(*[a if a != 8 else 16 for a in args], "--resume")
    assert other.exit_code == 2 and "other settings" in other.stderr
    resumed = pmt(*args, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert seen == {5, 6, 7, 8, 9}
    assert (out / "model.safetensors").is_file() and not (out / "work").exists()


@pytest.mark.slow  # the whole pipeline twice; test_embed_resumes_... covers the VAE quickly
def test_run_with_the_vae_resumes_after_an_interruption(pmt, cells, tmp_path, monkeypatch):

    out = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text("embedding = 'vae'\nmin_genes = 20\nn_top_genes = 100\ndoublets = false\n"
                      "[vae]\nepochs = 10\nn_latent = 3\n")
    args = ["expr", "run", "-i", cells, "-o", out, "-c", config, "--no-plots"]
    seen: set[int] = set()
    _interrupt_at(monkeypatch, 7, seen)
    result = pmt(*args)
    assert result.exit_code == 143 and "interrupted" in result.stderr, result.stderr
    assert (out / "work" / "last.ckpt").is_file() and not (out / "adata.h5ad").exists()
    seen.clear()
    _interrupt_at(monkeypatch, -1, seen)
    resumed = pmt(*args, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert seen == {5, 6, 7, 8, 9}
    assert (out / "adata.h5ad").is_file() and not (out / "work").exists()
