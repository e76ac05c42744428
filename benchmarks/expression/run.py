"""Gene-expression benchmark: pmtoolkit's single-cell pipeline, NB-VAE and classifier beside
scanpy called directly, scvi-tools' SCVI and scikit-learn, on pbmc68k (700 PBMCs, 765 genes,
raw UMI counts; 10 FACS-sorted ``bulk_labels``), plus run time and memory on larger inputs.

Sections (``--sections``, all by default):

- ``clusters``: Leiden clusters vs ``bulk_labels`` (ARI, NMI; resolutions 0.3-1.5) and two
  resolution-free figures (15-NN label accuracy, silhouette by label) for the embeddings
  scanpy PCA (called directly), pmtoolkit PCA (``standard_pipeline``), pmtoolkit NB-VAE
  (``fit_vae``) and scvi-tools SCVI (its own venv, ``scvi_runner.py``); seeds 0, 1, 2; the
  VAE's and SCVI's train time on one thread. Every embedding gets the same neighbours (15),
  then Leiden (igraph, 2 iterations) at every resolution on that graph, then UMAP, on the
  same 693 QC-passing cells: pmtoolkit's order (Leiden before UMAP, whose scanpy 1.11
  implementation prunes the graph in place, scverse/scanpy#4028).
- ``transfer``: 5-fold stratified cross-validation of pmtoolkit's ExpressionClassifier
  (seeds 0-2) beside scikit-learn's LogisticRegression on the same log1p-CP10k features and
  the same folds.
- ``runtime``: the whole ``pmt expr run`` command (a fresh process: start-up, plots, h5ad,
  report) against ``direct_scanpy.py`` (the same scanpy calls typed directly, the same plots
  and h5ad), 3 times each, alternating, on pbmc68k and on a 20,000-cell resample of it, with
  scrublet on in both tools (``--big-doublets auto`` turns it off for the big input in both
  when its first run's scrublet step exceeds ``--doublets-limit`` seconds).
- ``memory``: peak RSS and wall time of the pipeline (``run_file``) on 100,000 simulated
  cells × 3,000 genes (negative binomial, sparse CSR), with each step's peak, with the
  default SingleCellConfig and with ``scale=False`` (``--no-scale``: PCA on the sparse HVGs).

    bash benchmarks/expression/setup_anchor_env.sh         # once: scvi-tools' own venv
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 taskset -c 1 \\
        python benchmarks/expression/run.py                 # everything, ~1 h on one core
    python benchmarks/expression/run.py --sections clusters,transfer
    python benchmarks/expression/run.py --sections clusters --rescore   # no retraining
    python benchmarks/expression/run.py --report-only       # rewrite the docs from the records

Every finished measurement is appended to a journal (``--workdir``/journal.jsonl) and kept
in docs/benchmarks/expression.json, so an interrupted run resumes (``--force`` re-measures
the sections named, dropping their old records);
results: docs/benchmarks/expression.md and .json, docs/images/expression_*.png.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import threading
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DATA = ROOT / "data" / "examples" / "pbmc68k_counts.h5ad"
SCVI_PY = ROOT / "benchmarks" / ".venv-scvi" / "bin" / "python"
SCVI_RUNNER = HERE / "scvi_runner.py"
DIRECT = HERE / "direct_scanpy.py"
DOCS = ROOT / "docs" / "benchmarks"
IMAGES = ROOT / "docs" / "images"
LABEL = "bulk_labels"
SEEDS = (0, 1, 2)
RESOLUTIONS = (0.3, 0.5, 0.8, 1.0, 1.5)
SECTIONS = ("clusters", "transfer", "runtime", "memory")
EMBEDDINGS = {"scanpy-pca": "scanpy PCA (called directly)",
              "pmt-pca": "pmtoolkit PCA (standard_pipeline)",
              "pmt-vae": "pmtoolkit NB-VAE (fit_vae)",
              "scvi": "scvi-tools SCVI"}
LOG = None  # set in main
def say(msg: str) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, file=sys.stderr, flush=True)
    if LOG is not None:
        with open(LOG, "a") as fh:
            fh.write(line + "\n")


def quiet() -> None:
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    import logging

    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "scanpy"):
        logging.getLogger(name).setLevel(logging.ERROR)


# -- records ----------------------------------------------------------------------------
class Records:
    """Finished measurements by key: from docs/benchmarks/expression.json, then the journal.
    A journal line ``{"drop_section": name}`` (written by ``--force``) forgets the records of
    that section read so far, so that a re-measured section keeps no stale rows.
    ``command``: the command line that adds records (kept in each record's ``commands``)."""

    def __init__(self, journal: Path, command: str = ""):
        self.journal = journal
        self.command = command
        self.items: dict[str, dict] = {}
        #: the commands listed by the docs before records carried their own
        self.old_commands: list[str] = []
        #: every command that added records, oldest first
        self.command_log: list[str] = []
        old = DOCS / "expression.json"
        if old.exists():
            doc = json.loads(old.read_text())
            self.old_commands = doc.get("meta", {}).get("commands", [])
            self.command_log = doc.get("meta", {}).get("command_log", self.old_commands)
            for r in doc.get("records", []):
                self.items[r["key"]] = r
        if journal.exists():
            for line in journal.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    if "drop_section" in r:
                        self._forget(r["drop_section"])
                    else:
                        self.items[r["key"]] = r

    def _forget(self, section: str) -> None:
        self.items = {k: r for k, r in self.items.items() if r["section"] != section}

    def drop_section(self, section: str) -> None:
        """Forget the section's records, here and (by a marker line) in the journal."""
        self._forget(section)
        with open(self.journal, "a") as fh:
            fh.write(json.dumps({"drop_section": section,
                                 "time": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def add(self, record: dict) -> dict:
        if self.command:
            commands = list(record.get("commands", []))
            record = {**record, "commands": commands + [self.command]
                      if self.command not in commands else commands}
        self.items[record["key"]] = record
        with open(self.journal, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        return record

    def section(self, name: str) -> list[dict]:
        return [r for r in self.items.values() if r["section"] == name]


# -- data ---------------------------------------------------------------------------------
def load_pbmc():
    import anndata as ad

    adata = ad.read_h5ad(DATA)
    adata.obs_names_make_unique()
    return adata


def qc_filtered(adata):
    """The QC-passing cells and genes (the same filters as pmtoolkit's defaults), raw counts
    in X: the input every embedding of the clusters section starts from."""
    sys.path.insert(0, str(HERE))
    import direct_scanpy

    a = adata.copy()
    direct_scanpy.qc(a)
    a = direct_scanpy.filter_cells_genes(a)
    a.X = a.layers["counts"].copy()
    return a


def resample(adata, n_cells: int, seed: int = 0):
    """``n_cells`` new cells: each the Poisson draw of the mean counts of two random cells of
    one ``bulk_labels`` type (types in their original proportions); new barcodes."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(adata.X, dtype=np.float32)
    labels = adata.obs[LABEL].astype(str).to_numpy()
    first = rng.integers(0, adata.n_obs, n_cells)
    second = np.empty(n_cells, dtype=np.int64)
    for lab in np.unique(labels):
        pool = np.flatnonzero(labels == lab)
        where = labels[first] == lab
        second[where] = rng.choice(pool, where.sum())
    chunks = []
    for s in range(0, n_cells, 5000):
        i, j = first[s:s + 5000], second[s:s + 5000]
        lam = ((X[i] + X[j]) * 0.5).tocsr()
        lam.data = rng.poisson(lam.data).astype(np.float32)
        lam.eliminate_zeros()
        chunks.append(lam)
    obs = pd.DataFrame({LABEL: pd.Categorical(labels[first])},
                       index=[f"cell{k:06d}-1" for k in range(n_cells)])
    return ad.AnnData(X=sp.vstack(chunks, format="csr"), obs=obs, var=adata.var[[]].copy())


def simulate(n_cells: int, n_genes: int = 3000, n_types: int = 10, seed: int = 0):
    """Negative-binomial counts of ``n_types`` cell types: per-gene base expression
    (log-normal), 5% of the genes shifted per type (N(0, 1.5) log fold changes), 13 ``MT-``
    and 80 ``RPS``/``RPL`` genes, library sizes log-normal around 2,500 UMIs, inverse
    dispersion 5 (gamma-Poisson). Sparse CSR float32."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1.6, n_genes)
    names = [f"GENE{g:05d}" for g in range(n_genes)]
    for k in range(13):
        names[k] = f"MT-SIM{k}"
        base[k] = rng.normal(1.5, 0.5)
    for k in range(13, 93):
        names[k] = f"{'RPS' if k % 2 else 'RPL'}{k}"
        base[k] = rng.normal(2.5, 0.5)
    shift = np.where(rng.random((n_types, n_genes)) < 0.05,
                     rng.normal(0, 1.5, (n_types, n_genes)), 0.0)
    logits = base[None, :] + shift
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    weights = rng.dirichlet(np.full(n_types, 3.0))
    types = rng.choice(n_types, n_cells, p=weights)
    library = np.exp(rng.normal(np.log(2500), 0.4, n_cells))
    theta = 5.0
    chunks = []
    for s in range(0, n_cells, 4000):
        t, lib = types[s:s + 4000], library[s:s + 4000]
        mean = probs[t] * lib[:, None]
        counts = rng.poisson(rng.gamma(theta, mean / theta)).astype(np.float32)
        chunks.append(sp.csr_matrix(counts))
    obs = pd.DataFrame({"sim_type": pd.Categorical([f"type{t}" for t in types])},
                       index=[f"sim{k:06d}-1" for k in range(n_cells)])
    return ad.AnnData(X=sp.vstack(chunks, format="csr"), obs=obs,
                      var=pd.DataFrame(index=names))


def sparse_bytes(X) -> int:
    return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)


# -- clusters -----------------------------------------------------------------------------
def score_embedding(adata, rep: str, seed: int) -> dict:
    """Neighbours (15) on ``rep``, then Leiden at every resolution, all on that unpruned graph,
    then UMAP (unless ``X_umap`` is there already): pmtoolkit's order. scanpy 1.11's
    ``tl.umap`` prunes the weakest edges of ``obsp['connectivities']`` in place
    (scverse/scanpy#4028), so the neighbours are always recomputed here (a graph left by an
    earlier UMAP is pruned) and no Leiden runs after a UMAP. ARI/NMI vs the labels, 15-NN
    leave-one-out label accuracy and the silhouette of the labels; ``sweep_leiden``: the
    resolution-1 clusters, for comparison with the pipeline's own."""
    import scanpy as sc
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import NearestNeighbors

    from pmtoolkit.expression.standard import cluster_metrics

    labels = adata.obs[LABEL].astype(str).to_numpy()
    sc.pp.neighbors(adata, n_neighbors=15, use_rep=rep, random_state=seed)
    by_res = {}
    sweep_leiden = None
    for res in RESOLUTIONS:
        sc.tl.leiden(adata, resolution=res, flavor="igraph", n_iterations=2, directed=False,
                     random_state=seed, key_added="_res")
        m = cluster_metrics(labels, adata.obs["_res"])
        m["n_clusters"] = int(adata.obs["_res"].nunique())
        by_res[str(res)] = m
        if res == 1.0:
            sweep_leiden = adata.obs["_res"].to_numpy(str)
    if "X_umap" not in adata.obsm:
        sc.tl.umap(adata, min_dist=0.5, random_state=seed)
    emb = np.asarray(adata.obsm[rep])
    nn = NearestNeighbors(n_neighbors=16).fit(emb)
    idx = nn.kneighbors(emb, return_distance=False)[:, 1:]
    codes = np.unique(labels, return_inverse=True)[1]
    votes = np.apply_along_axis(lambda r: np.bincount(r, minlength=codes.max() + 1).argmax(),
                                1, codes[idx])
    return {"resolutions": by_res, "knn15_accuracy": float((votes == codes).mean()),
            "silhouette": float(silhouette_score(emb, labels)), "dims": int(emb.shape[1]),
            "sweep_leiden": sweep_leiden}


def run_clusters(records: Records, workdir: Path, force: bool, rescore: bool = False) -> None:
    """``rescore``: PCA rows are recomputed; VAE and SCVI rows are re-scored from their saved
    latents (train time and epochs kept from the record), without retraining."""
    from pmtoolkit.expression.config import SingleCellConfig, VAEConfig
    from pmtoolkit.expression.standard import cluster_metrics, standard_pipeline
    from pmtoolkit.expression.vae import fit_vae

    sys.path.insert(0, str(HERE))
    import direct_scanpy

    raw = load_pbmc()
    filtered = qc_filtered(raw)
    counts_path = workdir / "pbmc68k_qc_counts.h5ad"
    filtered.write_h5ad(counts_path)
    say(f"clusters: {filtered.n_obs} of {raw.n_obs} cells pass QC, {filtered.n_vars} genes")
    latents = workdir / "latents"
    latents.mkdir(exist_ok=True)
    for seed in SEEDS:
        # (a) scanpy called directly
        key = f"clusters/scanpy-pca/{seed}"
        if force or rescore or key not in records:
            a = filtered.copy()
            t0 = time.perf_counter()
            direct_scanpy.embed_and_cluster(a, seed=seed, umap=True)
            seconds = time.perf_counter() - t0
            np.save(latents / f"scanpy-pca_{seed}.npy", a.obsm["X_pca"])
            if seed == 0:
                np.save(latents / "scanpy-pca_0_umap.npy", a.obsm["X_umap"])
            np.save(latents / f"scanpy-pca_{seed}_leiden.npy", a.obs["leiden"].to_numpy(str))
            r = score_embedding(a, "X_pca", seed)
            sweep_same = cluster_metrics(a.obs["leiden"].to_numpy(str),
                                         r.pop("sweep_leiden"))["ari"]
            records.add({"key": key, "section": "clusters", "embedding": "scanpy-pca",
                         "seed": seed, "seconds": seconds,
                         "sweep_vs_own_leiden_ari": sweep_same, **r})
            say(f"  {key}: ARI@1 {r['resolutions']['1.0']['ari']:.3f} "
                f"kNN {r['knn15_accuracy']:.3f}")
        # (b) pmtoolkit's pipeline, PCA
        key = f"clusters/pmt-pca/{seed}"
        if force or rescore or key not in records:
            a = raw.copy()
            t0 = time.perf_counter()
            standard_pipeline(a, SingleCellConfig(label_key=LABEL, seed=seed))
            seconds = time.perf_counter() - t0
            pipeline_metrics = dict(a.uns["pmt_run"]["metrics"])
            same_cells = list(a.obs_names) == list(filtered.obs_names)
            pca = np.asarray(a.obsm["X_pca"])
            identity = {"same_cells": same_cells, "max_abs_pca_difference": None,
                        "leiden_ari_vs_scanpy": None}
            ref_path = latents / f"scanpy-pca_{seed}.npy"
            if same_cells and ref_path.exists():
                ref = np.load(ref_path)
                ref_leiden = np.load(latents / f"scanpy-pca_{seed}_leiden.npy")
                if pca.shape == ref.shape:  # PC signs are arbitrary: compare magnitudes
                    identity["max_abs_pca_difference"] = float(np.max(np.abs(
                        np.abs(pca) - np.abs(ref))))
                identity["leiden_ari_vs_scanpy"] = cluster_metrics(
                    ref_leiden, a.obs["leiden"].to_numpy(str))["ari"]
            np.save(latents / f"pmt-pca_{seed}.npy", pca)
            r = score_embedding(a, "X_pca", seed)
            sweep_same = cluster_metrics(a.obs["leiden"].to_numpy(str),
                                         r.pop("sweep_leiden"))["ari"]
            records.add({"key": key, "section": "clusters", "embedding": "pmt-pca",
                         "seed": seed, "seconds": seconds, "pipeline_metrics": pipeline_metrics,
                         "identity": identity, "sweep_vs_own_leiden_ari": sweep_same, **r})
            say(f"  {key}: ARI@1 {r['resolutions']['1.0']['ari']:.3f} identity {identity}")
        # (c) pmtoolkit's NB-VAE
        key = f"clusters/pmt-vae/{seed}"
        lat = latents / f"pmt-vae_{seed}.npy"
        if rescore and not force and key in records and lat.exists():
            a = filtered.copy()
            a.obsm["X_pmt_vae"] = np.load(lat)
            _rescore(records, key, a, "X_pmt_vae", seed, latents / "pmt-vae_0_umap.npy")
        elif force or key not in records:
            a = filtered.copy()
            cfg = VAEConfig(device="cpu", n_top_genes=2000, seed=seed)
            t0 = time.perf_counter()
            model = fit_vae(a, cfg)
            seconds = time.perf_counter() - t0
            model.embed(a)
            np.save(latents / f"pmt-vae_{seed}.npy", a.obsm["X_pmt_vae"])
            m = model.metadata["metrics"]
            r = score_embedding(a, "X_pmt_vae", seed)
            r.pop("sweep_leiden")
            if seed == 0:
                np.save(latents / "pmt-vae_0_umap.npy", a.obsm["X_umap"])
            records.add({"key": key, "section": "clusters", "embedding": "pmt-vae",
                         "seed": seed, "train_seconds": seconds,
                         "epochs_run": m.get("epochs_run"), "n_genes": m.get("n_genes"),
                         "best_val_loss": m.get("best_val_loss"), **r})
            say(f"  {key}: {seconds:.0f} s, {m.get('epochs_run')} epochs, ARI@1 "
                f"{r['resolutions']['1.0']['ari']:.3f} kNN {r['knn15_accuracy']:.3f}")
        # (d) scvi-tools SCVI, in its own venv
        key = f"clusters/scvi/{seed}"
        lat = latents / f"scvi_{seed}.npy"
        if rescore and not force and key in records and lat.exists():
            a = filtered.copy()
            a.obsm["X_scvi"] = np.load(lat)
            _rescore(records, key, a, "X_scvi", seed, latents / "scvi_0_umap.npy")
        elif (force or key not in records) and SCVI_PY.exists():
            out = workdir / f"scvi_{seed}.json"
            t0 = time.perf_counter()
            with open(workdir / f"scvi_{seed}.log", "w") as err:
                subprocess.run([str(SCVI_PY), str(SCVI_RUNNER), "--data", str(counts_path),
                                "--seed", str(seed), "--latent", str(lat), "--out", str(out)],
                               check=True, stdout=subprocess.DEVNULL, stderr=err)
            wall = time.perf_counter() - t0
            info = json.loads(out.read_text())
            a = filtered.copy()
            a.obsm["X_scvi"] = np.load(lat)
            r = score_embedding(a, "X_scvi", seed)
            r.pop("sweep_leiden")
            if seed == 0:
                np.save(latents / "scvi_0_umap.npy", a.obsm["X_umap"])
            records.add({"key": key, "section": "clusters", "embedding": "scvi", "seed": seed,
                         "train_seconds": info["train_seconds"], "process_seconds": wall,
                         "epochs_run": info["epochs_run"], "tool": info["tool"],
                         "gene_likelihood": info["gene_likelihood"], **r})
            say(f"  {key}: {info['train_seconds']:.0f} s, ARI@1 "
                f"{r['resolutions']['1.0']['ari']:.3f} kNN {r['knn15_accuracy']:.3f}")
        elif not SCVI_PY.exists():
            say("  scvi-tools venv missing: bash benchmarks/expression/setup_anchor_env.sh")


def _rescore(records: Records, key: str, adata, rep: str, seed: int, umap_path: Path) -> None:
    r = score_embedding(adata, rep, seed)
    r.pop("sweep_leiden")
    if seed == 0:
        np.save(umap_path, adata.obsm["X_umap"])
    old = records.items[key]
    # the command that trained the model stays listed beside the one that re-scores it
    trained_by = old.get("commands") or [c for c in records.old_commands
                                         if "clusters" in c and "--rescore" not in c][:1]
    records.add({**old, **r, "rescored": True, "commands": trained_by})
    say(f"  {key} (re-scored from the saved latent): ARI@1 "
        f"{r['resolutions']['1.0']['ari']:.3f} kNN {r['knn15_accuracy']:.3f}")


# -- label transfer ------------------------------------------------------------------------
def run_transfer(records: Records, force: bool) -> None:
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    from pmtoolkit.expression.classifier import cross_validate
    from pmtoolkit.expression.config import ExpressionClassifierConfig

    adata = load_pbmc()
    y = adata.obs[LABEL].astype(str).to_numpy()
    for seed in SEEDS:
        key = f"transfer/pmt-classifier/{seed}"
        if force or key not in records:
            t0 = time.perf_counter()
            table = cross_validate(adata, LABEL,
                                   ExpressionClassifierConfig(device="cpu", seed=seed),
                                   folds=5, seed=0)
            seconds = time.perf_counter() - t0
            records.add({"key": key, "section": "transfer", "model": "pmt-classifier",
                         "seed": seed, "seconds": seconds,
                         "folds": table.to_dict(orient="records")})
            say(f"  {key}: accuracy {table['accuracy'].mean():.3f} "
                f"({seconds:.0f} s)")
    X = sp.csr_matrix(adata.X, dtype=np.float64)
    X = sp.diags(1e4 / np.asarray(X.sum(1)).ravel()) @ X
    X.data = np.log1p(X.data)
    X = X.tocsr()
    for name, kwargs in (("sklearn-logreg", {}),
                         ("sklearn-logreg-balanced", {"class_weight": "balanced"})):
        key = f"transfer/{name}/0"
        if not force and key in records:
            continue
        rows = []
        t0 = time.perf_counter()
        splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        for k, (tr, te) in enumerate(splitter.split(np.zeros(len(y)), y)):
            clf = LogisticRegression(max_iter=1000, **kwargs).fit(X[tr], y[tr])
            pred = clf.predict(X[te])
            rows.append({"fold": k, "n_test": len(te), "accuracy": float((pred == y[te]).mean()),
                         "balanced_accuracy": float(balanced_accuracy_score(y[te], pred)),
                         "macro_f1": float(f1_score(y[te], pred, average="macro"))})
        seconds = time.perf_counter() - t0
        records.add({"key": key, "section": "transfer", "model": name, "seed": 0,
                     "seconds": seconds, "folds": rows})
        say(f"  {key}: accuracy {np.mean([r['accuracy'] for r in rows]):.3f}")


# -- run time -----------------------------------------------------------------------------
def pmt_command(inp: Path, out: Path, doublets: bool = True) -> tuple[list[str], str]:
    """``pmt expr run`` when the CLI has it, else run_file in a fresh interpreter."""
    scripts = Path(sysconfig.get_path("scripts")) / "pmt"
    exe = [str(scripts)] if scripts.exists() else [sys.executable, "-m", "pmtoolkit.cli"]
    probe = subprocess.run([*exe, "expr", "run", "--help"], capture_output=True, text=True,
                           check=False)
    if probe.returncode == 0:
        cmd = [*exe, "expr", "run", "-i", str(inp), "-o", str(out), "--label-column", LABEL]
        return cmd + ([] if doublets else ["--no-doublets"]), "pmt expr run (CLI)"
    code = ("from pmtoolkit.expression.standard import run_file;"
            "from pmtoolkit.expression.config import SingleCellConfig;"
            f"run_file({str(inp)!r}, {str(out)!r}, config=SingleCellConfig(label_key={LABEL!r}, "
            f"doublets={doublets}))")
    return [sys.executable, "-c", code], "run_file in a fresh python (CLI not available)"


def direct_command(inp: Path, out: Path, doublets: bool = True,
                   timings: Path | None = None) -> list[str]:
    cmd = [sys.executable, str(DIRECT), str(inp), "-o", str(out), "--label-key", LABEL]
    cmd += [] if doublets else ["--no-doublets"]
    return cmd + (["--timings", str(timings)] if timings else [])


def run_runtime(records: Records, workdir: Path, force: bool, reps: int,
                big_cells: int, big_doublets: str = "auto", doublets_limit: float = 300.0) -> None:
    """Both tools, ``reps`` times each, alternating, fresh processes, doublet scoring on
    (scrublet: the same scanpy call in both tools). The big input too, unless
    ``big_doublets`` is "off", or "auto" and the first big run's scrublet step took more than
    ``doublets_limit`` seconds: that run is kept as a probe (section ``runtime_probe``) and the
    big input is measured with ``--no-doublets`` in both tools."""
    big = workdir / f"pbmc68k_resampled_{big_cells}.h5ad"
    if not big.exists():
        resample(load_pbmc(), big_cells).write_h5ad(big)
    big_name = f"pbmc68k resampled ({big_cells:,} cells)"
    probe_key = f"runtime_probe/{big_name}/pmt/0"
    if big_doublets == "off" or (big_doublets == "auto" and probe_key in records):
        inputs = {"pbmc68k (700 cells)": (DATA, True), f"{big_name}, no doublets": (big, False)}
    else:
        inputs = {"pbmc68k (700 cells)": (DATA, True), big_name: (big, True)}
    warm = workdir / "rt_warmup"
    if force or any(f"runtime/{n}/{t}/{k}" not in records for n in inputs
                    for t in ("pmt", "scanpy") for k in range(reps)):
        say("  warm-up (not recorded): one run of each tool on pbmc68k, so that numba's "
            "on-disk caches and the file cache are warm for both")
        for tool in ("pmt", "scanpy"):
            shutil.rmtree(warm, ignore_errors=True)
            cmd = pmt_command(DATA, warm)[0] if tool == "pmt" else direct_command(DATA, warm)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    todo = list(inputs.items())
    while todo:
        name, (inp, doublets) = todo.pop(0)
        for rep in range(reps):
            order = ("pmt", "scanpy") if rep % 2 == 0 else ("scanpy", "pmt")
            restart = False
            for tool in order:
                key = f"runtime/{name}/{tool}/{rep}"
                if not force and key in records:
                    continue
                r = _timed_run(workdir, name, inp, tool, rep, doublets)
                scrublet = (r["steps"] or {}).get("doublets", 0.0)
                if big_doublets == "auto" and inp == big and doublets and \
                        scrublet > doublets_limit:
                    records.add({**r, "key": probe_key, "section": "runtime_probe",
                                 "doublets_limit": doublets_limit})
                    say(f"  {key}: scrublet took {scrublet:.0f} s > {doublets_limit:.0f} s; "
                        "the big input is measured with --no-doublets in both tools")
                    todo.insert(0, (f"{big_name}, no doublets", (big, False)))
                    restart = True
                    break
                records.add(r)
                say(f"  {key}: {r['seconds']:.1f} s"
                    + (f" (scrublet {scrublet:.1f} s)" if doublets else ""))
            if restart:
                break


def _timed_run(workdir: Path, name: str, inp: Path, tool: str, rep: int,
               doublets: bool) -> dict:
    """One run of one tool in a fresh process; its record (not yet added)."""
    out = workdir / f"rt_{tool}"
    shutil.rmtree(out, ignore_errors=True)
    timings = workdir / "rt_direct_timings.json"
    timings.unlink(missing_ok=True)
    if tool == "pmt":
        cmd, how = pmt_command(inp, out, doublets)
    else:
        cmd = direct_command(inp, out, doublets, timings)
        how = "benchmarks/expression/direct_scanpy.py"
    t0 = time.perf_counter()
    with open(workdir / f"rt_{tool}.log", "w") as err:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=err)
    seconds = time.perf_counter() - t0
    steps = None
    if tool == "pmt" and (out / "config.json").exists():
        cfg = json.loads((out / "config.json").read_text())
        steps = {s["step"]: s["seconds"] for s in cfg.get("steps", [])}
    elif tool == "scanpy" and timings.exists():
        steps = json.loads(timings.read_text())
    kept = {}
    try:  # after the clock: cells kept and doublets predicted, from the written h5ad
        import anndata as ad

        h = ad.read_h5ad(out / "adata.h5ad", backed="r")
        kept = {"cells_kept": int(h.n_obs), "clusters": int(h.obs["leiden"].nunique())}
        if "predicted_doublet" in h.obs:
            kept["predicted_doublets"] = int(h.obs["predicted_doublet"].astype(bool).sum())
        h.file.close()
    except Exception as exc:  # noqa: BLE001
        say(f"  (could not read {out / 'adata.h5ad'}: {exc})")
    return {"key": f"runtime/{name}/{tool}/{rep}", "section": "runtime", "input": name,
            "tool": tool, "how": how, "rep": rep, "seconds": seconds, "steps": steps,
            "doublets": doublets, "command": " ".join(cmd[-8:]), **kept}


# -- memory -------------------------------------------------------------------------------
def memory_child(inp: Path, out: Path, result: Path, scale: bool = True,
                 umap: bool = True) -> int:
    """Runs run_file on ``inp`` and records, for each step, the RSS when it started, the
    largest RSS sampled (every 50 ms) while it ran, and the process peak when it ended.
    ``scale``: SingleCellConfig.scale; ``umap`` False replaces ``sc.tl.umap`` by the first two PCs
    (so that the plots still have an ``X_umap``)."""
    import logging
    import resource

    quiet()
    state = {"step": "start", "t": time.perf_counter(), "peak": 0}
    rows: list[dict] = []

    def rss() -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def switch(name: str) -> None:
        now = rss()
        state["peak"] = max(state["peak"], now)
        rows.append({"step": state["step"], "seconds": round(time.perf_counter() - state["t"], 2),
                     "peak_rss_bytes": state["peak"],
                     "maxrss_so_far_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                     * 1024})
        state.update(step=name, t=time.perf_counter(), peak=now)

    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.05):
            state["peak"] = max(state["peak"], rss())

    class StepHandler(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.endswith(" ..."):
                switch(msg[:-4])

    lg = logging.getLogger("pmtoolkit.expression.standard")
    lg.setLevel(logging.INFO)
    lg.addHandler(StepHandler())
    import anndata as ad

    import pmtoolkit.expression.io as pio
    import pmtoolkit.expression.plots as plots
    from pmtoolkit.expression.config import SingleCellConfig
    from pmtoolkit.expression.standard import run_file

    def phase(name, fn):
        def wrapped(*a, **k):
            switch(name)
            return fn(*a, **k)
        return wrapped

    pio.read = phase("read", pio.read)
    plots.draw_all = phase("plots", plots.draw_all)
    plots.write_report = phase("report", plots.write_report)
    ad.AnnData.write_h5ad = phase("write_h5ad", ad.AnnData.write_h5ad)
    threading.Thread(target=poll, daemon=True).start()
    t0 = time.perf_counter()
    if not umap:
        import scanpy as sc

        def no_umap(adata, *a, **k):
            adata.obsm["X_umap"] = np.asarray(adata.obsm["X_pca"][:, :2])

        sc.tl.umap = no_umap
    info = run_file(inp, out, config=SingleCellConfig(label_key="sim_type", doublets=False,
                                               scale=scale), overwrite=True)
    seconds = time.perf_counter() - t0
    switch("end")
    stop.set()
    result.write_text(json.dumps({"seconds": seconds, "steps": rows[1:],
                                  "metrics": info["metrics"]}, indent=2) + "\n")
    return 0


MEMORY_VARIANTS = {"": {"scale": True, "umap": True},
                   "/no-scale": {"scale": False, "umap": True},
                   "/no-scale-no-umap": {"scale": False, "umap": False}}


def run_memory(records: Records, workdir: Path, force: bool, n_cells: int,
               variants: tuple[str, ...] = ("", "/no-scale")) -> None:
    """The pipeline on ``n_cells`` simulated cells, once per variant of MEMORY_VARIANTS: the
    default SingleCellConfig (scale + PCA), and ``scale=False`` (``--no-scale``: PCA on the sparse
    log-normalised HVGs)."""
    inp = workdir / f"sim_{n_cells}.h5ad"
    todo = [v for v in variants if force or f"memory/sim{n_cells}{v}" not in records]
    if not todo:
        return
    t0 = time.perf_counter()
    if inp.exists():  # the same seed gives the same matrix: reuse the file
        import anndata as ad

        adata = ad.read_h5ad(inp)
        made = "read back"
    else:
        adata = simulate(n_cells)
        adata.write_h5ad(inp)
        made = "simulated"
    nbytes, nnz = sparse_bytes(adata.X), int(adata.X.nnz)
    shape = [int(adata.n_obs), int(adata.n_vars)]
    del adata
    say(f"memory: {made} {shape[0]:,} × {shape[1]:,}, {nnz:,} non-zeros "
        f"({nbytes / 2**30:.2f} GiB CSR), {time.perf_counter() - t0:.0f} s")
    for variant in todo:
        key = f"memory/sim{n_cells}{variant}"
        opts = MEMORY_VARIANTS[variant]
        result = workdir / "memory_child.json"
        result.unlink(missing_ok=True)
        timev = shutil.which("time") or "/usr/bin/time"
        cmd = [timev, "-v", sys.executable, str(Path(__file__).resolve()), "--memory-child",
               str(inp), str(workdir / "mem_out"), str(result)]
        cmd += [] if opts["scale"] else ["--memory-no-scale"]
        cmd += [] if opts["umap"] else ["--memory-no-umap"]
        say(f"  {key}: {' '.join(cmd[2:])}")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        log = workdir / f"memory_child{variant.replace('/', '_')}.log"
        log.write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            say(f"memory child failed (rc {proc.returncode}); see {log}")
            records.add({"key": key, "section": "memory", "variant": variant, **opts,
                         "failed": True, "rc": proc.returncode,
                         "stderr_tail": proc.stderr[-3000:], "shape": shape, "nnz": nnz,
                         "sparse_bytes": nbytes})
            continue
        maxrss = None
        for line in proc.stderr.splitlines():
            if "Maximum resident set size" in line:
                maxrss = int(line.split(":")[1]) * 1024
        child = json.loads(result.read_text())
        records.add({"key": key, "section": "memory", "variant": variant, **opts,
                     "shape": shape, "nnz": nnz, "sparse_bytes": nbytes,
                     "h5ad_bytes": inp.stat().st_size, "peak_rss_bytes": maxrss,
                     "wall_seconds": wall, "run_seconds": child["seconds"],
                     "steps": child["steps"], "metrics": child["metrics"]})
        say(f"  {key}: peak {maxrss / 2**30:.2f} GiB, {wall:.0f} s")


# -- report -------------------------------------------------------------------------------
def _ms(values) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _fmt(values, digits: int = 3) -> str:
    m, s = _ms(values)
    return "–" if m != m else f"{m:.{digits}f} ± {s:.{digits}f}"


def summarise(records: Records) -> dict:
    out: dict = {}
    cl = records.section("clusters")
    if cl:
        emb = {}
        for name in EMBEDDINGS:
            rs = sorted([r for r in cl if r["embedding"] == name], key=lambda r: r["seed"])
            if not rs:
                continue
            e = {"label": EMBEDDINGS[name], "seeds": [r["seed"] for r in rs],
                 "dims": rs[0]["dims"], "by_resolution": {}}
            for res in map(str, RESOLUTIONS):
                e["by_resolution"][res] = {
                    k: list(_ms([r["resolutions"][res][k] for r in rs]))
                    for k in ("ari", "nmi", "n_clusters")}
            e["best_ari"] = list(_ms([max(r["resolutions"][x]["ari"] for x in r["resolutions"])
                                      for r in rs]))
            for k in ("knn15_accuracy", "silhouette"):
                e[k] = list(_ms([r[k] for r in rs]))
            t = [r.get("train_seconds") for r in rs if r.get("train_seconds") is not None]
            if t:
                e["train_seconds"] = list(_ms(t))
                e["epochs_run"] = [r.get("epochs_run") for r in rs]
            emb[name] = e
        out["clusters"] = emb
        pmt_rows = sorted([r for r in cl if r["embedding"] == "pmt-pca"], key=lambda r: r["seed"])
        out["pmt_vs_scanpy_identity"] = [r.get("identity") for r in pmt_rows]
        out["sweep_vs_own_leiden_ari"] = {
            name: [r.get("sweep_vs_own_leiden_ari") for r in
                   sorted([r for r in cl if r["embedding"] == name], key=lambda r: r["seed"])]
            for name in ("scanpy-pca", "pmt-pca")}
    tr = records.section("transfer")
    if tr:
        out["transfer"] = {}
        for name in ("pmt-classifier", "sklearn-logreg", "sklearn-logreg-balanced"):
            rs = [r for r in tr if r["model"] == name]
            if not rs:
                continue
            # mean ± sd over the 5 folds (each fold's figure averaged over the model seeds),
            # and the sd over seeds of the 5-fold mean
            e = {"seeds": len(rs), "seconds": statistics.fmean(r["seconds"] for r in rs)}
            n_folds = len(rs[0]["folds"])
            for k in ("accuracy", "balanced_accuracy", "macro_f1"):
                per_fold = [statistics.fmean(r["folds"][i][k] for r in rs)
                            for i in range(n_folds)]
                e[k] = list(_ms(per_fold))
                e[f"{k}_per_fold"] = per_fold
                e[f"{k}_seed_sd"] = _ms([statistics.fmean(f[k] for f in r["folds"])
                                         for r in rs])[1]
            out["transfer"][name] = e
    rt = records.section("runtime")
    if rt:
        out["runtime"] = {}
        for inp in dict.fromkeys(r["input"] for r in rt):
            p = [r["seconds"] for r in rt if r["input"] == inp and r["tool"] == "pmt"]
            s = [r["seconds"] for r in rt if r["input"] == inp and r["tool"] == "scanpy"]
            if p and s:
                how = next(r["how"] for r in rt if r["input"] == inp and r["tool"] == "pmt")
                rows = [r for r in rt if r["input"] == inp]
                out["runtime"][inp] = {"pmt_median": statistics.median(p),
                                       "scanpy_median": statistics.median(s),
                                       "ratio": statistics.median(p) / statistics.median(s),
                                       "pmt_runs": p, "scanpy_runs": s, "pmt_how": how,
                                       "doublets": rows[0].get("doublets", True),
                                       "cells_kept": sorted({r["cells_kept"] for r in rows
                                                             if "cells_kept" in r}),
                                       "predicted_doublets": sorted(
                                           {r["predicted_doublets"] for r in rows
                                            if "predicted_doublets" in r}),
                                       "scrublet_medians": {
                                           t: statistics.median(
                                               (r["steps"] or {}).get("doublets", 0.0)
                                               for r in rows if r["tool"] == t)
                                           for t in ("pmt", "scanpy")}}
    probe = records.section("runtime_probe")
    if probe:
        out["runtime_probe"] = probe
    mem = records.section("memory")
    if mem:
        out["memory"] = sorted(mem, key=lambda r: r["key"])
    return out


def versions() -> dict:
    v = {"python": platform.python_version()}
    for pkg in ("pmtoolkit", "scanpy", "anndata", "scipy", "torch", "lightning", "scikit-learn",
                "leidenalg", "igraph", "umap-learn", "pynndescent", "numba"):
        try:
            v[pkg] = version(pkg)
        except Exception:  # noqa: BLE001
            pass
    if SCVI_PY.exists():
        try:
            code = ("from importlib.metadata import version as v;"
                    "print(v('scvi-tools'), v('torch'), v('scanpy'), v('lightning'))")
            out = subprocess.run([str(SCVI_PY), "-c", code], capture_output=True, text=True,
                                 timeout=120).stdout.split()
            v.update({"scvi-tools": out[0], "scvi venv torch": out[1],
                      "scvi venv scanpy": out[2], "scvi venv lightning": out[3]})
        except Exception:  # noqa: BLE001
            pass
    return v


def write_docs(records: Records, command: str, workdir: Path) -> None:
    summary = summarise(records)
    # the commands behind the records kept (older records, which did not carry theirs: the
    # commands the docs listed before that name their section)
    commands: list[str] = []
    for section in (*SECTIONS, "runtime_probe"):
        for r in sorted(records.section(section), key=lambda r: r["key"]):
            for c in r.get("commands") or [c for c in records.old_commands if section in c]:
                if c not in commands:
                    commands.append(c)
    # oldest first: every command that added records, in the order it ran
    log = list(records.command_log)
    if records.command and records.command not in log:
        log.append(records.command)
    order = {c: i for i, c in enumerate(log)}
    commands.sort(key=lambda c: order.get(c, len(order)))
    meta = {"date": time.strftime("%Y-%m-%d"), "commands": commands, "command_log": log,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores (one used: taskset -c 1, "
                       "OMP/MKL/NUMBA_NUM_THREADS=1; the other core busy with another job)",
            "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or None,
            "versions": versions(), "command": command}
    DOCS.mkdir(parents=True, exist_ok=True)
    records_list = sorted(records.items.values(), key=lambda r: r["key"])
    (DOCS / "expression.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "records": records_list}, indent=2) + "\n")
    IMAGES.mkdir(parents=True, exist_ok=True)
    if "clusters" in summary:
        plot_resolutions(summary["clusters"], IMAGES / "expression_benchmark.png")
        plot_umaps(workdir / "latents", IMAGES / "expression_umap_vae_vs_scvi.png")
    (DOCS / "expression.md").write_text(markdown(summary, meta, records))


def markdown(summary: dict, meta: dict, records: Records) -> str:
    v = meta["versions"]
    lines = ["# Gene expression: pmtoolkit beside scanpy, scvi-tools and scikit-learn", "",
             f"Measured {meta['date']} on {meta['machine']}. Python {v.get('python')}, "
             f"scanpy {v.get('scanpy')}, anndata {v.get('anndata')}, scipy {v.get('scipy')}, "
             f"pynndescent {v.get('pynndescent')}, umap-learn {v.get('umap-learn')}, "
             f"torch {v.get('torch')}, "
             f"scikit-learn {v.get('scikit-learn')}, leidenalg {v.get('leidenalg')}; "
             f"scvi-tools {v.get('scvi-tools', '–')} (its own venv: torch "
             f"{v.get('scvi venv torch', '–')}, scanpy {v.get('scvi venv scanpy', '–')}). "
             "Commands (each with `OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 "
             "taskset -c 1`): " + "; ".join(f"`{c}`" for c in meta["commands"])
             + " (a section resumed from the journal keeps the figures of the run that "
             "measured it; `--rescore` re-scores the saved VAE and SCVI latents, whose train "
             "times come from the run that trained them).", "",
             "Data: scanpy's pbmc68k_reduced with its raw UMI counts restored "
             "(data/examples/pbmc68k_counts.h5ad: 700 PBMCs × 765 genes; labels `bulk_labels`, "
             "10 FACS-sorted populations of Zheng et al. 2017). The labels are sorted "
             "populations, not clusters: several (CD4+ naive / memory / regulatory T, "
             "CD8+ naive / cytotoxic) are transcriptionally close, so an ARI near 0.5 is "
             "typical for any unsupervised method here.", ""]
    cl = summary.get("clusters")
    if cl:
        lines += ["## 1. Clusters against the labels", "",
                  "Same 693 QC-passing cells (≥ 200 genes, ≤ 20% mitochondrial counts) for "
                  "every embedding; neighbours 15 on the embedding, then Leiden (igraph, 2 "
                  "iterations) at every resolution on that graph, then UMAP (pmtoolkit's "
                  "order: no clustering runs on a graph a UMAP has pruned, see the notes) with "
                  "the run's seed; mean ± sd over seeds 0, 1, 2 (the seed of "
                  "PCA/neighbours/Leiden, and of the model for the VAE and SCVI). kNN = "
                  "leave-one-out 15-nearest-neighbour majority vote of the labels in the "
                  "embedding (Euclidean); silhouette of the labels in the embedding (depends on "
                  "its dimension: 50 PCs vs 10 latent dimensions).", "",
                  "| embedding | dims | ARI @ res 1.0 | NMI @ res 1.0 | clusters @ 1.0 | "
                  "best ARI over res | kNN-15 label acc. | silhouette | train time (s) | "
                  "epochs |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, e in cl.items():
            r1 = e["by_resolution"]["1.0"]
            t = f"{e['train_seconds'][0]:.0f} ± {e['train_seconds'][1]:.0f}" \
                if "train_seconds" in e else "–"
            ep = "/".join(str(x) for x in e.get("epochs_run", [])) or "–"
            lines.append(f"| {e['label']} | {e['dims']} | {r1['ari'][0]:.3f} ± {r1['ari'][1]:.3f}"
                         f" | {r1['nmi'][0]:.3f} ± {r1['nmi'][1]:.3f} | {r1['n_clusters'][0]:.1f} "
                         f"| {e['best_ari'][0]:.3f} ± {e['best_ari'][1]:.3f} | "
                         f"{e['knn15_accuracy'][0]:.3f} ± {e['knn15_accuracy'][1]:.3f} | "
                         f"{e['silhouette'][0]:.3f} ± {e['silhouette'][1]:.3f} | {t} | {ep} |")
        lines += ["", "ARI / NMI by Leiden resolution (mean over seeds; clusters in "
                  "brackets):", "",
                  "| embedding | " + " | ".join(f"res {r}" for r in RESOLUTIONS) + " |",
                  "|---|" + "---:|" * len(RESOLUTIONS)]
        for name, e in cl.items():
            cells = [f"{e['by_resolution'][str(r)]['ari'][0]:.3f} / "
                     f"{e['by_resolution'][str(r)]['nmi'][0]:.3f} "
                     f"({e['by_resolution'][str(r)]['n_clusters'][0]:.0f})" for r in RESOLUTIONS]
            lines.append(f"| {e['label']} | " + " | ".join(cells) + " |")
        ident = [i for i in summary.get("pmt_vs_scanpy_identity", []) if i]
        sweep = summary.get("sweep_vs_own_leiden_ari", {})
        if ident:
            lines += ["", "pmtoolkit's pipeline against scanpy called directly (per seed): "
                      "same cells kept: " + ", ".join(str(i["same_cells"]) for i in ident)
                      + "; largest |PC value| difference: "
                      + ", ".join(f"{i['max_abs_pca_difference']:.2g}" for i in ident
                                  if i["max_abs_pca_difference"] is not None)
                      + "; ARI of the two Leiden clusterings at resolution 1: "
                      + ", ".join(f"{i['leiden_ari_vs_scanpy']:.3f}" for i in ident
                                  if i["leiden_ari_vs_scanpy"] is not None) + "."]
        if any(v is not None for vals in sweep.values() for v in vals):
            lines += ["", "The resolution-1 column of the sweep (neighbours recomputed on the "
                      "embedding) against each tool's own Leiden clustering, ARI per seed: "
                      + "; ".join(f"{EMBEDDINGS[n]} " + ", ".join(
                          f"{v:.3f}" for v in vals if v is not None)
                          for n, vals in sweep.items()) + "."]
        vae = sorted([r for r in records.section("clusters") if r["embedding"] == "pmt-vae"],
                     key=lambda r: r["seed"])
        scv = sorted([r for r in records.section("clusters") if r["embedding"] == "scvi"],
                     key=lambda r: r["seed"])

        def secs(rs):
            return ", ".join(f"{r['train_seconds']:.0f}" for r in rs
                             if r.get("train_seconds") is not None)

        def epochs(rs):
            return sorted({r.get("epochs_run") for r in rs} - {None})

        vae_ep, scvi_ep = epochs(vae), epochs(scv)
        lines += ["", "Train time: one thread, `fit_vae` for pmtoolkit (the whole call: gene "
                  "selection, data loaders, Lightning; early stopping on a 10% validation "
                  "split, patience 45"
                  + (f", which did not trigger: every seed ran the {vae_ep[0]}-epoch cap of "
                     "scvi-tools' rule" if len(vae_ep) == 1 and vae_ep[0] == 400 else "")
                  + ") and `SCVI.train()` for scvi-tools (its default rule"
                  + (f", {scvi_ep[0]} epochs here" if len(scvi_ep) == 1 else "")
                  + ", 90% of the cells for training, no early stopping, zero-inflated NB "
                  "likelihood); both model all 765 genes with n_latent 10, n_hidden 128, one "
                  "layer. Seconds per seed 0, 1, 2: pmtoolkit " + secs(vae) + " (the three "
                  "fits run in one process, so seed 0 also pays Lightning's first import); "
                  "scvi-tools " + secs(scv) + " (each seed a fresh process whose clock starts "
                  "after its imports; the spread is noise from the busy second core).", "",
                  "![ARI by Leiden resolution](../images/expression_benchmark.png)", "",
                  "![UMAPs by bulk_labels](../images/expression_umap_vae_vs_scvi.png)", ""]
    tr = summary.get("transfer")
    if tr:
        names = {"pmt-classifier": "pmtoolkit ExpressionClassifier (MLP 256, defaults)",
                 "sklearn-logreg": "scikit-learn LogisticRegression(max_iter=1000)",
                 "sklearn-logreg-balanced": "scikit-learn LogisticRegression(max_iter=1000, "
                                            "class_weight='balanced')"}
        lines += ["## 2. Label transfer (5-fold stratified cross-validation)", "",
                  "All 700 cells; the same folds (StratifiedKFold, shuffle, random_state 0) "
                  "for every model; features log1p(counts per 10k) of all 765 genes. "
                  "pmtoolkit: `cross_validate(adata, 'bulk_labels', ExpressionClassifierConfig("
                  "device='cpu', seed=s), folds=5, seed=0)` with model seeds 0-2 (each "
                  "fold's figure averaged over the seeds); scikit-learn is deterministic. "
                  "Mean ± sd over the 5 folds; in brackets, pmtoolkit's sd over seeds of the "
                  "5-fold mean. Time: the 5 folds, one thread (pmtoolkit's includes Lightning "
                  "set-up and early stopping on 10% of each training fold).",
                  "", "| model | accuracy | balanced accuracy | macro F1 | time (s, 5 folds) |",
                  "|---|---:|---:|---:|---:|"]

        def cell(e, k):
            seed_sd = f" ({e[f'{k}_seed_sd']:.3f})" if e["seeds"] > 1 else ""
            return f"{e[k][0]:.3f} ± {e[k][1]:.3f}{seed_sd}"

        for name, e in tr.items():
            lines.append(f"| {names.get(name, name)} | {cell(e, 'accuracy')} | "
                         f"{cell(e, 'balanced_accuracy')} | {cell(e, 'macro_f1')} | "
                         f"{e['seconds']:.1f} |")
        lines += ["", "Per fold (accuracy): " + "; ".join(
            f"{n}: " + ", ".join(f"{v:.3f}" for v in e["accuracy_per_fold"])
            for n, e in tr.items()) + ".", ""]
    rt = summary.get("runtime")
    if rt:
        how = next(iter(rt.values()))["pmt_how"]
        lines += ["## 3. Run time of the whole command", "",
                  f"pmtoolkit: {how}; scanpy: benchmarks/expression/direct_scanpy.py (the same "
                  "scanpy calls typed directly, in pmtoolkit's order: read, counts layer, QC "
                  "metrics, filters, scrublet, normalise, HVGs, scale + PCA, neighbours, "
                  "Leiden, UMAP, Wilcoxon markers, the same five pictures, markers CSV, gzip "
                  "h5ad; no HTML report). Each run a fresh process (start-up and numba "
                  "compilation included), alternating, 3 each, after one unrecorded warm-up "
                  "run of each tool; median seconds. Goal: ratio ≤ 1.1.", "",
                  "| input | scrublet | cells kept | pmtoolkit (s) | scanpy direct (s) | "
                  "ratio | pmtoolkit runs | scanpy runs |",
                  "|---|---|---:|---:|---:|---:|---|---|"]
        for inp, e in rt.items():
            kept = "/".join(f"{c:,}" for c in e["cells_kept"]) or "–"
            dbl = "on" if e["doublets"] else "off"
            if e["doublets"] and e["predicted_doublets"]:
                dbl += " (" + "/".join(f"{d:,}" for d in e["predicted_doublets"]) + " predicted)"
            lines.append(f"| {inp} | {dbl} | {kept} | {e['pmt_median']:.1f} | "
                         f"{e['scanpy_median']:.1f} | {e['ratio']:.2f} | "
                         f"{', '.join(f'{x:.1f}' for x in e['pmt_runs'])} | "
                         f"{', '.join(f'{x:.1f}' for x in e['scanpy_runs'])} |")
        big = [(inp, e) for inp, e in rt.items() if "resampled" in inp]
        if big:
            inp, e = big[-1]
            kept = "/".join(f"{c:,}" for c in e["cells_kept"]) or "most"
            n = inp.split("(")[1].split(" cells")[0]
            lines += ["", f"The {n}-cell input: cells drawn with replacement from pbmc68k, "
                      "each new cell the Poisson draw of the mean counts of two random cells of "
                      "one `bulk_labels` type (so new cells are not copies), with new barcodes; "
                      f"{kept} of them pass the 200-gene filter (averaging two cells and "
                      "redrawing loses genes)."]
            probe = summary.get("runtime_probe")
            if e["doublets"]:
                n_obs = e["cells_kept"][0] if e["cells_kept"] else None
                sm = e["scrublet_medians"]
                lines[-1] += (" Both tools score doublets on it (scrublet: the same scanpy "
                              f"call in both), and that step is most of each run: median "
                              f"{sm['pmt']:.0f} s in pmtoolkit, {sm['scanpy']:.0f} s in "
                              "scanpy direct, on one thread")
                if n_obs:
                    k = round(0.5 * n_obs ** 0.5)
                    lines[-1] += (f" (scanpy's scrublet looks up round(0.5·√{n_obs:,}) × 3 = "
                                  f"{3 * k} neighbours of each of the {3 * n_obs:,} observed "
                                  "and simulated cells)")
                lines[-1] += "."
            elif probe:
                pr = probe[0]
                lines[-1] += (f" Both tools run it with `--no-doublets`: in a first pmtoolkit "
                              f"run with scrublet on, its step alone took "
                              f"{pr['steps']['doublets']:.0f} s of {pr['seconds']:.0f} s (over "
                              f"the {pr['doublets_limit']:.0f} s per run this benchmark "
                              "allows it), and it is the same scanpy call in both tools.")
            else:
                lines[-1] += " Both tools run it with `--no-doublets`."
            lines.append("")
        else:
            lines.append("")
        steps = _step_table(records)
        if steps:
            lines += steps
    mem = [m for m in summary.get("memory", []) if "variant" in m or m.get("failed")]
    if mem:
        lines += _memory_section(mem, summary)
    spread = ""
    if cl and all(n in cl for n in ("pmt-vae", "scvi")):
        sds = [cl[n]["by_resolution"]["1.0"]["ari"][1] for n in ("pmt-vae", "scvi")]
        means = [e["by_resolution"]["1.0"]["ari"][0] for e in cl.values()]
        gap = max(means) - min(means)
        spread = ("- The VAE and SCVI rows are small-data figures (693 cells): their "
                  "seed-to-seed spread (ARI sd at resolution 1: "
                  f"{sds[0]:.3f} and {sds[1]:.3f}) is "
                  + ("larger than" if min(sds) > gap else "of the order of")
                  + f" the differences between the methods' mean ARIs there (at most "
                  f"{gap:.3f}).")
    lines += ["## Notes", "",
              "- Order of Leiden and UMAP: scanpy 1.11.5's `tl.umap` prunes the weakest "
              "edges of `obsp['connectivities']` in place (scverse/scanpy#4028, fixed upstream "
              "by copying the graph), so a Leiden run after UMAP clusters a different graph "
              "from one run before it. pmtoolkit's pipeline therefore runs Leiden before UMAP "
              "(neighbours → Leiden → UMAP), and so do direct_scanpy.py and every row of "
              "section 1: each resolution of the sweep clusters the unpruned neighbour graph, "
              "and UMAP comes after all of them.",
              *([spread] if spread else []),
              "- pmtoolkit's VAE and scvi-tools differ in likelihood (NB vs zero-inflated NB) "
              "and stopping (early stopping with patience 45 vs none).", ""]
    return "\n".join(lines) + "\n"


def _memory_section(mem: list[dict], summary: dict) -> list[str]:
    """Section 4: the pipeline's peak memory on the simulated cells, per SingleCellConfig variant
    (scale + PCA, and PCA on the sparse HVGs without scaling), steps side by side."""
    gib = 2 ** 30
    ok = [m for m in mem if not m.get("failed")]
    names = {"": "default (`scale=True`: sc.pp.scale, then PCA)",
             "/no-scale": "`--no-scale` (`SingleCellConfig(scale=False)`: PCA on the sparse HVGs)",
             "/no-scale-no-umap": "`--no-scale`, UMAP replaced by the first two PCs"}
    short = {"": "scale", "/no-scale": "no scale", "/no-scale-no-umap": "no scale, no UMAP"}
    lines = [f"## 4. Memory on {ok[0]['shape'][0]:,} cells" if ok else "## 4. Memory", ""]
    for m in mem:
        if m.get("failed"):
            lines += [f"The {names.get(m.get('variant', ''), m['key'])} run failed (exit "
                      f"{m['rc']}): see the JSON's stderr_tail.", ""]
    if not ok:
        return lines
    m0 = ok[0]
    why = (f"on {m0['shape'][0]:,} cells its neighbour search would cover "
           f"{3 * m0['shape'][0]:,} observed and simulated cells, "
           f"{3 * round(0.5 * m0['shape'][0] ** 0.5)} neighbours each")
    big = [e for inp, e in summary.get("runtime", {}).items()
           if "resampled" in inp and e.get("doublets") and e.get("cells_kept")]
    if big:
        why += (f", and it already takes {big[-1]['scrublet_medians']['pmt']:.0f} s on "
                f"{big[-1]['cells_kept'][0]:,} cells in section 3")
    lines += [f"Input: simulated negative-binomial counts, {m0['shape'][0]:,} cells × "
              f"{m0['shape'][1]:,} genes, {m0['nnz']:,} non-zeros "
              f"({m0['nnz'] / m0['shape'][0]:.0f} per cell), CSR float32 = "
              f"{m0['sparse_bytes'] / gib:.2f} GiB in memory ({m0['h5ad_bytes'] / gib:.2f} GiB "
              "h5ad), 10 cell types. Each run: run_file (the function behind `pmt expr run`) in "
              "a fresh process under /usr/bin/time -v, SingleCellConfig(label_key='sim_type', "
              "doublets=False), otherwise the defaults (scrublet is skipped: " + why + ").", "",
              "| run | peak RSS (GiB) | × sparse counts | wall time (min) | cells / genes kept "
              "| Leiden clusters | ARI vs sim_type |", "|---|---:|---:|---:|---|---:|---:|"]
    for m in ok:
        mt = m["metrics"]
        ari = mt.get("leiden_ari")
        lines.append(f"| {names.get(m['variant'], m['variant'])} | "
                     f"{m['peak_rss_bytes'] / gib:.2f} | "
                     f"{m['peak_rss_bytes'] / m['sparse_bytes']:.1f} | "
                     f"{m['wall_seconds'] / 60:.1f} | {mt.get('cells', 0):,} / "
                     f"{mt.get('genes', 0):,} | {mt.get('clusters', '?')} | "
                     + (f"{ari:.3f}" if ari is not None else "–") + " |")
    steps = list(dict.fromkeys(s["step"] for m in ok for s in m["steps"]))
    head = " | ".join(f"{short.get(m['variant'], m['variant'])}: s | peak GiB" for m in ok)
    lines += ["", "Per step: seconds, and the largest RSS sampled during the step (every 50 "
              "ms from /proc/self/status, so short spikes can be missed; the peaks above are "
              "exact):", "", f"| step | {head} |", "|---|" + "---:|---:|" * len(ok)]
    for st in steps:
        cells = []
        for m in ok:
            row = next((x for x in m["steps"] if x["step"] == st), None)
            cells += [f"{row['seconds']:.1f}", f"{row['peak_rss_bytes'] / gib:.2f}"] if row \
                else ["–", "–"]
        lines.append(f"| {st} | " + " | ".join(cells) + " |")
    by = {m["variant"]: m for m in ok}
    if "" in by:
        d = by[""]
        ranked = sorted(d["steps"], key=lambda x: -x["peak_rss_bytes"])
        top, second = ranked[0], ranked[1]
        dense = d["shape"][0] * min(2000, d["shape"][1]) * 4 / gib
        text = (f"With the defaults the largest step is `{top['step']}` "
                f"({top['peak_rss_bytes'] / gib:.2f} GiB): it copies the highly variable genes "
                "and scales them (`sc.pp.scale` makes the matrix dense: "
                f"{d['shape'][0]:,} × 2,000 = {dense:.2f} GiB as float32) before "
                "`sc.pp.pca`, which keeps working copies of its own: "
                "scanpy's cost of the tutorial's scale-then-PCA. The next step is "
                f"`{second['step']}` ({second['peak_rss_bytes'] / gib:.2f} GiB, "
                f"{second['peak_rss_bytes'] / d['sparse_bytes']:.1f}× the sparse counts).")
        ns = by.get("/no-scale") or by.get("/no-scale-no-umap")
        if ns:
            nr = sorted(ns["steps"], key=lambda x: -x["peak_rss_bytes"])
            pca_ns = next((x for x in ns["steps"] if x["step"] == "pca"), None)
            pca_d = next((x for x in d["steps"] if x["step"] == "pca"), None)
            text += (f" Without scaling the peak falls from {d['peak_rss_bytes'] / gib:.2f} to "
                     f"{ns['peak_rss_bytes'] / gib:.2f} GiB "
                     f"({ns['peak_rss_bytes'] / ns['sparse_bytes']:.1f}× the counts)")
            if pca_ns and pca_d:
                text += (f"; PCA on the sparse HVGs peaks at {pca_ns['peak_rss_bytes'] / gib:.2f} "
                         f"GiB and takes {pca_ns['seconds']:.0f} s (vs "
                         f"{pca_d['seconds']:.0f} s)")
            text += (f", and the largest step is then `{nr[0]['step']}` "
                     f"({nr[0]['peak_rss_bytes'] / gib:.2f} GiB).")
            if ns["variant"] == "/no-scale-no-umap":
                text += (" (That run replaces UMAP by the first two PCs to save time; its "
                         "`umap` row is not UMAP's cost.)")
            d_ari, n_ari = d["metrics"].get("leiden_ari"), ns["metrics"].get("leiden_ari")
            if d_ari is not None and n_ari is not None:
                text += (f" ARI of the Leiden clusters against the simulated types: "
                         f"{d_ari:.3f} with scaling, {n_ari:.3f} without"
                         + (" (unscaled PCA weighs genes by their variance, so the embeddings "
                            "differ)." if abs(d_ari - n_ari) > 0.005 else "."))
        lines += ["", text]
    return lines + [""]


def _step_table(records: Records) -> list[str]:
    """Median seconds per step of both tools on the largest runtime input."""
    rt = records.section("runtime")
    if not rt:
        return []
    inp = list(dict.fromkeys(r["input"] for r in rt))[-1]
    pmt = [r["steps"] for r in rt if r["input"] == inp and r["tool"] == "pmt" and r["steps"]]
    sc_ = [r["steps"] for r in rt if r["input"] == inp and r["tool"] == "scanpy" and r["steps"]]
    if not pmt or not sc_:
        return []

    def med(rows, keys):
        return statistics.median(sum(r.get(k, 0.0) for k in keys) for r in rows)

    groups = [("QC metrics + filters", ["counts", "qc_metrics", "filter"], ["qc_filter"]),
              ("scrublet", ["doublets"], ["doublets"]),
              ("normalise, HVGs, PCA, neighbours, Leiden, UMAP",
               ["normalize", "highly_variable_genes", "pca", "neighbors", "leiden", "umap"],
               ["normalize_to_umap"]),
              ("Wilcoxon markers", ["markers"], ["markers"])]
    lines = [f"Where the time goes on {inp} (median seconds of the timed steps; pmtoolkit's "
             "from its config.json, scanpy's from the script's own clock; the rest of each "
             "run is start-up, reading, plots and writing):", "",
             "| steps | pmtoolkit | scanpy direct |", "|---|---:|---:|"]
    for name, pk, sk in groups:
        lines.append(f"| {name} | {med(pmt, pk):.1f} | {med(sc_, sk):.1f} |")
    lines.append(f"| scanpy: imports / read / plots / write | – | "
                 f"{med(sc_, ['imports']):.1f} / {med(sc_, ['read']):.1f} / "
                 f"{med(sc_, ['plots']):.1f} / {med(sc_, ['write']):.1f} |")
    return lines + [""]


def plot_resolutions(cl: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), dpi=120)
    for name, e in cl.items():
        ari = [e["by_resolution"][str(r)]["ari"] for r in RESOLUTIONS]
        nmi = [e["by_resolution"][str(r)]["nmi"] for r in RESOLUTIONS]
        # scanpy's row lies under pmtoolkit's PCA row when they agree: draw it wide and pale
        style = {"lw": 5, "alpha": 0.35, "ms": 0} if name == "scanpy-pca" else \
            {"lw": 1.5, "ms": 3}
        for ax, vals in ((axes[0], ari), (axes[1], nmi)):
            ax.errorbar(RESOLUTIONS, [a[0] for a in vals], yerr=[a[1] for a in vals],
                        marker="o", capsize=2, label=e["label"], **style)
    names = list(cl)
    x = np.arange(len(names))
    axes[2].bar(x - 0.2, [cl[n]["knn15_accuracy"][0] for n in names], 0.4,
                yerr=[cl[n]["knn15_accuracy"][1] for n in names], capsize=2,
                label="15-NN label accuracy")
    axes[2].bar(x + 0.2, [cl[n]["silhouette"][0] for n in names], 0.4,
                yerr=[cl[n]["silhouette"][1] for n in names], capsize=2,
                label="silhouette of labels")
    axes[2].set_xticks(x)
    axes[2].set_xticklabels([n.replace("-", "\n") for n in names], fontsize=8)
    axes[2].set_ylim(0, 1.15)
    axes[2].legend(fontsize=7, frameon=False, loc="upper center", ncol=2)
    axes[2].set_title("resolution-free", fontsize=9)
    for ax, t in zip(axes[:2], ("ARI vs bulk_labels", "NMI vs bulk_labels")):
        ax.set_xlabel("Leiden resolution")
        ax.set_title(t, fontsize=9)
    axes[0].legend(fontsize=7, frameon=False)
    for ax in axes:
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle("pbmc68k (693 cells), mean ± sd over seeds 0-2", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_umaps(latents: Path, path: Path) -> None:
    panels = [("scanpy-pca_0_umap.npy", "scanpy PCA (50 PCs)"),
              ("pmt-vae_0_umap.npy", "pmtoolkit NB-VAE (seed 0)"),
              ("scvi_0_umap.npy", "scvi-tools SCVI (seed 0)")]
    panels = [(latents / f, t) for f, t in panels if (latents / f).exists()]
    if not panels:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = qc_filtered(load_pbmc()).obs[LABEL].astype(str).to_numpy()
    kinds = sorted(set(labels))
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 2.2, 4.2), dpi=120,
                             squeeze=False)
    for ax, (f, title) in zip(axes[0], panels):
        xy = np.load(f)
        for i, k in enumerate(kinds):
            m = labels == k
            ax.scatter(xy[m, 0], xy[m, 1], s=5, color=cmap(i), label=k, lw=0)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=7, frameon=False, markerscale=2.5, loc="center left",
                       bbox_to_anchor=(1.0, 0.5))
    fig.suptitle("UMAP (min_dist 0.5, 15 neighbours) coloured by bulk_labels", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    global LOG
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help="comma-separated: " + ", ".join(SECTIONS))
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pmt-expr-bench"))
    ap.add_argument("--log", type=Path, default=Path("/tmp/pmt-expr-bench.log"))
    ap.add_argument("--reps", type=int, default=3, help="runs per tool in the runtime section")
    ap.add_argument("--big-cells", type=int, default=20000)
    ap.add_argument("--memory-cells", type=int, default=100000)
    ap.add_argument("--force", action="store_true",
                    help="re-measure the sections named (their old records are dropped)")
    ap.add_argument("--rescore", action="store_true",
                    help="clusters: recompute the PCA rows and re-score the VAE and SCVI rows "
                         "from their saved latents (no retraining)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--memory-variants", default=",no-scale",
                    help="memory: comma-separated runs of the pipeline: '' (default "
                         "SingleCellConfig), no-scale (SingleCellConfig(scale=False)), no-scale-no-umap "
                         "(also UMAP replaced by two PCs); default ',no-scale'")
    ap.add_argument("--big-doublets", choices=("auto", "on", "off"), default="auto",
                    help="runtime: scrublet on the big input in both tools; auto: on, unless "
                         "the first big run's scrublet step exceeds --doublets-limit")
    ap.add_argument("--doublets-limit", type=float, default=300.0,
                    help="seconds of scrublet per big run above which auto turns it off")
    ap.add_argument("--memory-child", nargs=3, type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--memory-no-scale", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--memory-no-umap", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        return memory_child(*args.memory_child, scale=not args.memory_no_scale,
                            umap=not args.memory_no_umap)
    quiet()
    LOG = args.log
    args.workdir.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", *sys.argv])
    records = Records(args.workdir / "journal.jsonl",
                      command="" if args.report_only else command)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = set(sections) - set(SECTIONS)
    if bad:
        ap.error(f"unknown section(s) {', '.join(sorted(bad))}")
    if not args.report_only:
        for s in sections:
            say(f"section {s}")
            t0 = time.perf_counter()
            if args.force:  # re-measured: no stale rows of this section survive
                records.drop_section(s)
            if s == "clusters":
                run_clusters(records, args.workdir, args.force, args.rescore)
            elif s == "transfer":
                run_transfer(records, args.force)
            elif s == "runtime":
                if args.force:
                    records.drop_section("runtime_probe")
                run_runtime(records, args.workdir, args.force, args.reps, args.big_cells,
                            args.big_doublets, args.doublets_limit)
            elif s == "memory":
                variants = tuple("/" + v.strip() if v.strip() else ""
                                 for v in args.memory_variants.split(","))
                bad_v = set(variants) - set(MEMORY_VARIANTS)
                if bad_v:
                    ap.error(f"unknown memory variant(s) {', '.join(sorted(bad_v))}")
                run_memory(records, args.workdir, args.force, args.memory_cells, variants)
            say(f"section {s} done in {time.perf_counter() - t0:.0f} s")
            write_docs(records, " ".join(["python", *sys.argv]), args.workdir)
    write_docs(records, " ".join(["python", *sys.argv]), args.workdir)
    print((DOCS / "expression.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
