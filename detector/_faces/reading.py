"""Reading input records for the CLI: plain text, JSON Lines, TSV (streamed), subtitles, web pages, Markdown and
localisation files, with exact error reports.

Input kind: ``--tsv-column`` means TSV; ``--plain`` means one plain-text document; ``--jsonl`` or a ``.jsonl`` file
name means JSONL; ``--input-format FORMAT`` (or ``--subtitles srt|vtt``) or the file's extension means a structured
file (:data:`EXTENSIONS`): subtitles, one record per cue (:mod:`detector.subtitles`); a web page or a Markdown file,
one record of its prose (:mod:`detector.documents`); a PO or XLIFF file, one record per translated string
(:mod:`detector.localisation`). Otherwise the content decides: when the first non-blank line is a JSON object holding
the text field, the input is JSONL, else it is one plain-text document.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import IO, Any

BINARY_SNIFF = 8192
#: structured formats by file extension (``--input-format`` names them too)
EXTENSIONS = {".srt": "srt", ".vtt": "vtt", ".html": "html", ".htm": "html", ".xhtml": "html", ".md": "md",
              ".markdown": "md", ".po": "po", ".pot": "po", ".xlf": "xliff", ".xliff": "xliff"}
STRUCTURED = ("srt", "vtt", "html", "md", "po", "xliff")
#: a plain-text input larger than this is scored block by block (library: Detector.detect_stream)
STREAM_BYTES = 1 << 20
_SNIFF_LINE = 1 << 16
_WS = b" \t\r\n\x0b\x0c"
_BOM = b"\xef\xbb\xbf"
_NL = b"\n"
_NUL = b"\x00"


class InputError(Exception):
    """Bad input: reported as one line on stderr with exit code 2."""


@dataclass
class InputRecord:
    """One record to score: its id and text, or (a large plain document) an iterator of text chunks."""

    id: object
    text: str = ""
    chunks: Iterator[str] | None = field(default=None, repr=False)
    unit: Any = None  # where the record came from in a structured file (detector.subtitles.Unit), else None


@dataclass
class ReadStats:
    bad_lines: int = 0
    records: int = 0


#: default --max-chars: the longest JSONL or TSV record text accepted
MAX_CHARS = 1_000_000


@dataclass(frozen=True)
class ReadOptions:
    kind: str = "auto"  # auto | plain | jsonl | tsv | srt | vtt
    encoding: str = "utf-8"
    errors: str = "strict"
    text_field: str = "text"
    tsv_column: int = 1
    skip_bad_lines: bool = False
    max_chars: int = MAX_CHARS

    @property
    def max_line_bytes(self) -> int:
        """A JSONL/TSV line longer than this cannot hold a record within ``max_chars`` (JSON escapes take at most 6
        bytes a character, plus the other fields)."""
        return 6 * self.max_chars + 65536


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None


def _decode(data: bytes, name: str, encoding: str, errors: str, base: int, line: int | None = None) -> str:
    try:
        return data.decode(encoding, errors=errors)
    except UnicodeDecodeError as e:
        where = f"{name}:{line if line is not None else data[: e.start].count(_NL) + 1}"
        raise InputError(
            f"{where}: cannot decode as {encoding} at byte offset {base + e.start} "
            f"(use --encoding or --errors replace)"
        ) from None


def _wide(encoding: str) -> bool:
    """UTF-16 and UTF-32 text holds NUL bytes."""
    e = encoding.lower().replace("-", "").replace("_", "")
    return e.startswith(("utf16", "utf32", "ucs2", "ucs4"))


def _check_binary(head: bytes, name: str, encoding: str = "utf-8") -> None:
    if not _wide(encoding) and _NUL in head[:BINARY_SNIFF]:
        raise InputError(f"{name}: looks like a binary file (NUL bytes), not text")


class _Replay(io.RawIOBase):
    """A readable stream that first replays ``head`` (bytes already read while sniffing), then reads ``f``."""

    def __init__(self, head: bytes, f: IO[bytes]) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if len(self._head):
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        read1 = getattr(self._f, "read1", None)
        data = read1(len(b)) if read1 is not None else self._f.read(len(b))
        b[: len(data)] = data
        return len(data)


def sniff(f: IO[bytes], text_field: str) -> tuple[IO[bytes], str, str]:
    """Peek at the first non-blank line: returns (a stream that replays what was read, kind, note), kind being
    "jsonl" (a JSON object holding the text field), "jsonl-no-field" (a JSON object without it), "plain" or
    "empty". ``note`` says why a line starting with "{" was taken as plain text."""
    head = bytearray()
    kind, note = "empty", ""
    while True:
        part = f.readline(_SNIFF_LINE)
        if not part:
            break
        start = len(head)
        head += part
        content = bytes(head[start:]).lstrip(_WS)
        if start == 0 and content.startswith(_BOM):
            content = content[len(_BOM) :].lstrip(_WS)
        if not content:
            continue
        if not content.startswith(b"{"):
            kind = "plain"
            break
        while not head.endswith(b"\n"):  # the first line is a JSON candidate: read all of it
            more = f.readline(_SNIFF_LINE)
            if not more:
                break
            head += more
        line = bytes(head[start:])
        try:
            obj = json.loads(line.decode("utf-8", errors="replace").lstrip("\ufeff"))
        except (json.JSONDecodeError, RecursionError) as e:
            kind, note = "plain", f"its first line starts with '{{' but is not JSON ({getattr(e, 'msg', 'too deep')})"
            break
        if isinstance(obj, dict) and isinstance(obj.get(text_field), str):
            kind = "jsonl"
        elif isinstance(obj, dict):
            kind = "jsonl-no-field"
        else:
            kind = "plain"
        break
    return io.BufferedReader(_Replay(bytes(head), f)), kind, note


def read_plain(f: IO[bytes], name: str, encoding: str, errors: str, limit: int | None = None) -> InputRecord:
    """One plain-text document: in memory up to ``limit`` (default :data:`STREAM_BYTES`) bytes, else as a stream of
    decoded chunks."""
    limit = STREAM_BYTES if limit is None else limit
    data = f.read(limit + 1)
    _check_binary(data, name, encoding)
    if not _wide(encoding) and _NUL in data:
        raise InputError(f"{name}: NUL byte at byte offset {data.index(_NUL)}: a binary file, not text")
    if len(data) <= limit:
        if data.startswith(_BOM) and _is_utf8(encoding):
            data = data[3:]
        return InputRecord(name, _decode(data, name, encoding, errors, 0))
    return InputRecord(name, chunks=_plain_chunks(data, f, name, encoding, errors, limit))


def _plain_chunks(first: bytes, f: IO[bytes], name: str, encoding: str, errors: str,
                  block: int) -> Iterator[str]:
    """Decoded chunks of a large plain-text stream (``first`` already read); memory is bounded by one block."""
    dec = codecs.getincrementaldecoder(encoding)(errors=errors)
    base = 0
    lines = 0
    data = first
    if data.startswith(_BOM) and _is_utf8(encoding):
        data, base = data[3:], 3
    while data:
        try:
            text = dec.decode(data)
        except UnicodeDecodeError as e:
            raise InputError(
                f"{name}:{lines + data[: max(0, e.start)].count(_NL) + 1}: cannot decode as {encoding} at byte "
                f"offset {base + max(0, e.start)} (use --encoding or --errors replace)") from None
        if text:
            yield text
        base += len(data)
        lines += data.count(_NL)
        data = f.read(block)
        if data and not _wide(encoding) and _NUL in data:
            raise InputError(f"{name}: NUL byte at byte offset {base + data.index(_NUL)}: a binary file, not text")
    try:
        tail = dec.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InputError(f"{name}: cannot decode as {encoding}: the file ends inside a character "
                         f"(use --encoding or --errors replace)") from None
    if tail:
        yield tail


def _lines(f: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line, too long?) for each line; a line over ``max_bytes`` is read past, never held whole."""
    n = 0
    while True:
        raw = f.readline(max_bytes + 1)
        if not raw:
            return
        n += 1
        if len(raw) > max_bytes and not raw.endswith(_NL):
            while True:  # skip the rest of the line in bounded pieces
                rest = f.readline(1 << 20)
                if not rest or rest.endswith(_NL):
                    break
            yield n, b"", True
            continue
        yield n, raw, False


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    x = float(text)
    if x in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return x


