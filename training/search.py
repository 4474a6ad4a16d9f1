"""The searches of training and finalize: calibration fit, flag threshold, span threshold, gate and score.

Finalize chooses on every labelled source (:func:`calibrated_macro`, :func:`choose_macro`); training's quick
evaluation uses the single-slice :func:`choose_thresholds`.

Every metric comes from :mod:`detector.evaluation` and every decision from :meth:`detector.Detector.decide`; this
module only decides which settings to try and which to keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detector import Detector, RawScores
from detector.evaluation import EvalRecord, Prediction, char_counts, gold_rule, predict

# what finalize chooses on and reports (its card says so)
REPORT_SETS = [  # (split file, shown name, max records scored)
    ("val_news", "WMT21 news zh-en (held-back docs)", 0),
    ("val_ted", "WMT21 TED zh-en (out of domain)", 0),
    ("val_wmt22", "WMT22 QE zh-en dev (tags only: broad labels)", 0),
    ("val_bio", "Bio-MQM dev, 6 source languages (held-back docs)", 0),
    ("val_mlqe", "MLQE-PE dev, 5 source languages (post-edit labels)", 2000),
    ("val_mlqe_doc", "MLQE-PE train, held-back Wikipedia articles (never fitted; written by corpus.build_corpus)", 0),
    ("synth_val", "synthetic artifacts in clean val docs (sanity only)", 1500),
]
#: the labelled sources every choice is made on, each weighing the same
CHOICE_SETS = ("val_news", "val_ted", "val_wmt22", "val_bio", "val_mlqe")
SEARCH_CAP = 800  # records per source in the span search (evenly spaced); every record is measured afterwards
QUIET_MAX_RATE = 0.01  # the quiet operating point: at most this share of each bound clean source flagged
QUIET_UNBOUND = ("wmt21_ref_a",)  # measured, not bound: a human translation (translationese), not English-original


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


def max_logits(raw: RawScores) -> tuple[float, ...]:
    """The passage logits (garbled, any_major and, with the sense head, sense), each the max over the record's
    passages (-30 when it has none)."""
    lg = raw.passage_logits
    if not lg.shape[0] or not np.isfinite(lg[:, 0]).any():
        return (-30.0,) * lg.shape[1]
    return tuple(float(x) for x in np.max(lg, axis=0))


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, l2: float = 1e-4,
                 iters: int = 50) -> tuple[np.ndarray, float]:
    """Weighted logistic regression by Newton's method: (coefficients, intercept) minimising the weighted mean log
    loss plus ``l2`` times the squared coefficients."""
    n, k = x.shape
    w = np.ones(n) / n if w is None else np.asarray(w, dtype=np.float64) / np.sum(w)
    xa = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    beta = np.zeros(k + 1)
    reg = np.full(k + 1, 2 * l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(xa @ beta, -30, 30)))
        grad = xa.T @ (w * (p - y)) + reg * beta
        hess = (xa * (w * p * (1 - p))[:, None]).T @ xa + np.diag(reg) + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return beta[:k], float(beta[k])


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


def seed_accepts(seed_text: str, gold: dict[str, Any], seed_raw: RawScores) -> Callable[[Detector], bool]:
    """accept(detector): does the seed article pass its gold rule with the detector's settings?"""
    def accept(det: Detector) -> bool:
        spans = [(s.start, s.end) for s in det.decide(seed_raw).spans]
        return bool(gold_rule(seed_text, gold, spans)["passed"])
    return accept


def predictions(det: Detector, s: ScoredSet) -> list[Prediction]:
    return predict(det, s.raws)


# ------------------------------------------------------------------------------------------ choices on every source

RATIO_C = (0.0, 0.05, 0.1, 0.2, 0.4)  # weight of any_major relative to garbled
RATIO_D = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)  # weight of sense relative to garbled
RATIO_E = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)  # weight of word rarity relative to garbled


