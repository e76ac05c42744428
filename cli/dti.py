"""``pmt dti``: train, predict, evaluate drug–target affinity models and screen libraries."""
from __future__ import annotations

import json
from pathlib import Path

import click
from pmtoolkit.cli.options import (
    SHARDS_HELP,
    InputFiles,
    chunk_size_option,
    cluster_from,
    config_option,
    dataclass_options,
    distributed_options,
    on_invalid_option,
    overwrite_option,
    resolve,
    resume_option,
)

from pmtoolkit.dti.config import DTIConfig

MODEL_HELP = "A model file, or the shipped model: davis (pKd, kinases)."
SPLITS = ["setting1", "random", "cold-drug", "cold-target", "cold-pair"]
#: hits kept per target, and molecules featurised at a time: both are held in memory
MAX_TOP = 1_000_000
MAX_CHUNK = 100_000


@click.group(name="dti")
def dti() -> None:
    """Train, predict and evaluate drug-target affinity models; screen libraries."""


@dti.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(exists=True),
              help="A table of pairs (.csv/.tsv/.parquet: SMILES, sequence, value) or a DeepDTA "
                   "benchmark folder (davis, kiba).")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model, resolved config, split, metrics, test predictions.")
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES.")
@click.option("--sequence-column", default="sequence", show_default=True,
              help="Column holding the protein sequence.")
@click.option("--label-column", "value_column", default="value", show_default=True,
              help="Column of the affinity (regression) or 0/1 interaction (classification).")
@click.option("--split", type=click.Choice(SPLITS), default="random", show_default=True,
              help="setting1: DeepDTA's folds (benchmark folders); cold-drug, cold-target, "
                   "cold-pair hold out whole drugs, proteins or both.")
@click.option("--sizes", type=click.FloatRange(0.0, 1.0), nargs=3, default=(0.8, 0.1, 0.1),
              show_default=True, help="Train, validation and test fractions (not setting1).")
@click.option("--split-seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the split (the model seed is --seed).")
@click.option("--fold", type=click.IntRange(-1, 4), default=-1, show_default=True,
              help="setting1: the training fold to validate on (-1: train on all five, as "
                   "the published protocol).")
@click.option("--split-file", type=click.Path(exists=True, dir_okay=False),
              help="A split.json from an earlier run: the very same pairs.")
@dataclass_options(DTIConfig)
@on_invalid_option("error")
@config_option
@overwrite_option
@resume_option
def train(input_, outdir, smiles_column, sequence_column, value_column, split, sizes,
          split_seed, fold, split_file, on_invalid, config_file, overwrite, resume, **params):
    """Train a drug-target model and evaluate it on held-out pairs.

    \b
    Example:
      pmt dti train -i pairs.csv --label-column pKd --split cold-drug -o runs/dti
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.dti.run import train_file

    config = resolve(DTIConfig, params, config_file, section="model")
    startup(seed=config.seed, device=config.device)
    metrics = train_file(input_, outdir, config=config, smiles_column=smiles_column,
                         sequence_column=sequence_column, value_column=value_column,
                         split=split, sizes=tuple(sizes), split_seed=split_seed, fold=fold,
                         split_file=split_file, on_invalid=on_invalid, overwrite=overwrite,
                         resume=resume)
    test = metrics.get("test")
    if test:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in test.items() if k != "n")
        click.echo(f"test ({test['n']} pairs): {shown}", err=True)
    click.echo(f"model written to {outdir / 'model.safetensors'} "
               f"({metrics['train_seconds']:.0f} s of training)", err=True)


@dti.command()
@click.option("-i", "--input", "input_", required=True, type=InputFiles(),
              help="A table of pairs with SMILES and sequence columns." + SHARDS_HELP)
@click.option("-m", "--model", "model_name", default="davis", show_default=True,
              help=MODEL_HELP)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="The input table plus prediction and error columns, row for row.")
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES.")
@click.option("--sequence-column", default="sequence", show_default=True,
              help="Column holding the protein sequence.")
@on_invalid_option("skip")
@chunk_size_option(10_000, MAX_CHUNK)
@distributed_options
def predict(input_, model_name, output, smiles_column, sequence_column, on_invalid,
            chunk_size, workers, scheduler, partition_size):
    """Predict the affinity of drug-protein pairs; rows stay aligned with the input.

    With --workers N (or --scheduler) the table is scored in partitions on Dask; an
    interrupted run keeps its finished partitions in OUTPUT.parts/ and the same command
    resumes from them.

    \b
    Examples:
      pmt dti predict -i pairs.csv -m davis -o predictions.csv
      pmt dti predict -i pairs.csv.gz --workers 4 -o predictions.parquet
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.dti.run import load, predict_file

    cluster = cluster_from(workers, scheduler, partition_size, input_)
    startup(model=model_name)
    n = predict_file(model_name if cluster else load(model_name), input_, output,
                     smiles_column=smiles_column, sequence_column=sequence_column,
                     on_invalid=on_invalid, chunksize=chunk_size, cluster=cluster)
    click.echo(f"{n} rows written to {output}", err=True)


