"""Flag and span rates on clean human English (test_clean), per source, for one or more model folders.

    python -m benchmarks.clean_sources models/mtdetect-minilm-shape [OTHER_MODEL ...]

test_clean is never used for any choice (thresholds come from val_news and val_clean), so these rates are an
independent check of how often fluent human English is flagged, broken down by where the text comes from.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from detector import Detector
from training.records import read_records


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    rows = read_records(Path("build/corpus/test_clean.jsonl"))
    for path in args:
        det = Detector.load(path)
        res = det.detect_batch([r["text"] for r in rows], batch_size=64)
        by: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for r, d in zip(rows, res):
            b = by[r["source"]]
            b[0] += 1
            b[1] += d.flagged
            b[2] += bool(d.spans)
        n, fl, sp = (sum(v[i] for v in by.values()) for i in range(3))
        print(f"{det.config.name} {det.config.version}: n={n} flagged={fl / n:.2%} with span={sp / n:.2%} | "
              + ", ".join(f"{k} {v[1]}/{v[0]}={v[1] / v[0]:.1%}" for k, v in sorted(by.items())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
