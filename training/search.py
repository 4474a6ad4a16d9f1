"""The searches of training and finalize: calibration fit, flag threshold, span threshold, gate and score.

Every metric comes from :mod:`detector.evaluation` and every decision from :meth:`detector.Detector.decide`; this
module only decides which settings to try and which to keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detector import Detector, RawScores
from detector.evaluation import EvalRecord, Prediction, char_counts, gold_rule, predict


@dataclass
class ScoredSet:
    """Records with their raw scores (computed once; every setting is then decided from them)."""

    records: list[EvalRecord]
    raws: list[RawScores]

    def __len__(self) -> int:
        return len(self.records)


def score_set(det: Detector, rows: Sequence[dict[str, Any]], batch_size: int = 64) -> ScoredSet:
    from detector.evaluation import score_records

    return ScoredSet([EvalRecord.from_dict(r) for r in rows], score_records(det, rows, batch_size))


def max_logits(raw: RawScores) -> tuple[float, float]:
    """(garbled, any_major) logits, each the max over the record's passages (-30 when it has none)."""
    lg = raw.passage_logits
    if not lg.shape[0] or not np.isfinite(lg[:, 0]).any():
        return (-30.0, -30.0)
    return (float(np.max(lg[:, 0])), float(np.max(lg[:, 1])))


def fit_platt(feats: Sequence[tuple[float, float]], labels: Sequence[int], use_any: bool = True,
              iters: int = 3000) -> tuple[float, float, float]:
    """Calibration p = sigmoid(a*garbled + c*any_major + b), fitted by gradient descent on log loss, as (a, b, c).
    With use_any=False it is plain Platt scaling of the garbled logit (c = 0)."""
    a, b, c = 1.0, 0.0, 0.0
    n = max(1, len(feats))
    for _ in range(iters):
        ga = gb = gc = 0.0
        for (x, m), y in zip(feats, labels):
            z = max(-30.0, min(30.0, a * x + c * m + b))
            p = 1 / (1 + math.exp(-z))
            ga += (p - y) * x
            gb += p - y
            gc += (p - y) * m
        a -= 0.3 * ga / n
        b -= 0.3 * gb / n
        if use_any:
            c -= 0.3 * gc / n
    return a, b, c


def calibrated(det: Detector, news: ScoredSet, use_any: bool = True) -> Detector:
    """``det`` with its calibration refitted on ``news`` strict vs clean."""
    pairs = [(max_logits(x), 1 if r.label == "strict" else 0) for r, x in zip(news.records, news.raws)
             if r.label in ("strict", "clean")]
    a, b, c = fit_platt([x for x, _ in pairs], [y for _, y in pairs], use_any=use_any)
    return det.with_config(det.config.replace(calibration=(a, b, c)))


def record_scores(det: Detector, s: ScoredSet) -> list[float]:
    """Each record's score (max passage probability)."""
    return [float(p.max()) if p.size else 0.0 for p in (det.passage_probabilities(x) for x in s.raws)]


def span_peaks(det: Detector, s: ScoredSet, gate: float) -> list[float]:
    """Per record, the highest span value inside passages scored at least ``gate``: the record carries a span at
    span threshold t exactly when t <= its peak."""
    out = []
    for x in s.raws:
        v = x.span_values(det.span_score)
        if gate > 0.0:
            v = v[det.passage_probabilities(x)[x.token_passage] >= gate]
        out.append(float(v.max()) if v.size else 0.0)
    return out


def span_f1(det: Detector, s: ScoredSet, peaks: Sequence[float] | None = None) -> float:
    """Character span F1 of ``det``'s decisions on ``s`` (records whose peak is below the span threshold carry no
    span and are not decoded)."""
    tp = fp = fn = 0
    thr = det.span_threshold
    for i, (r, x) in enumerate(zip(s.records, s.raws)):
        if peaks is not None and peaks[i] < thr:
            fn += sum(e - b for b, e in _merged(r.spans))
            continue
        a, b, c = char_counts(predict(det, [x])[0].spans, r.spans)
        tp, fp, fn = tp + a, fp + b, fn + c
    return 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan")


