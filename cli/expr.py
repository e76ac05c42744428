"""``pmt expr``: single-cell and bulk expression on AnnData: the standard pipeline, NB-VAE
embeddings, label transfer, pseudobulk differential expression, bulk phenotype classifiers."""
from __future__ import annotations

import os
from pathlib import Path

import click
from pmtoolkit.cli.options import (
    cluster_from,
    config_option,
    dataclass_options,
    distributed_options,
    file_keys,
    given,
    overwrite_option,
    resolve,
    resume_option,
)

from pmtoolkit.expression.config import ExpressionClassifierConfig, SingleCellConfig, VAEConfig

INPUT_HELP = (".h5ad, a 10x folder (matrix.mtx, features.tsv, barcodes.tsv) or "
              ".h5, a CSV/TSV matrix (.gz too), or .loom.")
REFERENCE_HELP = ("A labelled reference .h5ad (a classifier is trained on it), a saved "
                  "classifier, or a shipped one: pbmc68k (10 PBMC types of Zheng et al. 2017).")


def _input_options(f):
    f = click.option("--orientation", type=click.Choice(["auto", "cells-by-genes",
                                                         "genes-by-cells"]),
                     default="auto", show_default=True,
                     help="CSV/TSV tables: rows are cells or genes (auto: genes when the "
                          "first header names genes or the columns look like barcodes).")(f)
    f = click.option("--make-unique", is_flag=True,
                     help="Rename duplicated gene names GENE-1, GENE-2 instead of stopping.")(f)
    return f


def _read(path, orientation, make_unique):
    from pmtoolkit.expression.io import read

    return read(path, orientation=orientation, make_unique=make_unique)


@click.group(name="expr")
def expr() -> None:
    """Single-cell and bulk expression on AnnData: pipeline, embeddings, label transfer, DE."""


@expr.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(exists=True),
              help="Raw counts: " + INPUT_HELP)
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: adata.h5ad, markers.csv, report.html, figures/, "
                   "config.json.")
