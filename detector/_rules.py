"""Rule detectors for the failures people spot at a glance (issue #32): repetition loops and untranslated text.

They run on every passage next to the network and give spans of their own category:

- ``repetition``: a unit of 1 to :data:`MAX_UNIT` words (or, in scripts written without spaces, characters) repeated
  back to back: at least :data:`MIN_COPIES` copies of a unit of two or more, :data:`MIN_COPIES_ONE` of a single word
  (punctuation between the copies is ignored; numbers alone never count). An NMT oscillation ("the committee of the
  city, the committee of the city, the committee of the city") is caught in any script; a list that goes on ("red,
  green, blue") is not a loop, a list that comes round again three times is. The span runs from the second copy to
  the end of the last: the first copy is the text's own.
- ``untranslated``: a run of at least :data:`MIN_FOREIGN_LETTERS` letters of another script (CJK, Cyrillic, Arabic,
  Devanagari, ...) inside a passage written mostly in Latin letters, and tokens an MT system leaves when it has no
  word (``<unk>``, ``[UNK]``, sentencepiece's ``▁`` inside a word, BPE's ``@@``). A whole passage in another language
  inside English text is marked by the detector from its language (see :mod:`detector._language`).

Everything is linear in the passage length (a bounded unit size) and depends on the passage text alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

REPETITION = "repetition"
UNTRANSLATED = "untranslated"
RULE_CATEGORIES = (REPETITION, UNTRANSLATED)
#: the passage probability a rule hit gives (the network's own when higher)
RULE_PROBABILITY = 0.99

MAX_UNIT = 12
MAX_GAP = 2
MIN_GAP_UNIT = 3
MIN_COPIES = 3
MIN_COPIES_ONE = 4
MIN_FOREIGN_LETTERS = 2
#: a passage with at least this share of Latin letters counts as written in Latin script
LATIN_SHARE = 0.5

# words: letters or digits with inner apostrophes/hyphens; a character of a script written without spaces is a
# word of its own
_NO_SPACE = (r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f"
             r"\u1780-\u17ff\uac00-\ud7af")
_TOKEN = re.compile(rf"[{_NO_SPACE}]|[^\W_{_NO_SPACE}]+(?:['’\-][^\W_{_NO_SPACE}]+)*")
_UNK = re.compile(r"<unk>|<UNK>|\[UNK\]|<unk_\d+>|\w+@@(?= )|\w▁\w|▁(?=\w)")


@dataclass(frozen=True)
class RuleSpan:
    """A rule's finding: ``text[start:end]`` (offsets into the whole text) and its category."""

    start: int
    end: int
    category: str


