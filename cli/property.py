"""``pmt property``: train, predict and evaluate molecular property models."""
from __future__ import annotations

import json
from pathlib import Path

import click

from pmtoolkit.cli.options import (
    config_option,
    dataclass_options,
    on_invalid_option,
    overwrite_option,
    resolve,
    resume_option,
)
from pmtoolkit.property.config import PropertyConfig, SplitOptions

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
@click.option("-s", "--smiles-column", default="smiles", show_default=True)
@click.option("--target-columns", required=True, multiple=True,
              help="Target column(s); repeat the option or separate with commas.")
@dataclass_options(PropertyConfig)
@dataclass_options(SplitOptions)
@click.option("--split-file", type=click.Path(exists=True, dir_okay=False),
              help="Use a saved split.json instead of making one.")
@on_invalid_option("error")
@config_option
@overwrite_option
@resume_option
def train(input_, outdir, smiles_column, target_columns, split_file, on_invalid, config_file,
          overwrite, resume, **params):
    """Train a property model and evaluate it on a held-out test set.

    Example: pmt property train -i esol.csv --target-columns logS -o runs/esol
    """
    from pmtoolkit.cli.common import startup
    from pmtoolkit.property.run import train_file

    config = resolve(PropertyConfig, params, config_file, section="model",
                     sections=("model", "split"))
    split = resolve(SplitOptions, params, config_file, section="split",
                    sections=("model", "split"))
    targets = [t.strip() for item in target_columns for t in item.split(",") if t.strip()]
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
@click.option("-i", "--input", "input_", required=True,
              type=click.Path(dir_okay=False, allow_dash=True),
              help="Molecules: table with a SMILES column, .smi or .sdf; - for stdin.")
@click.option("-m", "--model", "model_name", default="solubility", show_default=True,
              help=f"A model file, or a shipped model: {SHIPPED}.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Predictions table, one row per input row; - for stdout (CSV).")
@click.option("-s", "--smiles-column", default="smiles", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "parquet", "smi", "sdf"]))
@on_invalid_option("skip")
def predict(input_, model_name, output, smiles_column, fmt, on_invalid):
    """Predict properties; rows stay aligned with the input (NaN where invalid)."""
    from pmtoolkit.cli.common import startup
    from pmtoolkit.property.run import load_property_model, predict_file

    startup(model=model_name)
    model = load_property_model(model_name)
    n = predict_file(input_, output, model=model, smiles_column=smiles_column, fmt=fmt,
                     on_invalid=on_invalid)
    click.echo(f"{n} rows written to {output}", err=True)


@property_.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(dir_okay=False),
              help="Table with SMILES and measured targets.")
@click.option("-m", "--model", "model_name", required=True,
              help=f"A model file, or a shipped model: {SHIPPED}.")
@click.option("-s", "--smiles-column", default="smiles", show_default=True)
@click.option("--target-columns", multiple=True,
              help="Target column(s) in the model's order (default: the model's names).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Metrics as JSON.")
@on_invalid_option("error")
def evaluate(input_, model_name, smiles_column, target_columns, output, on_invalid):
    """Evaluate a model on labelled molecules.

    Regression: RMSE, MAE, R², Pearson, Spearman; classification: ROC-AUC, PR-AUC, accuracy,
    sensitivity, specificity, F1, MCC, Brier. Per target and averaged.
    """
    from pmtoolkit.core.io import atomic_write
    from pmtoolkit.property.run import evaluate_file, load_property_model

    model = load_property_model(model_name)
    targets = [t.strip() for item in target_columns for t in item.split(",") if t.strip()]
    metrics = evaluate_file(input_, model=model, smiles_column=smiles_column,
                            target_columns=targets or None, on_invalid=on_invalid)
    with atomic_write(output) as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
