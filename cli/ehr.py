"""``pmt ehr``: electronic health records: event tables (Synthea, CSV/Parquet) -> labelled
datasets without look-ahead -> risk models (logistic, GRU/LSTM, RETAIN, Transformer) with
calibration, evaluation and per-code explanations."""
from __future__ import annotations

from pathlib import Path

import click
from pmtoolkit.cli.options import (
    config_option,
    dataclass_options,
    key_values,
    on_invalid_option,
    overwrite_option,
    resolve,
    resume_option,
)

from pmtoolkit.core.config import SEED
from pmtoolkit.ehr.config import RiskModelConfig, TaskConfig

model_option = click.option(
    "-m", "--model", "model_path", default="synthea-mortality", show_default=True,
    help="A trained risk model (.safetensors), or a shipped model's name: synthea-mortality "
         "(death within 365 days, RETAIN, trained on Synthea; pmt info synthea-mortality).")


def _columns(values: tuple[str, ...]) -> dict[str, str]:
    return key_values(values, "--column",
                           example="SCHEMA=COLUMN, e.g. patient_id=subject")


@click.group(name="ehr")
def ehr() -> None:
    """Risk models over patient visit sequences: build, train, predict, evaluate, explain."""


format_option = click.option(
    "--format", "layout", type=click.Choice(["mimic3", "mimic4", "eicu", "omop", "synthea",
                                             "events"]),
    help="Record layout of the input (default: told from the folder's tables): a MIMIC-III, "
         "MIMIC-IV (hosp), eICU, OMOP CDM v5.4 or Synthea folder of CSV tables (.csv or "
         ".csv.gz), or an event table file (events).")


@ehr.command()
@click.option("-i", "--input", "events", required=True, type=click.Path(exists=True),
              help="Records: a MIMIC-III, MIMIC-IV, eICU, OMOP or Synthea folder, or a "
                   "CSV/Parquet event table with patient_id, time, code, system.")
@format_option
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Dataset file (.jsonl or .jsonl.gz: JSON lines).")
@click.option("--patients", type=click.Path(exists=True, dir_okay=False),
              help="Event tables: a patients table (patient_id, birth_date, death_date, sex).")
@click.option("--column", "columns", multiple=True,
              help="Event tables: map a schema column to yours, SCHEMA=COLUMN (repeatable).")
@click.option("--system", help="Event tables without a system column: the code system.")
@click.option("--sizes", "fractions", type=click.FloatRange(0, 1), nargs=3,
              default=(0.7, 0.1, 0.2), show_default=True,
              help="Train, valid, test fractions of patients (a random split by patient).")
@click.option("--split-seed", type=click.IntRange(SEED.min, SEED.max), default=0,
              show_default=True, help="Seed of the patient split.")
@dataclass_options(TaskConfig)
@config_option
def build(events, layout, output, patients, columns, system, fractions, split_seed,
          config_file, **params):
    """Build a labelled dataset from records, without look-ahead.

    \b
    Examples:
      pmt ehr build --format mimic3 -i mimic-iii/1.4 -o readmission.jsonl.gz \\
          --kind readmission --index each_visit
      pmt ehr build -i eicu-crd/2.0 -o los.jsonl.gz --kind length_of_stay \\
          --index each_visit --tables conditions --tables procedures --tables drugs
      pmt ehr build -i synthea/csv -o mortality.jsonl.gz --index each_visit
      pmt ehr build -i synthea/csv -o prediabetes.jsonl.gz --kind onset --codes 15777000 \\
          --horizon-days 1095
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.ehr.run import build as build_

    config = resolve(TaskConfig, params, config_file)
    startup()
    s = build_(events, output, config, fractions=tuple(fractions), split_seed=split_seed,
               layout=layout, patients=patients, columns=_columns(columns), system=system)
    excluded = ", ".join(f"{n} {r}" for r, n in sorted(s["excluded"].items(),
                                                       key=lambda kv: -kv[1]))
    click.echo(f"{s['samples']} samples of {s['patients']} patients, {s['positives']} with the "
               f"outcome; excluded: {excluded or 'none'}; written to {output}", err=True)


@ehr.command()
@click.option("-i", "--input", "dataset", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A dataset written by pmt ehr build (.jsonl[.gz]).")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model.safetensors, metrics.json, config.json.")
@dataclass_options(RiskModelConfig)
@on_invalid_option("error")
@config_option
@overwrite_option
@resume_option
def train(dataset, outdir, on_invalid, config_file, overwrite, resume, **params):
    """Train a risk model on a dataset's train part; valid part for early stopping,
    calibration and threshold; test metrics reported. An interrupted run continues with
    --resume.

    \b
    Example:
      pmt ehr train -i mortality.jsonl.gz --architecture retain -o runs/retain
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.ehr.run import train_file as train_

    config = resolve(RiskModelConfig, params, config_file)
    startup(seed=config.seed, device=config.device)
    m = train_(dataset, outdir, config=config, overwrite=overwrite, resume=resume,
               on_invalid=on_invalid)
    test = m.get("test")
    shown = ("no test samples" if not test else
             f"test recall@10 {test['recall@10']:.3f}, micro-AUPRC {test['micro_auprc']:.3f}"
             if "recall@10" in test else
             f"test AUROC {test['auroc']:.3f}, AUPRC {test['auprc']:.3f}")
    click.echo(f"{config.arch}: {m['epochs_run']} epochs, {shown}; model written to "
               f"{outdir / 'model.safetensors'}", err=True)


