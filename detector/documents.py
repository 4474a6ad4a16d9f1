"""Web pages and Markdown files (issue #36): the prose of a file as one document record, every character of it
mapped back to its line and column in the file (the ``formats`` extra).

- **HTML**: ``trafilatura`` (the main-text extractor web-corpus pipelines use) decides which paragraphs are the main
  text (menus, scripts, footers and boilerplate are left out); the standard library's ``html.parser`` reads the page
  once more to know where each character of those paragraphs stands in the file and in which element
  (``/html/body/article/p[3]``). Paragraphs are joined by blank lines.
- **Markdown**: ``markdown-it-py`` (CommonMark) gives the blocks; paragraphs, headings, list items, quotes and table
  cells are prose; code blocks, inline code, HTML, URLs (autolinks; a link keeps its text) and YAML/TOML front matter
  are not. A soft line break inside a paragraph is a space; blocks are joined by blank lines.

:class:`Unit` maps an offset of the record's text back to the file (:meth:`Unit.position`) and names the element or
block it sits in (:meth:`Unit.place`).
"""

from __future__ import annotations

import bisect
import html
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from ._faces.places import file_position, line_starts
from ._faces.reading import InputError

__all__ = ["FORMATS", "Unit", "read_html", "read_markdown"]

FORMATS = ("html", "md")
#: elements whose text is never prose
_SKIP = {"script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object", "canvas", "select",
         "textarea", "button"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_BLOCK = {"address", "article", "aside", "blockquote", "br", "dd", "details", "dialog", "div", "dl", "dt",
          "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
          "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul", "caption"}
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Unit:
    """Where a document record's text came from in its file."""

    file: str
    format: str  # html | md
    line: int  # 1-based line of the first character of prose
    # text offset -> file position, as runs: the text character at ``starts[i] + k`` is at character
    # ``sources[i] + k`` of the file (a run is text copied verbatim)
    starts: tuple[int, ...]
    sources: tuple[int, ...]
    line_starts: tuple[int, ...]  # file character offset of each line's start
    places: tuple[tuple[int, str], ...] = ()  # (text offset, element path or block kind) from that offset on

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column), 1-based, in the file of the character at ``offset`` of the record's text."""
        return file_position(self.starts, self.sources, self.line_starts, offset, self.line)

    def place(self, offset: int) -> str:
        """The element path (HTML) or block kind (Markdown) holding the character at ``offset``."""
        i = bisect.bisect_right(self.places, offset, key=lambda p: p[0]) - 1
        return self.places[i][1] if i >= 0 else ""

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "line": self.line}

    def span_fields(self, offset: int) -> dict[str, Any]:
        """Extra fields of a span starting at ``offset``: its element (HTML) or block (Markdown)."""
        return {("element" if self.format == "html" else "block"): self.place(offset)}

    def label(self) -> str:
        return f"{'web page' if self.format == 'html' else 'Markdown'} prose from line {self.line}"


