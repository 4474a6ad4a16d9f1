"""The rule categories measured (issue #32): a test set of repetition loops and untranslated text built from
held-back records, the share of it flagged with the right category, and how often human English gets those
categories; plus how much the passage score follows length.

    python -m training.categories --model models/mtdetect-minilm-shape --corpus build/corpus

The test set (:func:`category_cases`, seed 11) is built over validation records only (val_news, val_ted, val_mlqe
outputs and val_clean human English), never over training records:

- ``repetition``: a phrase of the record (1 to 6 words, or a list of its capitalised names) repeated 3 to 8 times
  where it stood, joined by ", ", " " or " and ", the last copy sometimes cut short: the oscillations NMT systems
  produce; also loops of Cyrillic words (MLQE-PE ru-en sources, dev split).
- ``untranslated``: a run of another script (a word or two of MLQE-PE ru, ne or si dev sources) inside the
  English record; a whole source sentence (ro, et, ru dev sources: a copy of the source) between two English
  passages; ``<unk>`` in place of a word.

Reported: for each kind, the share of cases whose text is flagged and carries a span of the category over the
inserted text; for human English (every val_clean and test_clean record), the share with a span of each category.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detector import Detector
from detector.evaluation import ENGLISH_ORIGINAL, spearman

WORD = re.compile(r"\S+")
JOINERS = (", ", " ", " and ", "; ")
SHORT_WORDS = 8


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def mlqe_sources(data: Path, pair: str) -> list[str]:
    """The MLQE-PE dev sources of a language pair (the source side of the held-out dev split)."""
    path = data / "mlqe-pe" / "post-editing" / "dev" / f"{pair}-en-dev.tar.gz"
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            if m.name.endswith(".src"):
                f = tar.extractfile(m)
                assert f is not None
                return [x.strip() for x in f.read().decode("utf-8").splitlines() if x.strip()]
    return []


def loop(text: str, rng: random.Random) -> tuple[str, tuple[int, int]] | None:
    """``text`` with one of its phrases repeated where it stood; (new text, [start, end) of the added copies)."""
    words = list(WORD.finditer(text))
    if len(words) < 3:
        return None
    names = [m for m in words if m.group()[:1].isupper() and m.start() > 0]
    if len(names) >= 2 and rng.random() < 0.2:  # a list of the record's names that never ends
        unit = ", ".join(m.group().strip(",.;:") for m in names[:3])
        at = words[-1].end()
    else:
        n = rng.randint(1, min(6, len(words) - 1))
        i = rng.randrange(0, len(words) - n + 1)
        a, b = words[i].start(), words[i + n - 1].end()
        unit = text[a:b].strip(",.;:!?")
        if not unit:
            return None
        at = a + len(unit)
        text = text[:a] + unit + text[a + len(text[a:b]) :]
    copies = rng.randint(4 if " " not in unit else 3, 8)
    joiner = rng.choice(JOINERS)
    extra = "".join(joiner + unit for _ in range(copies - 1))
    if rng.random() < 0.3:  # the last copy cut short
        extra = extra[: len(extra) - rng.randint(1, max(1, len(unit) // 2))]
    return text[:at] + extra + text[at:], (at, at + len(extra))


def foreign_run(text: str, source: str, rng: random.Random) -> tuple[str, tuple[int, int]] | None:
    """``text`` with one or two words of another script put in place of one of its words."""
    words = list(WORD.finditer(text))
    theirs = [w.strip(",.;:!?()\"'") for w in source.split()]
    theirs = [w for w in theirs if sum(c.isalpha() for c in w) >= 2]
    if len(words) < 3 or not theirs:
        return None
    m = words[rng.randrange(1, len(words))]
    k = rng.randrange(0, len(theirs))
    run = " ".join(theirs[k : k + rng.randint(1, 2)])
    return text[: m.start()] + run + text[m.end() :], (m.start(), m.start() + len(run))


def category_cases(corpus: Path, data: Path, n: int = 300, seed: int = 11) -> dict[str, list[tuple[str, tuple[int, int]]]]:
    """{kind: [(text, inserted span)]}: ``n`` cases of each kind (see the module docstring)."""
    rng = random.Random(seed)
    mt = [r["text"] for s in ("val_news", "val_ted", "val_mlqe") for r in _rows(corpus / f"{s}.jsonl")]
    human = [r["text"] for r in _rows(corpus / "val_clean.jsonl") if r["source"] in ENGLISH_ORIGINAL]
    english = [t for t in mt + human if 40 <= len(t) <= 300]
    src = {p: mlqe_sources(data, p) for p in ("ru", "ne", "si", "ro", "et")}
    out: dict[str, list[tuple[str, tuple[int, int]]]] = {"repetition": [], "repetition (Cyrillic)": [],
                                                          "untranslated run": [], "untranslated sentence": [],
                                                          "unk token": []}
    while min(len(v) for v in out.values()) < n:
        base = rng.choice(english)
        if len(out["repetition"]) < n and (case := loop(base, rng)):
            out["repetition"].append(case)
        if len(out["repetition (Cyrillic)"]) < n:
            words = [w for w in rng.choice(src["ru"]).split() if w.isalpha()]
            if words:
                unit = " ".join(words[: rng.randint(1, 3)])
                extra = "".join(", " + unit for _ in range(rng.randint(3, 6)))
                text = f"{base} {unit}{extra}."
                start = len(base) + 1 + len(unit)
                out["repetition (Cyrillic)"].append((text, (start, start + len(extra))))
        if len(out["untranslated run"]) < n:
            pair = rng.choice(("ru", "ne", "si"))
            if case := foreign_run(base, rng.choice(src[pair]), rng):
                out["untranslated run"].append(case)
        if len(out["untranslated sentence"]) < n:
            sentence = rng.choice(src[rng.choice(("ro", "et", "ru"))])
            other = rng.choice(english)
            text = f"{base} {sentence} {other}"
            out["untranslated sentence"].append((text, (len(base) + 1, len(base) + 1 + len(sentence))))
        if len(out["unk token"]) < n:
            found = list(WORD.finditer(base))
            if len(found) >= 3:
                m = found[rng.randrange(1, len(found))]
                out["unk token"].append((base[: m.start()] + "<unk>" + base[m.end() :], (m.start(), m.start() + 5)))
    return {k: v[:n] for k, v in out.items()}


def category_report(det: Detector, corpus: Path, data: Path, n: int = 300) -> dict[str, Any]:
    """Per kind of case: the share flagged with a span of its category over the inserted text; per clean split and
    source: the share of human English records with a span of each rule category."""
    report: dict[str, Any] = {"cases": {}, "human": {}}
    for kind, cases in category_cases(corpus, data, n).items():
        category = "repetition" if kind.startswith("repetition") else "untranslated"
        dets = det.detect_batch([t for t, _ in cases])
        hit = [d.flagged and any(s.category == category and s.start < b and a < s.end for s in d.spans)
               for d, (_, (a, b)) in zip(dets, cases)]
        report["cases"][kind] = {"n": len(cases), "category": category, "flagged_with_category": float(np.mean(hit)),
                                 "flagged": float(np.mean([d.flagged for d in dets]))}
    for split in ("val_clean", "test_clean"):
        rows = _rows(corpus / f"{split}.jsonl")
        dets = det.detect_batch([r["text"] for r in rows])
        per: dict[str, dict[str, float]] = {}
        for src in sorted({r["source"] for r in rows}):
            idx = [i for i, r in enumerate(rows) if r["source"] == src]
            per[src] = {"n": len(idx), **{c: float(np.mean([any(s.category == c for s in dets[i].spans) for i in idx]))
                                          for c in ("repetition", "untranslated")},
                        "not_english": float(np.mean([dets[i].status != "scored" for i in idx]))}
        report["human"][split] = per
    return report


def length_report(scores: Sequence[float], words: Sequence[int], garbled: Sequence[bool], human: Sequence[bool],
                  flagged: Sequence[bool]) -> dict[str, float]:
    """How much the record score follows length: Spearman with word count on human English and on garbled MT, and
    flag recall on garbled outputs of at most :data:`SHORT_WORDS` words."""
    s, w, g, h, f = (np.asarray(x) for x in (scores, words, garbled, human, flagged))
    short = g & (w <= SHORT_WORDS)
    return {"spearman_words_human": spearman(list(s[h]), list(w[h])),
            "spearman_words_garbled": spearman(list(s[g]), list(w[g])),
            "short_garbled_n": int(short.sum()), "short_garbled_recall": float(f[short].mean()) if short.any() else float("nan")}


def markdown(report: dict[str, Any]) -> str:
    lines = ["| case | n | flagged | flagged with a span of its category over it |", "|---|---|---|---|"]
    for kind, r in report["cases"].items():
        lines.append(f"| {kind} ({r['category']}) | {r['n']} | {r.get('flagged', float('nan')) * 100:.1f}% | "
                     f"{r['flagged_with_category'] * 100:.1f}% |")
    lines += ["", "| human English | source | n | with a repetition span | with an untranslated span | not English |",
              "|---|---|---|---|---|---|"]
    for split, per in report["human"].items():
        for src, r in per.items():
            lines.append(f"| {split} | {src} | {r['n']} | {r['repetition'] * 100:.2f}% | {r['untranslated'] * 100:.2f}% "
                         f"| {r['not_english'] * 100:.2f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.categories", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("models/mtdetect-minilm-shape"))
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--n", type=int, default=300, help="cases of each kind (default 300)")
    ap.add_argument("--json", type=Path, help="also write the report as JSON")
    args = ap.parse_args(argv)
    report = category_report(Detector.load(args.model), args.corpus, args.data, args.n)
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print("", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