def _merged(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def choose_thresholds(det: Detector, news: ScoredSet, clean: ScoredSet, max_flag: float = 0.02,
                      max_span: float = 0.02, gates: Sequence[float] = (0.0,),
                      accept: Callable[[Detector], bool] | None = None) -> dict[str, Any]:
    """Flag threshold: best strict-vs-clean F1 on ``news`` with at most ``max_flag`` of ``clean`` flagged.
    Span threshold and span gate (with ``det``'s span score): best character span F1 on ``news`` with at most
    ``max_span`` of ``clean`` records carrying a span, searched together over ``gates``. ``accept(detector)``, when
    given, must also hold (e.g. the seed article passes); when no setting satisfies it, the best setting without it
    is returned with ``accepted`` = 0."""
    from detector.evaluation import best_f1_threshold

    clean_scores = sorted(record_scores(det, clean))
    k = int(math.floor((1 - max_flag) * len(clean_scores)))
    floor_thr = clean_scores[min(k, len(clean_scores) - 1)] + 1e-6 if clean_scores else 0.5
    news_scores = record_scores(det, news)
    pairs = [(x, int(r.label == "strict")) for x, r in zip(news_scores, news.records) if r.label in ("strict", "clean")]
    _, best_t = best_f1_threshold([x for x, _ in pairs], [y for _, y in pairs],
                                  sorted({round(x, 3) for x, _ in pairs} | {0.5}), floor_thr)
    thr = max(best_t, floor_thr)
    grid = [x / 100 for x in range(5, 51)]
    found: dict[bool, tuple[float, float, float]] = {}  # accepted? -> (f1, span threshold, gate)
    floors = {}
    for gate in gates:
        peaks = sorted(span_peaks(det, clean, gate))
        k = int(math.floor((1 - max_span) * len(peaks)))
        span_floor = peaks[min(k, len(peaks) - 1)] + 1e-6 if peaks else 0.5
        floors[gate] = span_floor
        news_peaks = span_peaks(det, news, gate)
        for t in grid:
            if t < span_floor:
                continue
            cand = det.with_settings(threshold=min(1.0, thr), span_threshold=t, span_gate=gate)
            ok = accept is None or accept(cand)
            if not ok and True in found:
                continue  # the fallback is only needed while nothing is accepted
            f1 = span_f1(cand, news, news_peaks)
            if f1 > found.get(ok, (-1.0, 0.0, 0.0))[0]:
                found[ok] = (f1, t, gate)
    accepted = True in found
    f1, span_thr, gate = found[True] if accepted else found.get(False, (0.0, 0.5, 0.0))
    span_thr = min(1.0, max(span_thr, floors.get(gate, 0.0)))
    return {"threshold": round(min(1.0, thr), 4), "span_threshold": round(span_thr, 4), "span_gate": round(gate, 4),
            "span_score": det.span_score, "accepted": float(accepted), "span_f1": f1, "clean_flag_floor": floor_thr,
            "clean_span_floor": floors.get(gate, 0.0)}


def gate_grid(clean_scores: Sequence[float], max_flag: float) -> list[float]:
    """Candidate span gates: none, and every 0.01 from the clean-English flag floor up to 0.9."""
    scores = sorted(clean_scores)
    lo = scores[int((1 - max_flag) * (len(scores) - 1))] if scores else 0.5
    return [0.0] + [round(x / 100, 2) for x in range(math.ceil(lo * 100), 91)]


def seed_accepts(seed_text: str, gold: dict[str, Any], seed_raw: RawScores) -> Callable[[Detector], bool]:
    """accept(detector): does the seed article pass its gold rule with the detector's settings?"""
    def accept(det: Detector) -> bool:
        spans = [(s.start, s.end) for s in det.decide(seed_raw).spans]
        return bool(gold_rule(seed_text, gold, spans)["passed"])
    return accept


def predictions(det: Detector, s: ScoredSet) -> list[Prediction]:
    return predict(det, s.raws)
