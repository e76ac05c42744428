"""``pmt fusion``: one patient's risk from several modalities (EHR, expression, imaging,
genotypes): simulate a linked cohort with planted signal, run the fused-vs-single experiment,
and train / apply fusion models on embedding tables."""
from __future__ import annotations

from pathlib import Path

import click
from pmtoolkit.cli.options import (
    config_option,
    dataclass_options,
    key_values,
    overwrite_option,
    resolve,
    resume_option,
)

from pmtoolkit.core.config import EPOCHS, SEED, WEIGHT_DECAY
from pmtoolkit.fusion.config import FusionConfig

seed_type = click.IntRange(SEED.min, SEED.max)


@click.group(name="fusion")
def fusion() -> None:
    """Multimodal patient models: simulate cohorts, fuse modality embeddings, attribute."""


@fusion.command()
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder for the cohort: EHR events, expression, images, genotypes, "
                   "outcomes.")
@click.option("--patients", type=click.IntRange(10, 100_000), default=600, show_default=True,
              help="Patients to simulate.")
@click.option("--seed", type=seed_type, default=0, show_default=True, help="Random seed.")
@click.option("--prevalence", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.3, show_default=True, help="Share of patients with the outcome.")
@click.option("--weight", "weights", multiple=True,
              help="MODALITY=W: log-odds of the outcome per sd of that modality's planted "
                   "factor (repeatable; defaults ehr=1.2 expression=1.0 imaging=0.8 "
                   "genotype=0.5; a modality not named keeps its default).")
@click.option("--missing", multiple=True,
              help="MODALITY=SHARE of patients without it (repeatable; defaults ehr=0 "
                   "expression=0.2 imaging=0.3 genotype=0.1).")
@click.option("--interaction", type=click.FloatRange(-100, 100), default=0.0,
              show_default=True,
              help="Log-odds per sd^2 of the EHR x expression factor product (a cross-modal "
                   "effect).")
@overwrite_option
def simulate(outdir, patients, seed, prevalence, weights, missing, interaction, overwrite):
    """Write a simulated linked cohort: EHR events, expression (h5ad), images (PNG),
    genotypes and outcomes, each modality carrying a planted factor.

    \b
    Example:
      pmt fusion simulate -o cohort/ --patients 3000 --weight imaging=0 --missing ehr=0.1
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.fusion.simulate import CohortConfig, simulate_cohort

    spec = CohortConfig(patients=patients, seed=seed, prevalence=prevalence,
                      interaction=interaction)
    spec.weights.update(key_values(weights, "--weight", cast=float))
    spec.missing.update(key_values(missing, "--missing", cast=float))
    startup(seed=seed)
    s = simulate_cohort(outdir, spec, overwrite=overwrite)
    have = ", ".join(f"{m} {n}" for m, n in s["present"].items())
    click.echo(f"{s['patients']} patients ({s['outcome_rate']:.1%} with the outcome; with "
               f"{have}) written to {outdir}", err=True)


@fusion.command()
@click.option("-i", "--input", "cohort", required=True,
              type=click.Path(exists=True, file_okay=False),
              help="A cohort folder in the layout pmt fusion simulate writes.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: report.html, summary.tsv, results.json, pictures, "
                   "models/, embeddings/.")
@click.option("--fusion", "fusions", multiple=True,
              type=click.Choice(["concat", "attention", "gated"]),
              help="Fusions to train (repeatable; default all three).")
@click.option("--epochs", type=click.IntRange(EPOCHS.min, EPOCHS.max), default=20,
              show_default=True, help="Maximum epochs of each modality's encoder.")
@click.option("--hidden-size", "hidden_dim", type=click.IntRange(1, 1024), default=8,
              show_default=True,
              help="Width of each modality's projection in the fusion heads.")
@click.option("--weight-decay", type=click.FloatRange(WEIGHT_DECAY.min, WEIGHT_DECAY.max),
              default=1e-2, show_default=True, help="AdamW weight decay of the fusion heads.")
@click.option("--seed", type=seed_type, default=0, show_default=True, help="Random seed.")
@overwrite_option
@resume_option
def run(cohort, outdir, fusions, epochs, hidden_dim, weight_decay, seed, overwrite, resume):
    """Train each modality's encoder (GRU on the EHR, MLP on expression, CNN on images, MLP on
    genotypes) and each fusion on a cohort; compare fused against single modalities, hide
    modalities, attribute. An interrupted run continues with --resume.

    \b
    Example:
      pmt fusion run -i cohort/ -o fusion_run/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.fusion.run import experiment

    startup(seed=seed)
    r = experiment(cohort, outdir, seed=seed, epochs=epochs,
                   fusions=tuple(dict.fromkeys(fusions)) or ("concat", "attention", "gated"),
                   hidden_dim=hidden_dim, weight_decay=weight_decay, overwrite=overwrite,
                   resume=resume)
    best_single = max(r["single"].items(), key=lambda kv: kv[1]["auroc"])
    fused = ", ".join(f"{f} {v:.3f}" for f, v in r["fused"].items())
    click.echo(f"test AUROC: fused {fused}; best single modality {best_single[0]} "
               f"{best_single[1]['auroc']:.3f}; report in {outdir / 'report.html'}", err=True)


