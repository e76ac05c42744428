"""``pmt generate``: sample, train, fine-tune, optimise and evaluate SMILES generators."""
from __future__ import annotations

from pathlib import Path

import click
from pmtoolkit.cli.options import (
    cluster_from,
    config_option,
    dataclass_options,
    distributed_options,
    on_invalid_option,
    overwrite_option,
    resolve,
    resume_option,
)

from pmtoolkit.design.config import GeneratorConfig

MODEL_HELP = "A generator file, or the shipped prior: prior."
SEED = click.IntRange(0, 2**32 - 1)
VALID_FRACTION = click.FloatRange(0, 1, max_open=True)


@click.group(name="generate")
def generate() -> None:
    """Sample, train, fine-tune, optimise and evaluate SMILES generators."""


@generate.command()
@click.option("-m", "--model", "model_name", default="prior", show_default=True,
              help=MODEL_HELP)
@click.option("-n", "--num", "n", type=click.IntRange(0, 10**8), default=1000,
              show_default=True, help="Number of SMILES to sample (streamed to the output).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Table of samples (.csv/.tsv/.parquet): smiles, log_likelihood, valid; "
                   "- for stdout.")
@click.option("-t", "--temperature", type=click.FloatRange(0, 100, min_open=True), default=1.0,
              show_default=True, help="Below 1 sharpens the distribution, above 1 flattens it.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=1024, show_default=True,
              help="Sequences sampled together.")
@click.option("--max-length", type=click.IntRange(3, 10_000),
              help="Longest sequence in tokens, start and end included (default: the "
                   "model's).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Sampling seed.")
@distributed_options
def sample(model_name, n, output, temperature, batch_size, max_length, seed, workers,
           scheduler, partition_size):
    """Sample SMILES with their log-likelihoods.

    With --workers N (or --scheduler) the samples are drawn in partitions on Dask, partition i
    seeded by (--seed, i): the same output for the same seed and --partition-size (default
    20,000) on any number of workers, not the single-process run's. An interrupted run
    resumes from its finished partitions.

    \b
    Examples:
      pmt generate sample -n 1000 -o samples.csv
      pmt generate sample -n 10000000 --workers 8 -o samples.parquet
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.design.run import load, sample_file

    cluster = cluster_from(workers, scheduler, partition_size)
    startup(model=model_name, seed=seed)
    result = sample_file(model_name if cluster else load(model_name), output, n=n,
                         temperature=temperature, batch_size=batch_size, seed=seed,
                         max_length=max_length, cluster=cluster)
    rate = result["smiles_per_second"]
    click.echo(f"{n} SMILES written to {output} ({result['validity']:.1%} valid"
               + (f", {rate:,.0f} SMILES/s" if rate else "") + ")", err=True)


@generate.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(dir_okay=False),
              help="Training SMILES: .smi, or a table (.csv/.tsv/.parquet, .gz too).")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model, resolved config, history, metrics, samples.")
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES (tables).")
@click.option("--valid-fraction", type=VALID_FRACTION, default=0.05, show_default=True,
              help="Random share of the SMILES held out to watch the validation loss.")
@dataclass_options(GeneratorConfig)
@on_invalid_option("error")
@config_option
@overwrite_option
@resume_option
def train(input_, outdir, smiles_column, valid_fraction, on_invalid, config_file, overwrite,
          resume, **params):
    """Train a SMILES generator from scratch.

    A checkpoint is written to OUTPUT/work after every epoch; after an interruption,
    --resume continues from it.

    \b
    Example:
      pmt generate train -i train.smi --epochs 5 -o runs/prior
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.design.run import train_file

    config = resolve(GeneratorConfig, params, config_file, section="model")
    startup(seed=config.seed, device=config.device)
    metrics = train_file(input_, outdir, config=config, smiles_column=smiles_column,
                         valid_fraction=valid_fraction, on_invalid=on_invalid,
                         overwrite=overwrite, resume=resume)
    _report(metrics, outdir)


@generate.command()
@click.option("-m", "--model", "model_name", default="prior", show_default=True,
              help=MODEL_HELP)
@click.option("-i", "--input", "input_", required=True, type=click.Path(dir_okay=False),
              help="The focused set: .smi, or a table (.csv/.tsv/.parquet, .gz too).")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model, resolved config, history, metrics, samples.")
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES (tables).")
@click.option("--epochs", type=click.IntRange(1, 100_000), default=10, show_default=True,
              help="Training epochs.")
@click.option("--lr", type=click.FloatRange(0, 10, min_open=True), default=1e-4,
              show_default=True, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), help="Default: the model's.")
@click.option("--valid-fraction", type=VALID_FRACTION, default=0.0, show_default=True,
              help="Random share of the SMILES held out to watch the validation loss.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Model seed.")