class JsonLineError(ValueError):
    """A line that is not strict JSON; the message says why in a few words (no line number)."""


def parse_json_line(text: str) -> Any:
    """One line of strict JSON: ``NaN``/``Infinity``, numbers out of a double's range (``1e400``), integers over
    Python's digit limit and nesting too deep are errors (:class:`JsonLineError`), like any malformed JSON. Shared by
    every JSONL reader (CLI, corpus, serve)."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise JsonLineError(f"{e.msg.removesuffix(' at')} at column {e.colno}") from None
    except RecursionError:
        raise JsonLineError("nested too deeply") from None
    except ValueError as e:  # NaN/Infinity, integers over the digit limit
        raise JsonLineError(str(e).split("\n")[0]) from None


def _bad_line(opts: ReadOptions, stats: ReadStats, warn: Callable[[str], None]) -> Callable[[str, str], None]:
    """bad(message, hint): an input error, or with --skip-bad-lines a counted and reported skip."""
    def bad(msg: str, hint: str) -> None:
        if not opts.skip_bad_lines:
            raise InputError(f"{msg}; {hint}")
        stats.bad_lines += 1
        warn(f"skipped {msg}")
    return bad


def _too_long(name: str, n: int, opts: ReadOptions) -> str:
    return f"{name}:{n}: line longer than {opts.max_line_bytes} bytes"


def _over_max_chars(name: str, n: int, opts: ReadOptions, text: str) -> str | None:
    """Why the text of line ``n`` is over --max-chars, or None."""
    if len(text) > opts.max_chars:
        return f"{name}:{n}: text of {len(text)} characters, over --max-chars {opts.max_chars}"
    return None


def read_jsonl(f: IO[bytes], name: str, opts: ReadOptions, stats: ReadStats,
               warn: Callable[[str], None]) -> Iterator[InputRecord]:
    """One record per line; blank lines are not records. Streams: memory is bounded by one line."""
    offset = 0
    field_ = opts.text_field
    bad = _bad_line(opts, stats, warn)
    for n, raw, too_long in _lines(f, opts.max_line_bytes):
        if n == 1:
            _check_binary(raw, name)
            if raw.startswith(_BOM):
                raw = raw[3:]
                offset += 3
        line_start = offset
        offset += len(raw)
        if too_long:
            bad(_too_long(name, n, opts), "raise --max-chars or --skip-bad-lines")
            continue
        if not raw.strip():
            continue
        try:
            s = _decode(raw, name, opts.encoding, opts.errors, line_start, n)
        except InputError as e:
            bad(str(e), "use --skip-bad-lines to go on")
            continue
        try:
            obj = parse_json_line(s)
        except JsonLineError as e:
            bad(f"{name}:{n}: malformed JSON ({e})", "use --skip-bad-lines to go on")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get(field_), str):
            what = "not a JSON object" if not isinstance(obj, dict) else (
                f"no {field_!r} field" if field_ not in obj else f"field {field_!r} is not a string")
            bad(f"{name}:{n}: {what}", "use --text-field or --skip-bad-lines")
            continue
        text = obj[field_]
        problem = _over_max_chars(name, n, opts, text)
        if problem:
            bad(problem, "raise --max-chars or use --skip-bad-lines")
            continue
        stats.records += 1
        yield InputRecord(obj.get("id", n), text)


def read_tsv(f: IO[bytes], name: str, opts: ReadOptions, stats: ReadStats,
             warn: Callable[[str], None]) -> Iterator[InputRecord]:
    """TSV: column N (1-based) holds the text; the id is the line number."""
    offset = 0
    bad = _bad_line(opts, stats, warn)
    for n, raw, too_long in _lines(f, opts.max_line_bytes):
        line_start = offset
        offset += len(raw)
        if too_long:
            bad(_too_long(name, n, opts), "raise --max-chars or --skip-bad-lines")
            continue
        if _NUL in raw:
            raise InputError(f"{name}:{n}: NUL byte at byte offset {line_start + raw.index(_NUL)}: a binary file, "
                             "not text")
        if not raw.strip():
            continue
        s = _decode(raw, name, opts.encoding, opts.errors, line_start, n).rstrip("\r\n")
        cols = s.split("\t")
        if opts.tsv_column > len(cols):
            bad(f"{name}:{n}: has {len(cols)} columns, no column {opts.tsv_column}", "use --skip-bad-lines to go on")
            continue
        text = cols[opts.tsv_column - 1]
        problem = _over_max_chars(name, n, opts, text)
        if problem:
            bad(problem, "raise --max-chars or use --skip-bad-lines")
            continue
        stats.records += 1
        yield InputRecord(n, text)


class _Transcoded(io.RawIOBase):
    """A UTF-16 or UTF-32 stream re-encoded as UTF-8, so the line-based readers work on it (byte offsets in later
    messages then refer to the UTF-8 text; decoding errors name the original byte offset)."""

    def __init__(self, f: IO[bytes], encoding: str, errors: str, name: str) -> None:
        super().__init__()
        self._f, self._encoding, self._name = f, encoding, name
        self._dec = codecs.getincrementaldecoder(encoding)(errors=errors)
        self._buf = b""
        self._base = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        while not self._buf and not self._eof:
            data = self._f.read(1 << 16)
            try:
                text = self._dec.decode(data, final=not data)
            except UnicodeDecodeError as e:
                raise InputError(f"{self._name}: cannot decode as {self._encoding} at byte offset "
                                 f"{self._base + max(0, e.start)} (use --encoding or --errors replace)") from None
            self._base += len(data)
            self._eof = not data
            self._buf = text.encode("utf-8", "surrogatepass")
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
              (b"\xfe\xff", "utf-16"))


def kind_of_name(name: str) -> str:
    """The input kind a file name says (``jsonl``, a structured format of :data:`EXTENSIONS`), else ``auto``."""
    if name.endswith(".jsonl"):
        return "jsonl"
    dot = name.rfind(".")
    return EXTENSIONS.get(name[dot:].lower(), "auto") if dot > 0 else "auto"


def read_input(f: IO[bytes], name: str, opts: ReadOptions, stats: ReadStats,
               warn: Callable[[str], None]) -> Iterator[InputRecord]:
    """The records of one input stream, its kind chosen by the rule in the module docstring."""
    _check_encoding(opts.encoding)
    head = f.read(4)
    f = io.BufferedReader(_Replay(head, f))
    bom = next((enc for mark, enc in _WIDE_BOMS if head.startswith(mark)), None)
    if bom and _is_utf8(opts.encoding):
        warn(f"{name}: starts with a {bom.upper()} byte-order mark: read as {bom.upper()}")
        opts = replace(opts, encoding=bom)
    if _wide(opts.encoding):
        f = io.BufferedReader(_Transcoded(f, opts.encoding, opts.errors, name))
        opts = replace(opts, encoding="utf-8", errors="strict")
    kind = kind_of_name(name) if opts.kind == "auto" else opts.kind
    if kind in STRUCTURED:
        yield from read_structured(f, name, kind, opts, stats, warn)
        return
    if kind == "auto":
        f, kind, note = sniff(f, opts.text_field)
        if kind == "jsonl-no-field":
            raise InputError(f"{name}: the first line is a JSON object without a {opts.text_field!r} field; use "
                             f"--text-field NAME for JSONL, or --plain to score the input as one document")
        if note:
            warn(f"{name}: read as plain text: {note} (use --jsonl to read it as JSONL)")
        if kind == "empty":
            _check_binary(f.read(BINARY_SNIFF), name, opts.encoding)
            return
    if kind == "tsv":
        yield from read_tsv(f, name, opts, stats, warn)
    elif kind == "jsonl":
        yield from read_jsonl(f, name, opts, stats, warn)
    else:
        rec = read_plain(f, name, opts.encoding, opts.errors)
        if rec.chunks is None and not rec.text.strip():
            return
        stats.records += 1
        yield rec


def read_structured(f: IO[bytes], name: str, kind: str, opts: ReadOptions, stats: ReadStats,
                    warn: Callable[[str], None]) -> Iterator[InputRecord]:
    """The records of a structured file, read whole (at most 4 x ``--max-chars`` bytes): the cues of an SRT or
    WebVTT file, the prose of a web page or Markdown file, the translated strings of a PO or XLIFF file."""
    data = f.read(4 * opts.max_chars + 1)
    if len(data) > 4 * opts.max_chars:
        raise InputError(f"{name}: a {kind.upper()} file over {4 * opts.max_chars:,} bytes (--max-chars "
                         f"{opts.max_chars:,}): split it")
    _check_binary(data[:BINARY_SNIFF], name, opts.encoding)
    if kind == "xliff":  # XML: the file's own declaration says its encoding
        from ..localisation import read_xliff

        units: Iterator[tuple[Any, str, Any]] = read_xliff(data, name)
    else:
        text = _decode(data[3:] if data.startswith(_BOM) and _is_utf8(opts.encoding) else data, name, opts.encoding,
                       opts.errors, 0)
        if kind in ("srt", "vtt"):
            from ..subtitles import read_subtitles

            units = read_subtitles(text, name, kind)
        elif kind == "po":
            from ..localisation import read_po

            units = read_po(text, name)
        else:
            from ..documents import read_html, read_markdown

            body, unit = read_html(text, name) if kind == "html" else read_markdown(text, name)
            if not body.strip():
                warn(f"{name}: no prose found in this {'web page' if kind == 'html' else 'Markdown file'}")
            units = iter([(name, body, unit)] if body.strip() else [])
    for rid, body, unit in units:
        stats.records += 1
        yield InputRecord(rid, body, unit=unit)

