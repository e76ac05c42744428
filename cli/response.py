"""``pmt response``: drug-response prediction from sample features and drug structure:
simulate a panel with planted signal, train (with baselines on the same split), predict,
evaluate."""
from __future__ import annotations

import json
import math
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

from pmtoolkit.core.config import SEED
from pmtoolkit.response.config import (
    BASELINE_NAMES,
    DEFAULT_BASELINES,
    SPLITS,
    PanelConfig,
    ResponseConfig,
)

RESPONSES_HELP = ("Long response table (.csv/.tsv/.parquet): one row per measured pair with "
                  "sample, drug and response columns (ln IC50, AUC, ...).")
DRUGS_HELP = ("Drugs table (.csv/.tsv/.parquet) with drug id and SMILES columns; a drug "
              "without a valid SMILES is a reject.")
FEATURES_HELP = ("Sample features: AnnData .h5ad (samples x genes; counts are "
                 "log-normalised) or a table with a sample id column and numeric feature "
                 "columns (expression, copy number, mutation, genotype dosages). Repeat for "
                 "several tables side by side (features named <file stem>:<column>); a "
                 "sample missing from one is a reject.")


@click.group(name="response")
def response() -> None:
    """Drug response from sample features and drug structure: simulate, train, predict,
    explain, evaluate."""


LAYOUTS = ("default", "gdsc")  # pmtoolkit.response.data.LAYOUTS, without importing numpy


def _column_options(with_response: bool, model_default: bool = False):
    def deco(f):
        layout_help = ("Column names of a known layout: default (sample_id, drug_id, response, "
                       "smiles) or gdsc (DepMap_ID, drug_name, ln_IC50, CanonicalSMILES); the "
                       "column options below override it.")
        if model_default:
            layout_help += " [default: the columns the model was trained on]"
        opts = [click.option("--layout", type=click.Choice(LAYOUTS),
                             default=None if model_default else "default",
                             show_default=not model_default, help=layout_help),
                click.option("--sample-column",
                             help="Sample id column of responses and pairs [default: the "
                                  "layout's, sample_id]."),
                click.option("--drug-column",
                             help="Drug id column of responses, pairs and the drugs table "
                                  "[default: the layout's, drug_id]."),
                click.option("--smiles-column",
                             help="SMILES column of the drugs table [default: the layout's, "
                                  "smiles]."),
                click.option("--feature-id-column",
                             help="Sample id column of the feature tables [default: the "
                                  "sample column].")]
        if with_response:
            opts.append(click.option("--response-column",
                                     help="Measured response column [default: the layout's, "
                                          "response]."))
        for opt in reversed(opts):
            f = opt(f)
        return f
    return deco


def _columns(layout, sample_column, drug_column, smiles_column, feature_id_column,
             response_column=None, model=None):
    """The input columns: ``layout``'s (None: those ``model`` was trained on, else the
    default layout's), with the names given in place."""
    from dataclasses import replace

    from pmtoolkit.response.data import Columns, layout_columns

    names = {"sample": sample_column, "drug": drug_column, "response": response_column,
             "smiles": smiles_column, "feature_sample": feature_id_column}
    if layout is None and model is not None and model.columns:
        known = {k: v for k, v in model.columns.items() if k in Columns.__dataclass_fields__}
        return replace(Columns(**known), **{k: v for k, v in names.items() if v is not None})
    return layout_columns(layout or "default", **names)


def _inputs(f):
    f = click.option("--features", required=True, multiple=True,
                     type=click.Path(exists=True, path_type=Path), help=FEATURES_HELP)(f)
    f = click.option("-d", "--drugs", required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help=DRUGS_HELP)(f)
    return f


@response.command()
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder for the panel: responses.csv, drugs.csv, expression.h5ad, "
                   "truth.csv, panel.json.")