@dti.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(dir_okay=False),
              help="A table of pairs with measured values.")
@click.option("-m", "--model", "model_name", default="davis", show_default=True,
              help=MODEL_HELP)
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES.")
@click.option("--sequence-column", default="sequence", show_default=True,
              help="Column holding the protein sequence.")
@click.option("--label-column", "value_column", default="value", show_default=True,
              help="Column of the measured affinity or 0/1 interaction.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Metrics as JSON.")
@on_invalid_option("error")
def evaluate(input_, model_name, smiles_column, sequence_column, value_column, output,
             on_invalid):
    """Evaluate a model on measured pairs: CI, MSE, rm2, Pearson, Spearman (or ROC-AUC, PR-AUC).

    \b
    Example:
      pmt dti evaluate -i measured.csv -m runs/dti/model.safetensors --label-column pKd
    """
    from pmtoolkit.core.io import atomic_write
    from pmtoolkit.dti.run import evaluate_file, load

    model = load(model_name)
    metrics = evaluate_file(model, input_, smiles_column=smiles_column,
                            sequence_column=sequence_column, value_column=value_column,
                            on_invalid=on_invalid)
    with atomic_write(output) as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")


@dti.command()
@click.option("--target", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Protein(s) to screen against: FASTA (.gz too); each record is ranked.")
@click.option("--library", required=True, type=InputFiles(),
              help="Molecules: .smi, SDF, or a table with a SMILES column; any size." +
                   SHARDS_HELP)
@click.option("-m", "--model", "model_name", default="davis", show_default=True,
              help=MODEL_HELP)
@click.option("--top", type=click.IntRange(1, MAX_TOP), default=100, show_default=True,
              help="Molecules kept per target.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Hits table: target, rank, smiles, id, line, prediction.")
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES.")
@click.option("--id-column", help="Column with molecule names (tables).")
@click.option("--lowest", is_flag=True,
              help="Rank the lowest predictions first (models of Kd or IC50 values).")
@chunk_size_option(5000, MAX_CHUNK)
@distributed_options
def screen(target, library, model_name, top, output, smiles_column, id_column, lowest,
           chunk_size, workers, scheduler, partition_size):
    """Rank a molecule library against protein targets, streaming it in chunks.

    With --workers N (or --scheduler) the library is scored in partitions on Dask; an
    interrupted run keeps its finished partitions in OUTPUT.parts/ and the same command
    resumes from them.

    \b
    Examples:
      pmt dti screen --target kinase.fasta --library mols.smi --top 100 -o hits.csv
      pmt dti screen --target kinase.fasta --library big.csv.gz --workers 8 -o hits.csv
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.dti.run import load, screen_file

    cluster = cluster_from(workers, scheduler, partition_size, library)
    startup(model=model_name)
    info = screen_file(model_name if cluster else load(model_name), target, library, output,
                       top=top, smiles_column=smiles_column, id_column=id_column,
                       lowest=lowest, chunksize=chunk_size, cluster=cluster)
    click.echo(f"{info['molecules']:,} molecules x {info['targets']} target(s) scored "
               f"({info['molecules_per_second']:,.0f} molecules/s, {info['rejected']} "
               f"rejected); top {top} written to {output}", err=True)