class _Builder:
    """Accumulates a record's text with its runs of file offsets and its places."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.starts: list[int] = []
        self.sources: list[int] = []
        self.places: list[tuple[int, str]] = []

    def add(self, text: str, source: int, place: str | None = None) -> None:
        if not text:
            return
        if place is not None and (not self.places or self.places[-1][1] != place):
            self.places.append((self.size, place))
        if not (self.starts and self.sources[-1] + (self.size - self.starts[-1]) == source):
            self.starts.append(self.size)
            self.sources.append(source)
        self.parts.append(text)
        self.size += len(text)

    def sep(self, text: str) -> None:
        """Text of no place in the file (a block separator): mapped just past the previous character."""
        if self.size:
            last = self.sources[-1] + (self.size - self.starts[-1])
            self.starts.append(self.size)
            self.sources.append(last)
            self.parts.append(text)
            self.size += len(text)

    def unit(self, file: str, fmt: str, line_starts: list[int]) -> tuple[str, Unit]:
        line = file_position(self.starts, self.sources, line_starts, 0, 1)[0]
        return "".join(self.parts), Unit(file, fmt, line, tuple(self.starts), tuple(self.sources), tuple(line_starts),
                                         tuple(self.places))


# ------------------------------------------------------------------------------------------ HTML


class _Stream(HTMLParser):
    """The visible text of a page, character by character: its file offset and the element path it sits in."""

    def __init__(self, line_starts: list[int]) -> None:
        super().__init__(convert_charrefs=False)
        self.line_starts = line_starts
        self.chars: list[str] = []
        self.offsets: list[int] = []
        self.paths: list[tuple[int, str]] = []  # (stream index, path) from there on
        self.stack: list[tuple[str, dict[str, int]]] = [("", {})]
        self.names: list[str] = []
        self.skip = 0

    def _here(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def _path(self) -> str:
        return "/" + "/".join(self.names)

    def _break(self) -> None:
        if self.chars and self.chars[-1] != "\n":
            self.chars.append("\n")
            self.offsets.append(self._here())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self._break()
        if tag in _VOID:
            return
        counts = self.stack[-1][1]
        counts[tag] = counts.get(tag, 0) + 1
        self.stack.append((tag, {}))
        self.names.append(f"{tag}[{counts[tag]}]" if counts[tag] > 1 else tag)
        if tag in _SKIP:
            self.skip += 1
        self.paths.append((len(self.chars), self._path()))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK:
            self._break()
        depth = next((k for k in range(len(self.stack) - 1, 0, -1) if self.stack[k][0] == tag), None)
        if depth is None:
            return  # a stray end tag
        for k in range(len(self.stack) - 1, depth - 1, -1):
            if self.stack[k][0] in _SKIP:
                self.skip -= 1
        del self.stack[depth:]
        del self.names[depth - 1 :]
        self.paths.append((len(self.chars), self._path()))

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        base = self._here()
        self.chars.extend(data)
        self.offsets.extend(range(base, base + len(data)))

    def _ref(self, ref: str, raw: str) -> None:
        if self.skip:
            return
        text = html.unescape(raw)
        here = self._here()
        self.chars.extend(text)
        self.offsets.extend([here] * len(text))

    def handle_entityref(self, name: str) -> None:
        self._ref(name, f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._ref(name, f"&#{name};")


def _main_paragraphs(page: str) -> list[str] | None:
    """The main text's paragraphs as trafilatura extracts them, or None when it finds none."""
    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    text = trafilatura.extract(page, output_format="txt", include_comments=False, include_tables=True,
                               include_images=False, include_links=False, include_formatting=False,
                               deduplicate=False, favor_recall=True)
    if not text:
        return None
    return [p for p in (_WS.sub(" ", line).strip() for line in text.split("\n")) if p]


def read_html(page: str, name: str) -> tuple[str, Unit]:
    """The main text of a web page as one record's text and its :class:`Unit`. Raises :class:`InputError` when the
    ``formats`` extra is missing."""
    try:
        paragraphs = _main_paragraphs(page)
    except ImportError as e:
        raise InputError(f"{name}: reading HTML needs the formats extra ({e.name or e} is missing): "
                         "pip install 'mtdetect[formats]'") from None
    starts = line_starts(page)
    stream = _Stream(starts)
    stream.feed(page)
    stream.close()
    # the stream with whitespace runs collapsed, and where each collapsed character came from
    flat: list[str] = []
    where: list[int] = []
    for i, c in enumerate(stream.chars):
        if c.isspace():
            if flat and flat[-1] != " ":
                flat.append(" ")
                where.append(i)
            continue
        flat.append(c)
        where.append(i)
    flat_text = "".join(flat)
    if paragraphs is None:  # no main text found: every block of visible text
        paragraphs = [p for p in (_WS.sub(" ", b).strip() for b in "".join(stream.chars).split("\n")) if p]
    path_keys = [k for k, _ in stream.paths]
    out = _Builder()
    cursor = 0
    for para in paragraphs:
        if out.size:
            out.sep("\n\n")
        found = flat_text.find(para, cursor)
        if found < 0 and para.startswith("- "):  # a list item, as trafilatura writes it
            para = para[2:]
            found = flat_text.find(para, cursor)
        if found < 0:
            found = flat_text.find(para)
        if found < 0:  # not verbatim in the page (extraction joined or changed text): mapped to where it starts
            anchor = flat_text.find(para[:24], cursor)
            src = stream.offsets[where[anchor]] if anchor >= 0 and where else (stream.offsets[-1] if stream.offsets
                                                                                else 0)
            out.add(para, src, _place(stream, path_keys, where[anchor] if anchor >= 0 and where else 0))
            continue
        for k, ch in enumerate(para):
            si = where[found + k]
            out.add(ch, stream.offsets[si], _place(stream, path_keys, si))
        cursor = found + len(para)
    return out.unit(name, "html", starts)


