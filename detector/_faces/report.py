"""A self-contained HTML view of results: the text with garbled spans highlighted, passage heat strips, a summary.

Used by ``mtdetect score --format html`` and by the page of ``mtdetect serve``. Everything from the input is escaped
(html.escape), the page loads nothing (no external asset, no script) and reads without colour: spans are also
underlined and followed by a score marker.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .._text import SURROGATE
from .._types import Detection


@dataclass(frozen=True)
class ReportItem:
    """One document of a report: its id, its text ("" when it was streamed: only kept passages are shown) and result."""

    id: Any
    text: str
    detection: Detection
    unit: Any = None  # where the record came from in a structured file (subtitles, documents, localisation)


def heat(score: float) -> str:
    """Background colour for a score: light yellow (0) to light red (1), always dark-text readable (contrast >= 7)."""
    s = min(1.0, max(0.0, score))
    hue = 55 - 55 * s  # yellow -> red
    light = 96 - 18 * s  # stays light: black text keeps high contrast
    return f"hsl({hue:.0f}, 100%, {light:.0f}%)"


_CSS = """
body{font:16px/1.6 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111;background:#fff;margin:0 auto;
max-width:60rem;padding:1rem 1.5rem}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-top:1px solid #ccc;padding-top:1rem}
.summary{font-size:.95rem;color:#222;background:#f4f4f4;padding:.5rem .8rem;border-radius:4px}
.summary b{color:#000}.verdict-flagged{color:#8b0000;font-weight:700}.verdict-ok{color:#0b5d1e;font-weight:700}
.doc{position:relative;padding-left:3.6rem}
.passage{position:relative;border-left:.6rem solid #eee;padding:.1rem 0 .1rem .6rem;white-space:pre-wrap;
word-wrap:break-word}
.passage.para{margin-top:.9rem}
.passage .pscore{position:absolute;left:-3.6rem;width:2.6rem;text-align:right;font-size:.75rem;color:#333;top:.3rem}
.passage.flagged .pscore{color:#8b0000;font-weight:700}
mark.span{color:#000;text-decoration:underline wavy #8b0000;text-underline-offset:3px;border-radius:2px;padding:0 1px}
mark.span.accuracy{text-decoration-style:double}
sup.score{font-size:.7rem;color:#333;margin-left:1px}
.foreign{color:#555;font-style:italic}.lang{font-size:.7rem;color:#333;border:1px solid #999;border-radius:3px;
padding:0 2px;margin-left:2px}
.legend span{display:inline-block;padding:0 .4rem;margin-right:.2rem;border-radius:2px}
nav ol{padding-left:1.2rem}textarea{width:100%;min-height:10rem;font:inherit}
.error{color:#8b0000;font-weight:700}
.place{font-size:.75rem;margin-left:.3rem;color:#333}
"""


def _esc(x: object) -> str:
    """HTML-escaped text; a lone surrogate (which UTF-8 cannot encode) is shown as its code, e.g. \\ud800."""
    text = str(x)
    if SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text, quote=True)


def _place_link(unit: Any, offset: int) -> str:
    """A span's place in its file as ``FILE:LINE:COLUMN``, linking to the file's line (``FILE#LLINE``, the form code
    viewers understand); no link for stdin."""
    line, col = unit.position(offset)
    name = str(unit.file)
    label = f"{name.rsplit('/', 1)[-1]}:{line}:{col}"
    if name.startswith("<"):
        return f'<span class="place">{_esc(label)}</span>'
    return f'<a class="place" href="{_esc(quote(name))}#L{line}" title="{_esc(f"{name}, line {line}, column {col}")}">' \
           f'{_esc(label)}</a>'


def render_document(item: ReportItem, anchor: str) -> str:
    """One document: heading, summary, then each passage on its own line with its score as a heat strip (and the
    number) in the margin, and its spans highlighted; a blank line in the text starts a new paragraph."""
    d = item.detection
    n_flag = sum(p.flagged for p in d.passages)
    verdict = ('<span class="verdict-flagged">FLAGGED</span>' if d.flagged
               else '<span class="verdict-ok">not flagged</span>' if d.status == "scored"
               else f'<span class="verdict-ok">not English ({_esc(d.language)}), not scored</span>')
    parts = [f'<section class="document" id="{anchor}">',
             f'<h2>{_esc(item.id)}</h2>',
             f'<p class="summary">{verdict} &middot; document score <b>{d.score:.3f}</b> &middot; '
             f'<b>{n_flag}</b> of {len(d.passages)} passages flagged &middot; <b>{len(d.spans)}</b> spans</p>',
             '<div class="doc">']
    text = item.text
    pos = 0
    for p in d.passages:
        cls = "passage flagged" if p.flagged else "passage"
        if p.language != "en":
            cls += " foreign"
        if text and text.count("\n", pos, p.start) >= 2:
            cls += " para"  # a blank line before it: a new paragraph
        title = f"passage score {p.score:.3f}" + ("" if p.language == "en" else f", language {p.language}"
                                                  + (", untranslated" if d.status == "scored" else ", not scored"))
        parts.append(f'<div class="{cls}" data-score="{p.score:.4f}" style="border-left-color:{heat(p.score)}" '
                     f'title="{_esc(title)}"><span class="pscore">{f"[{p.score:.2f}]" if p.flagged else f"{p.score:.2f}"}'
                     '</span>')
        q = p.start
        for s in d.spans:
            if s.end <= p.start or s.start >= p.end:
                continue
            a, b = max(s.start, p.start), min(s.end, p.end)
            parts.append(_esc(p.text[q - p.start : a - p.start]))
            parts.append(f'<mark class="span {_esc(s.category)}" data-score="{s.score:.4f}" '
                         f'data-category="{_esc(s.category)}" style="background:{heat(s.score)}" '
                         f'title="{_esc(f"score {s.score:.2f}, {s.category}")}">{_esc(p.text[a - p.start : b - p.start])}'
                         f'</mark><sup class="score" aria-label="span score">{s.score:.2f}</sup>')
            if item.unit is not None and a == s.start:
                parts.append(_place_link(item.unit, s.start))
            q = b
        parts.append(_esc(p.text[q - p.start :]))
        if p.language != "en":
            parts.append(f'<span class="lang">{_esc(p.language)}</span>')
        parts.append("</div>")
        pos = p.end
    if not text:
        parts.append('<p class="summary">A large document streamed block by block: only the passages that are flagged'
                     ' or carry a span are shown.</p>')
    parts.append("</div></section>")
    return "".join(parts)


def render_page(items: Sequence[ReportItem], info: dict[str, Any], title: str = "mtdetect report",
                form: str = "") -> str:
    """The whole page: summary of the model and settings, a table of contents when there are several documents,
    then each document. ``form`` (already safe HTML) is put above the documents (the serve page's text box)."""
    head = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
            f'img-src data:; form-action \'self\'">'
            f'<title>{_esc(title)}</title><style>{_CSS}</style></head><body>')
    flagged = sum(it.detection.flagged for it in items)
    summary = (f'<h1>{_esc(title)}</h1><p class="summary">Model <b>{_esc(info.get("name"))} '
               f'{_esc(info.get("version"))}</b> &middot; flag threshold {info.get("threshold")} &middot; span '
               f'threshold {info.get("span_threshold")} (span score {_esc(info.get("span_score"))}, gate '
               f'{info.get("span_gate")}) &middot; {flagged} of {len(items)} documents flagged</p>'
               '<p class="legend" aria-hidden="true">Span score: '
               + "".join(f'<span style="background:{heat(x)}">{x:.1f}</span>' for x in (0.1, 0.3, 0.5, 0.7, 0.9))
               + ' &middot; spans are underlined and followed by their score; each passage has its score in the margin'
                 ' ([bracketed] when flagged) and as a strip on the same colour scale; hover for details.</p>')
    toc = ""
    if len(items) > 1:
        toc = "<nav><h2>Documents</h2><ol>" + "".join(
            f'<li><a href="#doc-{i}">{_esc(it.id)}</a> &middot; {it.detection.score:.3f}'
            f'{" &middot; FLAGGED" if it.detection.flagged else ""}</li>' for i, it in enumerate(items)) + "</ol></nav>"
    body = "".join(render_document(it, f"doc-{i}") for i, it in enumerate(items))
    return head + summary + form + toc + body + "</body></html>\n"
