"""Coverage-guided fuzzing (atheris) of the JSON line reader, the output writers (JSONL and the HTML report) and the
corpus shard readers (gzip, Parquet). Not run in CI (issue #35's fuzzing round).

    pip install atheris
    mkdir -p build/fuzz2/corpus && cd build/fuzz2
    python ../../tests/fuzz/fuzz_outputs.py -max_total_time=600 -rss_limit_mb=4096 -artifact_prefix=findings/ corpus

The input's first byte picks a target; the rest is its data. A target fails (and atheris keeps the input) on any
exception other than the documented ones, or when an invariant breaks: a JSON line that parses must give strict JSON
back (no NaN or Infinity, valid UTF-8), the HTML page must encode as UTF-8 and hold no tag from the input, a shard
reader either yields lines/rows or raises ShardDamaged naming the shard.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from detector._faces.corpus_jobs import ShardDamaged, _jsonl_lines, _parquet_batches
    from detector._faces.formatting import json_line, jsonl_line
    from detector._faces.reading import JsonLineError, parse_json_line
    from detector._faces.report import ReportItem, render_page
    from detector._types import Detection, Passage, Span

TMP = Path(tempfile.mkdtemp(prefix="fuzz-shards-"))


def _no_constant(name: str) -> None:
    raise AssertionError(f"the writer produced {name}")


def json_target(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    if data[:1] == b"s":  # a lone surrogate as well (JSON escapes can make one)
        text = text.replace("s", "\ud800", 1)
    try:
        obj = parse_json_line(text)
    except JsonLineError:
        return
    out = json_line({"id": obj.get("id") if isinstance(obj, dict) else obj, "x": obj})
    out.encode("utf-8")  # always valid UTF-8
    json.loads(out, parse_constant=_no_constant)  # always strict JSON


def html_target(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(200) if fdp.ConsumeBool() else fdp.ConsumeUnicode(200)
    rid = fdp.ConsumeUnicode(40)
    n = len(text)
    spans = []
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        a = fdp.ConsumeIntInRange(0, n)
        b = fdp.ConsumeIntInRange(a, n)
        if b > a:
            spans.append(Span(a, b, text[a:b], fdp.ConsumeProbability(), fdp.PickValueInList(
                ["fluency", "accuracy", "repetition", "untranslated"])))
    passages = (Passage(0, n, text, 0.5, True, fdp.PickValueInList(["en", "fr", "<b>x</b>"])),) if n else ()
    d = Detection(fdp.ConsumeProbability(), fdp.ConsumeBool(), tuple(spans), passages,
                  status=fdp.PickValueInList(["scored", "not_english"]))
    page = render_page([ReportItem(rid, text, d)], {"name": "<m>", "version": "1"})
    page.encode("utf-8")
    jsonl_line(rid, d).encode("utf-8")
    for tag in ("<script", "<img", "<b>x</b>"):
        if tag in text or tag in rid:
            assert tag not in page.replace("&lt;", "\x00"), tag


def shard_target(data: bytes, suffix: str) -> None:
    path = TMP / f"s{suffix}"
    path.write_bytes(data)
    try:
        if suffix == ".parquet":
            for _ in _parquet_batches(path, 64):
                pass
        else:
            for _ in _jsonl_lines(path):
                pass
    except ShardDamaged as e:
        assert path.name in str(e)


def TestOneInput(data: bytes) -> None:  # noqa: N802 - atheris' name
    if not data:
        return
    kind, rest = data[0] % 4, data[1:]
    if kind == 0:
        json_target(rest)
    elif kind == 1:
        html_target(rest)
    elif kind == 2:
        shard_target(rest, ".jsonl.gz")
    else:
        shard_target(rest, ".parquet")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
