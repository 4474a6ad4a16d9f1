"""Decisions from raw scores: calibrated passage probabilities, flags and spans (the one decoding rule)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from ._rules import RULE_PROBABILITY, UNTRANSLATED, RuleSpan
from ._types import NOT_ENGLISH, SCORED, Detection, Passage, RawScores, Settings, Span

_WORD_CHAR = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'-")

Calibration = tuple[float, ...]  # (a, b, c, d, e), see ModelConfig

if TYPE_CHECKING:
    from ._fusion import Fusion


def encoder_logits(raw: RawScores, calibration: Calibration) -> np.ndarray:
    """(P,) the encoder's calibrated logit of each passage: a * garbled + c * any_major + d * sense + e * rarity + b
    (sense: the third logit column, when the model has the sense head; rarity: the raw scores' word rarity, when
    the model has a word table); -inf for a passage that is not scored (no tokens, or another language)."""
    a, b, c, d, *more = calibration
    e = more[0] if more else 0.0
    lg = raw.passage_logits
    g = lg[:, 0].astype(np.float64)
    m = lg[:, 1].astype(np.float64)
    out = np.full(g.shape[0], -np.inf, dtype=np.float64)
    ok = np.isfinite(g) & np.isfinite(m) & raw.english  # passages in another language are not scored
    z = a * g[ok] + c * m[ok] + b
    if d and lg.shape[1] > 2:
        z = z + d * lg[ok, 2].astype(np.float64)
    if e and raw.passage_rarity is not None:
        z = z + e * raw.passage_rarity[ok]
    out[ok] = z
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.zeros(z.shape[0], dtype=np.float64)
    ok = z > -60.0
    out[ok] = 1.0 / (1.0 + np.exp(-np.clip(z[ok], -60.0, 60.0)))
    return out


def encoder_probabilities(raw: RawScores, calibration: Calibration) -> np.ndarray:
    """(P,) the encoder's own calibrated probability of each passage (0 when not scored); no rule, no fusion."""
    return _sigmoid(encoder_logits(raw, calibration))


def passage_probabilities(raw: RawScores, calibration: Calibration, fusion: Fusion | None = None) -> np.ndarray:
    """The probability of each passage: the encoder's (:func:`encoder_probabilities`), or with ``fusion`` (the
    fused mode) and the raw scores' LM features, the fused one (the reader's evidence counts for the passages it
    read: an LM feature row and an encoder probability of at least the fusion's cutoff); then at least
    :data:`detector._rules.RULE_PROBABILITY` for a passage a rule flags (:func:`rule_passages`)."""
    z = encoder_logits(raw, calibration)
    if fusion is not None:
        ok = np.isfinite(z)
        feats = raw.lm_features
        read = np.zeros(z.shape[0], dtype=bool)
        if feats is not None:
            read = ok & np.isfinite(feats[:, 0]) & (_sigmoid(z) >= fusion.cutoff)
        fused = np.full(z.shape[0], -np.inf)
        fused[ok] = fusion.fused_logits(z[ok], feats[ok] if feats is not None else None, read[ok])
        z = fused
    out = _sigmoid(z)
    hit = rule_passages(raw)
    out[hit] = np.maximum(out[hit], RULE_PROBABILITY)
    return out


def rule_passages(raw: RawScores) -> np.ndarray:
    """(P,) bool: passages a rule flags: an English passage holding a rule span (a repetition loop, an untranslated
    run), and a passage in another language inside a text with English passages (untranslated)."""
    english = raw.english
    hit = ~english if english.any() else np.zeros(english.shape[0], dtype=bool)
    for i, _ in _english_findings(raw):
        hit[i] = True
    return hit


def rule_spans(raw: RawScores) -> list[Span]:
    """The rules' spans: each finding of an English passage, and every passage in another language inside a text
    with English passages (the whole passage, category untranslated)."""
    text = raw.text
    out = [Span(r.start, r.end, text[r.start : r.end], RULE_PROBABILITY, r.category) for _, r in _english_findings(raw)]
    if raw.english.any():
        for (s, e), en in zip(raw.passage_offsets.tolist(), raw.english.tolist()):
            if not en:
                out.append(Span(int(s), int(e), text[int(s) : int(e)], RULE_PROBABILITY, UNTRANSLATED))
    return sorted(out, key=lambda sp: (sp.start, sp.end))


def _english_findings(raw: RawScores) -> Iterator[tuple[int, RuleSpan]]:
    """(passage index, finding) for each rule finding that starts in an English passage."""
    starts = raw.passage_offsets[:, 0]
    for r in raw.rule_spans:
        i = int(np.searchsorted(starts, r.start, side="right")) - 1
        if 0 <= i < raw.english.shape[0] and raw.english[i]:
            yield i, r


