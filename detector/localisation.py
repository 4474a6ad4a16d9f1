"""Localisation files (issue #36): gettext PO read by ``polib``, XLIFF 1.2 and 2.0 by ``lxml`` (the ``formats`` extra).

Each translated string is one record: a PO entry's ``msgstr`` (each plural form ``msgstr[N]`` its own record), an
XLIFF ``<target>``. Source strings (``msgid``, ``<source>``), the header, obsolete entries (``#~``) and untranslated
entries are not scored; fuzzy entries are (their translation is what a reviewer reads) and say so. Every character of
a record keeps the line and column it came from in the file (PO escapes such as ``\\n`` and ``\\"`` and XML entities
map to where they are written), so a span maps back exactly (:meth:`Unit.position`).

``annotate_po`` writes the annotated copy of ``mtdetect score --format po``: a ``#. mtdetect: ...`` comment on each
flagged entry and, on request, its ``fuzzy`` flag; the input file is never written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._faces.places import file_position, line_starts, runs
from ._faces.reading import InputError

__all__ = ["FORMATS", "Unit", "annotate_po", "read_po", "read_xliff"]

FORMATS = ("po", "xliff")
_PO_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_PO_LINE = re.compile(r'\s*(?:(?:msgctxt|msgid|msgid_plural|msgstr|msgstr\[\d+\])\s+)?"(?:[^"\\]|\\.)*"\s*')
_PO_KEYWORDS = ("msgctxt", "msgid", "msgstr", '"')
_TARGET_TAG = re.compile(r"<(?:[\w.-]+:)?target\b[^>]*>")
_PO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


@dataclass(frozen=True)
class Unit:
    """Where a record came from in a localisation file."""

    file: str
    format: str  # po | xliff
    id: str  # PO: the msgid (with "msgctxt|" before it when there is one); XLIFF: the unit's id
    line: int  # 1-based line of the translated string
    plural: int | None = None  # PO: the plural form (msgstr[N]); None for a plain msgstr
    fuzzy: bool = False  # PO: the entry is marked fuzzy
    state: str | None = None  # XLIFF: the target's state attribute
    starts: tuple[int, ...] = ()  # text offset -> file character offset, as runs (see detector.documents.Unit)
    sources: tuple[int, ...] = ()
    line_starts: tuple[int, ...] = ()
    entry: Any = field(default=None, compare=False, repr=False)  # PO: the polib entry (for annotate_po)
    catalogue: Any = field(default=None, compare=False, repr=False)  # PO: the polib file

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column), 1-based, in the file of the character at ``offset`` of the record's text."""
        return file_position(self.starts, self.sources, self.line_starts, offset, self.line)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": self.file, "format": self.format, "id": self.id, "line": self.line}
        if self.format == "po":
            d["fuzzy"] = self.fuzzy
            if self.plural is not None:
                d["plural"] = self.plural
        elif self.state is not None:
            d["state"] = self.state
        return d

    def label(self) -> str:
        what = f"msgstr[{self.plural}]" if self.plural is not None else "msgstr" if self.format == "po" else "target"
        return f"{what} of {self.id[:60]!r}, line {self.line}"


# ------------------------------------------------------------------------------------------ PO


def _po_strings(lines: Sequence[str], starts: Sequence[int], first: int, keyword: str
                ) -> tuple[list[tuple[str, int]], int]:
    """The characters of the quoted strings after ``keyword`` (e.g. ``msgstr[1]``) in the entry starting at line
    ``first`` (0-based) of the file's ``lines`` (``starts``: their file offsets), each with its file offset; and the
    line of the keyword (0-based)."""
    i = first
    while i < len(lines) and not lines[i].lstrip().startswith(keyword + " ") and \
            not lines[i].lstrip().startswith(keyword + '"'):
        i += 1
    if i >= len(lines):
        return [], first
    at = i
    out: list[tuple[str, int]] = []
    while i < len(lines):
        line = lines[i]
        body = line.lstrip()
        if i > at and not body.startswith('"'):
            break
        for m in _PO_STRING.finditer(line, line.index(keyword) + len(keyword) if i == at else 0):
            raw, base = m.group(1), starts[i] + m.start(1)
            k = 0
            while k < len(raw):
                if raw[k] == "\\" and k + 1 < len(raw):
                    out.append((_PO_ESCAPES.get(raw[k + 1], raw[k + 1]), base + k))
                    k += 2
                else:
                    out.append((raw[k], base + k))
                    k += 1
        i += 1
    return out, at


def read_po(text: str, name: str) -> Iterator[tuple[str, str, Unit]]:
    """(id, text, unit) for each translated string of a PO file. Raises :class:`InputError` naming the file when
    it is not a PO file or the ``formats`` extra is missing."""
    try:
        import polib
    except ImportError as e:
        raise InputError(f"{name}: reading PO needs the formats extra ({e.name or e} is missing): "
                         "pip install 'mtdetect[formats]'") from None
    try:
        catalogue = polib.pofile(text)
    except Exception as e:  # noqa: BLE001 - polib raises IOError/ValueError/... on a malformed file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{name}: not a valid PO file ({msg[:200]})") from None
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):  # polib reads an unterminated string as empty: say so instead
        if line.lstrip().startswith(_PO_KEYWORDS) and not _PO_LINE.fullmatch(line.rstrip("\r")):
            raise InputError(f"{name}:{number}: not a valid PO file (a malformed or unterminated string)")
    starts = tuple(line_starts(text))
    for entry in catalogue:
        if entry.obsolete or not entry.msgid:
            continue
        key = f"{entry.msgctxt}|{entry.msgid}" if entry.msgctxt else entry.msgid
        forms = sorted(entry.msgstr_plural.items()) if entry.msgid_plural else [(None, entry.msgstr)]
        for n, value in forms:
            if not value.strip():
                continue
            pairs, at = _po_strings(lines, starts, max(0, entry.linenum - 1), "msgstr" if n is None else f"msgstr[{n}]")
            body, offsets, sources = runs(pairs)
            if body != value:  # the file says it otherwise than polib read it: no exact positions
                body, offsets, sources = value, (0,), (starts[at],)
            rid = key if n is None else f"{key}[{n}]"
            yield rid, body, Unit(name, "po", key, at + 1, n, bool(entry.fuzzy), None, offsets, sources, starts, entry,
                                  catalogue)


