"""Which passages are not English: an offline language identifier (lingua, models inside its wheel) held back
by English evidence.

Garbled English must stay scored, and lingua's fast mode calls some English passages Latin, Tagalog or Dutch
(biomedical terms, names). So a passage is marked with another language only when (1) it has at least
:data:`MIN_LETTERS` letters, (2) under :data:`MAX_ENGLISH_WORDS` of its words are English function words (a list
written for this check: "the", "of", "which" ..., none common in other languages written in Latin script), and
(3) lingua gives another language a confidence of at least :data:`MIN_CONFIDENCE` (half that for text with
accented letters or in another script). Shorter passages ("accepted.", "Period.") are English in a text with any
English passage, so garbled fragments stay scored; in a text without one they take the language of the nearest
identified passage, so a French document is not scored line by line. A text of short passages only is identified as
a whole. With the model's English word table, a Latin-script passage is English when at least half its words are
common English words (a list of names or a loop of English words is not Italian); "anti-Russian sentiment, ..."
repeated stays English.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from ._rarity import WordTable
from ._text import SURROGATE

ENGLISH = "en"
UNDETERMINED = "und"  # mostly another script than Latin, and no language lingua knows (e.g. Sinhala)
MIN_LETTERS = 30
MIN_OTHER_SCRIPT = 4  # letters of another script (CJK, Cyrillic ...) carry more per letter
MAX_ENGLISH_WORDS = 0.1
MIN_CONFIDENCE = 0.7
_SAMPLE = 2000  # characters of a passage looked at (a long passage is identified by its start)
_ASCII_LETTERS = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
FUNCTION_WORDS = frozenset("""
the of and to is that for it with as was be by this are from or have has had not but which were been their they
there would will can could should what when who whom whose where why how all any each more most other some such
than then these those its his her she him them we our you your my me he into about after before because while also
only just very if up out over under between through during without within against among said says at its itself
herself himself themselves ourselves yourself did does doing being than whether either neither both few many much
own same too again further once here off above below until upon onto since though although unless however
""".split())


#: a Latin-script passage with at least this share of common English words (Zipf >= ENGLISH_ZIPF in the model's
#: word table; words of three letters or more) is English whatever lingua says: names, lists and loops of English
#: words are not Italian or Malay
ENGLISH_WORD_SHARE = 0.5
ENGLISH_ZIPF = 3.0


class LanguageId:
    """Lazily built lingua detector (low-accuracy mode: about 70 MB, under 1 ms a passage). With ``words`` (the
    model's English word table) a Latin-script passage also needs English evidence against it: at most
    :data:`ENGLISH_WORD_SHARE` of its words common in English."""

    def __init__(self, words: WordTable | None = None) -> None:
        self._det: Any = None
        self._lock = threading.Lock()
        self._words = words

    def _detector(self) -> Any:
        if self._det is None:
            with self._lock:
                if self._det is None:
                    from lingua import LanguageDetectorBuilder

                    self._det = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
        return self._det

    def language_of(self, passage: str, min_letters: int = MIN_LETTERS) -> str | None:
        """ISO 639-1 code of a passage long enough to identify ("en" included), None when too short."""
        if passage.isascii():  # the common case, without a Python loop over characters
            letters = _ASCII_LETTERS.findall(passage)
            other_script = False
        else:
            letters = [c for c in passage if c.isalpha()]
            other_script = sum(1 for c in letters if ord(c) > 0x24F) > len(letters) / 2
        if len(letters) < (MIN_OTHER_SCRIPT if other_script else min_letters):
            return None
        words = _WORD.findall(passage.lower())
        if not other_script and words and sum(w in FUNCTION_WORDS for w in words) >= MAX_ENGLISH_WORDS * len(words):
            return ENGLISH
        from lingua import Language

        accented = sum(1 for c in letters if 0x7F < ord(c) <= 0x24F) >= 0.03 * len(letters)  # ș, é, ü, ß ...
        needed = MIN_CONFIDENCE / 2 if accented or other_script else MIN_CONFIDENCE
        values = self._detector().compute_language_confidence_values(passage)
        if values and values[0].language != Language.ENGLISH and values[0].value >= needed:
            long_words = [w for w in words if len(w) >= 3]  # "la", "de", "et" are English names and abbreviations too
            if not other_script and self._words is not None and long_words:
                common = sum(self._words.zipf(w) >= ENGLISH_ZIPF for w in long_words)
                if common >= ENGLISH_WORD_SHARE * len(long_words):
                    return ENGLISH
            return str(values[0].language.iso_code_639_1.name).lower()
        return UNDETERMINED if other_script else ENGLISH

    def passage_languages(self, passages: Sequence[str]) -> list[str]:
        """One code per passage; short passages take the nearest identified passage's language (English when none
        is identified)."""
        found = [self.language_of(SURROGATE.sub("\ufffd", p[:_SAMPLE])) for p in passages]
        n = len(found)
        if n and all(x is None for x in found):  # every passage too short: the text as a whole decides
            whole = self.language_of(SURROGATE.sub("\ufffd", " ".join(passages)[:_SAMPLE]))
            return [whole or ENGLISH] * n
        if ENGLISH in found:  # a text with English in it keeps every short passage scored
            return [x or ENGLISH for x in found]
        prev: list[int | None] = [None] * n  # nearest identified passage before (or at) each index
        last = None
        for i in range(n):
            if found[i] is not None:
                last = i
            prev[i] = last
        nxt: list[int | None] = [None] * n
        last = None
        for i in range(n - 1, -1, -1):
            if found[i] is not None:
                last = i
            nxt[i] = last
        out = []
        for i, x in enumerate(found):
            if x is None:
                p, q = prev[i], nxt[i]
                j = p if q is None or (p is not None and i - p <= q - i) else q  # nearest, the earlier on ties
                x = found[j] if j is not None else None
            out.append(x or ENGLISH)
        return out