@on_invalid_option("error")
@overwrite_option
@resume_option
def finetune(model_name, input_, outdir, smiles_column, epochs, lr, batch_size,
             valid_fraction, seed, on_invalid, overwrite, resume):
    """Fine-tune a generator on a focused set (transfer learning).

    SMILES with a token the model's vocabulary lacks are rejects, never a crash. A
    checkpoint is written to OUTPUT/work after every epoch; after an interruption, --resume
    continues from it.

    \b
    Example:
      pmt generate finetune -i actives.smi -o runs/focused
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.design.run import finetune_file, load

    startup(model=model_name, seed=seed)
    model = load(model_name)
    metrics = finetune_file(model, input_, outdir, epochs=epochs, lr=lr, batch_size=batch_size,
                            seed=seed, smiles_column=smiles_column,
                            valid_fraction=valid_fraction, on_invalid=on_invalid,
                            overwrite=overwrite, base=str(model_name), resume=resume)
    _report(metrics, outdir)


@generate.command()
@click.option("-c", "--config", "run_file", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="The TOML run file: an [optimize] table and a [scoring] table.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: agent, scores of every step, history, top molecules, "
                   "report.html.")
@click.option("--prior", help="Override optimize.prior (a generator file or 'prior').")
@click.option("--steps", type=click.IntRange(1, 1_000_000), help="Override optimize.steps.")
@click.option("--batch-size", type=click.IntRange(1, 100_000),
              help="Override optimize.batch-size.")
@click.option("--seed", type=SEED, help="Override optimize.seed.")
@overwrite_option
def optimize(run_file, outdir, prior, steps, batch_size, seed, overwrite):
    """Goal-directed generation (REINVENT-style) from a TOML run file.

    The file has an [optimize] table (prior, steps, batch-size, sigma, lr, replay, diversity)
    and a [scoring] table of components (qed, sa_score, descriptor, similarity, required,
    forbidden, model); unknown keys are errors.

    \b
    Example:
      pmt generate optimize -c run.toml -o out/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.design.optimize import load_run_file
    from pmtoolkit.design.run import optimize_file

    overrides = {k: v for k, v in (("prior", prior), ("steps", steps),
                                   ("batch_size", batch_size), ("seed", seed)) if v is not None}
    run = load_run_file(run_file, overrides)
    startup(prior=run.optimize.prior, seed=run.optimize.seed)
    result = optimize_file(run, outdir, overwrite=overwrite, run_file=str(run_file))
    click.echo(f"mean score {result['first_mean_score']:.3f} at step 0, "
               f"{result['last_mean_score']:.3f} at step {result['steps'] - 1}; best "
               f"{result['best_score']:.3f} ({result['distinct_molecules']} distinct molecules)",
               err=True)
    click.echo(f"report written to {outdir / 'report.html'}", err=True)


@generate.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(dir_okay=False),
              help="Samples: a table with a SMILES column, or .smi.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: metrics.json, property distributions, report.html.")
@click.option("-s", "--smiles-column", help="Default: smiles, SMILES or canonical_smiles.")
@click.option("--train", type=click.Path(exists=True, dir_okay=False),
              help="Training SMILES, for novelty.")
@click.option("--test", type=click.Path(exists=True, dir_okay=False),
              help="Reference SMILES (e.g. MOSES test), for SNN, Frag, Scaf and FCD.")
@click.option("--reference-cache", type=click.Path(dir_okay=False),
              help="An .npz of the --test statistics: read if it exists, else written.")
@click.option("--no-fcd", is_flag=True, help="Skip the Fréchet ChemNet Distance.")
@overwrite_option
def evaluate(input_, outdir, smiles_column, train, test, reference_cache, no_fcd, overwrite):
    """Score samples with the MOSES metrics.

    validity, unique@k, novelty, IntDiv1/2, filters, SNN, Frag, Scaf, FCD; plus property
    distributions beside the reference.

    \b
    Example:
      pmt generate evaluate -i samples.csv --test test.smi -o eval/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.design.run import evaluate_file

    startup()
    metrics = evaluate_file(input_, outdir, smiles_column=smiles_column, train=train,
                            test=test, reference_cache=reference_cache, fcd=not no_fcd,
                            overwrite=overwrite)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k != "n")
    click.echo(f"{metrics['n']} samples: {shown}", err=True)


def _report(metrics: dict, outdir: Path) -> None:
    parts = [f"{k} {metrics[k]:.3f}" for k in ("train_loss", "val_loss") if k in metrics]
    s = metrics.get("samples")
    if s:
        parts.append(f"{s['validity']:.1%} of {s['n']} samples valid")
    click.echo(", ".join(parts), err=True)
    click.echo(f"model written to {outdir / 'model.safetensors'}", err=True)