def annotate_po(results: Sequence[tuple[Unit, Any]], mark_fuzzy: bool = False) -> str:
    """The annotated copy of the catalogue the units came from (one file): each entry with a flagged string gets a
    ``#. mtdetect: ...`` comment (score and the marked text) and, with ``mark_fuzzy``, the ``fuzzy`` flag."""
    if not results:
        return ""
    catalogue = results[0][0].catalogue
    notes: dict[int, list[str]] = {}
    entries: dict[int, Any] = {}
    for unit, d in results:
        if not d.flagged:
            continue
        form = f" msgstr[{unit.plural}]" if unit.plural is not None else ""
        marked = "; ".join(f"“{s.text}”" for s in d.spans[:3])
        notes.setdefault(id(unit.entry), []).append(
            f"mtdetect: garbled{form} {d.score:.2f}" + (f": {marked}" if marked else ""))
        entries[id(unit.entry)] = unit.entry
    for key, entry in entries.items():
        lines = [x for x in entry.comment.split("\n") if x and not x.startswith("mtdetect:")] if entry.comment else []
        entry.comment = "\n".join(lines + [n.replace("\n", " ") for n in notes[key]])
        if mark_fuzzy and "fuzzy" not in entry.flags:
            entry.flags.append("fuzzy")
    return str(catalogue)


# ------------------------------------------------------------------------------------------ XLIFF


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _pieces(el: Any) -> Iterator[str]:
    """The text of an element in document order (inline markup's text included, placeholders contribute none)."""
    if el.text:
        yield el.text
    for child in el:
        if isinstance(child.tag, str):
            yield from _pieces(child)
        if child.tail:
            yield child.tail


def read_xliff(data: bytes, name: str) -> Iterator[tuple[str, str, Unit]]:
    """(id, text, unit) for each non-empty ``<target>`` of an XLIFF 1.2 or 2.0 file. Raises :class:`InputError`
    naming the file (and line) when it is not such a file or the ``formats`` extra is missing. External entities
    and network access are off."""
    try:
        from lxml import etree
    except ImportError as e:
        raise InputError(f"{name}: reading XLIFF needs the formats extra ({e.name or e} is missing): "
                         "pip install 'mtdetect[formats]'") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise InputError(f"{name}:{e.lineno or 1}: not valid XML ({str(e.msg)[:200]})") from None
    if _local(root.tag) != "xliff":
        raise InputError(f"{name}: not an XLIFF file (the root element is <{_local(root.tag)}>)")
    text = data.decode(root.getroottree().docinfo.encoding or "utf-8", errors="replace")
    starts = tuple(line_starts(text))
    after = 0  # where the previous target's start tag ended
    for unit in root.iter():
        kind = _local(unit.tag)
        if kind not in ("trans-unit", "unit"):
            continue
        uid = str(unit.get("id") or f"line {unit.sourceline}")
        targets = [t for t in unit.iter() if _local(t.tag) == "target"]
        for k, target in enumerate(targets):
            pieces = list(_pieces(target))
            body = "".join(pieces)
            if not body.strip():
                continue
            line = int(target.sourceline or unit.sourceline or 1)
            # the target's own start tag, on its line or later (a <source> or an earlier target may share the line)
            tag = _TARGET_TAG.search(text, max(starts[min(line - 1, len(starts) - 1)], after))
            cursor = tag.end() if tag else starts[min(line - 1, len(starts) - 1)]
            after = cursor
            pairs: list[tuple[str, int]] = []
            for piece in pieces:
                got, cursor = _match(piece, text, cursor)
                pairs += got
            _, offsets, sources = runs(pairs)
            rid = uid if len(targets) == 1 else f"{uid}#{k + 1}"
            yield rid, body, Unit(name, "xliff", uid, line, None, False, target.get("state"), offsets, sources,
                                  starts)


def _match(piece: str, text: str, j: int) -> tuple[list[tuple[str, int]], int]:
    """Each character of a text piece with the file offset where it is written, reading the file from ``j`` on
    (markup before the piece skipped; an entity such as ``&amp;`` or ``&#8217;`` maps to where it starts); and where
    the reading stops. Exact when the piece is written in one stretch, as XML text is."""
    while text.startswith("<", j):
        if text.startswith("<![CDATA[", j):
            j += 9
            break
        end = text.find(">", j)
        if end < 0:
            break
        j = end + 1
    out = []
    for c in piece:
        if j >= len(text):
            out.append((c, max(0, len(text) - 1)))
            continue
        if text[j] == "&" and c != "&" or text.startswith("&amp;", j):
            end = text.find(";", j, j + 12)
            if end > 0 and html.unescape(text[j : end + 1]) == c:
                out.append((c, j))
                j = end + 1
                continue
        if c == "\n" and text.startswith("\r\n", j):
            j += 1
        out.append((c, j))
        j += 1
    return out, j