def find_spans(raw: RawScores, probs: np.ndarray, settings: Settings) -> list[Span]:
    """Spans: runs of consecutive tokens of one passage whose span value is at least ``settings.span_threshold``,
    inside passages whose probability ``probs`` is at least ``settings.span_gate``, widened to whole words. A span
    never crosses a passage boundary. With span score "error" each span is labelled by the class (fluency or
    accuracy) with more probability over the tokens it touches."""
    n = raw.n_tokens
    if n == 0:
        return []
    values = raw.span_values(settings.span_score)
    tp = raw.token_passage
    on = (values >= settings.span_threshold) & raw.english[tp]
    if settings.span_gate > 0.0:
        on &= probs[tp] >= settings.span_gate
    if not on.any():
        return []
    new_passage = np.empty(n, dtype=bool)
    new_passage[0] = True
    new_passage[1:] = tp[1:] != tp[:-1]
    prev_on = np.empty(n, dtype=bool)
    prev_on[0] = False
    prev_on[1:] = on[:-1]
    starts = np.flatnonzero(on & (~prev_on | new_passage))
    next_on = np.empty(n, dtype=bool)
    next_on[-1] = False
    next_on[:-1] = on[1:] & ~new_passage[1:]
    ends = np.flatnonzero(on & ~next_on)  # inclusive token index of each run's last token
    text = raw.text
    offs = raw.token_offsets
    out: list[Span] = []
    out_passage: list[int] = []
    for i, j in zip(starts.tolist(), ends.tolist()):
        s, e = int(offs[i, 0]), int(offs[j, 1])
        while s > 0 and text[s - 1] in _WORD_CHAR and text[s] in _WORD_CHAR:
            s -= 1
        while e < len(text) and text[e] in _WORD_CHAR and text[e - 1] in _WORD_CHAR:
            e += 1
        pi = int(tp[i])
        ps, pe = raw.passage_offsets[pi]
        s, e = max(int(ps), grapheme_start(text, s)), min(int(pe), grapheme_end(text, e))  # never out of the passage
        while s < e and text[s] == _ZWJ and (s == 0 or text[s - 1].isspace()):
            s += 1  # a zero-width joiner after a space joins nothing: it starts no span
        if s >= e:
            continue
        score = float(values[i : j + 1].max())
        if out and out_passage[-1] == pi and s <= out[-1].end:
            prev = out.pop()
            out_passage.pop()
            s, score = prev.start, max(prev.score, score)
        out.append(Span(s, e, text[s:e], score, "fluency"))
        out_passage.append(pi)
    if settings.span_score == "error":
        out = [_categorised(raw, sp, pi) for sp, pi in zip(out, out_passage)]
    return out


_ZWJ = "\u200d"


def _extends(c: str) -> bool:
    """Does ``c`` belong to the character before it, as people see it (combining mark, variation selector,
    zero-width joiner, emoji modifier or tag)?"""
    o = ord(c)
    if o < 0x300:
        return False
    return (unicodedata.category(c) in ("Mn", "Me", "Mc") or c == _ZWJ or 0xFE00 <= o <= 0xFE0F
            or 0xE0100 <= o <= 0xE01EF or 0x1F3FB <= o <= 0x1F3FF or 0xE0020 <= o <= 0xE007F)


def grapheme_end(text: str, e: int) -> int:
    """``e`` moved forward past marks that belong to the character before it, and past characters joined to it by
    a zero-width joiner (an emoji sequence), so a span never ends inside a character as people see it."""
    n = len(text)
    while 0 < e < n and not text[e].isspace() and (_extends(text[e]) or text[e - 1] == _ZWJ):
        e += 1
    return e


def grapheme_start(text: str, s: int) -> int:
    """``s`` moved back to the start of the character as people see it."""
    while 0 < s < len(text) and not text[s - 1].isspace() and (_extends(text[s]) or text[s - 1] == _ZWJ):
        s -= 1
    return s


def _categorised(raw: RawScores, sp: Span, passage: int) -> Span:
    """Label a span fluency or accuracy by which class has more probability over the passage's tokens it touches."""
    tp = raw.token_passage
    lo = int(np.searchsorted(tp, passage, side="left"))
    hi = int(np.searchsorted(tp, passage, side="right"))
    offs = raw.token_offsets[lo:hi]
    a = lo + int(np.searchsorted(offs[:, 1], sp.start, side="right"))  # first token ending after the span start
    b = lo + int(np.searchsorted(offs[:, 0], sp.end, side="left"))  # tokens starting before the span end
    flu = float(raw.token_probs[a:b, 1].sum())
    acc = float(raw.token_probs[a:b, 2].sum())
    category = "fluency" if flu >= acc else "accuracy"
    return sp if category == sp.category else Span(sp.start, sp.end, sp.text, sp.score, category)


def decide(raw: RawScores, settings: Settings, calibration: Calibration, fusion: Fusion | None = None
           ) -> Detection:
    """The decision for one text: passage probabilities (the fused ones with ``fusion``), flags, and spans gated on
    those probabilities, plus the rules' spans."""
    probs = passage_probabilities(raw, calibration, fusion)
    text = raw.text
    langs = raw.passage_languages or ("en",) * len(probs)
    english_text = bool(raw.english.any()) or not len(probs)
    passages = tuple(
        Passage(int(s), int(e), text[int(s) : int(e)], float(p), english_text and p >= settings.threshold, lang)
        for (s, e), p, lang in zip(raw.passage_offsets.tolist(), probs.tolist(), langs)
    )
    score = float(probs.max()) if probs.size else 0.0
    flagged = any(p.flagged for p in passages)  # a text with no English passage (or none at all) is not flagged
    spans = find_spans(raw, probs, settings)
    ruled = rule_spans(raw)
    if ruled:  # a rule's finding replaces the network's spans over it
        spans = sorted([sp for sp in spans if not any(sp.start < r.end and r.start < sp.end for r in ruled)] + ruled,
                       key=lambda sp: (sp.start, sp.end))
    return Detection(score, flagged, tuple(spans), passages, main_language(language_sizes(passages)),
                     SCORED if english_text else NOT_ENGLISH)


def language_sizes(passages: Iterable[Passage], into: dict[str, int] | None = None) -> dict[str, int]:
    """Characters per passage language (added to ``into`` when given)."""
    size = {} if into is None else into
    for p in passages:
        size[p.language] = size.get(p.language, 0) + p.end - p.start
    return size


def main_language(sizes: dict[str, int]) -> str:
    """A text's language: "en" when any passage is English (or there is none), else the one with most characters."""
    if not sizes or "en" in sizes:
        return "en"
    return max(sizes, key=lambda k: sizes[k])
