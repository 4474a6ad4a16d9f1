"""Reading overhead of the subtitle formats (issue #36): the same cue texts scored from an SRT file, a WebVTT file
and a JSONL file, end to end, back to back in one run; writes docs/formats.md.

    python -m benchmarks.formats --corpus build/corpus [--n 600] [--repeats 3]

Each cue holds one val_news sentence wrapped over two lines with a tag, as MT subtitles often come; the JSONL file
holds the texts the subtitle readers produce. Overhead = (subtitle wall time - JSONL wall time) / JSONL wall time,
the median of ``--repeats`` runs each (fresh processes: reading, scoring, writing). Because whole runs vary by
more than the reading costs, the reading itself is also timed in this process (:func:`detector.subtitles.
read_subtitles` on the file's text, median of the repeats) against scoring the same texts once
(``Detector.detect_batch``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

from detector import Detector
from detector.subtitles import read_subtitles

from .throughput import run_cli

ROOT = Path(__file__).resolve().parents[1]


def _wrap(text: str) -> tuple[str, str]:
    words = text.split()
    half = max(1, len(words) // 2)
    return " ".join(words[:half]), " ".join(words[half:])


def _stamp(sec: float, sep: str) -> str:
    h, rest = divmod(sec, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h):02d}:{int(m):02d}:{int(s):02d}{sep}{int(round((s % 1) * 1000)):03d}"


def files(texts: list[str], folder: Path) -> dict[str, Path]:
    srt_rows, vtt_rows, jsonl_rows = [], ["WEBVTT", ""], []
    for i, t in enumerate(texts, 1):
        a, b = _wrap(t)
        start, end = 3.0 * i, 3.0 * i + 2.5
        srt_rows += [str(i), f"{_stamp(start, ',')} --> {_stamp(end, ',')}", f"<i>{a}</i>", b, ""]
        vtt_rows += [str(i), f"{_stamp(start, '.')} --> {_stamp(end, '.')}", f"<i>{a}</i>", b, ""]
        jsonl_rows.append(json.dumps({"id": i, "text": f"{a} {b}".strip()}))
    out = {"srt": folder / "film.srt", "vtt": folder / "film.vtt", "jsonl": folder / "film.jsonl"}
    out["srt"].write_text("\n".join(srt_rows) + "\n", encoding="utf-8")
    out["vtt"].write_text("\n".join(vtt_rows) + "\n", encoding="utf-8")
    out["jsonl"].write_text("\n".join(jsonl_rows) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.formats", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--n", type=int, default=600, help="cues (default 600)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "formats.md")
    args = ap.parse_args(argv)
    rows = [json.loads(x) for x in (args.corpus / "val_news.jsonl").open(encoding="utf-8")]
    texts = sorted({r["text"] for r in rows})
    random.Random(5).shuffle(texts)
    texts = texts[: args.n]
    common = ["--format", "jsonl", "--threads", "2", "--quiet"]
    walls: dict[str, list[float]] = {"jsonl": [], "srt": [], "vtt": []}
    with tempfile.TemporaryDirectory() as tmp:
        paths = files(texts, Path(tmp))
        for _ in range(args.repeats):
            for kind in walls:
                walls[kind].append(run_cli([str(paths[kind]), *common])["wall_s"])
                print(f"{kind}: {walls[kind][-1]:.2f} s", file=sys.stderr, flush=True)
        import time

        det = Detector.load(threads=2)
        t0 = time.perf_counter()
        det.detect_batch(texts)
        score_s = time.perf_counter() - t0
        reading: dict[str, float] = {}
        for kind in ("srt", "vtt"):
            raw = paths[kind].read_text(encoding="utf-8")
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                got = list(read_subtitles(raw, kind, kind))
                times.append(time.perf_counter() - t0)
            assert [t for _, t, _ in got] == [json.loads(x)["text"] for x in paths["jsonl"].read_text().splitlines()]
            reading[kind] = statistics.median(times)
    med = {k: statistics.median(v) for k, v in walls.items()}
    lines = ["# Input formats: reading overhead", "",
             f"Written by `python -m benchmarks.formats --corpus {args.corpus} --n {args.n} --repeats {args.repeats}` "
             f"on {datetime.datetime.now():%Y-%m-%d %H:%M} (2 cores, shared machine). {len(texts)} cues, each a val_news "
             "sentence over two lines with an `<i>` tag; the JSONL file holds the same texts. `mtdetect score FILE "
             "--format jsonl --threads 2`, fresh processes, median wall time of the repeats, back to back.", "",
             "| input | wall s (median) | runs | overhead vs JSONL |", "|---|---|---|---|"]
    for k in walls:
        over = (med[k] - med["jsonl"]) / med["jsonl"]
        lines.append(f"| {k} | {med[k]:.2f} | {', '.join(f'{w:.2f}' for w in walls[k])} | "
                     f"{'-' if k == 'jsonl' else f'{over:+.1%}'} |")
    lines += ["", f"In one process: scoring the {len(texts)} texts took {score_s:.2f} s; reading the SRT file "
              f"{reading['srt'] * 1000:.0f} ms ({reading['srt'] / score_s:.1%} of scoring), the WebVTT file "
              f"{reading['vtt'] * 1000:.0f} ms ({reading['vtt'] / score_s:.1%}); the cue texts are exactly the JSONL "
              "file's.", "", "The issue's target: reading overhead at most 10% of scoring time on each format.", ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
