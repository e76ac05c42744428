"""``pmt pipeline``: run, validate and list declarative pipelines (TOML files of steps)."""
from __future__ import annotations

from pathlib import Path

import click
from pmtoolkit.cli.options import cluster_from, distributed_options


@click.group(name="pipeline")
def pipeline() -> None:
    """Run declarative pipelines (TOML files of steps); validate and list them."""


PIPELINE_OPTION = click.option(
    "-c", "--config", "source", required=True, metavar="PIPELINE",
    help="The pipeline: a .toml file of steps, or a shipped pipeline's name (pmt pipeline "
         "list).")
SET_OPTION = click.option(
    "--set", "overrides", multiple=True, metavar="STEP.KEY=VALUE",
    help="Change a step's parameter or input (repeatable); VALUE is read as TOML "
         "(10, 0.5, true, \"text\", [\"a\", \"b\"]), else as text.")


@pipeline.command()
@PIPELINE_OPTION
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: one folder per step, pipeline.json, index.html. Rerunning "
                   "into the same folder skips the steps whose inputs and parameters are "
                   "unchanged.")
@SET_OPTION
@click.option("--force", is_flag=True, help="Rerun every step.")
@distributed_options
def run(source, outdir, overrides, force, workers, scheduler, partition_size):
    """Run a pipeline (a .toml file, or a shipped pipeline's name: pmt pipeline list).

    Steps run in order, each into OUTPUT/<step>/; a failed step leaves the earlier steps'
    folders intact and exits 2 (bad input) or 1 (internal error), naming the step.
    With --workers N (or --scheduler) the batch steps (generate.sample, mol.standardize,
    mol.filter, property.predict, variants.score) run their partitions on one Dask cluster
    for the whole run, with the same outputs.

    \b
    Example:
      pmt pipeline run -c virtual-screening -o screen/ --set sample.n=500
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit import pipeline as pl

    cluster = cluster_from(workers, scheduler, partition_size)
    plan = pl.load(source, overrides=overrides)
    startup(pipeline=plan.name, output=outdir)
    result = pl.run(plan, outdir, force=force, cluster=cluster)
    click.echo(f"{plan.name}: {len(result.ran)} steps ran, {len(result.skipped)} skipped "
               f"(unchanged); open {outdir / 'index.html'}", err=True)


@pipeline.command()
@PIPELINE_OPTION
@SET_OPTION
def validate(source, overrides):
    """Check a pipeline without running it: keys, types, actions, references between steps
    and input files. Prints the plan; exit 2 on the first mistake.

    \b
    Example:
      pmt pipeline validate -c my-pipeline.toml
    """
    from pmtoolkit import pipeline as pl
    from pmtoolkit.pipeline.engine import describe

    plan = pl.load(source, overrides=overrides)
    for row in describe(plan):
        click.echo(f"{row['step']}\t{row['action']}\t{row['inputs']}\t{row['params']}")
    click.echo(f"{plan.name}: {len(plan.steps)} steps, valid", err=True)


@pipeline.command(name="list")
@click.option("--actions", "show_actions", is_flag=True,
              help="List the step actions and their keys instead.")
def list_(show_actions):
    """The shipped pipelines (copy one with its path and edit it), or with --actions every
    step action with its inputs, outputs and parameters.

    \b
    Examples:
      pmt pipeline list
      pmt pipeline list --actions
    """
    from pmtoolkit import pipeline as pl

    if show_actions:
        import dataclasses

        from pmtoolkit.pipeline.engine import registered_actions

        for name, act in sorted(registered_actions().items()):
            click.echo(f"{name}: {act.help}")
            for i in act.inputs:
                click.echo(f"  input  {i.name}{' (optional)' if i.optional else ''}"
                           f"{' (list)' if i.many else ''}: {i.help}")
            click.echo("  output " + ", ".join(f"{k} ({v})" for k, v in act.outputs.items()))
            for f in dataclasses.fields(act.params) if act.params else ():
                default = f.default if f.default is not dataclasses.MISSING else None
                click.echo(f"  param  {f.name} = {default!r}: {f.metadata.get('help', '')}")
        return
    for name, path in pl.shipped_pipelines().items():
        plan = pl.load(path)
        click.echo(f"{name}\t{len(plan.steps)} steps\t{plan.description}\t{path}")
