"""Canonical corpus record, label policy and shared helpers for the corpus converters."""

from __future__ import annotations

import hashlib
import html
import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# Label policy (documented in training/README.md)
# ---------------------------------------------------------------------------------------------

FLUENCY = "fluency"
ACCURACY = "accuracy"
OTHER = "other"

MAJOR = "major"
MINOR = "minor"
NEUTRAL = "neutral"
UNKNOWN = "unknown"  # sources with spans but no severity (post-edit tags, WMT22 dev tags)

STRICT = "strict"  # >= 1 major fluency span
BROAD = "broad"  # >= 1 major span, none of them fluency
CLEAN = "clean"  # no error at all
AMBIGUOUS = "ambiguous"  # minor/neutral only, or otherwise unusable as a segment label

# clean human English sources (every record labelled clean), in this order wherever they are iterated
CLEAN_SOURCES = ("abc", "brown", "gum", "newstest_en", "sotu", "wmt21_ref_a")


def map_category(category: str) -> str | None:
    """Map a source taxonomy category (Google MQM, WMT21, Bio-MQM) onto a coarse class.

    Returns None for annotations that do not describe the target text (source errors, no-error).
    """
    c = category.strip().lower().replace("_", " ").replace("!", "")
    if c in ("no-error", "no error", "") or c.startswith("source error"):
        return None
    if c.startswith("fluency") or c.startswith("style") or c.startswith("non-translation") or c.startswith(
        "non translation"
    ):
        return FLUENCY
    if c.startswith("linguistic conventions") or c.startswith("unintelligible"):
        return FLUENCY  # Bio-MQM: grammar, spelling, punctuation, character encoding, unintelligible
    if c.startswith("accuracy") or c.startswith("terminology") or c.startswith("locale convention/name"):
        return ACCURACY
    return OTHER  # locale conventions, "Other"


def map_severity(severity: str) -> str:
    s = severity.strip().lower()
    if s in ("major", "critical"):
        return MAJOR
    if s == "minor":
        return MINOR
    if s == "neutral":
        return NEUTRAL
    return UNKNOWN


def is_omission(category: str) -> bool:
    return "omission" in category.lower()


@dataclass
class Span:
    start: int
    end: int  # exclusive
    severity: str
    category: str  # fluency | accuracy | other
    raw_category: str = ""
    rater: str = ""
    artifact: str = ""  # synthetic artifact type

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v != "" or k in ("start", "end", "severity", "category")}


@dataclass
class Record:
    id: str
    source: str
    doc_id: str
    text: str
    spans: list[Span] = field(default_factory=list)
    label: str = AMBIGUOUS
    split: str = "train"
    seg: int = 0  # position of the segment inside its document (for context windows)
    system: str = ""
    n_raters: int = 1
    synthetic: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "doc_id": self.doc_id,
            "text": self.text,
            "spans": [s.to_json() for s in self.spans],
            "label": self.label,
            "split": self.split,
            "seg": self.seg,
            "system": self.system,
            "n_raters": self.n_raters,
            "synthetic": self.synthetic,
            **({"meta": self.meta} if self.meta else {}),
        }


def segment_label(spans: Iterable[Span], any_error: bool) -> str:
    """Segment label from the merged spans of all raters (see README: label policy)."""
    spans = list(spans)
    if any(s.severity == MAJOR and s.category == FLUENCY for s in spans):
        return STRICT
    if any(s.severity == MAJOR for s in spans):
        return BROAD
    if not any_error:
        return CLEAN
    return AMBIGUOUS


class SpanOffsetError(AssertionError):
    pass


def check_span(text: str, span: Span, expected: str | None) -> None:
    """The offset invariant: the span is inside the text and, where known, slices to the annotated text."""
    if not (0 <= span.start < span.end <= len(text)):
        raise SpanOffsetError(f"span {span.start}:{span.end} outside text of length {len(text)}")
    if expected is not None and text[span.start : span.end] != expected:
        raise SpanOffsetError(f"span text {text[span.start:span.end]!r} != annotated {expected!r}")


# ---------------------------------------------------------------------------------------------
# Drop accounting: every converter reports what it dropped and why
# ---------------------------------------------------------------------------------------------