@dataclass_options(SingleCellConfig)
@_input_options
@click.option("--no-plots", is_flag=True, help="Skip the figures (the report keeps its tables).")
@config_option
@overwrite_option
@resume_option
def run(input_, outdir, orientation, make_unique, no_plots, config_file, overwrite, resume,
        **params):
    """Run the standard single-cell pipeline on raw counts: QC, doublets, normalisation, HVGs,
    PCA (or the NB-VAE), neighbours, Leiden, UMAP, markers, annotation. For 100k+ cells,
    --no-scale keeps PCA sparse (about half the peak memory).

    A config file uses the long option names as keys, plus an optional [vae] table of VAE
    settings (with --embedding vae). With --embedding vae, the VAE's checkpoint is kept in
    OUTPUT/work while it trains; --resume continues an interrupted run.

    \b
    Example:
      pmt expr run -i filtered_feature_bc_matrix/ -o out/ --label-column cell_type
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.core import config as cfg
    from pmtoolkit.core.errors import ConfigError
    from pmtoolkit.expression.standard import run_file

    from_file = cfg.load_file(config_file) if config_file else {}
    vae_table = from_file.pop("vae", None)
    if vae_table is not None and not isinstance(vae_table, dict):
        raise ConfigError(f"'{config_file}': vae must be a table ([vae]) of VAE settings")
    config = cfg.merge(SingleCellConfig, file_keys(SingleCellConfig, from_file), given(SingleCellConfig, params),
                       source=f"'{config_file}'" if config_file else "command-line options")
    vae = cfg.from_mapping(VAEConfig, vae_table, source=f"'{config_file}' [vae]") \
        if vae_table else None
    startup(seed=config.seed)
    info = run_file(input_, outdir, config=config, vae_config=vae, orientation=orientation,
                    make_unique=make_unique, overwrite=overwrite, plots=not no_plots,
                    resume=resume)
    m = info["metrics"]
    extra = (f"; ARI {m['leiden_ari']:.3f}, NMI {m['leiden_nmi']:.3f} vs {config.label_key}"
             if "leiden_ari" in m else "")
    click.echo(f"{m['cells']:,} of {m['cells_in']:,} cells, {m['genes']:,} genes, "
               f"{m['clusters']} clusters{extra} ({info['seconds']:.1f} s); report: "
               f"{outdir / 'report.html'}", err=True)


@expr.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(exists=True),
              help="Raw counts: " + INPUT_HELP)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The input as .h5ad with the latent space in obsm['X_pmt_vae'].")
@click.option("--batch-key", help="obs column of batches to integrate (one-hot covariates).")
@click.option("--counts-layer", default="auto", show_default=True,
              help="Where the raw counts are: auto, X, raw or a layer name.")
@click.option("--save-model", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save the trained VAE (.safetensors).")
@click.option("-m", "--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="A VAE saved with --save-model (.safetensors): embed the input with it, "
                   "without training (its genes, batch key and settings apply).")
@dataclass_options(VAEConfig)
@_input_options
@config_option
@overwrite_option
@resume_option
@distributed_options
def embed(input_, output, batch_key, counts_layer, save_model, model_path, orientation,
          make_unique, config_file, overwrite, resume, workers, scheduler, partition_size,
          **params):
    """Embed cells with the NB-VAE, trained on the raw counts or saved (--model).

    While it trains, OUTPUT.work/ holds the checkpoint that --resume continues from
    after an interruption. An .h5ad input is read and embedded a partition of cells at a
    time (flat memory with --model: training reads it whole); with --workers N or
    --scheduler the partitions run on Dask, and an interrupted run keeps the finished ones
    in OUTPUT.parts/ for the same command to resume from. --partition-size counts cells, a
    multiple of 1,024 (default 8,192).

    \b
    Examples:
      pmt expr embed -i counts.h5ad --batch-key sample -o embedded.h5ad --save-model vae.safetensors
      pmt expr embed -i atlas.h5ad -m vae.safetensors --workers 8 -o atlas_embedded.h5ad
    """
    import logging

    from pmtoolkit.cli.common import startup

    from pmtoolkit.core.config import to_dict
    from pmtoolkit.core.distributed import WorkerModel
    from pmtoolkit.core.io import work_beside
    from pmtoolkit.expression.io import write_h5ad
    from pmtoolkit.expression.partitioned import apply_file, check_chunked, trained_model
    from pmtoolkit.expression.vae import fit_vae, load_vae

    cluster = cluster_from(workers, scheduler, partition_size)
    config = resolve(VAEConfig, params, config_file)
    _check_h5ad(output)
    chunked = check_chunked(input_, cluster)
    startup(seed=config.seed, device=config.device, model=model_path)
    if model_path:
        model = load_vae(model_path)
        if batch_key and batch_key != model.batch_key:
            logging.getLogger(__name__).warning(
                "--batch-key %r ignored: the model's batch key is %r", batch_key,
                model.batch_key)
        if save_model:
            model.save(save_model)
        if chunked:
            apply_file("embed", input_, output,
                       WorkerModel.named(load_vae, os.path.abspath(model_path)),
                       cluster=cluster, layer=counts_layer, make_unique=make_unique)
            n = _n_obs(output)
        else:
            adata = _read(input_, orientation, make_unique)
            model.embed(adata, layer=counts_layer)
            write_h5ad(adata, output)
            n = adata.n_obs
        click.echo(f"{n:,} cells embedded in {model.config.n_latent} dimensions "
                   f"({len(model.genes)} genes, model {model_path}); written to {output}",
                   err=True)
        return
    settings = {"model": to_dict(config), "data": {
        "input": str(input_), "batch-key": batch_key, "counts-layer": counts_layer,
        "orientation": orientation, "make-unique": make_unique}}
    with work_beside(output, settings, overwrite=overwrite, resume=resume) as work:
        adata = _read(input_, orientation, make_unique)
        model = fit_vae(adata, config, batch_key=batch_key, layer=counts_layer,
                        checkpoints=work, resume=resume)
        if save_model:
            model.save(save_model)
        n = adata.n_obs
        if chunked:  # the model travels to the partitions as a file
            del adata
            apply_file("embed", input_, output,
                       trained_model(load_vae, model, work / "vae.safetensors"),
                       cluster=cluster, layer=counts_layer, make_unique=make_unique)
        else:
            model.embed(adata, layer=counts_layer)
            write_h5ad(adata, output)
    m = model.metadata.get("metrics", {})
    click.echo(f"{n:,} cells embedded in {config.n_latent} dimensions "
               f"({m.get('n_genes', len(model.genes))} genes, {m.get('epochs_run', '?')} "
               f"epochs); written to {output}", err=True)


def _n_obs(path) -> int:
    from pmtoolkit.expression.partitioned import Layout

    return Layout.of(path).n_obs


def _check_h5ad(path: Path) -> None:
    from pmtoolkit.core.errors import BadInputError

    if path.suffix.lower() != ".h5ad":
        raise BadInputError(f"output '{path}' must end in .h5ad")


@expr.command()
@click.option("-i", "--input", "query", required=True, type=click.Path(exists=True),
              help="The cells to label: " + INPUT_HELP)
@click.option("--reference", required=True, help=REFERENCE_HELP)
@click.option("--label-column", "label_key",
              help="obs column of the reference's labels (reference .h5ad).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The query as .h5ad with obs pmt_label, pmt_label_confidence and obsm "
                   "pmt_label_probabilities.")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write cell, label, confidence and each class probability as CSV.")
@click.option("--save-model", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the classifier trained on the reference (.safetensors).")
@click.option("--key-added", default="pmt_label", show_default=True,
              help="obs column written with the labels (and KEY_confidence, obsm "
                   "KEY_probabilities).")
@dataclass_options(ExpressionClassifierConfig)
@_input_options
@config_option
@overwrite_option
@resume_option
@distributed_options
def annotate(query, reference, label_key, output, predictions, save_model, key_added,
             orientation, make_unique, config_file, overwrite, resume, workers, scheduler,
             partition_size, **params):
    """Transfer cell labels from a labelled reference to the input cells, with per-cell
    confidence.

    While a classifier trains on a reference .h5ad, OUTPUT.work/ holds the checkpoint
    that --resume continues from after an interruption. An .h5ad input is read and
    labelled a partition of cells at a time (flat memory); with --workers N or --scheduler
    the partitions run on Dask (a reference is trained here first), and an interrupted run
    keeps the finished ones in OUTPUT.parts/ for the same command to resume from.
    --partition-size counts cells, a multiple of 4,096 (default 8,192).

    \b
    Examples:
      pmt expr annotate -i query.h5ad --reference ref.h5ad --label-column cell_type -o out.h5ad
      pmt expr annotate -i atlas.h5ad --reference pbmc68k --workers 8 -o atlas_labelled.h5ad
    """
    import contextlib

    from pmtoolkit.cli.common import startup

    from pmtoolkit.core.config import to_dict
    from pmtoolkit.core.distributed import WorkerModel
    from pmtoolkit.core.io import work_beside, write_table
    from pmtoolkit.expression.classify import is_reference, load, load_or_train_classifier
    from pmtoolkit.expression.io import write_h5ad
    from pmtoolkit.expression.partitioned import apply_file, check_chunked, trained_model

    cluster = cluster_from(workers, scheduler, partition_size)
    config = resolve(ExpressionClassifierConfig, params, config_file)
    _check_h5ad(output)
    chunked = check_chunked(query, cluster)
    startup(seed=config.seed, device=config.device)
    settings = {"model": to_dict(config), "data": {"reference": str(reference),
                                                   "label-key": label_key}}
    training = is_reference(reference)
    with (work_beside(output, settings, overwrite=overwrite, resume=resume) if training
          else contextlib.nullcontext()) as work:
        if chunked:
            named = WorkerModel.named(load, os.path.abspath(reference)
                                      if os.path.isfile(reference) else reference)
            if training or save_model:
                model = load_or_train_classifier(reference, label_key=label_key,
                                                 config=config, checkpoints=work,
                                                 resume=resume)
                if save_model:
                    model.save(save_model)
                if training:  # the model travels to the partitions as a file
                    named = trained_model(load, model, work / "classifier.safetensors")
            info = apply_file("annotate", query, output, named,
                              cluster=cluster, key_added=key_added, make_unique=make_unique,
                              predictions=predictions)
            n, counts = info["cells"], info["labels"]
            median, low = info["median_confidence"], info["below_half"]
        else:
            adata = _read(query, orientation, make_unique)
            model = load_or_train_classifier(reference, label_key=label_key, config=config,
                                             checkpoints=work, resume=resume)
            if save_model:
                model.save(save_model)
            model.annotate(adata, key_added=key_added)
            if predictions:
                table = adata.obsm[f"{key_added}_probabilities"].copy()
                table.insert(0, "confidence", adata.obs[f"{key_added}_confidence"].to_numpy())
                table.insert(0, "label", adata.obs[key_added].astype(str).to_numpy())
                write_table(table.reset_index(names="cell"), predictions)
            write_h5ad(adata, output)
            conf = adata.obs[f"{key_added}_confidence"]
            n, counts = adata.n_obs, adata.obs[key_added].value_counts().to_dict()
            median, low = float(conf.median()), int((conf < 0.5).sum())
    counts = sorted(((v, k) for k, v in counts.items() if v), key=lambda c: -c[0])
    shown = ", ".join(f"{k} {v}" for v, k in counts[:5])
    click.echo(f"{n:,} cells labelled ({shown}{', ...' if len(counts) > 5 else ''}); "
               f"median confidence {median:.2f}, {low:,} below 0.5; written to {output}",
               err=True)


@expr.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(exists=True),
              help="Raw counts with the condition and sample in obs: " + INPUT_HELP)
@click.option("--condition-key", required=True, help="obs column of the condition.")
@click.option("--sample-key", required=True,
              help="obs column of the biological sample (replicate) of each cell.")
@click.option("--case", required=True, help="Condition value tested (numerator).")
@click.option("--reference", "reference_value", required=True,
              help="Condition value compared against (denominator).")
@click.option("--groupby", help="obs column of cell groups (e.g. cell type): one test each.")
@click.option("--counts-layer", default="auto", show_default=True,
              help="Where the raw counts are: auto, X, raw or a layer name.")
@click.option("--min-cells", type=click.IntRange(1, 10**9), default=10, show_default=True,
              help="Drop pseudobulk profiles of fewer cells.")
@click.option("-o", "--output", required=True,
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Table (.csv/.tsv) of group, gene, log2 fold change, mean log2 CPM, t, "
                   "p-value, adjusted p-value; - for stdout (CSV).")
@_input_options
def de(input_, condition_key, sample_key, case, reference_value, groupby, counts_layer,
       min_cells, output, orientation, make_unique):
    """Pseudobulk differential expression between conditions: counts summed per sample (and
    group), moderated t-tests on log-CPM, Benjamini-Hochberg FDR.

    \b
    Example:
      pmt expr de -i cells.h5ad --condition-key status --sample-key donor --case disease \\
          --reference healthy --groupby cell_type -o de.csv
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.core.io import write_table
    from pmtoolkit.expression.pseudobulk import pseudobulk_de
    from pmtoolkit.expression.qc import store_counts

    startup()
    adata = _read(input_, orientation, make_unique)
    store_counts(adata, counts_layer)
    table = pseudobulk_de(adata, condition_key, sample_key, case=case,
                          reference=reference_value, groupby=groupby, min_cells=min_cells)
    write_table(table, output)
    sig = int((table["padj"] < 0.05).sum())
    click.echo(f"{len(table):,} tests in {table['group'].nunique()} group(s); {sig:,} at FDR "
               f"< 0.05; written to {output}", err=True)