@dataclass_options(PanelConfig)
@overwrite_option
def simulate(outdir, overwrite, **params):
    """Write a simulated drug-response panel: responses.csv, drugs.csv (real shipped
    structures), expression.h5ad, truth.csv (the planted components), panel.json.

    \b
    Example:
      pmt response simulate -o panel/ --samples 200 --drugs 150
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.response.simulate import simulate_panel

    spec = resolve(PanelConfig, params, None)
    startup(seed=spec.seed)
    info = simulate_panel(outdir, spec, overwrite=overwrite)
    ceiling = info["noise_ceiling"]
    click.echo(f"{info['pairs']} pairs ({info['samples']} samples x {info['drugs']} drugs) "
               f"written to {outdir}; noise ceiling Pearson {ceiling['pearson']:.3f}, "
               f"per-drug {ceiling['per_drug_pearson']:.3f}", err=True)


@response.command()
@click.option("-i", "--input", "responses", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help=RESPONSES_HELP)
@_inputs
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model, resolved config, split, metrics (model and "
                   "baselines), test predictions.")
@_column_options(with_response=True)
@click.option("--split", type=click.Choice(SPLITS), default="random", show_default=True,
              help="random: warm pairs; cold-drug / cold-sample: test drugs / samples never "
                   "seen in training; cold-pair: neither.")
@click.option("--sizes", type=click.FloatRange(0, 1), nargs=3, default=(0.8, 0.1, 0.1),
              show_default=True, help="Train, validation and test fractions of the pairs.")
@click.option("--split-seed", type=click.IntRange(SEED.min, SEED.max), default=0,
              show_default=True, help="Seed of the split.")
@click.option("--baselines", default=",".join(DEFAULT_BASELINES), show_default=True,
              help="Comma-separated baselines fitted and tested on the same split, from "
                   f"{', '.join(BASELINE_NAMES)}; 'none' for none.")
@dataclass_options(ResponseConfig)
@on_invalid_option("error")
@config_option
@overwrite_option
@resume_option
def train(responses, drugs, features, outdir, layout, sample_column, drug_column,
          smiles_column, feature_id_column, response_column, split, sizes, split_seed,
          baselines, on_invalid, config_file, overwrite, resume, **params):
    """Train a drug-response model and test it, beside the baselines, on held-out pairs.
    An interrupted run continues with --resume.

    \b
    Examples:
      pmt response train -i responses.csv -d drugs.csv --features expression.h5ad \\
          --split cold-drug -o runs/response
      pmt response train --layout gdsc -i gdsc/ln_ic50.csv.gz -d gdsc/drugs.csv \\
          --features gdsc/cell_expression_zscore.csv.gz \\
          --features gdsc/cell_copynumber.csv.gz --features gdsc/cell_mutation.csv.gz \\
          --top-genes 0 --split cold-sample -o runs/gdsc
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.response.run import train_file

    names = [] if baselines.strip() == "none" else \
        [b.strip() for b in baselines.split(",") if b.strip()]
    bad = [b for b in names if b not in BASELINE_NAMES]
    if bad:
        raise click.BadParameter(f"unknown baseline {bad[0]!r} (choose from "
                                 f"{', '.join(BASELINE_NAMES)} or none)",
                                 param_hint="--baselines")
    config = resolve(ResponseConfig, params, config_file, section="model")
    startup(seed=config.seed, device=config.device)
    metrics = train_file(responses, drugs, features, outdir, config=config,
                         columns=_columns(layout, sample_column, drug_column, smiles_column,
                                          feature_id_column, response_column),
                         split=split, sizes=tuple(sizes), split_seed=split_seed,
                         baselines=names, on_invalid=on_invalid, overwrite=overwrite,
                         resume=resume)

    def show(v: float) -> str:  # no correlation (a prediction constant within drugs): "-"
        return "  -  " if math.isnan(v) else f"{v:.3f}"

    rows = {"model": metrics["test"], **metrics["baselines"]}
    for name, m in rows.items():
        click.echo(f"test {name:12s} RMSE {m['rmse']:.3f}  Pearson {show(m['pearson'])}  "
                   f"per-drug Pearson {show(m['per_drug_pearson'])} Spearman "
                   f"{show(m['per_drug_spearman'])} ({m['drugs_scored']} drugs)", err=True)
    click.echo(f"model written to {outdir / 'model.safetensors'} "
               f"({metrics['train_seconds']:.0f} s of training)", err=True)


MODEL_HELP = ("The shipped model gdsc (pmt info gdsc), a model.safetensors file, or the "
              "folder pmt response train wrote.")


