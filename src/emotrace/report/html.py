"""A single self-contained HTML page: figures embedded as ``data:image/png;base64`` URIs, the
style inline, no external resource, so the file opens from disk in any browser without a server.

A short inline script counts the figures the browser decoded and shows it at the bottom of the
page (``data-figures-decoded`` on ``<body>``; each ``<img>`` gets ``data-natural-width`` /
``data-natural-height``), which lets a headless browser confirm that every figure renders.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l, td:last-child, th:last-child { text-align: left; }
figure { margin: 1em 0; } figcaption { font-size: .85em; color: #555; }
img { max-width: 100%; } .note { color: #8a5a00; } footer { color: #777; font-size: .8em; }
"""

SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images), ok = 0;
  imgs.forEach(function (i) {
    i.setAttribute("data-natural-width", i.naturalWidth);
    i.setAttribute("data-natural-height", i.naturalHeight);
    if (i.complete && i.naturalWidth > 0) { ok += 1; }
  });
  document.body.setAttribute("data-figures-decoded", ok);
  document.getElementById("status").textContent = ok + " of " + imgs.length + " figures shown.";
});
"""


@dataclass
class Figure:
    name: str  # file name of the PNG beside the HTML
    png: bytes
    caption: str


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)  # plain text, escaped on output
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def _table(header: list[str], rows: list[list[str]]) -> str:
    def cell(tag: str, i: int, v: str) -> str:
        cls = ' class="l"' if i == 0 else ""
        return f"<{tag}{cls}>{html.escape(str(v))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(title: str, sections: list[Section], *, footer: str) -> str:
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
             f"{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        parts += [f'<p class="note">Note: {html.escape(n)}.</p>' for n in s.notes]
        parts += [_table(h, r) for h, r in s.tables]
        for f in s.figures:
            data = base64.b64encode(f.png).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(f.caption)}" data-file="{html.escape(f.name)}" '
                         f'src="data:image/png;base64,{data}"><figcaption>{html.escape(f.caption)}'
                         f"</figcaption></figure>")
        parts.append("</section>")
    parts.append(f'<footer><p>{html.escape(footer)}</p><p id="status"></p></footer>'
                 f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)