def _place(stream: _Stream, keys: list[int], index: int) -> str:
    i = bisect.bisect_right(keys, index) - 1
    return stream.paths[i][1] if i >= 0 else "/"


# ------------------------------------------------------------------------------------------ Markdown

_FRONT = re.compile(r"\A(---|\+\+\+)[ \t]*\r?\n.*?\n\1[ \t]*(\r?\n|\Z)", re.S)
_PROSE = {"paragraph_open": "paragraph", "heading_open": "heading"}
_NESTING = {"bullet_list_open": "list item", "ordered_list_open": "list item", "blockquote_open": "quote"}
_UNNESTING = {"bullet_list_close", "ordered_list_close", "blockquote_close"}


def read_markdown(text: str, name: str) -> tuple[str, Unit]:
    """The prose of a Markdown file as one record's text and its :class:`Unit`. Raises :class:`InputError` when the
    ``formats`` extra is missing."""
    try:
        from markdown_it import MarkdownIt
    except ImportError as e:
        raise InputError(f"{name}: reading Markdown needs the formats extra ({e.name or e} is missing): "
                         "pip install 'mtdetect[formats]'") from None
    starts = line_starts(text)
    front = _FRONT.match(text)
    body_from = front.end() if front else 0
    first_line = text.count("\n", 0, body_from)
    out = _Builder()
    kind = "paragraph"
    inside: list[str] = []  # open list items and quotes around the current prose
    for tok in MarkdownIt("commonmark").parse(text[body_from:]):
        if tok.type in _NESTING:
            inside.append(_NESTING[tok.type])
        elif tok.type in _UNNESTING and inside:
            inside.pop()
        elif tok.type in _PROSE:
            kind = _PROSE[tok.type]
        elif tok.type == "inline" and tok.map is not None:
            _inline(out, tok, text, starts, first_line + tok.map[0], " > ".join([*inside, kind]))
    return out.unit(name, "md", starts)


def _inline(out: _Builder, tok: Any, text: str, starts: list[int], line: int, place: str) -> None:
    """The prose of one inline token (a paragraph or heading), each piece found in the file from the block's first
    line on: text (a link keeps its text), soft breaks as spaces, hard breaks as line breaks; inline code, inline
    HTML and autolinks (URLs) left out."""
    cursor = starts[min(line, len(starts) - 1)]
    if out.size:
        out.sep("\n\n")
    autolink = False
    for child in tok.children or ():
        if child.type == "link_open" and child.markup == "autolink":
            autolink = True
        elif child.type == "link_close":
            autolink = False
        elif child.type in ("softbreak", "hardbreak"):
            out.sep(" " if child.type == "softbreak" else "\n")
        elif child.type in ("text", "code_inline") and child.content and not autolink:
            found = text.find(child.content, cursor)
            if child.type == "code_inline":
                cursor = found + len(child.content) if found >= 0 else cursor
            elif found < 0:  # changed by escapes or entities: mapped to where the search stands
                out.add(child.content, cursor, place)
            else:
                out.add(child.content, found, place)
                cursor = found + len(child.content)
