"""``pmt federated``: train a pmtoolkit model across simulated sites with Flower (FedAvg,
FedProx), a real Flower server and one client process per site over loopback gRPC."""
from __future__ import annotations

import json
from pathlib import Path

import click
from pmtoolkit.cli.options import overwrite_option

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a setting of the run file (repeatable): a [federated] key (rounds=5), or "
         "TABLE.KEY (model.hidden_size=64, data.target_columns=[\"y\"]).")


@click.group(name="federated")
def federated() -> None:
    """Federated training with Flower: FedAvg or FedProx across simulated non-IID sites."""


@federated.command()
@click.option("-c", "--config", "config_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The TOML run file: [federated], [data] and [model] tables.")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: output in the run file): model.safetensors, "
                   "federated.json, config.json, sites.csv, convergence.png, report.html, logs/.")
@set_option
@overwrite_option
def run(config_file, outdir, overrides, overwrite):
    """Train the model of a run file across sites: a Flower server and one Flower client
    process per site on 127.0.0.1, FedAvg or FedProx; progress per round on stderr.

    The run file has three tables: [federated] (task, data, sites, split, strategy, rounds,
    ...), [data] (how the task reads the data) and [model] (the domain model's settings).
    See docs/federated.md.

    \b
    Example:
      pmt federated run -c esol.toml -o runs/esol-fedavg --set strategy=fedprox
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.core.errors import ConfigError
    from pmtoolkit.federated.config import load_run_config
    from pmtoolkit.federated.run import run as run_

    config = load_run_config(config_file, overrides, output=outdir)
    fed = config.federated
    if not fed.output:
        raise ConfigError("no output folder: pass -o or set output in [federated]")
    startup(seed=fed.seed, task=fed.task, strategy=fed.strategy, sites=fed.sites)
    s = run_(config, fed.output, overwrite=overwrite)
    metric = s["metric"]
    shown = []
    for name, res in s["final"].items():
        if res and metric in res:
            shown.append(f"{name} test {metric} {res[metric]:.4f}")
    click.echo(f"{s['strategy']}: {s['rounds']} rounds over {s['sites']} sites, "
               f"{s['bytes']['total'] / 1e6:.2f} MB exchanged; {'; '.join(shown) or 'no test set'}"
               f"; written to {fed.output}", err=True)


@federated.command()
@click.option("-c", "--config", "config_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The TOML run file: [federated], [data] and [model] tables.")
@set_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def split(config_file, overrides, as_json):
    """Show how a run file deals the data to the sites (sizes and label mix per site, and
    the server's test set) without training anything.

    \b
    Example:
      pmt federated split -c esol.toml --set sites=5
    """
    from pmtoolkit.federated.config import load_run_config
    from pmtoolkit.federated.run import preview

    rows = preview(load_run_config(config_file, overrides))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = list(rows[0])
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join(f"{v:.3f}" if isinstance(v, float) else str(v)
                             for v in (row[c] for c in columns)))
