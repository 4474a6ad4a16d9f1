"""Text handling shared by inference and training: passages, token shapes and tokens (windows: :mod:`._windows`).

Everything here works on character offsets into the caller's original string, so spans can always be
sliced back out of it exactly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

# Sentence-like units: split after ., !, ?, … (plus closing quotes/brackets) followed by whitespace, and at line
# breaks. No split after abbreviations ("Mr.", "U.S.", "e.g.", "p.m."), single-letter initials ("J. R. R.
# Tolkien"), or an ellipsis followed by a lowercase word: those are fluent English, and cutting there would
# leave fragments that look exactly like MT sentence-break artifacts. A lowercase word after an ordinary full stop
# ("people. common sense.") still starts a new passage: that is the artifact.
# The line-break alternative starts at the newline itself (whitespace before it is trimmed from the passage), so
# no pattern can backtrack over a long whitespace run: matching is linear in the text.
_BOUNDARY = re.compile(r"[.!?…][\"'”’)\]]*(\s+)|\n\s*")
_MAX_WORD = 40  # an abbreviation or initial is never longer: the look-back below is bounded
_ABBREV = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "co", "corp", "inc", "ltd", "vs", "etc", "gen", "gov", "sen", "rep",
    "prof", "rev", "col", "lt", "sgt", "capt", "jan", "feb", "mar", "apr", "aug", "sep", "sept", "oct", "nov", "dec",
    "mt", "ft", "ave", "blvd", "dept", "univ", "approx", "fig", "al", "cf", "ca", "vol", "no", "pp", "ed", "eds",
}
_DOTTED = re.compile(r"(?:[A-Za-z]\.){2,}$")


def _keeps_together(text: str, term: int, nxt: int) -> bool:
    """True when the terminator at ``term`` does not end a sentence (abbreviation, initial, ellipsis)."""
    if nxt >= len(text) or text[nxt] == "\n" or "\n" in text[term:nxt]:
        return False
    if text[term] == "…" or text[max(0, term - 2) : term + 1] == "...":
        return text[nxt].islower()
    if text[term] != ".":
        return False
    j = term
    stop = max(0, term - _MAX_WORD)
    while j > stop and not text[j - 1].isspace() and text[j - 1] not in "(\"“'‘":
        j -= 1
    if j == stop and stop > 0 and not text[j - 1].isspace():
        return False  # a "word" longer than any abbreviation
    word = text[j:term]
    if _DOTTED.match(text[j : term + 1]):
        return True  # U.S. / e.g. / p.m.
    if len(word) == 1 and word.isalpha():
        return True  # initial
    if word.lower() in _ABBREV:
        return not (word.lower() == "no" and not text[nxt].isdigit())
    return False


N_CASE = 8
N_SPACE = 3
N_SHAPES = N_CASE * N_SPACE * 2


@dataclass(frozen=True)
class Piece:
    """A passage: [start, end) in the original text, surrounding whitespace excluded."""

    start: int
    end: int


def split_passages(text: str) -> list[Piece]:
    """Split text into sentence-like passages with exact character offsets."""
    pieces: list[Piece] = []
    pos = 0
    for m in _BOUNDARY.finditer(text):
        if m.group(1) is not None:
            a, b = m.start(1), m.end(1)
            if _keeps_together(text, m.start(), b):
                continue
        else:
            a, b = m.start(), m.end()
        if a > pos:
            _append_trimmed(text, pos, a, pieces)
        pos = max(pos, b)
    if pos < len(text):
        _append_trimmed(text, pos, len(text), pieces)
    return pieces


def _append_trimmed(text: str, s: int, e: int, out: list[Piece]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        out.append(Piece(s, e))


@lru_cache(maxsize=1 << 16)
def _case_class(tok: str) -> int:
    """(Memoised: a pure function of the token's text, and tokens repeat.) 0 pad/special, 1 lower, 2 Title, 3 UPPER, 4 mixed, 5 digit, 6 punctuation, 7 other script."""
    letters = [c for c in tok if c.isalpha()]
    if not tok:
        return 0
    c0 = tok[0]
    if c0.isdigit():
        return 5
    if not letters:
        return 6
    if any(ord(c) > 0x24F for c in letters):
        return 7
    if all(c.islower() for c in letters):
        return 1
    if all(c.isupper() for c in letters):
        return 3 if len(letters) > 1 else 2
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return 2
    return 4


def token_shape(text: str, start: int, end: int) -> int:
    """Shape id of the token text[start:end]: case class x space before x after-sentence-end."""
    case = _case_class(text[start:end])
    j = start - 1
    if j < 0:
        space = 2
    elif text[j] in "\n\r\u2028\u2029":
        space = 2
    elif text[j].isspace():
        space = 1
    else:
        space = 0
    while j >= 0 and text[j].isspace():
        j -= 1
    stop = j - 8  # closing quotes/brackets after a sentence end: a few at most (bounded: linear time)
    while j >= 0 and j > stop and text[j] in "\"'”’)]":
        j -= 1
    after_stop = 1 if (j >= 0 and text[j] in ".!?…" and space > 0) else 0
    if after_stop and _keeps_together(text, j, start):
        after_stop = 0  # "U.S. and", "Mr. Smith", "... and then": not a sentence boundary
    return (case * N_SPACE + space) * 2 + after_stop


@dataclass
class Tokenized:
    """Tokens of one passage: ids, shapes and character offsets into the original text."""

    ids: list[int]
    shapes: list[int]
    offsets: list[tuple[int, int]]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")
SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone surrogates: no encoder, UTF-8 or Rust string accepts them


def normalise_for_tokenizer(s: str) -> str:
    """Length-preserving (offsets stay exact): control and format characters become spaces, lone surrogates
    (which no encoder accepts) become U+FFFD. NFC is not applied: it can change lengths."""
    s = _CONTROL.sub(" ", s)
    if SURROGATE.search(s):
        s = SURROGATE.sub("\ufffd", s)
    return "".join(" " if unicodedata.category(c) == "Cf" else c for c in s) if _has_format(s) else s


def _has_format(s: str) -> bool:
    if s.isascii():
        return False
    return any(ord(c) >= 0x80 and unicodedata.category(c) == "Cf" for c in s)


def tokenize_passages(tokenizer, text: str, pieces: Sequence[Piece]) -> list[Tokenized]:  # type: ignore[no-untyped-def]
    """Tokenise every passage on its own (so results do not depend on what else is in the batch)."""
    if not pieces:
        return []
    chunks = [normalise_for_tokenizer(text[p.start : p.end]) for p in pieces]
    encs = tokenizer.encode_batch(chunks, add_special_tokens=False)
    out = []
    for p, enc in zip(pieces, encs):
        all_ids = enc.ids  # each access to an Encoding's ids/offsets builds a new list: read them once
        pairs = [(p.start + a, p.start + b, i) for (a, b), i in zip(enc.offsets, all_ids) if b > a]
        ids = [i for _, _, i in pairs]
        offs = [(a, b) for a, b, _ in pairs]
        out.append(Tokenized(ids, [token_shape(text, a, b) for a, b in offs], offs))
    return out
