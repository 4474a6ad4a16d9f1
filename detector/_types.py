"""Result types returned by :class:`detector.Detector`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Span:
    """A garbled stretch of the input: ``text == original[start:end]``."""

    start: int
    end: int
    text: str
    score: float
    category: str = "fluency"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Passage:
    """A sentence-like unit of the input with its own probability of being garbled."""

    start: int
    end: int
    text: str
    score: float
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Detection:
    """Result for one text: overall probability (max over passages), decision, spans and passages."""

    score: float
    flagged: bool
    spans: tuple[Span, ...] = field(default_factory=tuple)
    passages: tuple[Passage, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "flagged": self.flagged,
            "spans": [s.to_dict() for s in self.spans],
            "passages": [p.to_dict() for p in self.passages],
        }
