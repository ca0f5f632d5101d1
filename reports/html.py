"""One self-contained HTML report: figures embedded as base64 PNG, tables inline, no external resources.

A small inline script records, once the page has loaded, how many images decoded
(``<body data-images-total=… data-images-loaded=…>``), which the headless-browser check reads.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from pathlib import Path

from reports.tables import Table

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em;
margin-top: 2em; } h3 { margin-bottom: 0.3em; }
.banner { padding: 0.7em 1em; border-radius: 4px; margin: 0.6em 0; font-weight: 600; }
.pass { background: #e6f4ea; border: 1px solid #34a853; } .fail { background: #fce8e6; border: 1px solid #d93025; }
.synthetic { background: #fff4ce; border: 1px solid #f9ab00; } .note { background: #eef3fb; border: 1px solid #8ab4f8;
font-weight: normal; }
figure { margin: 1.2em 0 2em; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.92em; color: #444; margin-top: 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 0.86em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #e3e3e3; }
th { border-bottom: 2px solid #999; text-align: left; background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.caption { font-size: 0.88em; color: #444; max-width: 70em; }
.files { font-size: 0.85em; color: #666; }
.methods { background: #fafafa; border-left: 3px solid #999; padding: 0.8em 1em; }
td.done { color: #1e7e34; } td.attention { color: #b06000; font-weight: 600; } td.not-done { color: #c5221f; }
code { font-size: 0.9em; } nav a { margin-right: 1em; }
"""

LOAD_CHECK = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images-total", String(imgs.length));
  document.body.setAttribute("data-images-loaded", String(ok.length));
});
"""


@dataclasses.dataclass
class FigureItem:
    name: str
    title: str
    caption: str
    png: Path
    extra_files: tuple[str, ...] = ()  # relative paths offered for download (e.g. the PDF)


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def figure_html(item: FigureItem) -> str:
    data = base64.b64encode(Path(item.png).read_bytes()).decode("ascii")
    files = " · ".join(f'<a href="{esc(f)}">{esc(Path(f).name)}</a>' for f in item.extra_files)
    return (f'<figure id="fig-{esc(item.name)}"><h3>{esc(item.title)}</h3>'
            f'<img alt="{esc(item.title)}" data-figure="{esc(item.name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(item.caption)}"
            + (f' <span class="files">Files: {files}</span>' if files else "") + "</figcaption></figure>")


def table_html(table: Table, files: tuple[str, ...] = ()) -> str:
    shown = table.display()
    kinds = [k for _, k in table.columns.values()]
    head = "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for value, kind in zip(row, kinds):
            klass = "" if kind == "text" else ' class="num"'
            if table.name == "barg_checklist" and kind == "text" and value in ("done", "attention", "not done", "n/a"):
                klass = f' class="{value.replace(" ", "-").replace("/", "")}"'
            cells.append(f"<td{klass}>{esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    links = " · ".join(f'<a href="{esc(f)}">{esc(Path(f).name)}</a>' for f in files)
    return (f'<section id="tab-{esc(table.name)}"><h3>{esc(table.title)}</h3>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f'<p class="caption">{esc(table.caption)}'
            + (f' <span class="files">Files: {links}</span>' if links else "") + "</p></section>")


def banner(text: str, kind: str) -> str:
    return f'<div class="banner {esc(kind)}">{esc(text)}</div>'


def paragraph(text: str, klass: str = "") -> str:
    return f'<p class="{esc(klass)}">{esc(text)}</p>' if klass else f"<p>{esc(text)}</p>"


def definition_list(items: dict) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items.items())
    return f"<table>{rows}</table>"


def page(title: str, subtitle: str, banners: list[str], sections: list[tuple[str, str, str]]) -> str:
    """``sections``: (anchor, heading, inner HTML)."""
    nav = " ".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{inner}</section>' for a, h, inner in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{STYLE}</style><script>{LOAD_CHECK}</script></head><body>"
            f"<h1>{esc(title)}</h1><p>{esc(subtitle)}</p>{''.join(banners)}<nav>{nav}</nav>{body}"
            "</body></html>\n")
