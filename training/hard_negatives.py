"""Mine hard negatives: clean human English of the training split that a model scores high (issue #11, item 5).

    python -m training.hard_negatives --model models/mtdetect-minilm-shape --corpus build/corpus \\
        --out build/hard_negatives/mined.jsonl

Up to ``--per-source`` training records of each clean English source (seed ``--seed``) are scored with the public
API (``Detector.detect_batch``, the model's default mode); the ``--top`` share of each source with the highest
scores is written as JSON lines ``{"id", "source", "score"}``, highest first. A training config names the file as
``hard_negatives`` and draws ``per_epoch.hard_negative`` of them each epoch (``training.train.load_pools``): long
sentences, quotations, abbreviations, lists and names that the model mistook for garbled MT, taught as clean.
Only the training split is read: validation and test clean English stay unseen.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from corpus.records import CLEAN_SOURCES, read_records
from detector import Detector


def log(msg: str) -> None:
    print(f"[hard_negatives {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def mine(det: Detector, records: list[dict], per_source: int, top: float, seed: int,
         batch_size: int = 64) -> list[dict]:
    """The ``top`` share of each clean source's sampled records by score, highest first within each source."""
    rng = random.Random(seed)
    out: list[dict] = []
    for src in CLEAN_SOURCES:
        rows = [r for r in records if r["source"] == src and r["label"] == "clean"]
        rng.shuffle(rows)
        rows = rows[:per_source]
        if not rows:
            continue
        scores = [float(d.score or 0.0) for d in det.detect_batch([r["text"] for r in rows], batch_size=batch_size)]
        ranked = sorted(zip(scores, rows), key=lambda x: (-x[0], x[1]["id"]))
        keep = ranked[: max(1, round(top * len(ranked)))]
        log(f"{src}: {len(rows)} scored, {len(keep)} kept (score >= {keep[-1][0]:.3f}; "
            f"{sum(s >= det.threshold for s, _ in ranked)} flagged at the model's threshold)")
        out += [{"id": r["id"], "source": src, "score": round(s, 4)} for s, r in keep]
    return out


def read_ids(path: Path) -> set[str]:
    """Record ids of a mined file."""
    with path.open(encoding="utf-8") as f:
        return {json.loads(line)["id"] for line in f if line.strip()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.hard_negatives", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("models/mtdetect-minilm-shape"))
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("build/hard_negatives/mined.jsonl"))
    ap.add_argument("--per-source", type=int, default=2500, help="training records scored per clean source")
    ap.add_argument("--top", type=float, default=0.2, help="share of each source's scored records kept")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if not 0 < args.top <= 1 or args.per_source < 1:
        ap.error("--top must be in (0, 1] and --per-source at least 1")
    t0 = time.time()
    det = Detector.load(args.model, threads=args.threads)
    rows = mine(det, read_records(args.corpus / "train.jsonl"), args.per_source, args.top, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    log(f"wrote {len(rows)} hard negatives to {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
