"""``mtdetect eval``: score canonical records (text, spans, label) and compute the quality metrics."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._metrics import auprc, auroc, bootstrap_ci, char_prf, ece, word_mcc

CLEAN_ENGLISH_SOURCES = {"gum", "brown", "abc", "sotu", "newstest_en", "wmt21_ref_a", "clean"}


@dataclass(frozen=True)
class Scored:
    """One evaluated record: gold and prediction."""

    text: str
    label: str
    source: str
    gold: tuple[tuple[int, int], ...]
    score: float
    flagged: bool
    spans: tuple[tuple[int, int], ...]


def _pairs(items: Sequence[Scored], positive: set[str]) -> tuple[list[float], list[int]]:
    keep = [s for s in items if s.label in positive or s.label == "clean"]
    return [s.score for s in keep], [1 if s.label in positive else 0 for s in keep]


def _resampled(fn: Callable[[Sequence[float], Sequence[int]], float], scores: list[float],
               labels: list[int]) -> Callable[[list[int]], float]:
    def run(idx: list[int]) -> float:
        return fn([scores[i] for i in idx], [labels[i] for i in idx])

    return run


def evaluate(items: Sequence[Scored], bootstrap: int = 200, seed: int = 0) -> dict[str, Any]:
    """All metrics with bootstrap 95% intervals (resampling records)."""
    m: dict[str, Any] = {"n": len(items)}
    for name, pos in (("strict", {"strict"}), ("broad", {"strict", "broad"})):
        scores, labels = _pairs(items, pos)
        m[f"n_pos_{name}"] = sum(labels)
        m[f"n_neg_{name}"] = len(labels) - sum(labels)
        for metric, fn in (("auroc", auroc), ("auprc", auprc)):
            val = fn(scores, labels) if labels else float("nan")
            ci: tuple[float, float] = (float("nan"), float("nan"))
            if bootstrap and labels and not math.isnan(val):
                ci = bootstrap_ci(_resampled(fn, scores, labels), len(labels), bootstrap, seed)
            m[f"{metric}_{name}"] = val
            m[f"{metric}_{name}_ci"] = ci
        if labels:
            m[f"ece_{name}"] = ece(scores, labels)
    broad_items = [s for s in items if s.label in ("strict", "broad", "clean")]
    tp = sum(1 for s in broad_items if s.flagged and s.label != "clean")
    fp = sum(1 for s in broad_items if s.flagged and s.label == "clean")
    fn_ = sum(1 for s in broad_items if not s.flagged and s.label != "clean")
    m["flag_precision"] = tp / (tp + fp) if tp + fp else float("nan")
    m["flag_recall"] = tp / (tp + fn_) if tp + fn_ else float("nan")
    span = char_prf([s.spans for s in items], [s.gold for s in items])
    m["span_precision"], m["span_recall"], m["span_f1"] = span["precision"], span["recall"], span["f1"]
    if bootstrap and items:
        m["span_f1_ci"] = bootstrap_ci(
            lambda idx: char_prf([items[i].spans for i in idx], [items[i].gold for i in idx])["f1"],
            len(items), bootstrap, seed)
    m["word_mcc"] = word_mcc([s.text for s in items], [s.spans for s in items], [s.gold for s in items])
    clean = [s for s in items if s.label == "clean"]
    english = [s for s in clean if s.source in CLEAN_ENGLISH_SOURCES]
    m["clean_flag_rate"] = sum(s.flagged for s in clean) / len(clean) if clean else float("nan")
    m["clean_english_flag_rate"] = sum(s.flagged for s in english) / len(english) if english else float("nan")
    m["clean_english_span_rate"] = sum(bool(s.spans) for s in english) / len(english) if english else float("nan")
    m["n_clean_english"] = len(english)
    return m


def score_with_detector(det: Any, records: Sequence[dict], batch_size: int = 32,
                        progress: Callable[[int], None] | None = None) -> list[Scored]:
    """Run a :class:`detector.Detector` over canonical records."""
    out: list[Scored] = []
    for b in range(0, len(records), 128):
        chunk = records[b : b + 128]
        dets = det.detect_batch([r["text"] for r in chunk], batch_size=batch_size)
        for r, d in zip(chunk, dets):
            out.append(Scored(r["text"], r.get("label", "ambiguous"), r.get("source", ""),
                              tuple((s["start"], s["end"]) for s in r.get("spans", [])), d.score, d.flagged,
                              tuple((s.start, s.end) for s in d.spans)))
        if progress:
            progress(len(chunk))
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return f"[{_fmt(v[0])}, {_fmt(v[1])}]"
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    return str(v)


ROWS = [
    ("segment AUROC, strict", "auroc_strict"), ("segment AUROC, broad", "auroc_broad"),
    ("segment AUPRC, strict", "auprc_strict"), ("segment AUPRC, broad", "auprc_broad"),
    ("span precision (char)", "span_precision"), ("span recall (char)", "span_recall"), ("span F1 (char)", "span_f1"),
    ("word MCC", "word_mcc"), ("flag precision (broad)", "flag_precision"), ("flag recall (broad)", "flag_recall"),
    ("ECE, strict", "ece_strict"), ("clean flag rate", "clean_flag_rate"),
    ("clean English flag rate", "clean_english_flag_rate"), ("clean English span rate", "clean_english_span_rate"),
]


def markdown(metrics: dict[str, Any], title: str = "") -> str:
    lines = [f"### {title}", ""] if title else []
    lines += ["| metric | value | 95% CI |", "|---|---|---|"]
    for name, key in ROWS:
        if key in metrics:
            ci = metrics.get(f"{key}_ci")
            lines.append(f"| {name} | {_fmt(metrics[key])} | {_fmt(ci) if ci else ''} |")
    lines.append(f"| records | {metrics['n']} (strict {metrics.get('n_pos_strict', 0)}, strict+broad "
                 f"{metrics.get('n_pos_broad', 0)}, clean {metrics.get('n_neg_broad', 0)}) | |")
    return "\n".join(lines) + "\n"
