"""Subtitle files (issue #36, part 1): SRT read by ``srt``, WebVTT by ``webvtt-py`` (the ``formats`` extra).

Each cue is one record: its id is the cue's number (SRT) or identifier (WebVTT; its position when it has none), its
text is the cue's lines joined by a space (a line break inside a cue is layout, not a sentence break) with the
markup removed (``<i>``, ``<c.yellow>``, ``<v Roger>``, ASS overrides such as ``{\\an8}``). Every character of that
text keeps the line and column (1-based, in characters) it came from in the file, so a span maps back to the file
exactly (:meth:`Unit.position`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._faces.reading import InputError

__all__ = ["FORMATS", "TAG", "Unit", "read_subtitles"]

#: cue markup: HTML-like tags (<i>, </b>, <c.yellow>, <v Roger>, <00:01.500>) and ASS override blocks ({\an8})
TAG = re.compile(r"<[^<>\n]*>|\{\\[^{}\n]*\}")
FORMATS = ("srt", "vtt")


@dataclass(frozen=True)
class Unit:
    """Where a record came from in a subtitle file."""

    file: str
    format: str  # srt | vtt
    cue: str
    start: str  # as the file writes it
    end: str
    line: int  # 1-based line of the cue's first text line
    origin: tuple[tuple[int, int], ...]  # (line, column) of each character of the record's text, 1-based

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) in the file of the character at ``offset`` of the record's text; an offset at the end
        maps just past the last character."""
        if not self.origin:
            return self.line, 1
        if offset >= len(self.origin):
            line, col = self.origin[-1]
            return line, col + 1
        return self.origin[max(0, offset)]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "cue": self.cue, "start": self.start, "end": self.end,
                "line": self.line}

    def label(self) -> str:
        return f"cue {self.cue} at {self.start}, line {self.line}"


def _text(lines: list[str], first_line: int) -> tuple[str, tuple[tuple[int, int], ...]]:
    chars: list[str] = []
    origin: list[tuple[int, int]] = []
    for k, raw in enumerate(lines):
        line = first_line + k
        kept = [(j, raw[j]) for j in _outside_tags(raw)]
        if chars and kept:
            prev_line, prev_col = origin[-1]
            chars.append(" ")  # the line break
            origin.append((prev_line, prev_col + 1))
        for j, c in kept:
            chars.append(c)
            origin.append((line, j + 1))
    text = "".join(chars)
    lead = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    return text[lead:end], tuple(origin[lead:end])


def _outside_tags(raw: str) -> Iterator[int]:
    pos = 0
    for m in TAG.finditer(raw):
        yield from range(pos, m.start())
        pos = m.end()
    yield from range(pos, len(raw))


def _locate(lines: list[str], content: list[str], start: int) -> tuple[int, int]:
    """The 0-based index of the first line of ``content`` in ``lines`` at or after ``start`` (right after a timing
    line), and where the next search starts."""
    want = [c.rstrip() for c in content]
    for i in range(start, len(lines)):
        if "-->" in lines[i] and [x.rstrip() for x in lines[i + 1 : i + 1 + len(want)]] == want:
            return i + 1, i + 1 + len(want)
    for i in range(start, len(lines)):  # not found verbatim: the line after the next timing line
        if "-->" in lines[i]:
            return i + 1, i + 1
    return start, start


def read_subtitles(text: str, name: str, fmt: str) -> Iterator[tuple[object, str, Unit]]:
    """(id, text, unit) for each cue of ``text`` (a whole SRT or WebVTT file) that holds text. Raises
    :class:`InputError` naming the file when it is not such a file or the ``formats`` extra is missing."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    lines = text.split("\n")
    cues: list[tuple[object, str, str, list[str]]] = []
    try:
        if fmt == "srt":
            import srt

            for s in srt.parse(text):
                cues.append((s.index, srt.timedelta_to_srt_timestamp(s.start), srt.timedelta_to_srt_timestamp(s.end),
                             s.content.split("\n")))
        elif fmt == "vtt":
            import webvtt

            captions: list[Any] = list(webvtt.from_string(text).captions)
            for k, c in enumerate(captions, 1):
                cues.append((c.identifier or k, c.start, c.end, list(c.lines)))
        else:
            raise ValueError(f"unknown subtitle format {fmt!r}")
    except ImportError as e:
        raise InputError(f"{name}: reading {fmt.upper()} needs the formats extra ({e.name} is missing): "
                         "pip install 'mtdetect[formats]'") from None
    except InputError:
        raise
    except Exception as e:  # srt.SRTParseError, webvtt's MalformedFileError / MalformedCaptionError, ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{name}: not a valid {fmt.upper()} file ({msg[:200]})") from None
    pos = 0
    for cue, start, end, content in cues:
        first, pos = _locate(lines, content, pos)
        body, origin = _text(content, first + 1)
        if body:
            yield cue, body, Unit(name, fmt, str(cue), start, end, first + 1, origin)
