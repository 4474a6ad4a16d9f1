"""Scaling of ``mtdetect score-corpus``: the local engine and the Ray engine with 1 and 2 workers on this machine,
records/s and per-core efficiency, written into docs/scale.md (between the markers) and docs/scale.json.

    python -m benchmarks.scale [--records 2000] [--shards 4]

Each run is a fresh ``mtdetect score-corpus`` process on the same generated corpus of news-like sentences (about 25
words each), into an empty output folder, so model loading and (for Ray) the runtime's start-up are included; the
per-core rate below is therefore a floor for long jobs, where start-up is paid once.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARK_START, MARK_END = "<!-- scale:start -->", "<!-- scale:end -->"
WORDS = ("the committee said on Tuesday that the new plan would cost more than expected and that work on the first "
         "line of the railway will start in spring after the council approved the budget").split()


def corpus(folder: Path, records: int, shards: int) -> None:
    rng = random.Random(0)
    folder.mkdir(parents=True)
    per = records // shards
    for k in range(shards):
        with open(folder / f"shard{k:03d}.jsonl", "w", encoding="utf-8") as f:
            for i in range(per):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(18, 32))).capitalize() + "."
                f.write(json.dumps({"id": f"{k}-{i}", "text": text}) + "\n")


def run(engine: str, workers: int, src: Path, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "detector", "score-corpus", str(src), str(out), "--engine", engine]
    cmd += ["--workers", str(workers)] if engine == "ray" else ["--threads", str(workers)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    n = sum(int(x) for x in re.findall(r": (\d+) records,", r.stderr.split("shard(s) scored")[0]))
    return {"engine": engine, "workers": workers, "records": n, "wall_s": round(wall, 1), "exit": r.returncode,
            "records_per_s": round(n / wall, 1), "error": r.stderr.strip().splitlines()[-1] if r.returncode else ""}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("docs/scale.md"))
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        corpus(src, args.records, args.shards)
        for engine, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
            out = Path(tmp) / f"out-{engine}-{workers}"
            rows.append(run(engine, workers, src, out))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            shutil.rmtree(out, ignore_errors=True)
    base = next((r["records_per_s"] for r in rows if r["engine"] == "local" and r["workers"] == 1), 0) or 1
    for r in rows:
        cores = r["workers"]
        r["speedup_vs_local_1"] = round(r["records_per_s"] / base, 2)
        r["per_core_efficiency"] = round(r["records_per_s"] / base / cores, 2)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    args.out.with_suffix(".json").write_text(json.dumps({"date": when, "cores": os.cpu_count(), "rows": rows},
                                                        indent=1) + "\n")
    lines = [MARK_START, "", f"Written by `python -m benchmarks.scale --records {args.records} --shards {args.shards}` "
             f"on {when}, on a machine with {os.cpu_count()} CPU cores (shared, so figures are noisy).", "",
             "| engine | workers (local: torch threads) | records | wall s (start-up included) | records/s | "
             "vs local 1 | per-core efficiency | exit |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['engine']} | {r['workers']} | {r['records']} | {r['wall_s']} | {r['records_per_s']} | "
              f"{r['speedup_vs_local_1']}x | {r['per_core_efficiency']} | {r['exit']} |" for r in rows]
    lines += ["", MARK_END]
    old = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Scale\n\n" + MARK_START + MARK_END
    head, rest = old.split(MARK_START, 1)
    args.out.write_text(head + "\n".join(lines) + rest.split(MARK_END, 1)[1], encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
