"""Reading input records for the CLI: plain text, JSON Lines and TSV, streamed, with exact error reports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

BINARY_SNIFF = 8192


class InputError(Exception):
    """Bad input: reported as one line on stderr with exit code 2."""


@dataclass
class InputRecord:
    id: object
    text: str


@dataclass
class ReadStats:
    bad_lines: int = 0
    records: int = 0


def _decode(data: bytes, name: str, encoding: str, errors: str, base: int, line: int | None = None) -> str:
    try:
        return data.decode(encoding, errors=errors)
    except UnicodeDecodeError as e:
        where = f"{name}:{line}" if line is not None else name
        raise InputError(
            f"{where}: cannot decode as {encoding} at byte offset {base + e.start} "
            f"(use --encoding or --errors replace)"
        ) from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None


def _check_binary(head: bytes, name: str) -> None:
    if b"\x00" in head[:BINARY_SNIFF]:
        raise InputError(f"{name}: looks like a binary file (NUL bytes), not text")


def read_plain(f: IO[bytes], name: str, encoding: str, errors: str) -> str:
    """One document per file."""
    data = f.read()
    _check_binary(data, name)
    if data.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("-", "") == "utf8":
        data = data[3:]
    return _decode(data, name, encoding, errors, 0)


STREAM_BYTES = 1 << 20  # plain-text files larger than this are scored block by block


def read_plain_blocks(f: IO[bytes], name: str, encoding: str, errors: str,
                      block: int = STREAM_BYTES) -> Iterator[str]:
    """A large UTF-8 document in blocks cut at line breaks, so memory stays bounded by one block."""
    base = 0
    pending = b""
    first = True
    while True:
        data = f.read(block)
        if first:
            _check_binary(data, name)
            if data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
                base = 3
            first = False
        if not data:
            break
        pending += data
        cut = pending.rfind(b"\n\n")
        cut = cut + 2 if cut >= 0 else pending.rfind(b"\n") + 1
        if cut <= 0:
            if len(pending) < 4 * block:
                continue
            cut = len(pending)  # no line break at all: cut anyway (a passage may be split here)
        chunk, pending = pending[:cut], pending[cut:]
        yield _decode(chunk, name, encoding, errors, base)
        base += len(chunk)
    if pending:
        yield _decode(pending, name, encoding, errors, base)


def read_jsonl(
    f: IO[bytes], name: str, encoding: str, errors: str, text_field: str, skip_bad: bool, stats: ReadStats,
    warn: Callable[[str], None],
) -> Iterator[InputRecord]:
    """One record per line; blank lines are not records. Streams: memory is bounded by one line."""
    offset = 0
    first = True
    for n, raw in enumerate(f, start=1):
        if first:
            _check_binary(raw, name)
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
                offset += 3
            first = False
        line_start = offset
        offset += len(raw)
        if not raw.strip():
            continue
        try:
            s = _decode(raw, name, encoding, errors, line_start, n)
            obj = json.loads(s)
        except (InputError, json.JSONDecodeError) as e:
            msg = str(e) if isinstance(e, InputError) else f"{name}:{n}: malformed JSON ({e.msg} at column {e.colno})"
            if skip_bad:
                stats.bad_lines += 1
                warn(f"skipped {msg}")
                continue
            raise InputError(msg + ("" if isinstance(e, InputError) else "; use --skip-bad-lines to go on")) from None
        if not isinstance(obj, dict) or not isinstance(obj.get(text_field), str):
            what = "not a JSON object" if not isinstance(obj, dict) else (
                f"no {text_field!r} field" if text_field not in obj else f"field {text_field!r} is not a string")
            msg = f"{name}:{n}: {what}"
            if skip_bad:
                stats.bad_lines += 1
                warn(f"skipped {msg}")
                continue
            raise InputError(msg + "; use --text-field or --skip-bad-lines")
        stats.records += 1
        yield InputRecord(obj.get("id", n), obj[text_field])


def read_tsv(
    f: IO[bytes], name: str, encoding: str, errors: str, column: int, skip_bad: bool, stats: ReadStats,
    warn: Callable[[str], None],
) -> Iterator[InputRecord]:
    """TSV: column N (1-based) holds the text; the id is the line number."""
    offset = 0
    for n, raw in enumerate(f, start=1):
        if n == 1:
            _check_binary(raw, name)
        line_start = offset
        offset += len(raw)
        if not raw.strip():
            continue
        s = _decode(raw, name, encoding, errors, line_start, n).rstrip("\r\n")
        cols = s.split("\t")
        if column > len(cols):
            msg = f"{name}:{n}: has {len(cols)} columns, no column {column}"
            if skip_bad:
                stats.bad_lines += 1
                warn(f"skipped {msg}")
                continue
            raise InputError(msg)
        stats.records += 1
        yield InputRecord(n, cols[column - 1])
