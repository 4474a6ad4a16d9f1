"""Evaluation metrics (dependency-free): AUROC, AUPRC, character-level span P/R/F1, MCC, ECE."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (ties count one half). NaN when one class is missing."""
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        r = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = r
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def auprc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Average precision (area under the precision-recall curve, step-wise)."""
    pos = sum(1 for y in labels if y)
    if pos == 0:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp = 0
    ap = 0.0
    i = 0
    seen = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        new_tp = sum(1 for k in range(i, j + 1) if labels[order[k]])
        seen += j - i + 1
        tp += new_tp
        ap += (new_tp / pos) * (tp / seen)
        i = j + 1
    return ap


def char_prf(pred: Sequence[Sequence[tuple[int, int]]], gold: Sequence[Sequence[tuple[int, int]]]) -> dict[str, float]:
    """Micro-averaged character-level precision, recall and F1 over documents (binary)."""
    tp = fp = fn = 0
    for p, g in zip(pred, gold):
        ps = _chars(p)
        gs = _chars(g)
        tp += len(ps & gs)
        fp += len(ps - gs)
        fn += len(gs - ps)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"precision": prec, "recall": rec, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def _chars(spans: Sequence[tuple[int, int]]) -> set[int]:
    out: set[int] = set()
    for s, e in spans:
        out.update(range(s, e))
    return out


def mcc(tp: int, fp: int, fn: int, tn: int) -> float:
    """Matthews correlation coefficient (0 when undefined)."""
    den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / den if den else 0.0


def word_mcc(texts: Sequence[str], pred: Sequence[Sequence[tuple[int, int]]],
             gold: Sequence[Sequence[tuple[int, int]]]) -> float:
    """Word-level MCC (OK/BAD per whitespace word, BAD when any character of it is in a span)."""
    import re

    tp = fp = fn = tn = 0
    for t, p, g in zip(texts, pred, gold):
        ps, gs = _chars(p), _chars(g)
        for m in re.finditer(r"\S+", t):
            r = range(m.start(), m.end())
            pb = any(i in ps for i in r)
            gb = any(i in gs for i in r)
            tp += pb and gb
            fp += pb and not gb
            fn += gb and not pb
            tn += not pb and not gb
    return mcc(tp, fp, fn, tn)


def best_f1_threshold(scores: Sequence[float], labels: Sequence[int], candidates: Sequence[float],
                      floor: float = -math.inf) -> tuple[float, float]:
    """The candidate threshold t >= ``floor`` whose decision ``score >= t`` has the best F1 against ``labels``
    (the first such candidate on ties), as (f1, t); (-1.0, 0.5) when no candidate is at least ``floor``."""
    best = (-1.0, 0.5)
    pairs = list(zip(scores, labels))
    for t in candidates:
        if t < floor:
            continue
        tp = sum(1 for x, y in pairs if x >= t and y)
        fp = sum(1 for x, y in pairs if x >= t and not y)
        fn = sum(1 for x, y in pairs if x < t and y)
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        if f1 > best[0]:
            best = (f1, t)
    return best


def ece(probs: Sequence[float], labels: Sequence[int], bins: int = 10) -> float:
    """Expected calibration error with equal-width bins."""
    if not probs:
        return float("nan")
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, p in enumerate(probs) if (lo <= p < hi) or (b == bins - 1 and p == 1.0)]
        if idx:
            conf = sum(probs[i] for i in idx) / len(idx)
            acc = sum(labels[i] for i in idx) / len(idx)
            total += len(idx) / len(probs) * abs(conf - acc)
    return total


def bootstrap_ci(
    fn: Callable[[list[int]], float], n: int, rounds: int = 200, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``fn`` over resampled index lists."""
    rng = random.Random(seed)
    vals = []
    for _ in range(rounds):
        idx = [rng.randrange(n) for _ in range(n)]
        v = fn(idx)
        if not math.isnan(v):
            vals.append(v)
    if not vals:
        return (float("nan"), float("nan"))
    vals.sort()
    lo = vals[int(alpha / 2 * (len(vals) - 1))]
    hi = vals[int((1 - alpha / 2) * (len(vals) - 1))]
    return (lo, hi)


def gold_rule(text: str, gold: dict, spans: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """The seed-article pass rule: every must_flag span overlaps a predicted span, and predicted spans outside
    the must_flag/should_flag/ignore regions touch at most one other sentence (a sentence holding no
    must_flag/should_flag text)."""
    from ._text import split_passages

    regions = [(g["start"], g["end"]) for g in gold["spans"]]
    must = [(g["start"], g["end"], g["text"]) for g in gold["spans"] if g["kind"] == "must_flag"]
    hit = {t: any(s < me and ms < e for s, e in spans) for ms, me, t in must}
    stray = [(s, e) for s, e in spans if not any(s < re_ and rs < e for rs, re_ in regions)]
    sentences = split_passages(text)
    wanted = [(g["start"], g["end"]) for g in gold["spans"] if g["kind"] in ("must_flag", "should_flag")]
    # "other" sentences: those that hold no must_flag/should_flag text
    others = [i for i, p in enumerate(sentences) if not any(s < p.end and p.start < e for s, e in wanted)]
    touched = {i for i in others for s, e in stray if s < sentences[i].end and sentences[i].start < e}
    return {
        "passed": all(hit.values()) and len(touched) <= 1,
        "must_flag_hit": hit,
        "other_sentences_touched": len(touched),
        "other_sentences": [text[sentences[i].start : sentences[i].end] for i in sorted(touched)],
    }
