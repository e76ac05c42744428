"""``pmt property``: train, predict and evaluate molecular property models."""
from __future__ import annotations

import json
from pathlib import Path

import click
from pmtoolkit.cli.options import (
    SHARDS_HELP,
    InputFiles,
    chunk_size_option,
    cluster_from,
    comma_list,
    config_option,
    dataclass_options,
    distributed_options,
    on_invalid_option,
    overwrite_option,
    resolve,
    resume_option,
)

from pmtoolkit.property.config import PropertyConfig, SplitConfig

SHIPPED = "solubility, lipophilicity, bbbp, tox21"


@click.group(name="property")
def property_() -> None:
    """Train, predict and evaluate molecular property models."""


@property_.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(dir_okay=False),
              help="Training table (.csv/.tsv/.parquet, .gz too) with SMILES and targets.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model, resolved config, split, metrics, test predictions.")
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES (tables).")
@click.option("--label-column", "label_columns", required=True, multiple=True,
              help="Column of the values to learn; several targets: repeat the option or "
                   "separate with commas.")
@dataclass_options(PropertyConfig)
@dataclass_options(SplitConfig)
@click.option("--split-file", type=click.Path(exists=True, dir_okay=False),
              help="Use a saved split.json instead of making one.")
@on_invalid_option("error")
@config_option
@overwrite_option
@resume_option
def train(input_, outdir, smiles_column, label_columns, split_file, on_invalid, config_file,
          overwrite, resume, **params):
    """Train a property model and evaluate it on a held-out test set.

    \b
    Example:
      pmt property train -i esol.csv --label-column logS -o runs/esol
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.property.run import train_file

    config = resolve(PropertyConfig, params, config_file, section="model",
                     sections=("model", "split"))
    split = resolve(SplitConfig, params, config_file, section="split",
                    sections=("model", "split"))
    targets = comma_list(label_columns)
    startup(seed=config.seed, device=config.device)
    metrics = train_file(input_, outdir, smiles_column=smiles_column, target_columns=targets,
                         config=config, split=split, split_file=split_file,
                         on_invalid=on_invalid, overwrite=overwrite, resume=resume)
    test = metrics.get("test") or {}
    if test:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in test["mean"].items())
        click.echo(f"test ({test['n']} molecules): {shown}", err=True)
    click.echo(f"model written to {outdir / 'model.safetensors'}", err=True)


@property_.command()
@click.option("-i", "--input", "input_", required=True, type=InputFiles(),
              help="Molecules: table with a SMILES column, .smi or .sdf; - for stdin." +
                   SHARDS_HELP)
@click.option("-m", "--model", "model_names", multiple=True,
              help=f"A model file, or a shipped model: {SHIPPED} (default: solubility). "
                   "Several: repeat the option or separate with commas; each adds its "
                   "columns, prefixed by its name where two models share a target name.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Predictions table, one row per input row; - for stdout (CSV).")
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES (tables).")
@click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "parquet", "smi", "sdf"]),
              help="Input format (default: from the file suffix).")
@on_invalid_option("skip")
@chunk_size_option(10_000)
@distributed_options
def predict(input_, model_names, output, smiles_column, fmt, on_invalid, chunk_size, workers,
            scheduler, partition_size):
    """Predict properties; rows stay aligned with the input (NaN where invalid).

    With --workers N (or --scheduler) the input is predicted in partitions on Dask; an
    interrupted run keeps its finished partitions in OUTPUT.parts/ and the same command
    resumes from them.

    \b
    Examples:
      pmt property predict -i mols.csv -o pred.csv
      pmt property predict -i mols.smi -m solubility,bbbp -o pred.csv
      pmt property predict -i library.csv.gz --workers 8 -o pred.parquet
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.property.run import predict_file

    cluster = cluster_from(workers, scheduler, partition_size, input_)
    names = comma_list(model_names, option="--model") or ["solubility"]
    startup(model=",".join(names))
    n = predict_file(names, input_, output, smiles_column=smiles_column, fmt=fmt,
                     on_invalid=on_invalid, chunksize=chunk_size, cluster=cluster)
    click.echo(f"{n} rows written to {output}", err=True)


@property_.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(dir_okay=False),
              help="Table with SMILES and measured targets.")
@click.option("-m", "--model", "model_name", required=True,
              help=f"A model file, or a shipped model: {SHIPPED}.")
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES (tables).")
@click.option("--label-column", "label_columns", multiple=True,
              help="Column(s) of the measured values, in the model's target order (repeat or "
                   "separate with commas; default: the model's target names).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Metrics as JSON.")
@on_invalid_option("error")
def evaluate(input_, model_name, smiles_column, label_columns, output, on_invalid):
    """Evaluate a model on labelled molecules.

    Regression: RMSE, MAE, R², Pearson, Spearman; classification: ROC-AUC, PR-AUC, accuracy,
    sensitivity, specificity, F1, MCC, Brier. Per target and averaged.

    \b
    Example:
      pmt property evaluate -i test.csv -m runs/esol/model.safetensors --label-column logS
    """
    from pmtoolkit.core.io import atomic_write
    from pmtoolkit.property.run import evaluate_file, load

    model = load(model_name)
    targets = comma_list(label_columns)
    metrics = evaluate_file(model, input_, smiles_column=smiles_column,
                            target_columns=targets or None, on_invalid=on_invalid)
    with atomic_write(output) as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
