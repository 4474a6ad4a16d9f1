"""Word rarity of a passage: how rare its rarest word is in English, on the Zipf scale (log10 of occurrences per
billion words; "the" is about 7.7, a word seen once in a hundred million words 1.0).

Machine translation that garbles meaning often leaves a word English hardly uses: an untranslated or transliterated
word, a misspelt or invented term. The encoder's pooled passage states miss much of this cue (issue #11), so the
calibrated passage logit can add ``e * rarity``. The word table is a file of the model folder (``word_table`` in
config.json): gzipped JSON listing, for each Zipf value, the lower-cased words that have it (format
``mtdetect-zipf-1``), built from wordfreq's English list by ``training.word_table``.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from ._errors import ModelError

#: a passage whose rarest word is at least this common (Zipf) has rarity 0; a word missing from the table counts as 0
RARITY_CAP = 6.0
FORMAT = "mtdetect-zipf-1"
#: letters, with apostrophes inside a word ("don't"); hyphens, digits and other marks split words
WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")


class WordTable:
    """Zipf frequencies of English words (lower case); :meth:`rarity` of a passage."""

    def __init__(self, zipf: dict[str, float]) -> None:
        self._zipf = zipf

    def __len__(self) -> int:
        return len(self._zipf)

    @classmethod
    def read(cls, path: Path) -> WordTable:
        """Read a word table file; raises :class:`ModelError` on anything else."""
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelError(f"cannot read the word table {path}: {e}") from None
        buckets = data.get("zipf_words") if isinstance(data, dict) and data.get("format") == FORMAT else None
        if not isinstance(buckets, dict) or not all(isinstance(v, str) for v in buckets.values()):
            raise ModelError(f"the word table {path} is not a {FORMAT!r} object of Zipf values and words")
        zipf: dict[str, float] = {}
        try:
            for value, words in buckets.items():
                zipf.update(dict.fromkeys(words.split(" "), float(value)))
        except ValueError:
            raise ModelError(f"the word table {path} has a Zipf value that is not a number") from None
        zipf.pop("", None)
        return cls(zipf)

    def write(self, path: Path) -> None:
        """Write the table: gzipped JSON holding, per Zipf value, its words joined by spaces (fast to read); sorted,
        with a fixed gzip time, so the same table gives the same bytes."""
        if any(not w or any(c.isspace() for c in w) for w in self._zipf):
            raise ValueError("a word of the table is empty or holds whitespace")
        buckets: dict[str, list[str]] = {}
        for w, z in self._zipf.items():
            buckets.setdefault(repr(float(z)), []).append(w)
        data = {"format": FORMAT, "zipf_words": {k: " ".join(sorted(v)) for k, v in sorted(buckets.items())}}
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(raw)

    def zipf(self, word: str) -> float:
        """Zipf frequency of a word (case and curly apostrophes folded); 0 for a word not in the table."""
        return self._zipf.get(word.lower().replace("\u2019", "'"), 0.0)

    def rarity(self, text: str) -> float:
        """``RARITY_CAP`` minus the Zipf frequency of the rarest word of ``text`` (floored at 0); 0 without words."""
        words = WORD.findall(text)
        if not words:
            return 0.0
        return RARITY_CAP - min(RARITY_CAP, min(self.zipf(w) for w in words))
