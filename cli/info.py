"""``pmt info``: versions, device, shipped datasets and models."""
from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of text.")
@click.option("--verify", is_flag=True, help="Check every shipped file against its sha256.")
def info(as_json: bool, verify: bool) -> None:
    """Show versions, the compute device, and the shipped datasets and models."""
    from pmtoolkit.core import shipped
    from pmtoolkit.core.environment import device_summary, versions

    items = []
    for e in shipped.manifest():
        item = {"name": e.name, "kind": e.kind, "bytes": e.bytes, "licence": e.licence,
                "description": e.description}
        if verify:
            try:
                shipped.verify(e)
                item["check"] = "ok"
            except Exception as exc:  # reported per item; the exit code says it failed
                item["check"] = f"failed: {exc}"
        items.append(item)
    data = {"versions": versions(), "device": device_summary(), "shipped": items}
    failed = [i["name"] for i in items if i.get("check", "ok") != "ok"]
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _print_text(data)
    if failed:
        from pmtoolkit.core.errors import MissingResourceError

        raise MissingResourceError(f"shipped file(s) failed the sha256 check: {', '.join(failed)}",
                                   hint="reinstall pmtoolkit")


def _print_text(data: dict) -> None:
    vers = data["versions"]
    click.echo(f"pmtoolkit {vers['pmtoolkit']} on Python {vers['python']}")
    dev = data["device"]
    gpus = ", ".join(dev["gpus"]) or "none"
    click.echo(f"device: {dev['auto_device']} (GPUs: {gpus}; CPU threads: {dev['cpu_threads']})")
    click.echo("\npackages:")
    width = max(len(k) for k in vers)
    for name, version in vers.items():
        if name not in ("pmtoolkit", "python"):
            click.echo(f"  {name:<{width}}  {version or 'not installed'}")
    from pmtoolkit.core.report import human_size

    for kind in ("dataset", "model"):
        rows = [i for i in data["shipped"] if i["kind"] == kind]
        click.echo(f"\nshipped {kind}s:" + ("" if rows else " none yet"))
        for i in rows:
            check = f"  [{i['check']}]" if "check" in i else ""
            click.echo(f"  {i['name']:<12} {human_size(i['bytes']):>8}  {i['licence']:<10} "
                       f"{i['description']}{check}")
