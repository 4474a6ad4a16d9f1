"""Score evaluation records with a Detector and compute the validation metrics; pick thresholds."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from detector._detector import Detector, _passage_spans, span_values
from detector._metrics import auprc, auroc, best_f1_threshold, char_prf, ece, word_mcc


@dataclass
class Scored:
    text: str
    label: str
    gold_all: list[tuple[int, int]]
    gold_major: list[tuple[int, int]]
    gold_fluency: list[tuple[int, int]]
    score: float  # calibrated passage probability (max over passages)
    logit: float  # garbled logit, max over passages
    logit_any: float  # any-major logit, max over passages
    passage_logits: list[tuple[float, float]]
    offs: list[list[tuple[int, int]]]  # token offsets, one list per passage
    p_flu: list[float]  # per token, all passages in order
    p_acc: list[float]
    tok_passage: list[int]  # passage index of every token in p_flu / p_acc
    passage_scores: list[float]  # calibrated probability per passage
    p_span: list[float]  # per token, the value spans are cut from (see set_span_score)


def set_span_score(scored: Sequence[Scored], mode: str) -> None:
    """Cut spans from P(fluency) ("fluency") or from 1 - P(ok) = P(fluency) + P(accuracy) ("error")."""
    for s in scored:
        s.p_span = span_values(list(zip(s.p_flu, s.p_acc)), mode)


def gated(s: Scored, gate: float, values: Sequence[float] | None = None) -> Sequence[float]:
    """Token span values (``s.p_span`` unless ``values`` is given), zeroed in passages scored below ``gate``
    (0: no gating)."""
    v = s.p_span if values is None else values
    if gate <= 0.0:
        return v
    return [p if s.passage_scores[k] >= gate else 0.0 for p, k in zip(v, s.tok_passage)]


def score_records(det: Detector, records: Sequence[dict], batch_size: int = 64) -> list[Scored]:
    out: list[Scored] = []
    for b in range(0, len(records), 256):
        chunk = records[b : b + 256]
        states = [det._prepare(r["text"]) for r in chunk]
        det._run(states, batch_size)
        for r, st in zip(chunk, states):
            logit = max((g for g, _ in st.passage_logit), default=-math.inf)
            logit_any = max((m for _, m in st.passage_logit), default=-math.inf)
            sp = r.get("spans", [])
            out.append(
                Scored(
                    text=r["text"],
                    label=r["label"],
                    gold_all=[(s["start"], s["end"]) for s in sp],
                    gold_major=[(s["start"], s["end"]) for s in sp if s["severity"] in ("major", "unknown")],
                    gold_fluency=[(s["start"], s["end"]) for s in sp if s["category"] == "fluency"],
                    score=max((det._calibrated(x) for x in st.passage_logit), default=0.0),
                    logit=logit if logit != -math.inf else -30.0,
                    logit_any=logit_any if logit_any != -math.inf else -30.0,
                    passage_logits=list(st.passage_logit),
                    offs=[list(row) for row in st.token_offsets],
                    p_flu=[p[0] for row in st.token_probs for p in row],
                    p_acc=[p[1] for row in st.token_probs for p in row],
                    tok_passage=[k for k, row in enumerate(st.token_probs) for _ in row],
                    passage_scores=[det._calibrated(x) for x in st.passage_logit],
                    p_span=[],
                )
            )
    set_span_score(out, det.span_score)
    return out


def by_passage(s: Scored, values: Sequence[Any]) -> list[Sequence[Any]]:
    """Split a per-token list of a record into one list per passage (tokens are stored passage by passage)."""
    out: list[Sequence[Any]] = []
    i = 0
    for row in s.offs:
        out.append(values[i : i + len(row)])
        i += len(row)
    return out


def pred_spans(s: Scored, thr: float, gate: float = 0.0, probs: Sequence[float] | None = None) -> list[tuple[int, int]]:
    """Predicted spans of a record (its span values unless ``probs`` is given), passage by passage."""
    p = gated(s, gate) if probs is None else probs
    return [(x.start, x.end) for x in _passage_spans(s.text, s.offs, by_passage(s, p), thr, "fluency")]


def segment_metrics(scored: Sequence[Scored], threshold: float) -> dict[str, float]:
    strict = [(s.score, 1 if s.label == "strict" else 0) for s in scored if s.label in ("strict", "clean")]
    broad = [(s.score, 1 if s.label in ("strict", "broad") else 0) for s in scored
             if s.label in ("strict", "broad", "clean")]
    m: dict[str, float] = {}
    if strict:
        m["auroc_strict"] = auroc([a for a, _ in strict], [b for _, b in strict])
        m["auprc_strict"] = auprc([a for a, _ in strict], [b for _, b in strict])
        m["ece_strict"] = ece([a for a, _ in strict], [b for _, b in strict])
    if broad:
        m["auroc_broad"] = auroc([a for a, _ in broad], [b for _, b in broad])
        m["auprc_broad"] = auprc([a for a, _ in broad], [b for _, b in broad])
        ys = [b for _, b in broad]
        fl = [a >= threshold for a, _ in broad]
        tp = sum(1 for f, y in zip(fl, ys) if f and y)
        m["flag_precision_broad"] = tp / max(1, sum(fl))
        m["flag_recall_broad"] = tp / max(1, sum(ys))
    m["n_strict"] = sum(b for _, b in strict)
    m["n_broad"] = sum(b for _, b in broad)
    m["n_clean"] = sum(1 for s in scored if s.label == "clean")
    return m


def pair_metrics(records: Sequence[dict], scores: Sequence[float]) -> dict[str, float]:
    """Within-segment ranking: over pairs of MT outputs of the same source segment (same document and segment
    number, different systems), the share where the worse-labelled output scores higher (ties count half).
    Unlike AUROC over all records, this cannot be won by length or by how hard a source sentence is."""
    segs: dict[tuple[str, Any], list[tuple[str, float]]] = {}
    for r, x in zip(records, scores):
        if r.get("seg") is not None and r.get("system"):
            segs.setdefault((r["doc_id"], r["seg"]), []).append((r["label"], x))
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


def span_metrics(scored: Sequence[Scored], span_thr: float, gate: float = 0.0) -> dict[str, float]:
    preds = [pred_spans(s, span_thr, gate) for s in scored]
    m: dict[str, float] = {}
    for name, attr in (("all", "gold_all"), ("major", "gold_major"), ("fluency", "gold_fluency")):
        r = char_prf(preds, [getattr(s, attr) for s in scored])
        m[f"span_p_{name}"], m[f"span_r_{name}"], m[f"span_f1_{name}"] = r["precision"], r["recall"], r["f1"]
    m["word_mcc_all"] = word_mcc([s.text for s in scored], preds, [s.gold_all for s in scored])
    return m


def clean_metrics(scored: Sequence[Scored], threshold: float, span_thr: float, gate: float = 0.0) -> dict[str, float]:
    n = max(1, len(scored))
    return {
        "clean_flag_rate": sum(1 for s in scored if s.score >= threshold) / n,
        "clean_span_rate": sum(1 for s in scored if any(p >= span_thr for p in gated(s, gate))) / n,
        "n_clean_passages": len(scored),
    }


def choose_thresholds(news: Sequence[Scored], clean: Sequence[Scored], max_flag: float = 0.02,
                      max_span: float = 0.02, gates: Sequence[float] = (0.0,),
                      accept: Callable[[float, float, float], bool] | None = None) -> dict[str, Any]:
    """Passage threshold: best strict-vs-clean F1 on news with <= max_flag of clean English flagged.
    Span threshold: best character F1 (all spans) on news with <= max_span of clean passages carrying a span;
    span threshold and span gate (spans only inside passages scored >= gate) are searched together over ``gates``.
    ``accept(threshold, span_threshold, gate)``, when given, must also hold (e.g. an acceptance example passes);
    when no setting satisfies it, the best setting without it is returned with ``accepted`` = 0."""
    clean_scores = sorted(s.score for s in clean)
    k = int(math.floor((1 - max_flag) * len(clean_scores)))
    floor_thr = clean_scores[min(k, len(clean_scores) - 1)] + 1e-6 if clean_scores else 0.5
    pairs = [(s.score, int(s.label == "strict")) for s in news if s.label in ("strict", "clean")]
    _, best_t = best_f1_threshold([x for x, _ in pairs], [y for _, y in pairs],
                                  sorted({round(x, 3) for x, _ in pairs} | {0.5}), floor_thr)
    thr = max(best_t, floor_thr)
    grid = [x / 100 for x in range(5, 51)]
    found: dict[bool, tuple[float, float, float]] = {}  # accepted? -> (f1, span threshold, gate)
    floors = {}
    for gate in gates:
        peaks = sorted(max(gated(s, gate), default=0.0) for s in clean)
        k = int(math.floor((1 - max_span) * len(peaks)))
        span_floor = peaks[min(k, len(peaks) - 1)] + 1e-6 if peaks else 0.5
        floors[gate] = span_floor
        for t in grid:
            if t < span_floor:
                continue
            ok = accept is None or accept(thr, t, gate)
            if not ok and True in found:
                continue  # the fallback is only needed while nothing is accepted
            f1 = char_prf([pred_spans(s, t, gate) for s in news], [s.gold_all for s in news])["f1"]
            if f1 > found.get(ok, (-1.0, 0.0, 0.0))[0]:
                found[ok] = (f1, t, gate)
    accepted = True in found
    f1, span_thr, gate = found[True] if accepted else found.get(False, (0.0, 0.5, 0.0))
    span_thr = max(span_thr, floors.get(gate, 0.0))
    return {"threshold": round(thr, 4), "span_threshold": round(span_thr, 4), "span_gate": round(gate, 4),
            "accepted": float(accepted), "span_f1": f1, "clean_flag_floor": floor_thr, "clean_span_floor": floors.get(gate, 0.0)}


def fit_platt(feats: Sequence[tuple[float, float]], labels: Sequence[int], use_any: bool = True,
              iters: int = 3000) -> tuple[float, float, float]:
    """Calibration p = sigmoid(a*garbled + c*any_major + b), fitted by gradient descent on log loss.
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
