"""Time and memory on hostile input shapes, and the flag rate on text that is not English; writes
docs/robustness.md (the tables between the markers) and docs/robustness.json.

    python -m benchmarks.robustness [--data ../shared/data] [--kb 32]

Each shape is scored at two sizes by ``mtdetect score --format jsonl`` in a fresh process with the shipped model;
seconds per MB (wall time less the same command on a one-line input, i.e. less start-up and model loading) and the
process's peak RSS are reported, so linear time shows as a flat seconds-per-MB column. Non-English text: the source
sides of MLQE-PE dev (ro, ru, et, si, ne) and of Bio-MQM (de, es, fr, pt, ru, zh), which are human-written text in
those languages; a record counts as flagged when the CLI flags it.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import glob
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHAPES: dict[str, tuple[str, Callable[[int], bytes]]] = {
    "news prose (baseline)": ("plain", lambda n: _prose(n)),
    "many one-word lines": ("plain", lambda n: (b"word\n" * (n // 5 + 1))[:n]),
    "one line, no punctuation": ("plain", lambda n: (b"and the river runs " * (n // 19 + 1))[:n]),
    "one character repeated": ("plain", lambda n: b"x" * n),
    "spaces, no newline": ("plain", lambda n: b"Start. " + b" " * n + b"End."),
    "dots": ("plain", lambda n: b"." * n),
    "JSONL, short records": ("jsonl", lambda n: _jsonl(n)),
    "JSONL, deep nesting (skipped lines)": ("jsonl", lambda n: (b'{"text": "ok."}\n' + b"[" * 4000 + b"\n") * (n // 4018 + 1)),
}
MARK_START, MARK_END = "<!-- robustness:start -->", "<!-- robustness:end -->"


def _prose(n: int) -> bytes:
    words = ("the committee said on Tuesday that the new plan would cost more than expected and that work on the "
             "first line will start in spring").split()
    rng = random.Random(0)
    out = []
    size = 0
    while size < n:
        s = " ".join(rng.choice(words) for _ in range(rng.randint(8, 30))).capitalize() + "."
        out.append(s)
        size += len(s) + 1
    return ("\n".join(out)).encode()[:n]


def _jsonl(n: int) -> bytes:
    lines = []
    size = 0
    i = 0
    while size < n:
        line = json.dumps({"id": i, "text": f"Record {i} says the plan will cost more."}) + "\n"
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines).encode()


def run_cli(path: Path, kind: str) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one ``mtdetect score`` process."""
    cmd = [sys.executable, "-m", "detector", "score", "--format", "jsonl", "--quiet", "--skip-bad-lines",
           "--threads", "2", "--jsonl" if kind == "jsonl" else "--plain", str(path)]
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        p = subprocess.Popen(cmd, stdout=null, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
    return time.perf_counter() - t, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def shapes(kb: int, tmp: Path) -> list[dict[str, Any]]:
    base_file = tmp / "one.txt"
    base_file.write_bytes(b"One line.\n")
    base = min(run_cli(base_file, "plain")[0] for _ in range(2))
    rows = []
    for name, (kind, make) in SHAPES.items():
        for size in (kb * 1024, 2 * kb * 1024):
            f = tmp / "shape.in"
            data = make(size)
            f.write_bytes(data)
            wall, rss, code = run_cli(f, kind)
            mb = len(data) / 1e6
            rows.append({"shape": name, "bytes": len(data), "seconds": round(wall, 2),
                         "s_per_mb": round(max(0.0, wall - base) / mb, 1), "peak_rss_mb": round(rss), "exit": code})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def non_english(data: Path, per_lang: int) -> dict[str, Any]:
    """Source-side texts of MLQE-PE dev and Bio-MQM, scored through the library's CLI path (JSONL)."""
    texts: dict[str, list[str]] = {}
    csv.field_size_limit(1 << 30)
    for tgz in sorted(glob.glob(str(data / "mlqe-pe/direct-assessments/dev/*-en-dev.tar.gz"))):
        lang = Path(tgz).name[:2]
        with tarfile.open(tgz) as tf:
            member = next(m for m in tf.getmembers() if m.name.endswith(".df.short.tsv"))
            f = tf.extractfile(member)
            assert f is not None
            rows = csv.DictReader(f.read().decode("utf-8").splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
            texts.setdefault(lang, []).extend(r["original"] for r in rows)
    for d in sorted(glob.glob(str(data / "bio-mqm/round_two/*2en"))):
        lang = Path(d).name[:2]
        key = f"{lang} (bio)" if lang in texts else lang
        seen: set[str] = set()
        for fn in sorted(glob.glob(d + "/*.json"))[:2]:
            for row in json.loads(Path(fn).read_text(encoding="utf-8")):
                s = " ".join(row["source"]) if isinstance(row["source"], list) else row["source"]
                if s.strip() and s not in seen:
                    seen.add(s)
                    texts.setdefault(key, []).append(s)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lang, items in sorted(texts.items()):
            sample = random.Random(0).sample(items, min(per_lang, len(items)))
            path = Path(tmp) / f"{lang}.jsonl"
            path.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                                 for i, t in enumerate(sample)), encoding="utf-8")
            r = subprocess.run([sys.executable, "-m", "detector", "score", "--format", "jsonl", "--quiet", str(path)],
                               capture_output=True, text=True)
            recs = [json.loads(x) for x in r.stdout.splitlines()]
            out[lang] = {"n": len(recs), "flagged": sum(x["flagged"] for x in recs),
                         "not_english": sum(x["language"] != "en" for x in recs)}
            print(lang, out[lang], file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--kb", type=int, default=32, help="the smaller size of each shape, in KB (the larger is twice)")
    ap.add_argument("--per-lang", type=int, default=300, help="non-English texts scored per language")
    ap.add_argument("--out", type=Path, default=Path("docs/robustness.md"))
    args = ap.parse_args(argv)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        rows = shapes(args.kb, Path(tmp))
    langs = non_english(args.data, args.per_lang)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    args.out.with_suffix(".json").write_text(json.dumps({"date": when, "cores": os.cpu_count(), "shapes": rows,
                                                          "non_english": langs}, indent=1) + "\n")
    lines = [MARK_START, "",
             f"Written by `python -m benchmarks.robustness --kb {args.kb}` on {when}, {os.cpu_count()} CPU cores, "
             f"in {round((time.time() - t0) / 60)} min.", "",
             "### Time and memory by input shape (`mtdetect score --format jsonl`, shipped model)", "",
             "| shape | bytes | seconds | s/MB (less start-up) | peak RSS (MB) | exit |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['shape']} | {r['bytes']} | {r['seconds']} | {r['s_per_mb']} | {r['peak_rss_mb']} | {r['exit']} |"
              for r in rows]
    total = sum(v["n"] for v in langs.values())
    flagged = sum(v["flagged"] for v in langs.values())
    lines += ["", "### Text that is not English (source sides of MLQE-PE dev and Bio-MQM)", "",
              f"{flagged} of {total} records flagged ({100 * flagged / max(1, total):.2f}%).", "",
              "| language | records | flagged | marked not English |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {v['flagged']} ({100 * v['flagged'] / max(1, v['n']):.1f}%) | "
              f"{v['not_english']} ({100 * v['not_english'] / max(1, v['n']):.1f}%) |" for k, v in langs.items()]
    lines += ["", MARK_END]
    block = "\n".join(lines)
    old = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Robustness\n\n" + MARK_START + MARK_END
    head, rest = old.split(MARK_START, 1)
    args.out.write_text(head + block + rest.split(MARK_END, 1)[1], encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