@response.command()
@click.option("-m", "--model", "model_path", required=True, help=MODEL_HELP)
@_inputs
@click.option("-i", "--input", "pairs",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Table of the (sample, drug) pairs to predict (the sample and drug "
                   "columns; other columns are kept); every row stays, in order. Default: "
                   "every sample with every drug.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Predictions table (.csv/.tsv/.parquet; '-' for CSV on stdout), with "
                   "<response>_pred (ln_IC50_pred for gdsc).")
@_column_options(with_response=False, model_default=True)
def predict(model_path, drugs, features, pairs, output, layout, sample_column, drug_column,
            smiles_column, feature_id_column):
    """Predict the response of samples to drugs with a trained or shipped model.

    \b
    Examples:
      pmt response predict -m gdsc -i pairs.csv -d drugs.csv --features expression.csv.gz \\
          --features copynumber.csv.gz --features mutation.csv.gz -o pred.csv
      pmt response predict -m runs/response -d drugs.csv --features expression.h5ad -o pred.csv
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.response.model import load
    from pmtoolkit.response.run import predict_file

    startup(model=model_path)
    model = load(model_path)
    info = predict_file(model, drugs, features, output, pairs=pairs,
                        columns=_columns(layout, sample_column, drug_column, smiles_column,
                                         feature_id_column, model=model))
    click.echo(f"{info['predicted']} of {info['rows']} pairs predicted, written to {output}"
               + (f"; {info['rejected_drugs']} drug(s) with an invalid SMILES skipped"
                  if info["rejected_drugs"] else ""), err=True)


@response.command()
@click.option("-m", "--model", "model_path", required=True, help=MODEL_HELP)
@_inputs
@click.option("-i", "--input", "pairs", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Table of the (sample, drug) pairs to explain (the sample and drug "
                   "columns).")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: attributions.csv, a picture per pair, report.html.")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Cell features listed per pair.")
@click.option("--pictures", type=click.IntRange(0, 200), default=12, show_default=True,
              help="Pairs drawn in the report (the first ones); attributions.csv has all.")
@_column_options(with_response=False, model_default=True)
@overwrite_option
def explain(model_path, drugs, features, pairs, outdir, top, pictures, layout, sample_column,
            drug_column, smiles_column, feature_id_column, overwrite):
    """Explain predictions: which genes and which substructures each one leans on.

    Integrated gradients from the average training cell line and an empty fingerprint: a
    pair's attributions add up to its predicted ln IC50 minus that baseline pair's. Blue
    (negative) lowers the predicted IC50, red raises it; the drug is drawn with its atoms
    shaded by their share.

    \b
    Example:
      pmt response explain -m gdsc -i pairs.csv -d drugs.csv --features expression.csv.gz \\
          --features copynumber.csv.gz --features mutation.csv.gz -o why/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.response.model import load
    from pmtoolkit.response.run import explain_file

    startup(model=model_path)
    model = load(model_path)
    info = explain_file(model, drugs, features, pairs, outdir,
                        columns=_columns(layout, sample_column, drug_column, smiles_column,
                                         feature_id_column, model=model),
                        top=top, pictures=pictures, overwrite=overwrite)
    click.echo(f"{info['pairs']} pair(s) explained ({info['rejected']} rejected); report "
               f"written to {outdir / 'report.html'}", err=True)


@response.command()
@click.option("-m", "--model", "model_path", required=True, help=MODEL_HELP)
@click.option("-i", "--input", "responses", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help=RESPONSES_HELP)
@_inputs
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: metrics.json, predictions, per-drug correlations, "
                   "report.html with plots.")
@_column_options(with_response=True, model_default=True)
@on_invalid_option("error")
@overwrite_option
def evaluate(model_path, responses, drugs, features, outdir, layout, sample_column,
             drug_column, smiles_column, feature_id_column, response_column, on_invalid,
             overwrite):
    """Evaluate a model on measured responses: RMSE, Pearson, Spearman, per-drug Pearson;
    an HTML report with predicted-vs-observed and per-drug plots.

    \b
    Example:
      pmt response evaluate -m runs/response -i responses.csv -d drugs.csv \\
          --features expression.h5ad -o eval/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.response.model import load
    from pmtoolkit.response.run import evaluate_file

    startup(model=model_path)
    model = load(model_path)
    metrics = evaluate_file(model, responses, drugs, features, outdir,
                            columns=_columns(layout, sample_column, drug_column,
                                             smiles_column, feature_id_column,
                                             response_column, model=model),
                            on_invalid=on_invalid, overwrite=overwrite)
    click.echo(json.dumps({k: metrics[k] for k in ("rmse", "pearson", "per_drug_pearson",
                                                   "per_drug_spearman", "drugs_scored",
                                                   "n")}), err=True)
    click.echo(f"report written to {outdir / 'report.html'}", err=True)
