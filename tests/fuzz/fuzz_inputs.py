"""Coverage-guided fuzzing (atheris) of input reading, passage splitting and span decoding. Not run in CI.

    pip install atheris
    python tests/fuzz/fuzz_inputs.py -max_total_time=600 -rss_limit_mb=4096 build/fuzz/corpus

Each input's first byte picks a target; the rest is its data. A target fails (and atheris saves the input) on any
exception other than the documented ones, or when an invariant breaks: offsets that do not slice the text, passages
that overlap or carry surrounding whitespace, spans outside their passage. Findings become regression tests in
tests/test_robustness.py.
"""

from __future__ import annotations

import io
import sys

import atheris

with atheris.instrument_imports():
    import numpy as np

    from detector._decode import decide
    from detector._faces.reading import InputError, ReadOptions, ReadStats, read_input
    from detector._text import split_passages
    from detector._types import RawScores, Settings

KINDS = ("auto", "plain", "jsonl", "tsv")
SETTINGS = Settings(threshold=0.5, span_threshold=0.3, span_gate=0.0, span_score="error")


def _read(data: bytes, kind: str, skip: bool) -> None:
    opts = ReadOptions(kind=kind, skip_bad_lines=skip, tsv_column=2, max_chars=5000)
    try:
        for rec in read_input(io.BytesIO(data), "fuzz", opts, ReadStats(), lambda _m: None):
            if rec.chunks is not None:
                for _ in rec.chunks:
                    pass
            else:
                assert isinstance(rec.text, str)
    except InputError as e:
        assert "\n" not in str(e), "an input error must be one line"


def _split(text: str) -> None:
    pos = 0
    for p in split_passages(text):
        assert pos <= p.start < p.end <= len(text), (p, pos)
        chunk = text[p.start : p.end]
        assert chunk.strip() == chunk and chunk, repr(chunk)
        pos = p.end


def _decode(text: str, probs: bytes) -> None:
    pieces = split_passages(text)
    offs: list[tuple[int, int]] = []
    owner: list[int] = []
    for k, p in enumerate(pieces):
        i = p.start
        while i < p.end:  # "tokens": 1-3 character runs of non-space
            if text[i].isspace():
                i += 1
                continue
            j = min(p.end, i + 1 + (probs[len(offs) % max(1, len(probs))] % 3 if probs else 0))
            while j > i + 1 and text[j - 1].isspace():
                j -= 1
            offs.append((i, j))
            owner.append(k)
            i = j
    n = len(offs)
    vals = np.array([probs[i % len(probs)] / 255 if probs else 0.5 for i in range(n)], dtype=np.float64)
    tp = np.stack([1 - vals, vals * 0.6, vals * 0.4], axis=1) if n else np.zeros((0, 3))
    raw = RawScores(text, np.array([(p.start, p.end) for p in pieces], dtype=np.int64).reshape(-1, 2),
                    np.zeros((len(pieces), 2)), np.array(offs, dtype=np.int64).reshape(-1, 2),
                    np.array(owner, dtype=np.int64), tp)
    d = decide(raw, SETTINGS, (1.0, 0.0, 0.0))
    last = -1
    for s in d.spans:
        assert text[s.start : s.end] == s.text and s.start < s.end and s.start >= last, s
        assert any(p.start <= s.start and s.end <= p.end for p in d.passages), s
        last = s.end


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    target = fdp.ConsumeIntInRange(0, 2)
    if target == 0:
        kind = KINDS[fdp.ConsumeIntInRange(0, 3)]
        skip = fdp.ConsumeBool()
        _read(fdp.ConsumeBytes(fdp.remaining_bytes()), kind, skip)
    elif target == 1:
        _split(fdp.ConsumeUnicode(fdp.remaining_bytes()))
    else:
        text = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 400))
        _decode(text, fdp.ConsumeBytes(fdp.remaining_bytes()))


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