def repetition_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Loops in ``text[start:end]``: [start, end) of each, from the second copy to the end of the last. Copies of a
    unit of :data:`MIN_GAP_UNIT` words or more may be joined by up to :data:`MAX_GAP` other words ("the Federal
    Republic of Germany, the Federal Republic of Germany and the Federal Republic of Germany"); shorter units must
    repeat back to back."""
    end = len(text) if end is None else end
    toks = [(m.start() + start, m.end() + start, m.group().lower()) for m in _TOKEN.finditer(text[start:end])]
    words = [w for _, _, w in toks]
    n = len(words)
    nxt = [n] * n  # the next position of the same word: a unit's second copy starts there (plus a gap)
    last: dict[str, int] = {}
    for j in range(n - 1, -1, -1):
        nxt[j] = last.get(words[j], n)
        last[words[j]] = j
    found: list[tuple[int, int]] = []
    i = 0
    while i < n:
        best: tuple[int, int, int] | None = None  # (tokens covered, unit size, where the second copy starts)
        nexts: list[int] = []  # where the word comes again within reach: each may start the second copy
        j = nxt[i]
        while j < n and j - i <= MAX_UNIT + MAX_GAP and len(nexts) < 3:
            nexts.append(j - i)
            j = nxt[j]
        for d, g in ((d, g) for d in nexts for g in range(MAX_GAP + 1)):
            u = d - g
            if u < 1 or u > MAX_UNIT or (g and u < MIN_GAP_UNIT):
                continue
            unit = words[i : i + u]
            if all(w.isdigit() for w in unit):
                continue
            gaps = MAX_GAP if u >= MIN_GAP_UNIT else 0
            copies, pos, second = 1, i + u, i + d
            while True:
                nxt_copy = next((pos + gg for gg in range(gaps + 1) if words[pos + gg : pos + gg + u] == unit), None)
                if nxt_copy is None:
                    break
                copies, pos = copies + 1, nxt_copy + u
            if copies >= (MIN_COPIES_ONE if u == 1 else MIN_COPIES) and (best is None or pos - i > best[0]):
                best = (pos - i, u, second)
        if best is None:
            i += 1
            continue
        covered, u, second = best
        while covered < n - i and words[i + covered] == words[i + covered % u] and covered % u < u - 1:
            covered += 1  # a last copy cut short ("red, green, blue, red, green") belongs to the loop
        found.append((toks[second][0], toks[i + covered - 1][1]))
        i += covered
    return found


def _script_letter(c: str) -> str | None:
    """"latin", "other" (a letter of another script) or None (not a letter, or a letter of no particular script
    such as a modifier)."""
    if not c.isalpha():
        return None
    o = ord(c)
    if o < 0x250 or 0x1E00 <= o <= 0x1EFF or 0x2C60 <= o <= 0x2C7F or 0xA720 <= o <= 0xA7FF or 0xFF21 <= o <= 0xFF5A:
        return "latin"
    if unicodedata.category(c) == "Lm":
        return None
    return "other"


def foreign_runs(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Runs of another script's letters inside a passage written mostly in Latin letters: [start, end) of each
    run of at least :data:`MIN_FOREIGN_LETTERS` letters (spaces and marks inside a run keep it whole); none when
    the passage is not mostly Latin (its language decides then)."""
    end = len(text) if end is None else end
    latin = other = 0
    for c in text[start:end]:
        kind = _script_letter(c)
        if kind == "latin":
            latin += 1
        elif kind == "other":
            other += 1
    if other < MIN_FOREIGN_LETTERS or latin < LATIN_SHARE * (latin + other):
        return []
    runs: list[tuple[int, int]] = []
    i = start
    while i < end:
        if _script_letter(text[i]) != "other":
            i += 1
            continue
        j, letters, last = i, 0, i
        while j < end:
            kind = _script_letter(text[j])
            if kind == "other":
                letters += 1
                last = j
            elif kind == "latin" or not (text[j].isspace() or unicodedata.category(text[j]).startswith("M")):
                break
            j += 1
        if letters >= MIN_FOREIGN_LETTERS:
            runs.append((i, last + 1))
        i = j
    return runs


def unk_tokens(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``<unk>``-style tokens and subword markers an MT system left in its output."""
    end = len(text) if end is None else end
    return [(m.start() + start, m.end() + start) for m in _UNK.finditer(text[start:end])]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def passage_rules(text: str, start: int, end: int) -> list[RuleSpan]:
    """Every rule's spans in the passage ``text[start:end]``, sorted, overlaps of one category merged."""
    out = [RuleSpan(s, e, REPETITION) for s, e in _merged(repetition_spans(text, start, end))]
    out += [RuleSpan(s, e, UNTRANSLATED)
            for s, e in _merged(foreign_runs(text, start, end) + unk_tokens(text, start, end))]
    return sorted(out, key=lambda r: (r.start, r.end))


def text_rules(text: str, passages: Sequence[tuple[int, int]]) -> list[RuleSpan]:
    """Every rule's spans in a text cut into ``passages`` ([start, end) each, in order): loops are searched over the
    whole text (a loop of whole sentences, "I am sorry. I am sorry. I am sorry.", crosses passages), untranslated
    runs passage by passage; a finding is split at passage boundaries (a span never crosses one) and trimmed."""
    out: list[RuleSpan] = []
    loops = _merged(repetition_spans(text)) if passages else []
    for ps, pe in passages:
        for s, e in loops:
            a, b = max(s, ps), min(e, pe)
            while a < b and (text[a].isspace() or text[a] in ",;:"):
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            if b > a:
                out.append(RuleSpan(a, b, REPETITION))
        out += [RuleSpan(s, e, UNTRANSLATED) for s, e in _merged(foreign_runs(text, ps, pe) + unk_tokens(text, ps, pe))]
    return sorted(out, key=lambda r: (r.start, r.end))