def record_z(det: Detector, s: ScoredSet, rc: float, rd: float, re: float = 0.0) -> np.ndarray:
    """Per record, the max over its scored passages of garbled + rc * any_major + rd * sense + re * rarity (-30 when
    none): the product's passage probability with calibration (1, 0, rc, rd, re), taken back to the logit scale."""
    d = det.with_config(det.config.replace(calibration=(1.0, 0.0, rc, rd, re)))
    out = np.full(len(s), -30.0)
    for i, x in enumerate(s.raws):
        p = d.passage_probabilities(x)
        p = p[p > 0]
        if p.size:
            top = min(float(p.max()), 1 - 1e-15)
            out[i] = max(-30.0, math.log(top / (1 - top)))
    return out


def _broad(s: ScoredSet) -> tuple[np.ndarray, np.ndarray]:
    keep = np.array([r.label in ("strict", "broad", "clean") for r in s.records], dtype=bool)
    y = np.array([r.label != "clean" for r in s.records], dtype=bool)
    return keep, y


def macro_auroc(det: Detector, sets: dict[str, ScoredSet], rc: float, rd: float, re: float = 0.0
                ) -> dict[str, float]:
    """Broad-label segment AUROC per source of the combined logit."""
    from detector.evaluation import auroc

    out = {}
    for name, s in sets.items():
        keep, y = _broad(s)
        z = record_z(det, s, rc, rd, re)
        out[name] = auroc([float(v) for v in z[keep]], [int(v) for v in y[keep]])
    return out


def calibrated_macro(det: Detector, labelled: dict[str, ScoredSet], clean: dict[str, ScoredSet],
                     sense: bool, max_rd: float = math.inf) -> tuple[Detector, dict[str, Any]]:
    """Calibration chosen on every labelled source: the weights of any_major and sense relative to garbled that
    maximise the mean (macro) broad-label segment AUROC over the sources, then (for a model with a word table) the
    weights of sense and word rarity with that any_major weight, then scale and intercept fitted by logistic
    regression on broad vs clean records, every source (and clean English as one more) weighing the same."""
    grid: list[dict[str, float]] = []

    def evaluate(points: Iterable[tuple[float, float, float]]) -> dict[str, float]:
        """Add the points' macro AUROC to the grid; the best point so far (the first of equals)."""
        for rc, rd, re in points:
            grid.append({"rc": rc, "rd": rd, "re": re,
                         "macro_auroc": float(np.mean(list(macro_auroc(det, labelled, rc, rd, re).values())))})
        best = grid[0]
        for g in grid[1:]:
            if g["macro_auroc"] > best["macro_auroc"] + 1e-9:
                best = g
        return best

    rds = [r for r in RATIO_D if r <= max_rd] if sense else [0.0]
    best = evaluate((rc, rd, 0.0) for rc in RATIO_C for rd in rds)
    if det.config.word_table:
        best = evaluate((best["rc"], rd, re) for rd in rds for re in RATIO_E[1:])
    rc, rd, re = best["rc"], best["rd"], best["re"]
    zs, ys, ws = [], [], []
    groups = dict(labelled)
    groups["clean English"] = ScoredSet([r for s in clean.values() for r in s.records],
                                        [x for s in clean.values() for x in s.raws])
    for s in groups.values():
        keep, y = _broad(s)
        if not keep.any():
            continue
        zs.append(record_z(det, s, rc, rd, re)[keep])
        ys.append(y[keep].astype(np.float64))
        ws.append(np.full(int(keep.sum()), 1.0 / keep.sum()))
    coef, b = fit_logistic(np.concatenate(zs)[:, None], np.concatenate(ys), np.concatenate(ws), l2=0.0)
    a = float(coef[0])
    cal = (a, b, a * rc, a * rd, a * re)
    return det.with_config(det.config.replace(calibration=cal)), {"rc": rc, "rd": rd, "re": re,
                                                                  "macro_auroc": best["macro_auroc"], "grid": grid}


MIN_CLEAN_N = 100  # a clean source smaller than this may still have floor(max_rate * 100) records above a cut


