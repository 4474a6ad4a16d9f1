"""Flag and span rates on clean human English (test_clean by default), per source, for one or more model folders.

    python -m benchmarks.clean_sources models/mtdetect-minilm-shape [OTHER_MODEL ...] [--split val_clean]
        [--n 500] [--accurate]

test_clean is never used for any choice (thresholds come from the validation sets and val_clean), so these rates
are an independent check of how often fluent human English is flagged, broken down by where the text comes from.
``--n`` scores a fixed sample (``corpus.records.read_records(path, n)``, the sample ``benchmarks.run --n`` takes
of val_clean); one line per operating point of each model (default, recall, ...); ``--accurate`` scores each model
in its accurate mode as well (one more line per model).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from corpus.records import read_records
from detector import Detector, RawScores


def rates(det: Detector, rows: list[dict], raws: list[RawScores] | None = None) -> str:
    """One line: pooled flag and span rates, then flagged/records per source (``raws``: the rows' raw scores, to
    decide again at other settings without re-scoring)."""
    if raws is None:
        raws = det.score_raw([r["text"] for r in rows], batch_size=64)
    res = [det.decide(x) for x in raws]
    by: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r, d in zip(rows, res):
        b = by[r["source"]]
        b[0] += 1
        b[1] += d.flagged
        b[2] += bool(d.spans)
    n, fl, sp = (sum(v[i] for v in by.values()) for i in range(3))
    mode = " --accurate" if det.accurate else f" ({det.operating_point or 'custom'} point)"
    return (f"{det.config.name} {det.config.version}{mode}: n={n} flagged={fl / n:.2%} with span={sp / n:.2%} | "
            + ", ".join(f"{k} {v[1]}/{v[0]}={v[1] / v[0]:.1%}" for k, v in sorted(by.items())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.clean_sources", description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="model folders")
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--split", choices=["test_clean", "val_clean"], default="test_clean")
    ap.add_argument("--n", type=int, default=0, help="a fixed sample of this many records (default: all)")
    ap.add_argument("--accurate", action="store_true", help="also score each model in its accurate mode")
    args = ap.parse_args(argv)
    rows = read_records(args.corpus / f"{args.split}.jsonl", args.n)
    for path in args.models:
        det = Detector.load(path)
        raws = det.score_raw([r["text"] for r in rows], batch_size=64)
        for point in det.config.operating_point_names:  # default, then the model's other operating points
            print(rates(det.with_settings(det.config.operating_point(point)), rows, raws), flush=True)
        if args.accurate:
            print(rates(Detector.load(path, accurate=True), rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
