"""The one evaluation path: metrics, evaluation records, and scoring them with a :class:`~detector.Detector`.

Used by ``mtdetect eval``, training's finalize and ablations, and the benchmarks, so a metric has one name and one
definition everywhere. Rules:

- Labels: ``strict`` (a major fluency error), ``broad`` (a major error, none of them fluency), ``clean`` (no error);
  other labels (``ambiguous`` ...) count only for span metrics. Segment metrics: *strict* = strict vs clean,
  *broad* = strict + broad vs clean. Flag precision and recall use the broad labels.
- Spans: character-level, micro-averaged over records, against all gold spans (``span_*``), the major ones
  (``*_major``: severity major or unknown) and the fluency ones (``*_fluency``). Predicted spans come from
  :meth:`Detector.decide`, the product's own decoding.
- Undefined values are NaN, whenever a denominator is zero (no positives, nothing flagged, no span anywhere ...);
  :func:`jsonable` writes them as null. F1 is 2tp / (2tp + fp + fn), so it is 0, not NaN, when nothing is predicted
  but gold spans exist.
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._types import Detection, RawScores

__all__ = [
    "ENGLISH_ORIGINAL",
    "clean_threshold",
    "filter_recall",
    "CLEAN_LABEL",
    "METRICS",
    "EvalRecord",
    "Prediction",
    "auprc",
    "auroc",
    "best_f1_threshold",
    "bootstrap_ci",
    "char_counts",
    "char_prf",
    "ece",
    "evaluate",
    "spearman",
    "fmt",
    "gold_rule",
    "jsonable",
    "markdown",
    "mcc",
    "pair_metrics",
    "predict",
    "rates_by_source",
    "score_records",
    "word_mcc",
]

NAN = float("nan")
CLEAN_LABEL = "clean"
POSITIVE = {"strict": ("strict",), "broad": ("strict", "broad")}

Spans = tuple[tuple[int, int], ...]

# ------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class EvalRecord:
    """Gold side of one evaluated text (a canonical corpus record or an ``mtdetect eval`` input line)."""

    text: str
    label: str = "ambiguous"
    source: str = ""
    spans: Spans = ()  # every gold span
    spans_major: Spans = ()  # severity major or unknown
    spans_fluency: Spans = ()  # category fluency
    doc_id: str | None = None  # with seg and system: pairs of MT outputs of one source segment
    seg: Any = None
    system: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalRecord:
        sp = d.get("spans") or []
        return cls(
            text=d["text"], label=str(d.get("label", "ambiguous")), source=str(d.get("source", "")),
            spans=tuple((int(s["start"]), int(s["end"])) for s in sp),
            spans_major=tuple((int(s["start"]), int(s["end"])) for s in sp
                              if s.get("severity", "unknown") in ("major", "unknown")),
            spans_fluency=tuple((int(s["start"]), int(s["end"])) for s in sp if s.get("category") == "fluency"),
            doc_id=d.get("doc_id"), seg=d.get("seg"), system=d.get("system") or None,
        )


@dataclass(frozen=True)
class Prediction:
    """What a system predicted for one text: a score, a flag and character spans."""

    score: float
    flagged: bool
    spans: Spans = ()

    @classmethod
    def of(cls, d: Detection) -> Prediction:
        return cls(d.score, d.flagged, tuple((s.start, s.end) for s in d.spans))


def score_records(det: Any, records: Sequence[EvalRecord | dict[str, Any]], batch_size: int = 32,
                  progress: Callable[[int], None] | None = None) -> list[RawScores]:
    """Raw scores of every record's text (a :class:`detector.Detector`), in order."""
    texts = [r.text if isinstance(r, EvalRecord) else r["text"] for r in records]
    out: list[RawScores] = []
    for b in range(0, len(texts), 256):
        out += det.score_raw(texts[b : b + 256], batch_size=batch_size)
        if progress:
            progress(len(texts[b : b + 256]))
    return out


def predict(det: Any, raws: Iterable[RawScores]) -> list[Prediction]:
    """Predictions from raw scores with the detector's calibration and settings (the product's decoding)."""
    return [Prediction.of(det.decide(r)) for r in raws]


# ------------------------------------------------------------------------------------------ metrics


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        r = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = r
        i = j + 1
    return ranks


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (ties count one half). NaN when one class is missing."""
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return NAN
    ranks = _ranks(scores)
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson on tie-averaged ranks). NaN with fewer than 2 items or a constant side."""
    if len(a) != len(b):
        raise ValueError("spearman needs two sequences of the same length")
    if len(a) < 2:
        return NAN
    ra, rb = _ranks(a), _ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(va * vb) if va > 0 and vb > 0 else NAN