def _quantile_floor(values: Sequence[float], max_rate: float) -> float:
    """The smallest cut above all but floor(max_rate * max(n, MIN_CLEAN_N)) of ``values`` (so that "at most 1%"
    of a 46-record source allows one record, not none)."""
    v = sorted(values, reverse=True)
    if not v:
        return 0.0
    k = int(math.floor(max_rate * max(len(v), MIN_CLEAN_N)))
    return v[min(k, len(v) - 1)] + 1e-6


def choose_flag_threshold(det: Detector, labelled: dict[str, ScoredSet], clean: dict[str, ScoredSet],
                          max_flag: float | Mapping[str, float] = 0.01) -> tuple[float, float, float]:
    """(threshold, its mean flag F1, the clean floor): the best mean F1 (broad vs clean) over the labelled sources
    among thresholds that flag at most ``max_flag`` of every clean source (one record of a source under 100);
    ``max_flag`` may also give each clean set its own budget (a mapping with a key per clean set)."""
    from detector.evaluation import best_f1_threshold

    budget = {k: max_flag[k] if isinstance(max_flag, Mapping) else max_flag for k in clean}
    floor_thr = max(_quantile_floor(record_scores(det, s), budget[k]) for k, s in clean.items())
    scored = {k: record_scores(det, s) for k, s in labelled.items()}
    cands = sorted({round(x / 200, 3) for x in range(1, 200)})
    best_t, best_f = floor_thr, -1.0
    for t in [c for c in cands if c >= floor_thr] or [min(1.0, floor_thr)]:
        f1s = []
        for k, s in labelled.items():
            keep, y = _broad(s)
            sc = [scored[k][i] for i in np.flatnonzero(keep)]
            f, _ = best_f1_threshold(sc, [int(v) for v in y[keep]], [t], 0.0)
            f1s.append(f)
        m = float(np.mean(f1s))
        if m > best_f:
            best_f, best_t = m, t
    return min(1.0, max(best_t, floor_thr)), best_f, floor_thr


def choose_macro(det: Detector, labelled: dict[str, ScoredSet], clean: dict[str, ScoredSet], max_flag: float = 0.01,
                 max_span: float = 0.01, gates: Sequence[float] = (0.0,),
                 accept: Callable[[Detector], bool] | None = None) -> dict[str, Any]:
    """Flag threshold: :func:`choose_flag_threshold`. Span threshold and gate (with ``det``'s span score): the best mean
    character span F1 over the labelled sources among settings that put a span on at most ``max_span`` of every
    clean source's records, and that ``accept`` (e.g. the seed rule) takes; ``accepted`` = 0 when none does."""
    thr, best_f, floor_thr = choose_flag_threshold(det, labelled, clean, max_flag)
    grid = [x / 100 for x in range(5, 96)]
    found: dict[bool, tuple[float, float, float]] = {}
    floors = {}
    for gate in gates:
        span_floor = max(_quantile_floor(span_peaks(det, s, gate), max_span) for s in clean.values())
        floors[gate] = span_floor
        peaks = {k: span_peaks(det, s, gate) for k, s in labelled.items()}
        for t in grid:
            if t < span_floor:
                continue
            cand = det.with_settings(threshold=thr, span_threshold=t, span_gate=gate)
            ok = accept is None or accept(cand)
            if not ok and True in found:
                continue
            f1s = [span_f1(cand, s, peaks[k]) for k, s in labelled.items()]
            f1 = float(np.mean([0.0 if math.isnan(f) else f for f in f1s]))
            if f1 > found.get(ok, (-1.0, 0.0, 0.0))[0]:
                found[ok] = (f1, t, gate)
    accepted = True in found
    f1, span_thr, gate = found[True] if accepted else found.get(False, (0.0, 0.6, 0.0))
    return {"threshold": round(thr, 4), "span_threshold": round(min(1.0, max(span_thr, floors.get(gate, 0.0))), 4),
            "span_gate": round(gate, 4), "span_score": det.span_score, "accepted": float(accepted),
            "macro_span_f1": f1, "macro_flag_f1": best_f, "clean_flag_floor": floor_thr,
            "clean_span_floor": floors.get(gate, 0.0)}