modality_option = click.option(
    "--modality", "modalities", multiple=True, required=True,
    help="NAME=TABLE: one modality's embeddings, a CSV/TSV/Parquet of patient_id and numeric "
         "columns (repeatable; a patient missing from a table lacks that modality).")


@fusion.command()
@modality_option
@click.option("--outcomes", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Table of patient_id and outcome (0/1, or a number with --task regression).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Model file (.safetensors).")
@click.option("--valid-fraction", type=click.FloatRange(0, 0.9), default=0.2,
              show_default=True, help="Patients held out for early stopping (stratified).")
@dataclass_options(FusionConfig)
@config_option
@overwrite_option
@resume_option
def train(modalities, outcomes, output, valid_fraction, config_file, overwrite, resume,
          **params):
    """Train a fusion model on per-modality embedding tables (from pmt fusion run's
    embeddings/ or any encoder) and an outcomes table. An interrupted run keeps its
    checkpoint in OUTPUT.work beside the model file and continues with --resume.

    \b
    Example:
      pmt fusion train --modality ehr=emb/ehr.csv --modality imaging=emb/imaging.csv \\
          --outcomes emb/outcomes.csv --fusion attention -o fused.safetensors
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.fusion.run import train_file as train_

    config = resolve(FusionConfig, params, config_file)
    tables = key_values(modalities, "--modality")
    startup(seed=config.seed, device=config.device)
    m = train_(tables, outcomes, output, config=config, valid_fraction=valid_fraction,
               overwrite=overwrite, resume=resume)
    shown = (f"valid AUROC {m['valid_auroc']:.3f}" if "valid_auroc" in m else
             f"valid RMSE {m['valid_rmse']:.3f}" if "valid_rmse" in m else "no validation")
    click.echo(f"{config.fusion} fusion of {', '.join(tables)}: {m['epochs_run']} epochs, "
               f"{shown}; model written to {output}", err=True)


@fusion.command()
@click.option("-m", "--model", "model_path", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A fusion model (.safetensors) written by pmt fusion train.")
@modality_option
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Table: patient_id, prediction, modalities, contribution_<modality> (and "
                   "weight_<modality>); - for stdout.")
def predict(model_path, modalities, output):
    """Predict with a fusion model from whichever modalities each patient has, with each
    modality's contribution (occlusion: the change when it is hidden).

    \b
    Example:
      pmt fusion predict -m fused.safetensors --modality ehr=new/ehr.csv -o risk.csv
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.fusion.model import FusionModel
    from pmtoolkit.fusion.run import predict_file as predict_

    startup(model=model_path)
    n = predict_(FusionModel.load(model_path), key_values(modalities, "--modality"),
                 output)
    click.echo(f"{n} patients predicted; written to {output}", err=True)