class DropLog:
    """Counts dropped rows/spans per (source, reason); nothing is dropped silently."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.kept: Counter[tuple[str, str]] = Counter()

    def drop(self, source: str, reason: str, n: int = 1) -> None:
        self.counts[(source, reason)] += n

    def keep(self, source: str, what: str, n: int = 1) -> None:
        self.kept[(source, what)] += n

    def rows(self) -> list[tuple[str, str, int]]:
        return sorted((s, r, n) for (s, r), n in self.counts.items())


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------


def stable_hash(key: str) -> int:
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:12], 16)


def pick_held_out(doc_ids: Iterable[str], fraction: float, salt: str) -> set[str]:
    """A fixed, order-independent choice of round(fraction * n) documents."""
    docs = sorted(set(doc_ids), key=lambda d: stable_hash(salt + d))
    k = max(1, round(fraction * len(docs))) if docs and fraction > 0 else 0
    return set(docs[:k])


def mlqe_held_back(pair: str, article: str) -> bool:
    """The fixed fifth of MLQE-PE training articles (per pair, by sha256 of pair + article) that no fit sees: a copy
    of their outputs is the ``val_mlqe_doc`` split (the outputs stay in ``train``, where every fit leaves them out)."""
    return int(hashlib.sha256((pair + "\x00" + article).encode("utf-8")).hexdigest(), 16) % 5 == 0


def hash_split(doc_id: str, salt: str, val: float = 0.1, test: float = 0.1) -> str:
    u = (stable_hash(salt + doc_id) % 10_000) / 10_000
    if u < val:
        return "val"
    if u < val + test:
        return "test"
    return "train"


def norm_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


# ---------------------------------------------------------------------------------------------
# Moses detokenisation with token offsets (WMT22 QE dev, MLQE-PE)
# ---------------------------------------------------------------------------------------------

_NO_SPACE_BEFORE = set(",.;:!?%)]}…") | {"'s", "'re", "n't", "'ve", "'ll", "'d", "'m", "'S", "N'T"}
_NO_SPACE_AFTER = set("([{$#")


def unescape_moses(tok: str) -> str:
    tok = html.unescape(tok)
    return {"&#91;": "[", "&#93;": "]", "&#124;": "|"}.get(tok, tok)


def detokenize(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join Moses tokens into natural text; return the text and each token's (start, end)."""
    out: list[str] = []
    offsets: list[tuple[int, int]] = []
    pos = 0
    quote_open = False
    no_space_next = True
    for raw in tokens:
        tok = unescape_moses(raw)
        if tok == "@-@":
            tok = "-"
            space = False
            no_space_after = True
        else:
            no_space_after = False
            if tok == '"':
                if quote_open:
                    space = False
                else:
                    space = True
                    no_space_after = True
                quote_open = not quote_open
            elif tok in _NO_SPACE_BEFORE or (tok.startswith("'") and len(tok) <= 3 and tok != "'"):
                space = False
            else:
                space = True
            if tok in _NO_SPACE_AFTER:
                no_space_after = True
        if no_space_next:
            space = False
        if space:
            out.append(" ")
            pos += 1
        offsets.append((pos, pos + len(tok)))
        out.append(tok)
        pos += len(tok)
        no_space_next = no_space_after
    return "".join(out), offsets


def spans_from_tags(
    offsets: list[tuple[int, int]], bad: list[bool], severity: str, category: str
) -> list[Span]:
    """Merge runs of BAD tokens into character spans (the whitespace between them included)."""
    spans: list[Span] = []
    i = 0
    while i < len(bad):
        if bad[i]:
            j = i
            while j + 1 < len(bad) and bad[j + 1]:
                j += 1
            spans.append(Span(offsets[i][0], offsets[j][1], severity, category))
            i = j + 1
        else:
            i += 1
    return spans


def read_resumable(path: Path) -> dict[str, Any]:
    """{id: "toks"} of a cache that a resumable run appends JSON lines ``{"id": ..., "toks": ...}`` to; a missing
    file is empty, a line cut off by an interrupted run is skipped."""
    out: dict[str, Any] = {}
    if not path.is_file():
        return out
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            out[d["id"]] = d["toks"]
    return out


def read_records(path: Path, limit: int = 0, seed: int = 0) -> list[dict[str, Any]]:
    """Corpus records from a JSON-lines split; with ``limit``, a fixed random sample of that many."""
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    if limit and len(rows) > limit:
        rows = random.Random(seed).sample(rows, limit)
    return rows