@expr.group()
def classify() -> None:
    """Bulk (or single-cell) phenotype classifiers with per-gene attributions."""


@classify.command(name="train")
@click.option("-i", "--input", "input_", required=True, type=click.Path(exists=True),
              help="Expression profiles (bulk samples or cells): " + INPUT_HELP)
@click.option("--label-column", "label_key", required=True, help="Column of the phenotype.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False),
              help="Table of sample id (first column) and phenotype columns, when the input "
                   "holds only the matrix.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model.safetensors, cv.csv, attributions.csv, config.json.")
@click.option("--folds", type=click.IntRange(0, 100), default=5, show_default=True,
              help="Stratified cross-validation folds reported before the final fit "
                   "(0 or 1: none).")
@dataclass_options(ExpressionClassifierConfig)
@_input_options
@config_option
@overwrite_option
@resume_option
def classify_train(input_, label_key, labels, outdir, folds, orientation, make_unique,
                   config_file, overwrite, resume, **params):
    """Train a phenotype classifier: cross-validated, then fitted on every sample, with the
    genes that drive each class (integrated gradients).

    \b
    Example:
      pmt expr classify train -i counts.csv --labels phenotypes.csv --label-column status \\
          -o runs/status
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.expression.classify import train_file

    config = resolve(ExpressionClassifierConfig, params, config_file)
    startup(seed=config.seed, device=config.device)
    info = train_file(input_, outdir, label_key=label_key, labels=labels, config=config,
                      folds=folds, orientation=orientation, make_unique=make_unique,
                      overwrite=overwrite, resume=resume)
    cv = info.get("cv")
    shown = (f"{folds}-fold CV accuracy {cv['accuracy']:.3f}, balanced {cv['balanced_accuracy']:.3f}"
             if cv else "no cross-validation")
    click.echo(f"{info['n_profiles']} profiles, {len(info['classes'])} classes: {shown}; "
               f"model written to {outdir / 'model.safetensors'}", err=True)


@classify.command(name="predict")
@click.option("-i", "--input", "input_", required=True, type=click.Path(exists=True),
              help="Expression profiles to classify: " + INPUT_HELP)
@click.option("-m", "--model", "model_name", required=True,
              help="A classifier (.safetensors) or a shipped one (pbmc68k).")
@click.option("-o", "--output", required=True,
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Table (.csv/.tsv): profile, label, confidence, class probabilities; - for "
                   "stdout (CSV).")
@click.option("--attributions", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write each profile's per-gene attributions (integrated gradients).")
@_input_options
def classify_predict(input_, model_name, output, attributions, orientation, make_unique):
    """Predict phenotypes (label, confidence, probabilities) of each input profile.

    \b
    Example:
      pmt expr classify predict -i new.csv -m runs/status/model.safetensors -o pred.csv
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.core.io import write_table
    from pmtoolkit.expression.classify import load

    startup(model=model_name)
    model = load(model_name)
    adata = _read(input_, orientation, make_unique)
    probs = model.predict_proba(adata)
    pred = model.predict(adata)
    table = probs.copy()
    table.insert(0, "confidence", pred["confidence"].to_numpy())
    table.insert(0, "label", pred["label"].to_numpy())
    write_table(table.reset_index(names="profile"), output)
    if attributions:
        write_table(model.attributions(adata).reset_index(names="profile"), attributions)
    click.echo(f"{len(table):,} profiles predicted; written to {output}", err=True)
