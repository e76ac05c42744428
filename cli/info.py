"""``pmt info``: versions, device, shipped datasets and models; ``pmt info NAME``: one of them."""
from __future__ import annotations

import json
import math

import click


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of text.")
@click.option("--verify", is_flag=True, help="Check every shipped file (with NAME: its file) "
                                             "against its sha256.")
def info(name: str | None, as_json: bool, verify: bool) -> None:
    """Show versions, the compute device, and the shipped datasets and models.

    With NAME, show one shipped item: its kind, file, size, sha256, source, licence and
    description, and for a model the settings it was trained with and its recorded metrics.
    ``pmt info spliceai`` shows where SpliceAI's weights are read from (the optional extra).

    \b
    Examples:
      pmt info
      pmt info synthea-mortality
      pmt info spliceai
      pmt info --verify --json
    """
    if name is not None:
        _show_item(name, as_json, verify)
        return
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


def _show_item(name: str, as_json: bool, verify: bool) -> None:
    """One shipped item; a model's file is checked before its metadata is trusted."""
    from pmtoolkit.core import shipped

    if name == "spliceai":
        _show_spliceai(as_json)
        return

    e = shipped.entry(name)
    item = {"name": e.name, "kind": e.kind, "path": str(e.file), "bytes": e.bytes,
            "sha256": e.sha256, "source": e.source, "licence": e.licence,
            "description": e.description}
    if verify or e.kind == "model":
        shipped.verify(e)  # a one-line error (exit 2) when missing or altered
        item["check"] = "ok"
    if e.kind == "model":
        from pmtoolkit.core.checkpoint import read_metadata

        item["metadata"] = read_metadata(e.file, verified=True)
    if as_json:
        click.echo(json.dumps(_strict(item), indent=2, allow_nan=False))
        return
    from pmtoolkit.core.report import human_size

    rows = [("name", e.name), ("kind", e.kind), ("file", item["path"]),
            ("size", f"{human_size(e.bytes)} ({e.bytes:,} bytes)"), ("sha256", e.sha256)]
    if "check" in item:
        rows.append(("check", "sha256 ok"))
    rows += [("source", e.source), ("licence", e.licence), ("description", e.description)]
    meta = item.get("metadata")
    if meta:
        rows += [("model class", meta.get("model_class", "")),
                 ("saved by", f"pmtoolkit {meta.get('pmtoolkit_version', '?')} on "
                              f"{meta.get('created', '?')}"),
                 ("training data sha256", meta.get("training_data_sha256") or "not recorded")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")
    if meta:
        for title, values in (("config", meta.get("config") or {}),
                              ("metrics", meta.get("metrics") or {})):
            flat = _flatten(values)
            click.echo(f"\n{title}:" + ("" if flat else " none recorded"))
            w = max((len(k) for k in flat), default=0)
            for key, value in flat.items():
                click.echo(f"  {key:<{w}}  {value}")


def _show_spliceai(as_json: bool) -> None:
    """SpliceAI's weights: not shipped, read from the user's spliceai install (GPLv3)."""
    from pmtoolkit.core.report import human_size
    from pmtoolkit.genomics.spliceai import describe

    item = describe()  # a one-line error (exit 2) saying what to install when it is missing
    if as_json:
        click.echo(json.dumps(item, indent=2))
        return
    rows = [(k, str(item[k])) for k in ("name", "kind", "path", "version", "source", "licence",
                                         "description")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")
    click.echo("\nfiles:")
    w = max(len(f["file"]) for f in item["files"])
    for f in item["files"]:
        click.echo(f"  {f['file']:<{w}}  {human_size(f['bytes']):>8}  {f['sha256']}")


def _flatten(values: dict, prefix: str = "") -> dict[str, str]:
    """Nested settings or metrics as ``a.b -> text`` rows (numbers to 4 significant digits)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, float):
            out[f"{prefix}{key}"] = f"{value:.4g}"
        elif isinstance(value, (list, tuple)):
            out[f"{prefix}{key}"] = " ".join(map(str, value)) if value else "-"
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def _strict(value):
    """``value`` with NaN and infinities as null, so that the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


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
