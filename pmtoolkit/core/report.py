"""Self-contained HTML reports: sections of text, tables and figures that a person opens in a
browser, written beside the machine-readable outputs of a run."""
from __future__ import annotations

import datetime as _dt
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmtoolkit._version import __version__
from pmtoolkit.core.io import atomic_write

if TYPE_CHECKING:
    import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:60rem;color:#1d2330;line-height:1.5;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;
border-bottom:1px solid #d8dde6;padding-bottom:.2rem}.meta{color:#5b6578;font-size:.9rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d8dde6;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f2f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.8rem 0}figure img{max-width:100%;border:1px solid #e4e7ee}
figcaption{color:#5b6578;font-size:.85rem}.status-ok{color:#17803d}.status-bad{color:#b42318}
code{background:#f2f4f8;padding:0 .25rem;border-radius:3px}
"""


@dataclass
class Section:
    """A titled part of a report; blocks are rendered in the order they were added."""

    title: str
    blocks: list[str] = field(default_factory=list)

    def text(self, paragraph: str) -> Section:
        self.blocks.append(f"<p>{html.escape(paragraph)}</p>")
        return self

    def html(self, fragment: str) -> Section:
        """Add trusted HTML (built by pmtoolkit, never from user input)."""
        self.blocks.append(fragment)
        return self

    def table(self, frame: pd.DataFrame, *, max_rows: int = 50, floatfmt: str = "{:.3g}") -> Section:
        self.blocks.append(table_html(frame, max_rows=max_rows, floatfmt=floatfmt))
        return self

    def figure(self, src: str, caption: str = "") -> Section:
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
                           f"{cap}</figure>")
        return self


def anchor(title: str) -> str:
    """The id of a section titled ``title`` (lower case, words joined by hyphens), for links
    such as ``report.html#medical-imaging``."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def human_size(n_bytes: float) -> str:
    """A file size as people write it, in decimal units: ``649 B``, ``96.7 kB``, ``3.9 MB``."""
    size = float(n_bytes)
    if round(size) < 1000:
        return f"{size:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if round(size) < 1000 or unit == "TB":
            break
    return f"{size:.1f} {unit}" if round(size, 1) < 100 else f"{size:.0f} {unit}"


def table_html(frame: pd.DataFrame, *, max_rows: int = 50, floatfmt: str = "{:.3g}") -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="num">{html.escape(floatfmt.format(v))}</td>'
        if isinstance(v, (int,)) and not isinstance(v, bool):
            return f'<td class="num">{v}</td>'
        return f"<td>{html.escape(str(v))}</td>"

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for rec in frame.head(max_rows).itertuples(index=False):
        rows.append("<tr>" + "".join(cell(v) for v in rec) + "</tr>")
    more = (f'<p class="meta">{len(frame) - max_rows} more rows not shown</p>'
            if len(frame) > max_rows else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


@dataclass
class Report:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        s = Section(title)
        self.sections.append(s)
        return s

    def render(self) -> str:
        when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        body = "".join(f'<section id="{anchor(s.title)}"><h2>{html.escape(s.title)}</h2>'
                       f"{''.join(s.blocks)}</section>" for s in self.sections)
        sub = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>"
                f"<h1>{html.escape(self.title)}</h1>"
                f'<p class="meta">pmtoolkit {__version__} &middot; {html.escape(when)}</p>'
                f"{sub}{body}</body></html>\n")

    def write(self, path: str | os.PathLike) -> Path:
        with atomic_write(path) as fh:
            fh.write(self.render())
        return Path(path)
