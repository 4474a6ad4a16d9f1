"""Output formats of ``mtdetect score``: JSON Lines, JSON, TSV and a readable text view."""

from __future__ import annotations

import json
from typing import IO, Any

from ._types import Detection

FORMATS = ("pretty", "json", "jsonl", "tsv")
_RED, _DIM, _RESET = "\033[1;31m", "\033[2m", "\033[0m"


def record_dict(rid: Any, d: Detection) -> dict[str, Any]:
    """The JSONL record schema: id, score, flagged, spans (start, end, text, score, category)."""
    return {
        "id": rid,
        "score": round(d.score, 6),
        "flagged": d.flagged,
        "spans": [{"start": s.start, "end": s.end, "text": s.text, "score": round(s.score, 6), "category": s.category}
                  for s in d.spans],
    }


def jsonl_line(rid: Any, d: Detection) -> str:
    return json.dumps(record_dict(rid, d), ensure_ascii=False)


def tsv_line(rid: Any, d: Detection) -> str:
    spans = ";".join(f"{s.start}-{s.end}:{s.score:.4f}" for s in d.spans)
    return f"{rid}\t{d.score:.6f}\t{int(d.flagged)}\t{spans}"


def pretty(rid: Any, d: Detection, color: bool) -> str:
    """The verdict, then each flagged or span-carrying passage with its spans highlighted and scored."""
    mark = "FLAGGED" if d.flagged else "ok"
    out = [f"{rid}: {mark} (score {d.score:.3f}, {len(d.spans)} span{'s' if len(d.spans) != 1 else ''})"]
    shown = [p for p in d.passages if p.flagged or any(s.start < p.end and p.start < s.end for s in d.spans)]
    for p in shown:
        seg = p.text
        for s in sorted(d.spans, key=lambda s: -s.start):
            if s.start < p.end and p.start < s.end:
                a, b = max(s.start, p.start) - p.start, min(s.end, p.end) - p.start
                tag = f"{s.score:.2f}" + (f" {s.category}" if s.category != "fluency" else "")
                hl = f"{_RED}{seg[a:b]}{_RESET}{_DIM}[{tag}]{_RESET}" if color else f"[[{seg[a:b]}]]({tag})"
                seg = seg[:a] + hl + seg[b:]
        out.append(f"  {p.score:.3f}  {seg}")
    return "\n".join(out)


class Writer:
    """Writes results in one format as they come; ``json`` collects them into one array written by :meth:`close`."""

    def __init__(self, out: IO[str], fmt: str, color: bool = False) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.out, self.fmt, self.color = out, fmt, color
        self._items: list[dict[str, Any]] = []

    def write(self, rid: Any, d: Detection) -> None:
        if self.fmt == "jsonl":
            self.out.write(jsonl_line(rid, d) + "\n")
        elif self.fmt == "tsv":
            self.out.write(tsv_line(rid, d) + "\n")
        elif self.fmt == "json":
            self._items.append({"id": rid, **d.to_dict()})
        else:
            self.out.write(pretty(rid, d, self.color) + "\n")

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            json.dump(self._items, self.out, ensure_ascii=False, indent=1)
            self.out.write("\n")
        self.out.flush()
