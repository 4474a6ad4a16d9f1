"""Result, settings and raw-score types of :class:`detector.Detector`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any

import numpy as np

from ._errors import SettingsError
from ._rules import RuleSpan

#: token values spans are cut from: "fluency" = P(fluency); "error" = 1 - P(ok) = P(fluency) + P(accuracy)
SPAN_SCORES = ("fluency", "error")
#: classes of the token head, in the order of :attr:`RawScores.token_probs`' columns
TOKEN_LABELS = ("ok", "fluency", "accuracy")
#: outputs of the passage head, in the order of :attr:`RawScores.passage_logits`' columns
PASSAGE_OUTPUTS = ("garbled", "any_major")
#: the optional third passage output: a linear "makes no sense" head on the passage features (model 1.5.0 on)
SENSE_OUTPUT = "sense"


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
    language: str = "en"  # ISO 639-1 code; a passage in another language is not scored (score 0, no span)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: a text's status: scored as English, or not English at all (no passage scored; see Detection.status)
SCORED, NOT_ENGLISH = "scored", "not_english"
STATUSES = (SCORED, NOT_ENGLISH)
#: span categories: the network's (fluency, accuracy) and the rules' (repetition, untranslated)
SPAN_CATEGORIES = ("fluency", "accuracy", "repetition", "untranslated")


@dataclass(frozen=True)
class Detection:
    """Result for one text: overall probability (max over passages), decision, spans and passages. ``status`` is
    ``"scored"``, or ``"not_english"`` for a text with no English passage (nothing scored: score 0, not flagged;
    ``language`` says which language it is); a passage in another language inside English text is scored as
    untranslated instead."""

    score: float
    flagged: bool
    spans: tuple[Span, ...] = field(default_factory=tuple)
    passages: tuple[Passage, ...] = field(default_factory=tuple)
    language: str = "en"  # "en" when any passage is English (or there is none), else the main language found
    status: str = SCORED

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "flagged": self.flagged,
            "status": self.status,
            "language": self.language,
            "spans": [s.to_dict() for s in self.spans],
            "passages": [p.to_dict() for p in self.passages],
        }


@dataclass(frozen=True)
class Settings:
    """The decision settings: how raw scores become flags and spans. Validated on creation.

    - ``threshold``: a text (and a passage) is flagged when its probability is at least this.
    - ``span_threshold``: spans are runs of tokens whose span value is at least this.
    - ``span_gate``: spans are reported only inside passages whose probability is at least this (0: anywhere).
    - ``span_score``: the span value, ``"error"`` = 1 - P(ok) (each span labelled ``fluency`` or ``accuracy`` by
      the class with more probability over it) or ``"fluency"`` = P(fluency) (every span labelled ``fluency``).
    """

    threshold: float = 0.5
    span_threshold: float = 0.5
    span_gate: float = 0.0
    span_score: str = "error"

    def __post_init__(self) -> None:
        for name in ("threshold", "span_threshold", "span_gate"):
            object.__setattr__(self, name, _unit(name, getattr(self, name)))
        if self.span_score not in SPAN_SCORES:
            raise SettingsError(f"span_score must be one of {', '.join(SPAN_SCORES)}, not {self.span_score!r}")

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (validated; unknown names are refused)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return Settings(**{**asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unit(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SettingsError(f"{name} must be a number between 0 and 1, not {v!r}")
    x = float(v)
    if math.isnan(x) or not 0.0 <= x <= 1.0:
        raise SettingsError(f"{name} must be a number between 0 and 1, not {v!r}")
    return x


@dataclass(frozen=True, eq=False)
class RawScores:
    """What the network says about one text, before any threshold: the input to every decision.

    All offsets are character offsets into ``text``. Tokens are stored passage by passage, in text order.

    - ``passage_offsets``: (P, 2) int, [start, end) of each passage (sentence-like unit).
    - ``passage_logits``: (P, K) float, the passage head's (garbled, any_major) logits and, for a model with the
      sense head, its "makes no sense" logit (K = 3), each the max over the passage's windows; -inf for a passage
      without tokens.
    - ``token_offsets``: (N, 2) int, [start, end) of each token.
    - ``token_passage``: (N,) int, the passage index of each token (non-decreasing).
    - ``token_probs``: (N, 3) float, per-token probabilities of the classes in :data:`TOKEN_LABELS`
      (ok, fluency, accuracy).
    - ``passage_languages``: ISO 639-1 code of each passage ("en" when not identified as another language); empty
      when language identification was off (every passage English).
    - ``lm_features``: (P, F) the second reader's features of each passage (:data:`detector._fusion.LM_FEATURES`),
      NaN rows for the passages it did not read, only in the fused mode (``Detector.load(accurate=True)``); None
      otherwise.
    - ``passage_rarity``: (P,) how rare each passage's rarest word is (:meth:`detector._rarity.WordTable.rarity`),
      for a model with a word table; None otherwise.
    - ``rule_spans``: the rule detectors' findings (:mod:`detector._rules`: repetition loops, untranslated runs),
      character offsets into ``text``, sorted.
    """

    text: str
    passage_offsets: np.ndarray
    passage_logits: np.ndarray
    token_offsets: np.ndarray
    token_passage: np.ndarray
    token_probs: np.ndarray
    passage_languages: tuple[str, ...] = ()
    lm_features: np.ndarray | None = None
    passage_rarity: np.ndarray | None = None
    rule_spans: tuple[RuleSpan, ...] = ()

    @cached_property
    def english(self) -> np.ndarray:
        """(P,) bool: which passages are scored (English); computed once (every decision reads it)."""
        if not self.passage_languages:
            out = np.ones(self.passage_offsets.shape[0], dtype=bool)
        else:
            out = np.array([x == "en" for x in self.passage_languages], dtype=bool)
        out.setflags(write=False)
        return out

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v.setflags(write=False)

    @property
    def n_tokens(self) -> int:
        return int(self.token_offsets.shape[0])

    def span_values(self, span_score: str) -> np.ndarray:
        """Per-token values spans are cut from: P(fluency) ("fluency") or 1 - P(ok) ("error")."""
        if span_score == "fluency":
            return self.token_probs[:, 1]
        if span_score == "error":
            return self.token_probs[:, 1] + self.token_probs[:, 2]
        raise SettingsError(f"span_score must be one of {', '.join(SPAN_SCORES)}, not {span_score!r}")
