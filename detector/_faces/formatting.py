"""Output formats of ``mtdetect score``: JSON Lines, JSON, TSV and a readable text view."""

from __future__ import annotations

import json
import math
import re
from typing import IO, Any

from .._text import SURROGATE
from .._types import Detection

FORMATS = ("pretty", "json", "jsonl", "tsv", "html", "po")
_RED, _DIM, _RESET = "\033[1;31m", "\033[2m", "\033[0m"


# control and format characters that a terminal acts on (ESC sequences, bidi overrides, line separators)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(s: object) -> str:
    """``str(s)`` with control characters escaped (``\\x1b``, ``\\u202e``), safe to show on a terminal."""
    text = str(s)
    if SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def json_text(obj: Any, indent: int | None = None) -> str:
    """Strict JSON: UTF-8 text as is, but escaped to ASCII when a string holds a lone surrogate (which UTF-8 cannot
    encode), so the output is always valid UTF-8 and valid JSON. A float that JSON cannot hold (an id read as
    ``inf`` or ``nan`` from a Parquet column) is written as its name, a string."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=indent)
    except ValueError:  # a non-finite float somewhere in obj
        obj = finite(obj)
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=indent)
    return json.dumps(obj, ensure_ascii=True, allow_nan=False, indent=indent) if SURROGATE.search(text) else text


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (inf, -inf, nan) replaced by its name as a string."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def json_line(obj: Any) -> str:
    """One line of JSON (see :func:`json_text`)."""
    return json_text(obj)


def record_dict(rid: Any, d: Detection) -> dict[str, Any]:
    """The JSONL record schema: id, score, flagged, status (scored / not_english), language, spans (start, end, text,
    score, category)."""
    return {
        "id": rid,
        "score": round(d.score, 6),
        "flagged": d.flagged,
        "status": d.status,
        "language": d.language,
        "spans": [{"start": s.start, "end": s.end, "text": s.text, "score": round(s.score, 6), "category": s.category}
                  for s in d.spans],
    }


def with_unit(rec: dict[str, Any], unit: Any) -> dict[str, Any]:
    """``rec`` (:func:`record_dict`) with where it came from in a structured file (a subtitle cue: ``unit``) and
    each span's ``line`` and ``column`` in that file (1-based; the column counts characters)."""
    if unit is None:
        return rec
    rec = {**rec, "unit": unit.to_dict()}
    extra = getattr(unit, "span_fields", None)  # e.g. the HTML element a span sits in
    for s in rec["spans"]:
        s["line"], s["column"] = unit.position(s["start"])
        if extra is not None:
            s.update(extra(s["start"]))
    return rec


def jsonl_line(rid: Any, d: Detection, unit: Any = None) -> str:
    return json_line(with_unit(record_dict(rid, d), unit))


def tsv_line(rid: Any, d: Detection, unit: Any = None) -> str:
    """id, score, flagged (0/1), spans, status, and for a subtitle cue a sixth column (file:line:column of each
    span, or of the cue's text when it has none); tabs, line breaks and backslashes in the id are escaped."""
    spans = ";".join(f"{s.start}-{s.end}:{s.score:.4f}" for s in d.spans)
    row = f"{printable(_tsv_field(rid))}\t{d.score:.6f}\t{int(d.flagged)}\t{spans}\t{d.status}"
    if unit is not None:
        places = [unit.position(s.start) for s in d.spans] or [unit.position(0)]
        row += "\t" + printable(_tsv_field(";".join(f"{unit.file}:{a}:{b}" for a, b in places)))
    return row


def _tsv_field(v: object) -> str:
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def pretty(rid: Any, d: Detection, color: bool, unit: Any = None) -> str:
    """The verdict, then each flagged or span-carrying passage with its spans highlighted and scored."""
    mark = "FLAGGED" if d.flagged else "ok" if d.status == "scored" else f"not English ({d.language}), not scored"
    where = f" {printable(unit.label())}" if unit is not None else ""
    out = [f"{printable(rid)}:{where} {mark} (score {d.score:.3f}, {len(d.spans)} span"
           f"{'s' if len(d.spans) != 1 else ''})"]
    shown = [p for p in d.passages if p.flagged or any(s.start < p.end and p.start < s.end for s in d.spans)]
    for p in shown:
        parts = []
        pos = 0
        for s in sorted(d.spans, key=lambda s: s.start):
            if s.start < p.end and p.start < s.end:
                a, b = max(s.start, p.start) - p.start, min(s.end, p.end) - p.start
                tag = f"{s.score:.2f}" + (f" {s.category}" if s.category != "fluency" else "")
                inner = printable(p.text[a:b])
                parts.append(printable(p.text[pos:a]))
                parts.append(f"{_RED}{inner}{_RESET}{_DIM}[{tag}]{_RESET}" if color else f"[[{inner}]]({tag})")
                pos = b
        parts.append(printable(p.text[pos:]))
        out.append(f"  {p.score:.3f}  {''.join(parts)}")
    return "\n".join(out)


class Writer:
    """Writes results in one format as they come; ``json`` and ``html`` collect them into one document written by
    :meth:`close` (``html`` needs the texts and ``info``, the detector's :meth:`~detector.Detector.info`)."""

    def __init__(self, out: IO[str], fmt: str, color: bool = False, info: dict[str, Any] | None = None,
                 mark_fuzzy: bool = False) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.out, self.fmt, self.color, self.info = out, fmt, color, info or {}
        self.mark_fuzzy = mark_fuzzy  # po: flagged entries also get the fuzzy flag
        self._items: list[dict[str, Any]] = []
        self._report: list[Any] = []
        self._po: list[tuple[Any, Detection]] = []

    def write(self, rid: Any, d: Detection, text: str = "", unit: Any = None) -> None:
        """One result; ``unit`` (a subtitle cue's :class:`detector.subtitles.Unit`) adds where it came from in the
        file (the HTML report shows it in the record's name)."""
        if self.fmt == "html":
            from .report import ReportItem

            self._report.append(ReportItem(rid if unit is None else f"{rid} ({unit.label()})", text, d, unit))
        elif self.fmt == "po":
            if getattr(unit, "catalogue", None) is None:
                raise ValueError("--format po writes an annotated PO file: the input must be one PO file")
            self._po.append((unit, d))  # written by close()
        elif self.fmt == "jsonl":
            self.out.write(jsonl_line(rid, d, unit) + "\n")
        elif self.fmt == "tsv":
            self.out.write(tsv_line(rid, d, unit) + "\n")
        elif self.fmt == "json":
            self._items.append(with_unit({"id": rid, **d.to_dict()}, unit))  # written by close()
        else:
            self.out.write(pretty(rid, d, self.color, unit) + "\n")

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "html":
            from .report import render_page

            self.out.write(render_page(self._report, self.info))
        if self.fmt == "json":
            self.out.write(json_text(self._items, indent=1) + "\n")
        if self.fmt == "po":
            from ..localisation import annotate_po

            self.out.write(annotate_po(self._po, self.mark_fuzzy))
        self.out.flush()