def auprc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Average precision (area under the precision-recall curve, step-wise). NaN without positives."""
    pos = sum(1 for y in labels if y)
    if pos == 0:
        return NAN
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp = seen = 0
    ap = 0.0
    i = 0
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


def _ratio(a: float, b: float) -> float:
    return a / b if b else NAN


def _chars(spans: Sequence[tuple[int, int]]) -> set[int]:
    out: set[int] = set()
    for s, e in spans:
        out.update(range(s, e))
    return out


def char_counts(pred: Sequence[tuple[int, int]], gold: Sequence[tuple[int, int]]) -> tuple[int, int, int]:
    """Character-level (tp, fp, fn) of one record's predicted spans against its gold spans."""
    ps, gs = _chars(pred), _chars(gold)
    tp = len(ps & gs)
    return tp, len(ps) - tp, len(gs) - tp


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "tp": tp, "fp": fp, "fn": fn}


def char_prf(pred: Sequence[Sequence[tuple[int, int]]], gold: Sequence[Sequence[tuple[int, int]]]) -> dict[str, float]:
    """Micro-averaged character-level precision, recall and F1 over records (see the module's NaN rule)."""
    tp = fp = fn = 0
    for p, g in zip(pred, gold):
        a, b, c = char_counts(p, g)
        tp, fp, fn = tp + a, fp + b, fn + c
    return _prf(tp, fp, fn)


def mcc(tp: int, fp: int, fn: int, tn: int) -> float:
    """Matthews correlation coefficient (NaN when undefined)."""
    den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / den if den else NAN


_WORD = re.compile(r"\S+")


def word_mcc(texts: Sequence[str], pred: Sequence[Sequence[tuple[int, int]]],
             gold: Sequence[Sequence[tuple[int, int]]]) -> float:
    """Word-level MCC (OK/BAD per whitespace word, BAD when any character of it is in a span)."""
    tp = fp = fn = tn = 0
    for t, p, g in zip(texts, pred, gold):
        ps, gs = _chars(p), _chars(g)
        for m in _WORD.finditer(t):
            r = range(m.start(), m.end())
            pb = any(i in ps for i in r) if ps else False
            gb = any(i in gs for i in r) if gs else False
            tp += pb and gb
            fp += pb and not gb
            fn += gb and not pb
            tn += not pb and not gb
    return mcc(tp, fp, fn, tn)


def ece(probs: Sequence[float], labels: Sequence[int], bins: int = 10) -> float:
    """Expected calibration error with equal-width bins. NaN without records."""
    if not probs:
        return NAN
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, p in enumerate(probs) if (lo <= p < hi) or (b == bins - 1 and p == 1.0)]
        if idx:
            conf = sum(probs[i] for i in idx) / len(idx)
            acc = sum(labels[i] for i in idx) / len(idx)
            total += len(idx) / len(probs) * abs(conf - acc)
    return total


