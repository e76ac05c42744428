"""``pmt demo``: the main job on shipped defaults."""
from __future__ import annotations

from pathlib import Path

import click

from pmtoolkit.cli.options import config_option, dataclass_options, overwrite_option, resolve
from pmtoolkit.demo import DemoConfig


@click.command()
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("pmt-demo"), show_default=True, help="Report folder to write.")
@dataclass_options(DemoConfig)
@config_option
@overwrite_option
def demo(outdir: Path, config_file: Path | None, overwrite: bool, **params) -> None:
    """Run the main job on shipped defaults and write a report folder.

    Writes OUTPUT/index.html (open it in a browser: a card per domain), report.html (every
    section on one page), the shipped pipelines' run folders under pipelines/, summary.json
    and the resolved config.json. Works offline on the data that ships with pmtoolkit.

    \b
    Examples:
      pmt demo -o pmt-demo/
      pmt demo -c demo.toml -o my-demo/
    """
    from pmtoolkit import demo as demo_api
    from pmtoolkit.cli.common import startup

    config = resolve(DemoConfig, params, config_file)
    startup(output=outdir)
    result = demo_api.run(outdir, config, overwrite=overwrite)
    click.echo(f"report: {result.report}", err=True)