@ehr.command()
@click.option("-i", "--input", "source", required=True, type=click.Path(exists=True),
              help="A dataset (.jsonl[.gz]) or records (a MIMIC-III, MIMIC-IV, eICU, OMOP or "
                   "Synthea folder, or an event table).")
@format_option
@model_option
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Table: patient_id, index_time, (split, label,) probability, predicted; - "
                   "for stdout.")
@click.option("--part", "split", type=click.Choice(["train", "valid", "test"]),
              help="A dataset: only this part.")
@click.option("--patients", type=click.Path(exists=True, dir_okay=False),
              help="Event tables: the patients table.")
@click.option("--column", "columns", multiple=True, help="Event tables: SCHEMA=COLUMN.")
@click.option("--system", help="Event tables without a system column: the code system.")
@on_invalid_option("skip")
def predict(source, layout, model_path, output, split, patients, columns, system,
            on_invalid):
    """Predict risks (calibrated probabilities): of each sample of a dataset (.jsonl[.gz]), or
    of every living patient in records (a hospital or Synthea folder, or an event table) as of
    their last visit.

    \b
    Examples:
      pmt ehr predict -i mortality.jsonl.gz -m runs/gru/model.safetensors -o risk.csv
      pmt ehr predict -i synthea/csv -o risk_now.csv
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.ehr.run import load
    from pmtoolkit.ehr.run import predict_file as predict_

    startup(model=model_path)
    n = predict_(load(model_path), source, output, split=split, layout=layout,
                 patients=patients,
                 columns=_columns(columns), system=system, on_invalid=on_invalid)
    click.echo(f"{n} risks predicted; written to {output}", err=True)


@ehr.command()
@click.option("-i", "--input", "dataset", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A dataset written by pmt ehr build (.jsonl[.gz]).")
@model_option
@click.option("--part", "split", type=click.Choice(["train", "valid", "test"]), default="test",
              show_default=True, help="The part of the dataset to evaluate.")
@click.option("--threshold", type=click.FloatRange(0, 1),
              help="Decision threshold (default: the model's, Youden's J on validation).")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: metrics.json, roc.png, calibration.png, report.html.")
@on_invalid_option("error")
@overwrite_option
def evaluate(dataset, model_path, split, threshold, outdir, on_invalid, overwrite):
    """AUROC, AUPRC, Brier score, sensitivity / specificity at a threshold, calibration.

    \b
    Example:
      pmt ehr evaluate -i mortality.jsonl.gz -m runs/retain/model.safetensors -o eval/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.ehr.run import evaluate_file as evaluate_
    from pmtoolkit.ehr.run import load

    startup(model=model_path)
    r = evaluate_(load(model_path), dataset, outdir, split=split, threshold=threshold,
                  overwrite=overwrite, on_invalid=on_invalid)
    if "recall@10" in r:  # next-visit codes
        shown = (f"recall@10 {r['recall@10']:.3f} (most frequent codes "
                 f"{r['baseline_most_frequent']['recall@10']:.3f}), micro-AUPRC "
                 f"{r['micro_auprc']:.3f}")
    else:
        shown = f"AUROC {r['auroc']:.3f}, AUPRC {r['auprc']:.3f}, Brier {r['brier']:.3f}"
    click.echo(f"{r['n']} {split} samples: {shown}; report in {outdir / 'report.html'}",
               err=True)


@ehr.command()
@click.option("-i", "--input", "dataset", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A dataset written by pmt ehr build (.jsonl[.gz]).")
@model_option
@click.option("--patient", "patients", multiple=True,
              help="Explain this patient's samples (repeatable; default: the highest risks).")
@click.option("--top", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Without --patient: explain the TOP test patients with the highest risk, each "
                   "at the visit of their highest risk.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: contributions.csv, visits.csv, timeline PNGs.")
@click.option("--target", help="Next-visit models: explain this code (SYSTEM:CODE; default: "
                                "each sample's most probable code).")
@on_invalid_option("error")
@overwrite_option
def explain(dataset, model_path, patients, top, outdir, target, on_invalid, overwrite):
    """Per-visit and per-code contributions to the risk (RETAIN attention, integrated
    gradients for the other models) as tables and timeline pictures.

    \b
    Example:
      pmt ehr explain -i mortality.jsonl.gz --top 3 -o explained/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.ehr.run import explain as explain_
    from pmtoolkit.ehr.run import load

    startup(model=model_path)
    r = explain_(load(model_path), dataset, outdir, patients=list(patients) or None,
                 top=top, target=target, overwrite=overwrite, on_invalid=on_invalid)
    click.echo(f"{r['samples']} samples explained ({r['rows']} code rows); written to {outdir}",
               err=True)