def bootstrap_ci(fn: Callable[[list[int]], float], n: int, rounds: int = 200, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``fn`` over resampled index lists (NaN rounds are dropped)."""
    rng = random.Random(seed)
    vals = []
    for _ in range(rounds):
        v = fn([rng.randrange(n) for _ in range(n)])
        if not math.isnan(v):
            vals.append(v)
    if not vals:
        return (NAN, NAN)
    vals.sort()
    return (vals[int(alpha / 2 * (len(vals) - 1))], vals[int((1 - alpha / 2) * (len(vals) - 1))])


def best_f1_threshold(scores: Sequence[float], labels: Sequence[int], candidates: Sequence[float],
                      floor: float = -math.inf) -> tuple[float, float]:
    """The candidate threshold t >= ``floor`` whose decision ``score >= t`` has the best F1 against ``labels``
    (the first such candidate on ties), as (f1, t); (-1.0, 0.5) when no candidate is at least ``floor``."""
    best = (-1.0, 0.5)
    pairs = sorted(zip(scores, labels))
    total_pos = sum(1 for _, y in pairs if y)
    xs = [x for x, _ in pairs]
    pos_below = [0]
    for _, y in pairs:
        pos_below.append(pos_below[-1] + (1 if y else 0))
    for t in candidates:
        if t < floor:
            continue
        k = bisect.bisect_left(xs, t)  # records below t
        tp = total_pos - pos_below[k]
        fp = (len(pairs) - k) - tp
        fn = pos_below[k]
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        if f1 > best[0]:
            best = (f1, t)
    return best


def pair_metrics(records: Sequence[EvalRecord], scores: Sequence[float]) -> dict[str, float]:
    """Within-segment ranking: over pairs of MT outputs of the same source segment (same document and segment
    number, different systems), the share where the worse-labelled output scores higher (ties count half).
    Unlike AUROC over all records, this cannot be won by length or by how hard a source sentence is."""
    segs: dict[tuple[Any, Any], list[tuple[str, float]]] = {}
    for r, x in zip(records, scores):
        if r.seg is not None and r.system:
            segs.setdefault((r.doc_id, r.seg), []).append((r.label, x))
    m: dict[str, float] = {}
    for name, hi, lo in (("strict_clean", ("strict",), ("clean",)), ("broad_clean", ("strict", "broad"), ("clean",)),
                         ("strict_broad", ("strict",), ("broad",))):
        won = total = 0.0
        for items in segs.values():
            for la, a in items:
                if la not in hi:
                    continue
                for lb, b in items:
                    if lb in lo:
                        total += 1
                        won += 1.0 if a > b else 0.5 if a == b else 0.0
        if total:
            m[f"pair_acc_{name}"] = won / total
            m[f"n_pairs_{name}"] = total
    return m


#: English-original clean sources: the human English the filter view holds to a false-alarm budget (a human
#: translation such as WMT21 reference A is reported, never bound)
ENGLISH_ORIGINAL = ("abc", "brown", "gum", "newstest_en", "sotu")


def clean_threshold(clean: Mapping[str, Sequence[float]], rate: float = 0.01) -> float:
    """The lowest score cut that flags (score >= cut) at most ``rate`` of human English, every clean source
    weighing the same: the mean over the sources of the share flagged is at most ``rate``."""
    arrays = {k: sorted(v) for k, v in clean.items() if len(v)}
    if not arrays:
        return math.inf
    values = sorted({x for v in arrays.values() for x in v})

    def mean_rate(cut: float) -> float:
        return sum(1 - bisect.bisect_left(v, cut) / len(v) for v in arrays.values()) / len(arrays)

    lo, hi = 0, len(values)  # the answer is values[i] + epsilon for the smallest i with mean_rate ok, or values[0]
    if mean_rate(values[0]) <= rate:
        return values[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if mean_rate(math.nextafter(values[mid], math.inf)) <= rate:
            hi = mid
        else:
            lo = mid + 1
    return math.nextafter(values[min(lo, len(values) - 1)], math.inf)


def filter_recall(garbled: Mapping[str, Sequence[float]], clean: Mapping[str, Sequence[float]],
                  rate: float = 0.01) -> dict[str, Any]:
    """The filter view: recall of each source's garbled records (their scores) at the cut of
    :func:`clean_threshold` (at most ``rate`` of human English flagged, every clean source weighing the same):
    {"threshold", "recall": {source: recall}, "mean", "min"}."""
    cut = clean_threshold(clean, rate)
    rec = {k: (sum(1 for x in v if x >= cut) / len(v)) if len(v) else NAN for k, v in garbled.items()}
    vals = [x for x in rec.values() if not math.isnan(x)]
    return {"threshold": cut, "recall": rec, "mean": sum(vals) / len(vals) if vals else NAN,
            "min": min(vals) if vals else NAN}


def rates_by_source(records: Sequence[EvalRecord], preds: Sequence[Prediction]) -> dict[str, dict[str, float]]:
    """Per source: records, share flagged and share carrying a span."""
    by: dict[str, list[Prediction]] = {}
    for r, p in zip(records, preds):
        by.setdefault(r.source, []).append(p)
    return {src: {"n": len(ps), "flag_rate": sum(p.flagged for p in ps) / len(ps),
                  "span_rate": sum(bool(p.spans) for p in ps) / len(ps)} for src, ps in sorted(by.items())}


#: metric name -> what it measures (the names used in metrics.json, the model card, benchmarks and ``mtdetect eval``)
METRICS = {
    "auroc_strict": "segment AUROC, strict vs clean",
    "auroc_broad": "segment AUROC, strict+broad vs clean",
    "auprc_strict": "segment AUPRC, strict vs clean",
    "auprc_broad": "segment AUPRC, strict+broad vs clean",
    "ece_strict": "expected calibration error, strict vs clean",
    "flag_precision": "flag precision (strict+broad vs clean)",
    "flag_recall": "flag recall (strict+broad vs clean)",
    "span_precision": "span precision (characters, all gold spans)",
    "span_recall": "span recall (characters, all gold spans)",
    "span_f1": "span F1 (characters, all gold spans)",
    "span_f1_major": "span F1 (characters, major gold spans)",
    "span_f1_fluency": "span F1 (characters, fluency gold spans)",
    "word_mcc": "word-level MCC (all gold spans)",
    "pair_acc_strict_clean": "pair accuracy, strict > clean outputs of one source segment",
    "pair_acc_broad_clean": "pair accuracy, strict/broad > clean outputs of one source segment",
    "clean_flag_rate": "share of clean records flagged",
    "clean_span_rate": "share of clean records carrying a span",
}


def evaluate(records: Sequence[EvalRecord], preds: Sequence[Prediction], bootstrap: int = 0,
             seed: int = 0) -> dict[str, Any]:
    """Every metric of :data:`METRICS` that the records allow, plus counts; with ``bootstrap`` > 0, 95% intervals
    (``<name>_ci``) of the segment AUROCs and span F1 from resampled records."""
    if len(records) != len(preds):
        raise ValueError(f"{len(records)} records but {len(preds)} predictions")
    m: dict[str, Any] = {"n": len(records)}
    for name, pos in POSITIVE.items():
        keep = [i for i, r in enumerate(records) if r.label in pos or r.label == CLEAN_LABEL]
        scores = [preds[i].score for i in keep]
        labels = [1 if records[i].label in pos else 0 for i in keep]
        m[f"n_{name}"] = sum(labels)
        for metric, fn in (("auroc", auroc), ("auprc", auprc)):
            m[f"{metric}_{name}"] = fn(scores, labels)
        if name == "strict":
            m["ece_strict"] = ece(scores, labels)
        if bootstrap and labels:
            def run(idx: list[int], s: list[float] = scores, y: list[int] = labels) -> float:
                return auroc([s[i] for i in idx], [y[i] for i in idx])
            m[f"auroc_{name}_ci"] = bootstrap_ci(run, len(labels), bootstrap, seed)
    n_clean = sum(1 for r in records if r.label == CLEAN_LABEL)
    m["n_clean"] = n_clean
    labelled = [(r.label != CLEAN_LABEL, p.flagged) for r, p in zip(records, preds)
                if r.label in POSITIVE["broad"] or r.label == CLEAN_LABEL]
    tp = sum(1 for y, f in labelled if y and f)
    m["flag_precision"] = _ratio(tp, sum(1 for _, f in labelled if f))
    m["flag_recall"] = _ratio(tp, sum(1 for y, _ in labelled if y))
    for suffix, attr in (("", "spans"), ("_major", "spans_major"), ("_fluency", "spans_fluency")):
        counts = [char_counts(p.spans, getattr(r, attr)) for r, p in zip(records, preds)]
        prf = _prf(sum(c[0] for c in counts), sum(c[1] for c in counts), sum(c[2] for c in counts))
        m[f"span_precision{suffix}"], m[f"span_recall{suffix}"], m[f"span_f1{suffix}"] = (
            prf["precision"], prf["recall"], prf["f1"])
        if suffix == "" and bootstrap and records:
            def run_f1(idx: list[int], c: list[tuple[int, int, int]] = counts) -> float:
                return _prf(sum(c[i][0] for i in idx), sum(c[i][1] for i in idx), sum(c[i][2] for i in idx))["f1"]
            m["span_f1_ci"] = bootstrap_ci(run_f1, len(records), bootstrap, seed)
    m["word_mcc"] = word_mcc([r.text for r in records], [p.spans for p in preds], [r.spans for r in records])
    clean = [p for r, p in zip(records, preds) if r.label == CLEAN_LABEL]
    m["clean_flag_rate"] = _ratio(sum(p.flagged for p in clean), len(clean))
    m["clean_span_rate"] = _ratio(sum(bool(p.spans) for p in clean), len(clean))
    m.update(pair_metrics(records, [p.score for p in preds]))
    return m


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None and tuples as lists (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def fmt(v: Any) -> str:
    """A metric value for a table: 3 decimals, n/a for NaN or None, intervals as [lo, hi]."""
    if isinstance(v, tuple | list):
        return f"[{fmt(v[0])}, {fmt(v[1])}]"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def markdown(metrics: dict[str, Any], title: str = "") -> str:
    """One evaluation as a markdown table (metric, value, 95% interval)."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| metric | value | 95% CI |", "|---|---|---|"]
    for key, name in METRICS.items():
        if key in metrics:
            ci = metrics.get(f"{key}_ci")
            lines.append(f"| {name} | {fmt(metrics[key])} | {fmt(ci) if ci else ''} |")
    lines.append(f"| records | {metrics['n']} (strict {metrics.get('n_strict', 0)}, strict+broad "
                 f"{metrics.get('n_broad', 0)}, clean {metrics.get('n_clean', 0)}) | |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ the seed article


def gold_rule(text: str, gold: dict[str, Any], spans: Sequence[tuple[int, int]]) -> dict[str, Any]:
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
    others = [i for i, p in enumerate(sentences) if not any(s < p.end and p.start < e for s, e in wanted)]
    touched = {i for i in others for s, e in stray if s < sentences[i].end and sentences[i].start < e}
    return {
        "passed": all(hit.values()) and len(touched) <= 1,
        "must_flag_hit": hit,
        "other_sentences_touched": len(touched),
        "other_sentences": [text[sentences[i].start : sentences[i].end] for i in sorted(touched)],
    }
