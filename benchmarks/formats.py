"""Reading overhead of the structured input formats (issue #36): the same texts scored from each format and from
its plain baseline, end to end, back to back in one run; writes docs/formats.md.

    python -m benchmarks.formats --corpus build/corpus [--n 600] [--repeats 3]

Record formats (one record per unit) against JSON Lines of the same texts: SRT and WebVTT (each cue one val_news
sentence wrapped over two lines with a tag, as MT subtitles often come), PO (each sentence a ``msgstr``, every third
one over two lines) and XLIFF 1.2 (each a ``<target>``, with an inline ``<g>`` tag). Document formats (one record of
the file's prose) against the plain-text document of the same paragraphs (five sentences each): a web page (the
paragraphs in ``<p>`` elements, with a menu, scripts and a footer) and a Markdown file (with a heading and a code
block). Overhead = (format wall time - baseline wall time) / baseline wall time, the median of ``--repeats`` runs each
(fresh processes: reading, scoring, writing). Because whole runs vary by more than the reading costs, the reading
itself is also timed in this process (the format's reader on the file, median of the repeats) against scoring the
same texts once; each reader is checked to give exactly the baseline's texts.
"""

from __future__ import annotations

import argparse
import datetime
import html
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

from detector import Detector
from detector.documents import read_html, read_markdown
from detector.localisation import read_po, read_xliff
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
    po_rows = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"', ""]
    xlf_rows = ['<?xml version="1.0" encoding="UTF-8"?>',
                '<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">',
                '<file source-language="de" target-language="en" datatype="plaintext" original="x"><body>']
    for i, t in enumerate(texts, 1):
        a, b = _wrap(t)
        start, end = 3.0 * i, 3.0 * i + 2.5
        srt_rows += [str(i), f"{_stamp(start, ',')} --> {_stamp(end, ',')}", f"<i>{a}</i>", b, ""]
        vtt_rows += [str(i), f"{_stamp(start, '.')} --> {_stamp(end, '.')}", f"<i>{a}</i>", b, ""]
        text = f"{a} {b}".strip()
        jsonl_rows.append(json.dumps({"id": i, "text": text}))
        quoted = ([json.dumps(a + " ", ensure_ascii=False), json.dumps(b, ensure_ascii=False)] if i % 3 == 0 and b
                  else [json.dumps(text, ensure_ascii=False)])
        po_rows += [f"#: source.c:{i}", f'msgid "source {i}"', "msgstr " + quoted[0], *quoted[1:], ""]
        first, _, rest = text.partition(" ")
        xlf_rows += [f'<trans-unit id="u{i}"><source>source {i}</source>',
                     f'<target><g id="1">{html.escape(first)}</g> {html.escape(rest)}</target></trans-unit>']
    xlf_rows += ["</body></file></xliff>"]
    paras = [" ".join(texts[k : k + 5]) for k in range(0, len(texts), 5)]
    out = {k: folder / f"film.{k}" for k in ("jsonl", "srt", "vtt", "po", "xliff")}
    out.update({"txt": folder / "page.txt", "html": folder / "page.html", "md": folder / "page.md"})
    out["srt"].write_text("\n".join(srt_rows) + "\n", encoding="utf-8")
    out["vtt"].write_text("\n".join(vtt_rows) + "\n", encoding="utf-8")
    out["jsonl"].write_text("\n".join(jsonl_rows) + "\n", encoding="utf-8")
    out["po"].write_text("\n".join(po_rows) + "\n", encoding="utf-8")
    out["xliff"].write_text("\n".join(xlf_rows) + "\n", encoding="utf-8")
    out["txt"].write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    out["html"].write_text(
        "<!DOCTYPE html><html><head><title>News</title><script>var menu = ['Home', 'World'];</script>"
        "<style>p { margin: 0 }</style></head><body><nav><ul><li><a href='/'>Home</a></li><li><a href='/w'>World</a>"
        "</li></ul></nav><article>\n" + "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
        + "\n</article><footer><p>Copyright 2024 Example News. All rights reserved.</p></footer></body></html>\n",
        encoding="utf-8")
    out["md"].write_text("\n\n".join(paras[:1] + ["```\npip install mtdetect\n```"] + paras[1:]) + "\n",
                         encoding="utf-8")
    return out


def read(kind: str, path: Path) -> list[str]:
    """The texts the format's reader gives for a file (the readers of detector.subtitles, detector.localisation and
    detector.documents)."""
    raw = path.read_text(encoding="utf-8")
    if kind in ("srt", "vtt"):
        return [t for _, t, _ in read_subtitles(raw, kind, kind)]
    if kind == "po":
        return [t for _, t, _ in read_po(raw, kind)]
    if kind == "xliff":
        return [t for _, t, _ in read_xliff(path.read_bytes(), kind)]
    if kind == "html":
        return [read_html(raw, kind)[0]]
    return [read_markdown(raw, kind)[0]]


RECORDS = ("srt", "vtt", "po", "xliff")  # against jsonl
DOCUMENTS = ("html", "md")  # against txt


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
    kinds = ("jsonl", *RECORDS, "txt", *DOCUMENTS)
    walls: dict[str, list[float]] = {k: [] for k in kinds}
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
        score_records = time.perf_counter() - t0
        document = paths["txt"].read_text(encoding="utf-8").strip()
        t0 = time.perf_counter()
        det.detect(document)
        score_document = time.perf_counter() - t0
        reading: dict[str, float] = {}
        for kind in (*RECORDS, *DOCUMENTS):
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                got = read(kind, paths[kind])
                times.append(time.perf_counter() - t0)
            assert got == (texts if kind in RECORDS else [document]), f"{kind}: the reader changed the texts"
            reading[kind] = statistics.median(times)
    med = {k: statistics.median(v) for k, v in walls.items()}
    lines = ["# Input formats: reading overhead", "",
             f"Written by `python -m benchmarks.formats --corpus {args.corpus} --n {args.n} --repeats {args.repeats}` "
             f"on {datetime.datetime.now():%Y-%m-%d %H:%M} (2 cores, shared machine). {len(texts)} val_news sentences: "
             "one per unit in SRT and WebVTT (over two lines with an `<i>` tag), PO (every third over two lines) and "
             "XLIFF (with a `<g>` tag), against JSON Lines of the same texts; in paragraphs of five as a web page (with "
             "a menu, scripts and a footer) and a Markdown file (with a code block), against the plain-text document "
             "of the same paragraphs. `mtdetect score FILE --format jsonl --threads 2`, fresh processes, median wall "
             "time of the repeats, back to back.", "",
             "| input | baseline | wall s (median) | runs | overhead vs baseline | reading in process | of scoring |",
             "|---|---|---|---|---|---|---|"]
    for k in kinds:
        base = "jsonl" if k in RECORDS else "txt" if k in DOCUMENTS else ""
        over = f"{(med[k] - med[base]) / med[base]:+.1%}" if base else "-"
        score_s = score_records if k in RECORDS else score_document
        read_cell = f"{reading[k] * 1000:.0f} ms | {reading[k] / score_s:.1%}" if base else "- | -"
        lines.append(f"| {k} | {base or '-'} | {med[k]:.2f} | {', '.join(f'{w:.2f}' for w in walls[k])} | {over} | "
                     f"{read_cell} |")
    lines += ["", f"In one process: scoring the {len(texts)} texts as records took {score_records:.2f} s, as one "
              f"document {score_document:.2f} s; each reader gave exactly the baseline's texts.", "",
              "The issue's target: reading overhead at most 10% of scoring time on each format.", ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
