"""The second reader's output for a fixed sample of corpus records, cached under ``build/`` (issue #31).

    python -m training.lm_cache --corpus build/corpus --out build/lm_cache

The sample (:func:`sample`, seed 7): for fitting the fusion (``train``), up to a fixed count per source and label of
the training split (WMT20/21 news, Bio-MQM, MLQE-PE, synthetic artifacts, every clean English source); for choosing
and reporting, every record of val_news, val_wmt22 and val_bio, 2,000 of val_ted and of val_mlqe, up to 600 records
of each val_clean source and of each test_clean source. Every passage of a record (``split_passages``) is read on its
own by :class:`detector._reader.LmReader`, exactly as the runtime reads it; one JSON line per record
``{"id": ..., "toks": [[start, end, surprisal, entropy, top_logp, rank], ...]}`` (character offsets into the record's
text) goes to ``OUT/<group>.jsonl`` as it is computed, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from corpus.records import read_resumable
from detector.network import LmReader, split_passages

#: (split file, source, label) -> records drawn for fitting; a label of None takes any non-ambiguous label
TRAIN_DRAW: tuple[tuple[str, str, str | None, int], ...] = (
    ("train", "wmt20_news", "strict", 1000), ("train", "wmt20_news", "broad", 1000),
    ("train", "wmt20_news", "clean", 1000),
    ("train", "wmt21_news", "strict", 800), ("train", "wmt21_news", "broad", 800), ("train", "wmt21_news", "clean", 800),
    ("train", "bio_mqm", "strict", 200), ("train", "bio_mqm", "broad", 900), ("train", "bio_mqm", "clean", 900),
    ("train", "mlqe_pe", "broad", 2000), ("train", "mlqe_pe", "clean", 2000),
    ("train", "abc", None, 1200), ("train", "brown", None, 1200), ("train", "gum", None, 1200),
    ("train", "newstest_en", None, 720), ("train", "sotu", None, 1000), ("train", "wmt21_ref_a", None, 1200),
    ("synth_train", "synthetic", "strict", 1000), ("synth_train", "synthetic", "clean", 500),
)
#: validation groups: (split file, records drawn; -1 = all), or per source for the clean splits
VAL_DRAW = (("val_news", -1), ("val_wmt22", -1), ("val_bio", -1), ("val_ted", 2000), ("val_mlqe", 2000))
CLEAN_PER_SOURCE = 600
GROUPS = ("val_news", "val_wmt22", "val_bio", "val_ted", "val_mlqe", "val_clean", "test_clean", "train")


def log(msg: str) -> None:
    print(f"[lm_cache {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def sample(corpus: Path, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """The fixed sample, per group (:data:`GROUPS`), each in a fixed shuffled order."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {}
    cache: dict[str, list[dict[str, Any]]] = {}

    def rows(split: str) -> list[dict[str, Any]]:
        if split not in cache:
            cache[split] = _rows(corpus / f"{split}.jsonl")
        return cache[split]

    def take(pool: list[dict[str, Any]], n: int, group: str) -> None:
        pool = list(pool)
        rng.shuffle(pool)
        out.setdefault(group, []).extend(pool if n < 0 else pool[:n])

    for split, n in VAL_DRAW:
        take(rows(split), n, split)
    for split in ("val_clean", "test_clean"):
        for src in sorted({r["source"] for r in rows(split)}):
            take([r for r in rows(split) if r["source"] == src], CLEAN_PER_SOURCE, split)
    for split, src, label, n in TRAIN_DRAW:
        take([r for r in rows(split) if r["source"] == src
              and (r["label"] == label if label else r["label"] != "ambiguous")], n, "train")
    return out


def record_tokens(reader: LmReader, texts: list[str]) -> list[np.ndarray]:
    """(M, 6) per text: every passage read on its own, offsets moved into the text."""
    items = [(k, p.start, p.end) for k, t in enumerate(texts) for p in split_passages(t)]
    readings = reader.read([texts[k][s:e] for k, s, e in items])
    parts: list[list[np.ndarray]] = [[] for _ in texts]
    for (k, s, _), (offs, stats) in zip(items, readings):
        parts[k].append(np.hstack([offs + s, stats]))
    return [np.vstack(p) if p else np.zeros((0, 6)) for p in parts]


def read_cache(path: Path) -> dict[str, np.ndarray]:
    """{record id: (M, 6) array}; a line cut off by an interrupted run is skipped."""
    return {k: np.array(v, dtype=np.float64).reshape(-1, 6) for k, v in read_resumable(path).items()}


def _chunks(rows: list[dict[str, Any]], n: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), n):
        yield rows[i : i + n]


def fill(reader: LmReader, rows: list[dict[str, Any]], path: Path, chunk: int = 64) -> None:
    have = set(read_cache(path))
    todo = [r for r in rows if r["id"] not in have]
    log(f"{path.name}: {len(rows) - len(todo)} cached, {len(todo)} to read")
    t0, done = time.time(), 0
    with path.open("a", encoding="utf-8") as f:
        for part in _chunks(todo, chunk):
            for r, toks in zip(part, record_tokens(reader, [r["text"] for r in part])):
                rows_out = [[int(a), int(b), round(float(c), 4), round(float(d), 4), round(float(e), 4), int(g)]
                            for a, b, c, d, e, g in toks.tolist()]
                f.write(json.dumps({"id": r["id"], "toks": rows_out}) + "\n")
            f.flush()
            done += len(part)
            if done % 1024 < chunk:
                log(f"{path.name}: {done}/{len(todo)} ({done / (time.time() - t0):.1f} records/s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.lm_cache", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("build/lm_cache"))
    ap.add_argument("--reader", type=Path, help="the built reader's folder (default: the reader cache)")
    ap.add_argument("--groups", nargs="*", default=list(GROUPS), choices=GROUPS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    groups = sample(args.corpus)
    with (args.out / "sample.json").open("w", encoding="utf-8") as f:
        json.dump({g: [r["id"] for r in rows] for g, rows in groups.items()}, f)
    reader = LmReader.load(args.reader)
    for g in args.groups:
        fill(reader, groups[g], args.out / f"{g}.jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
