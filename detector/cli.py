"""The ``mtdetect`` command line.

Exit codes: 0 nothing flagged, 1 something flagged (0 with --exit-zero), 2 usage or input error,
3 model error (missing, damaged or unreadable model folder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._io import STREAM_BYTES, InputError, InputRecord, ReadStats, read_jsonl, read_plain, read_plain_blocks, read_tsv
from ._modelfiles import SPAN_SCORES
from ._types import Detection, Passage, Span

EXIT_OK, EXIT_FLAGGED, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3
_RED, _DIM, _RESET = "\033[1;31m", "\033[2m", "\033[0m"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mtdetect",
        description="Find garbled machine-translated passages in English text.",
        epilog="exit codes: 0 nothing flagged, 1 something flagged, 2 usage or input error, 3 model error",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    sc = sub.add_parser("score", help="score texts (files, or stdin with - or no file)")
    sc.add_argument("files", nargs="*", help="input files; '-' or none reads stdin")
    kind = sc.add_mutually_exclusive_group()
    kind.add_argument("--jsonl", action="store_true", help="input is JSON Lines (implied by a .jsonl file name)")
    kind.add_argument("--tsv-column", type=int, metavar="N", help="input is TSV; column N (1-based) holds the text")
    sc.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    sc.add_argument("--format", choices=["pretty", "json", "jsonl", "tsv"],
                    help="output format (default: pretty on a terminal, jsonl otherwise)")
    sc.add_argument("--threshold", type=float, help="passage flag threshold (default: the model's)")
    sc.add_argument("--span-threshold", type=float, help="span threshold (default: the model's)")
    sc.add_argument("--span-gate", type=float,
                    help="report spans only in passages scored at least this; 0: anywhere (default: the model's)")
    sc.add_argument("--span-score", choices=SPAN_SCORES,
                    help="cut spans from P(fluency) or from the error probability 1 - P(ok) (default: the model's)")
    sc.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default 32)")
    sc.add_argument("--model", type=Path, help="model folder (default: the shipped model or $MTDETECT_MODEL)")
    sc.add_argument("--encoding", default="utf-8", help="input encoding (default utf-8)")
    sc.add_argument("--errors", choices=["strict", "replace"], default="strict",
                    help="on undecodable bytes: stop with an error (strict) or replace them")
    sc.add_argument("--skip-bad-lines", action="store_true", help="skip malformed JSONL/TSV lines and report the count")
    sc.add_argument("--exit-zero", action="store_true", help="exit 0 even when something is flagged")
    sc.add_argument("--quiet", "-q", action="store_true", help="no progress or summary on stderr")
    sc.add_argument("--threads", type=int, help="torch CPU threads")
    ev = sub.add_parser("eval", help="quality metrics on canonical records (text, spans, label)")
    ev.add_argument("data", type=Path, help="JSONL with text, spans [{start, end}] and label (strict/broad/clean/...)")
    ev.add_argument("--model", type=Path, help="model folder")
    ev.add_argument("--format", choices=["markdown", "json"], default="markdown")
    ev.add_argument("--bootstrap", type=int, default=200, help="bootstrap rounds for 95%% intervals (0: none)")
    ev.add_argument("--threshold", type=float, help="passage flag threshold (default: the model's)")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--limit", type=int, default=0, help="evaluate the first N records only")
    inf = sub.add_parser("info", help="model name, version, checksum status and thresholds")
    inf.add_argument("--model", type=Path, help="model folder")
    inf.add_argument("--format", choices=["pretty", "json"], default="pretty")
    return ap


def _validate(ap: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    if a.command != "score":
        return
    if a.batch_size < 1:
        ap.error("--batch-size must be at least 1")
    for name in ("threshold", "span_threshold", "span_gate"):
        v = getattr(a, name)
        if v is not None and not 0.0 <= v <= 1.0:
            ap.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    if a.tsv_column is not None and a.tsv_column < 1:
        ap.error("--tsv-column is 1-based and must be at least 1")


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.n = 0
        self.t0 = time.time()

    def update(self, k: int) -> None:
        self.n += k
        if self.enabled:
            rate = self.n / max(1e-9, time.time() - self.t0)
            sys.stderr.write(f"\rmtdetect: {self.n} records ({rate:.1f}/s)")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.n:
            sys.stderr.write("\n")


def _records(a: argparse.Namespace, stats: ReadStats, warn: Any) -> Iterator[InputRecord]:
    files = a.files or ["-"]
    for fname in files:
        if fname == "-":
            f: IO[bytes] = sys.stdin.buffer
            name = "<stdin>"
        else:
            p = Path(fname)
            if not p.exists():
                raise InputError(f"{fname}: no such file")
            if p.is_dir():
                raise InputError(f"{fname}: is a directory")
            f = open(p, "rb")  # noqa: SIM115 - closed below
            name = fname
        try:
            if a.tsv_column is not None:
                yield from read_tsv(f, name, a.encoding, a.errors, a.tsv_column, a.skip_bad_lines, stats, warn)
            elif a.jsonl or name.endswith(".jsonl"):
                yield from read_jsonl(f, name, a.encoding, a.errors, a.text_field, a.skip_bad_lines, stats, warn)
            elif name != "<stdin>" and _streamable(a.encoding) and Path(name).stat().st_size > STREAM_BYTES:
                stats.records += 1
                yield _StreamedRecord(name, read_plain_blocks(f, name, a.encoding, a.errors, STREAM_BYTES))
            else:
                text = read_plain(f, name, a.encoding, a.errors)
                stats.records += 1
                yield InputRecord(name, text)
        finally:
            if f is not sys.stdin.buffer:
                f.close()


def _streamable(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig", "ascii")


class _StreamedRecord(InputRecord):
    """A large plain-text document read block by block."""

    def __init__(self, rid: object, blocks: Iterator[str]) -> None:
        super().__init__(rid, "")
        self.blocks = blocks


def _detect_streamed(det: Any, rec: _StreamedRecord, batch_size: int) -> tuple[str, Detection]:
    """Score block by block and merge. Keeps spans and flagged passages only, so memory stays bounded."""
    offset = 0
    spans: list[Span] = []
    passages: list[Passage] = []
    score = 0.0
    for block in rec.blocks:
        d = det.detect_batch([block], batch_size=batch_size)[0]
        score = max(score, d.score)
        spans += [Span(s.start + offset, s.end + offset, s.text, s.score, s.category) for s in d.spans]
        passages += [Passage(p.start + offset, p.end + offset, p.text, p.score, p.flagged) for p in d.passages
                     if p.flagged or any(s.start < p.end and p.start < s.end for s in d.spans)]
        offset += len(block)
    return "", Detection(score, score >= det.threshold, tuple(spans), tuple(passages))


def _batched(it: Iterator[InputRecord], n: int) -> Iterator[list[InputRecord]]:
    batch: list[InputRecord] = []
    for r in it:
        batch.append(r)
        # a streamed document must be consumed before the reader moves on (and closes its file)
        if len(batch) >= n or isinstance(r, _StreamedRecord):
            yield batch
            batch = []
    if batch:
        yield batch


def _non_latin_share(text: str) -> float:
    """Share of letters outside the Latin script (a cheap 'is this English at all?' check)."""
    letters = [c for c in text[:20000] if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if ord(c) > 0x24F) / len(letters)


def _jsonl_line(rid: Any, d: Detection) -> str:
    return json.dumps(
        {
            "id": rid,
            "score": round(d.score, 6),
            "flagged": d.flagged,
            "spans": [{"start": s.start, "end": s.end, "text": s.text, "score": round(s.score, 6), "category": s.category}
                      for s in d.spans],
        },
        ensure_ascii=False,
    )


def _pretty(rid: Any, text: str, d: Detection, color: bool) -> str:
    mark = "FLAGGED" if d.flagged else "ok"
    out = [f"{rid}: {mark} (score {d.score:.3f}, {len(d.spans)} span{'s' if len(d.spans) != 1 else ''})"]
    shown = [p for p in d.passages if p.flagged or any(s.start < p.end and p.start < s.end for s in d.spans)]
    for p in shown:
        seg = p.text
        for s in sorted(d.spans, key=lambda s: -s.start):
            if s.start < p.end and p.start < s.end:  # a span may cross passages: highlight the part inside
                a, b = max(s.start, p.start) - p.start, min(s.end, p.end) - p.start
                tag = f"{s.score:.2f}" + (f" {s.category}" if s.category != "fluency" else "")
                hl = f"{_RED}{seg[a:b]}{_RESET}{_DIM}[{tag}]{_RESET}" if color else f"[[{seg[a:b]}]]({tag})"
                seg = seg[:a] + hl + seg[b:]
        out.append(f"  {p.score:.3f}  {seg}")
    return "\n".join(out)


def _tsv_line(rid: Any, d: Detection) -> str:
    spans = ";".join(f"{s.start}-{s.end}:{s.score:.4f}" for s in d.spans)
    return f"{rid}\t{d.score:.6f}\t{int(d.flagged)}\t{spans}"


def _score(a: argparse.Namespace) -> int:
    from ._detector import Detector
    from ._errors import ModelError

    quiet = a.quiet

    def warn(msg: str) -> None:
        if not quiet:
            print(f"mtdetect: {msg}", file=sys.stderr)

    fmt = a.format or ("pretty" if sys.stdout.isatty() else "jsonl")
    try:
        det = Detector.load(a.model, threads=a.threads)
    except ModelError as e:
        print(f"mtdetect: model error: {e}", file=sys.stderr)
        return EXIT_MODEL
    if a.threshold is not None:
        det.threshold = a.threshold
    if a.span_threshold is not None:
        det.span_threshold = a.span_threshold
    if a.span_gate is not None:
        det.span_gate = a.span_gate
    if a.span_score is not None:
        det.span_score = a.span_score
    stats = ReadStats()
    progress = _Progress(enabled=not quiet and sys.stderr.isatty())
    any_flag = False
    not_english = 0
    json_items: list[dict[str, Any]] = []
    color = fmt == "pretty" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    out = sys.stdout
    try:
        for batch in _batched(_records(a, stats, warn), max(1, a.batch_size)):
            plain = [r for r in batch if not isinstance(r, _StreamedRecord)]
            scored = iter(det.detect_batch([r.text for r in plain], batch_size=a.batch_size))
            results = [_detect_streamed(det, r, a.batch_size)[1] if isinstance(r, _StreamedRecord) else next(scored)
                       for r in batch]
            for r, d in zip(batch, results):
                any_flag |= d.flagged
                if r.text and _non_latin_share(r.text) > 0.5:
                    not_english += 1
                    warn(f"record {r.id}: mostly non-Latin script, not English; its score is not meaningful")
                if fmt == "jsonl":
                    out.write(_jsonl_line(r.id, d) + "\n")
                elif fmt == "tsv":
                    out.write(_tsv_line(r.id, d) + "\n")
                elif fmt == "json":
                    json_items.append({"id": r.id, **d.to_dict()})
                else:
                    out.write(_pretty(r.id, r.text, d, color) + "\n")
            out.flush()
            progress.update(len(batch))
    except InputError as e:
        progress.close()
        print(f"mtdetect: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    progress.close()
    if fmt == "json":
        json.dump(json_items, out, ensure_ascii=False, indent=1)
        out.write("\n")
    if stats.records == 0 and stats.bad_lines == 0:
        print("mtdetect: error: the input is empty (no text to score)", file=sys.stderr)
        return EXIT_USAGE
    if stats.bad_lines:
        print(f"mtdetect: skipped {stats.bad_lines} bad line(s)", file=sys.stderr)
    if not_english and not quiet:
        print(f"mtdetect: {not_english} record(s) do not look like English", file=sys.stderr)
    return EXIT_FLAGGED if any_flag and not a.exit_zero else EXIT_OK


def _info(a: argparse.Namespace) -> int:
    from ._detector import Detector
    from ._errors import ModelError

    try:
        det = Detector.load(a.model)
    except ModelError as e:
        print(f"mtdetect: model error: {e}", file=sys.stderr)
        return EXIT_MODEL
    info = det.info()
    if a.format == "json":
        print(json.dumps(info, indent=1))
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
    return EXIT_OK


def _read_eval(path: Path, limit: int) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise InputError(f"{path}:{n}: cannot decode as utf-8 at byte {e.start} of the line") from None
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: malformed JSON ({e.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise InputError(f"{path}:{n}: needs a JSON object with a string 'text' field")
            for sp in obj.get("spans", []):
                if not (isinstance(sp, dict) and 0 <= sp.get("start", -1) < sp.get("end", -1) <= len(obj["text"])):
                    raise InputError(f"{path}:{n}: span {sp!r} is not inside the text")
            rows.append(obj)
            if limit and len(rows) >= limit:
                break
    if not rows:
        raise InputError(f"{path}: no records")
    return rows


def _eval(a: argparse.Namespace) -> int:
    from ._detector import Detector
    from ._errors import ModelError
    from ._eval import evaluate, markdown, score_with_detector

    try:
        rows = _read_eval(a.data, a.limit)
    except InputError as e:
        print(f"mtdetect: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        det = Detector.load(a.model)
    except ModelError as e:
        print(f"mtdetect: model error: {e}", file=sys.stderr)
        return EXIT_MODEL
    if a.threshold is not None:
        det.threshold = a.threshold
    metrics = evaluate(score_with_detector(det, rows, a.batch_size), bootstrap=a.bootstrap)
    metrics["model"] = det.info()
    metrics["data"] = str(a.data)
    if a.format == "json":
        print(json.dumps(metrics, indent=1, default=str))
    else:
        print(markdown(metrics, f"{a.data.name} — {det.config.name} {det.config.version}"))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtdetect`` console script."""
    ap = _parser()
    a = ap.parse_args(argv)
    _validate(ap, a)
    try:
        if a.command == "info":
            return _info(a)
        if a.command == "eval":
            return _eval(a)
        return _score(a)
    except KeyboardInterrupt:
        print("mtdetect: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
