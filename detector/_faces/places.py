"""Where a record's characters stand in the file they were read from: runs of text offsets mapped to file offsets,
and file offsets to (line, column). Shared by the structured-file readers (documents, localisation)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence


def line_starts(text: str) -> list[int]:
    """The file offset of each line's first character."""
    return [0] + [m.end() for m in re.finditer("\n", text)]


def runs(pairs: Sequence[tuple[str, int]]) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """Text from (character, file offset) pairs, and its runs: the text character at ``starts[i] + k`` stands at file
    offset ``sources[i] + k``."""
    starts: list[int] = []
    sources: list[int] = []
    for k, (_, src) in enumerate(pairs):
        if not (starts and sources[-1] + (k - starts[-1]) == src):
            starts.append(k)
            sources.append(src)
    return "".join(c for c, _ in pairs), tuple(starts), tuple(sources)


def file_position(starts: Sequence[int], sources: Sequence[int], lines: Sequence[int], offset: int,
                  fallback_line: int) -> tuple[int, int]:
    """(line, column), 1-based, in the file of the text character at ``offset``; ``fallback_line`` without runs."""
    if not starts:
        return fallback_line, 1
    i = max(0, bisect.bisect_right(starts, offset) - 1)
    src = sources[i] + max(0, offset - starts[i])
    ln = bisect.bisect_right(lines, src) - 1
    return ln + 1, src - lines[ln] + 1
