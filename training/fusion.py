"""Fit and choose the fused mode (issue #31): SmolLM2-135M as a second reader of the passages the encoder finds
suspect, its token evidence fused into the passage probability.

    python -m training.lm_cache --corpus build/corpus --out build/lm_cache        # the reader's output, cached
    python -m training.fusion --model models/mtdetect-minilm-shape --cache build/lm_cache

1. The LM head: a one-layer tanh network (``--hidden`` units, fixed seed) from the 23 per-passage features of the
   reader's tokens (:data:`detector._fusion.LM_FEATURES`) to "garbled", fitted on the training sample of
   ``training.lm_cache`` (WMT20/21 news, Bio-MQM, MLQE-PE, synthetic artifacts and every clean English source;
   each source-and-label group weighing the same). The encoder does not enter this fit: on its own training
   records its outputs are overconfident (a fit with them ranks validation worse: ``training/ABLATION.md``).
2. On the validation sample: the fused logit is ``alpha * (encoder logit + w * LM logit) + beta``. For each ``w`` of
   :data:`LM_WEIGHTS`, alpha and beta by logistic regression (every source and clean English weighing the same);
   the chosen ``w`` is the one with the best macro broad AUROC among those whose filter recall (garbled MT caught
   at 1% of English-original human English flagged, every clean source weighing the same) is at least the
   encoder's alone (``w = 0``): it must win the ranking without losing the filter view.
3. The cascade: the reader reads a passage only when the encoder's probability is at least ``cutoff``: the largest
   of :data:`CUTOFFS` that changes the decision of at most ``--max-changed`` of the validation and clean records
   at both operating points' thresholds and costs at most :data:`MAX_AUROC_LOSS` of macro AUROC, next to reading
   every passage (the LM's gain is in the ranking, which a cascade that reads little gives back). An unread
   passage takes the median LM logit of the val_clean passages.
4. Operating points: ``default`` flags at most 1% of each English-original val_clean source (WMT21 reference A, a
   human translation, measured, not bound); ``recall`` is the old default's rule (at most 2% of val_clean as a
   whole), the best mean flag F1 above its floor. For each, spans are either the network's token spans (span
   threshold searched, error score) or the whole flagged passage (span threshold 0), inside flagged passages: the
   better macro span F1 with at most 1% of each clean source's records carrying a span, the seed article passing
   its gold rule.
5. Everything measured on the same records, with SmolLM2's mean surprisal as a baseline; ``fusion.json`` (with the
   measurements) and the model card's section are written, and SHA256SUMS refreshed.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detector import Detector, RawScores, Settings
from detector.evaluation import (
    ENGLISH_ORIGINAL,
    auroc,
    evaluate,
    filter_recall,
    gold_rule,
    jsonable,
    rates_by_source,
    spearman,
)
from detector.network import LM_FEATURES, Fusion, OperatingPoint, ensure_reader, lm_features

from .finalize import by_source, length_of, load_seed
from .lm_cache import read_cache, sample
from .search import (
    ScoredSet,
    _broad,
    choose_flag_threshold,
    fit_logistic,
    record_scores,
    score_set,
    span_f1,
)

VAL_SOURCES = ("val_news", "val_ted", "val_wmt22", "val_bio", "val_mlqe")
LM_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
CUTOFFS = (0.0, 0.2, 0.25, 0.3, 0.325, 0.35, 0.375, 0.4, 0.45, 0.5, 0.55)
#: the cascade may cost at most this much macro AUROC against reading every passage
MAX_AUROC_LOSS = 0.005
SPAN_GRID = tuple(x / 100 for x in range(5, 96, 5))
CARD_HEADING = "## Accurate mode (fusion.json: the second reader)"


def log(msg: str) -> None:
    print(f"[fusion {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ features


def with_lm(raws: list[RawScores], toks: list[np.ndarray]) -> list[RawScores]:
    """Raw scores with the LM features of every passage, from the cached reader tokens of each record (offsets
    into the record's text): what the runtime computes for a passage it reads."""
    out = []
    for r, t in zip(raws, toks):
        feats = np.zeros((r.passage_offsets.shape[0], len(LM_FEATURES)))
        starts = t[:, 0] if len(t) else np.zeros(0)
        for i, (s, e) in enumerate(r.passage_offsets.tolist()):
            feats[i] = lm_features(t[(starts >= s) & (starts < e), 2:6] if len(t) else np.zeros((0, 4)))
        out.append(dataclasses.replace(r, lm_features=feats))
    return out


def passage_rows(rows: list[dict[str, Any]], toks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Training rows of the LM head: (features, target, group) per passage with a target: every passage of a clean
    record is 0; a garbled record's passage is 1 when it is the record's only passage or overlaps a span."""
    from detector.network import split_passages

    xs, ys, groups = [], [], []
    for r, t in zip(rows, toks):
        if r["label"] not in ("strict", "broad", "clean"):
            continue
        pieces = split_passages(r["text"])
        starts = t[:, 0] if len(t) else np.zeros(0)
        for p in pieces:
            if r["label"] == "clean":
                y = 0.0
            elif len(pieces) == 1 or any(sp["start"] < p.end and p.start < sp["end"] for sp in r.get("spans", [])):
                y = 1.0
            else:
                continue
            xs.append(lm_features(t[(starts >= p.start) & (starts < p.end), 2:6] if len(t) else np.zeros((0, 4))))
            ys.append(y)
            groups.append(f"{r['source']}:{int(y)}")
    return np.array(xs), np.array(ys), groups


def fit_lm_head(x: np.ndarray, y: np.ndarray, groups: list[str], hidden: int, seed: int, epochs: int = 400,
                weight_decay: float = 1e-3) -> dict[str, Any]:
    """The LM head's parameters (mean, scale, w1, b1, w2, b2), every group weighing the same; full-batch Adam."""
    count = {g: groups.count(g) for g in set(groups)}
    w = np.array([1.0 / count[g] for g in groups])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=weight_decay)
    xt = torch.tensor((x - mean) / scale, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    wt = torch.tensor(w / w.sum(), dtype=torch.float32)
    for _ in range(epochs):
        opt.zero_grad()
        loss = (wt * torch.nn.functional.binary_cross_entropy_with_logits(net(xt).squeeze(-1), yt,
                                                                            reduction="none")).sum()
        loss.backward()
        opt.step()
    first: Any = net[0]
    last: Any = net[2]
    return {"mean": tuple(map(float, mean)), "scale": tuple(map(float, scale)),
            "w1": tuple(tuple(map(float, r)) for r in first.weight.detach().numpy()),
            "b1": tuple(map(float, first.bias.detach().numpy())),
            "w2": tuple(map(float, last.weight.detach().numpy()[0])), "b2": float(last.bias.detach().numpy()[0])}


def fusion_of(head: dict[str, Any], lm_weight: float, alpha: float = 1.0, beta: float = 0.0, cutoff: float = 0.0,
              unread: float = 0.0, settings: Settings | None = None,
              points: tuple[OperatingPoint, ...] = ()) -> Fusion:
    return Fusion(**head, lm_weight=float(lm_weight), alpha=float(alpha), beta=float(beta), cutoff=float(cutoff),
                  unread_lm_logit=float(unread), settings=settings or Settings(threshold=0.5),
                  operating_points=points)


# ------------------------------------------------------------------------------------------ measures


def clean_scores(det: Detector, clean: ScoredSet, sources: tuple[str, ...] = ENGLISH_ORIGINAL) -> dict[str, list[float]]:
    scores = record_scores(det, clean)
    return {s: [x for x, r in zip(scores, clean.records) if r.source == s] for s in sources}


def garbled_scores(det: Detector, sets: dict[str, ScoredSet]) -> dict[str, list[float]]:
    out = {}
    for name, s in sets.items():
        keep, y = _broad(s)
        sc = record_scores(det, s)
        out[name] = [sc[i] for i in np.flatnonzero(keep & y)]
    return out


def macro(det: Detector, sets: dict[str, ScoredSet]) -> dict[str, float]:
    out = {}
    for name, s in sets.items():
        keep, y = _broad(s)
        sc = record_scores(det, s)
        out[name] = auroc([sc[i] for i in np.flatnonzero(keep)], [int(v) for v in y[keep]])
    return out


def rescaled(det: Detector, head: dict[str, Any], w: float, val: dict[str, ScoredSet], clean: ScoredSet) -> Fusion:
    """alpha and beta of the fused logit by logistic regression on record logits (every validation source and
    clean English weighing the same)."""
    d = det.with_fusion(fusion_of(head, w))
    zs, ys, ws = [], [], []
    for s in [*val.values(), clean]:
        keep, y = _broad(s)
        p = np.clip(np.array(record_scores(d, s)), 1e-12, 1 - 1e-12)
        zs.append(np.log(p / (1 - p))[keep])
        ys.append(y[keep].astype(np.float64))
        ws.append(np.full(int(keep.sum()), 1.0 / max(1, keep.sum())))
    coef, b = fit_logistic(np.concatenate(zs)[:, None], np.concatenate(ys), np.concatenate(ws), l2=0.0)
    return fusion_of(head, w, float(coef[0]), b)


def decisions(det: Detector, sets: list[ScoredSet]) -> np.ndarray:
    return np.array([sc >= det.threshold for s in sets for sc in record_scores(det, s)])


def span_choice(det: Detector, val: dict[str, ScoredSet], clean: dict[str, ScoredSet], seed_raw: RawScores,
                seed_text: str, gold: dict[str, Any]) -> tuple[Settings, dict[str, Any]]:
    """Spans inside flagged passages (gate = the threshold): the network's token spans at the best span threshold
    of :data:`SPAN_GRID` (at most 1% of each clean source's records with a span), or the whole flagged passage
    (threshold 0); the better macro span F1 among settings with which the seed article passes."""
    thr = det.threshold
    report: dict[str, Any] = {}
    best: tuple[bool, float, Settings] | None = None
    for t in (0.0, *SPAN_GRID):
        cand = det.with_settings(span_threshold=t, span_gate=thr, span_score="error")
        over = [float(np.mean([bool(cand.decide(x).spans) for x in s.raws])) for s in clean.values()]
        if max(over) > 0.01 + 1e-9:
            continue
        f1s = [span_f1(cand, s) for s in val.values()]
        f1 = float(np.mean([0.0 if math.isnan(f) else f for f in f1s]))
        passed = bool(gold_rule(seed_text, gold, [(s.start, s.end) for s in cand.decide(seed_raw).spans])["passed"])
        report["whole passage" if t == 0.0 else f"token spans {t:.2f}"] = {
            "macro_span_f1": f1, "per_source": dict(zip(val, f1s)), "seed_passes": passed,
            "max_clean_span_rate": max(over)}
        key = (passed, f1)
        if best is None or key > best[:2]:
            best = (passed, f1, cand.settings)
    assert best is not None, "no span setting keeps clean English under 1% (the whole passage always does)"
    return best[2], report


def measure(det: Detector, sets: dict[str, ScoredSet], val: dict[str, ScoredSet], clean: ScoredSet,
            seed_raw: RawScores, seed_text: str, gold: dict[str, Any], mlqe_rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"settings": det.settings.to_dict()}
    for name, s in sets.items():
        preds = [det.decide(x) for x in s.raws]
        from detector.evaluation import Prediction

        p = [Prediction(d.score, d.flagged, tuple((sp.start, sp.end) for sp in d.spans)) for d in preds]
        m = evaluate(s.records, p)
        row = {k: m.get(k) for k in ("n", "auroc_broad", "flag_recall", "flag_precision", "span_f1", "clean_flag_rate",
                                      "clean_span_rate")}
        if name in ("val_clean", "test_clean"):
            row["by_source"] = rates_by_source(s.records, p)
        if name == "val_mlqe":
            da = [(r["meta"]["da"], d.score) for r, d in zip(mlqe_rows, preds) if r.get("meta", {}).get("da") is not None]
            row["spearman_da"] = -spearman([x for _, x in da], [v for v, _ in da])
            by_pair: dict[str, list[tuple[float, float]]] = {}
            for r, d in zip(mlqe_rows, preds):
                if r.get("meta", {}).get("da") is not None:
                    by_pair.setdefault(str(r["doc_id"]).split(":")[1], []).append((r["meta"]["da"], d.score))
            row["spearman_da_by_pair"] = {k: {"n": len(v), "spearman": -spearman([x for x, _ in v], [y for _, y in v])}
                                          for k, v in sorted(by_pair.items())}
        out[name] = row
    out["filter_recall"] = filter_recall(garbled_scores(det, val), clean_scores(det, clean))
    out["length"] = length_of(det, {**val, "val_clean": clean})  # human = English-original val_clean
    d = det.decide(seed_raw)
    out["seed_article"] = gold_rule(seed_text, gold, [(s.start, s.end) for s in d.spans])
    fluent = [p for p in d.passages if not any(p.start < g["end"] and g["start"] < p.end for g in gold["spans"])]
    out["seed_article"]["fluent_passages_flagged"] = sum(p.flagged for p in fluent)
    out["seed_article"]["passages"] = len(d.passages)
    return out


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.fusion", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("models/mtdetect-minilm-shape"))
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--cache", type=Path, default=Path("build/lm_cache"), help="training.lm_cache's output")
    ap.add_argument("--reader", type=Path, help="the built reader (default: the reader cache); for the seed article")
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-changed", type=float, default=0.01,
                    help="the cascade may change at most this share of decisions (default 0.01)")
    ap.add_argument("--report", type=Path, help="also write the markdown section to this file")
    ap.add_argument("--dry-run", action="store_true", help="measure and print, write nothing into the model folder")
    args = ap.parse_args(argv)
    t0 = time.time()
    det = Detector.load(args.model)
    groups = sample(args.corpus)
    toks = {g: read_cache(args.cache / f"{g}.jsonl") for g in groups}
    missing = {g: sum(r["id"] not in toks[g] for r in rows) for g, rows in groups.items()}
    if any(missing.values()):
        raise SystemExit(f"error: the cache in {args.cache} lacks records ({missing}); run training.lm_cache first")
    x, y, grp = passage_rows(groups["train"], [toks["train"][r["id"]] for r in groups["train"]])
    log(f"LM head: {len(y)} training passages, {len(set(grp))} groups")
    head = fit_lm_head(x, y, grp, args.hidden, args.seed)
    sets: dict[str, ScoredSet] = {}
    for g in (*VAL_SOURCES, "val_clean", "test_clean"):
        s = score_set(det, groups[g])
        sets[g] = ScoredSet(s.records, with_lm(s.raws, [toks[g][r["id"]] for r in groups[g]]))
        log(f"{g}: {len(s)} records scored")
    val = {k: sets[k] for k in VAL_SOURCES}
    clean = sets["val_clean"]
    seed_text, gold = load_seed()
    reader = ensure_reader(args.reader)
    seed_raw = det.with_fusion(fusion_of(head, 0.0), reader).score_raw([seed_text])[0]  # cutoff 0: every passage read

    # 2. the LM weight
    grid: dict[str, Any] = {}
    fused: dict[float, Fusion] = {}
    for w in LM_WEIGHTS:
        fu = rescaled(det, head, w, val, clean)
        d = det.with_fusion(fu)
        fr = filter_recall(garbled_scores(d, val), clean_scores(d, clean))
        aucs = macro(d, val)
        grid[str(w)] = {"auroc": aucs, "macro_auroc": float(np.mean(list(aucs.values()))), "filter_recall": fr}
        fused[w] = fu
        log(f"w={w}: macro AUROC {grid[str(w)]['macro_auroc']:.4f}, filter recall mean {fr['mean']:.3f} "
            f"min {fr['min']:.3f}")
    base = grid["0.0"]["filter_recall"]["mean"]
    ok = [w for w in LM_WEIGHTS if grid[str(w)]["filter_recall"]["mean"] >= base - 1e-12]
    w = max(ok, key=lambda v: (grid[str(v)]["macro_auroc"], -v))
    log(f"chosen LM weight {w} (weights that keep the filter recall: {ok})")
    fu = fused[w]
    clean_parts = by_source(clean)
    bound = {k: v for k, v in clean_parts.items() if k in ENGLISH_ORIGINAL}

    # 4a. the default threshold, every passage read (the cascade is chosen at it)
    def thresholds(fusion: Fusion) -> tuple[float, float]:
        d = det.with_fusion(fusion)
        quiet, _, _ = choose_flag_threshold(d, val, bound, 0.01)
        recall, _, _ = choose_flag_threshold(d, val, {"val_clean": clean}, 0.02)
        return round(quiet, 4), round(min(recall, quiet), 4)

    thr, recall_thr = thresholds(fu)
    # 3. the cascade
    unread = float(np.median([v for x_ in clean.raws if x_.lm_features is not None
                              for v in fu.lm_logits(x_.lm_features)]))
    all_sets = [*val.values(), clean, sets["test_clean"]]
    ref = {t: decisions(det.with_fusion(dataclasses.replace(fu, settings=Settings(threshold=t))), all_sets)
           for t in (thr, recall_thr)}
    full_macro = float(np.mean(list(macro(det.with_fusion(fu), val).values())))
    cascade: dict[str, Any] = {}
    cutoff = 0.0
    enc = np.array([p for s in all_sets for x_ in s.raws for p in det.passage_probabilities(x_).tolist()])
    for c in CUTOFFS:
        cf = dataclasses.replace(fu, cutoff=c, unread_lm_logit=unread)
        changed = max(float(np.mean(decisions(det.with_fusion(dataclasses.replace(cf, settings=Settings(threshold=t))),
                                              all_sets) != ref[t])) for t in ref)
        m_ = float(np.mean(list(macro(det.with_fusion(cf), val).values())))
        share = float(np.mean(enc >= c)) if enc.size else 0.0
        cascade[str(c)] = {"decisions_changed": changed, "passages_read": share, "macro_auroc": m_}
        log(f"cutoff {c}: {share:.3f} of passages read, {changed:.4f} of decisions changed, macro AUROC {m_:.4f}")
        if changed <= args.max_changed and m_ >= full_macro - MAX_AUROC_LOSS:
            cutoff = c
    fu = dataclasses.replace(fu, cutoff=cutoff, unread_lm_logit=unread)
    log(f"chosen cutoff {cutoff}")

    # 4b. operating points with the cascade, and their spans
    thr, recall_thr = thresholds(fu)
    dq = det.with_fusion(dataclasses.replace(fu, settings=Settings(threshold=thr)))
    default_settings, default_spans = span_choice(dq, val, bound, seed_raw, seed_text, gold)
    dr = det.with_fusion(dataclasses.replace(fu, settings=Settings(threshold=recall_thr)))
    recall_settings, recall_spans = span_choice(dr, val, bound, seed_raw, seed_text, gold)
    recall_point = OperatingPoint("recall", recall_settings,
                                  "at most 2% of val_clean as a whole flagged (the earlier default's rule), the best mean "
                                  "flag F1 above that; spans inside flagged passages")
    fu = dataclasses.replace(fu, settings=default_settings, operating_points=(recall_point,),
                             reader_source_sha256=reader.info.source_sha256)
    acc = det.with_fusion(fu)
    mlqe_rows = groups["val_mlqe"]
    measured: dict[str, Any] = {
        "sample": {k: len(v) for k, v in sets.items()}, "train_passages": len(y), "lm_weight_grid": grid,
        "chosen_lm_weight": w, "cascade": cascade, "cutoff": cutoff, "unread_lm_logit": unread,
        "span_rules": {"default": default_spans, "recall": recall_spans},
        "default": measure(acc, sets, val, clean, seed_raw, seed_text, gold, mlqe_rows),
        "recall": measure(acc.with_settings(recall_settings), sets, val, clean, seed_raw, seed_text, gold, mlqe_rows),
        "encoder_only": {
            "default": measure(det, sets, val, clean, seed_raw, seed_text, gold, mlqe_rows),
            **{p: measure(det.with_settings(det.config.operating_point(p)), sets, val, clean, seed_raw, seed_text,
                          gold, mlqe_rows) for p in det.config.operating_point_names if p != "default"}},
        "smollm2_mean_surprisal": smollm2_baseline(sets, val, clean),
    }
    measured["seconds"] = round(time.time() - t0)
    fu = dataclasses.replace(fu, measured=jsonable(measured))
    section = card_section(measured, "python -m training.fusion " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(section)
    if args.report:
        args.report.write_text(section + "\n", encoding="utf-8")
    if args.dry_run:
        return 0
    from detector.network import FUSION_FILE, ModelFolder

    folder = ModelFolder(args.model)
    folder.write_fusion(fu)
    card = args.model / "MODEL_CARD.md"
    if card.is_file():
        folder.write_text(card.name, with_card_section(card.read_text(encoding="utf-8"), section))
    log(f"wrote {args.model / FUSION_FILE} and refreshed SHA256SUMS")
    return 0


def smollm2_baseline(sets: dict[str, ScoredSet], val: dict[str, ScoredSet], clean: ScoredSet) -> dict[str, Any]:
    """SmolLM2-135M's mean surprisal over a record's tokens (every passage read) as the record score: ranking inside
    each source and the filter view, on the same records."""
    i_sur, i_n = LM_FEATURES.index("sur_mean"), LM_FEATURES.index("log_lm_tokens")

    def score(x: RawScores) -> float:
        assert x.lm_features is not None
        n = np.expm1(x.lm_features[:, i_n])
        return float((x.lm_features[:, i_sur] * n).sum() / n.sum()) if n.sum() else 0.0

    scores = {k: [score(x) for x in s.raws] for k, s in sets.items()}
    aucs = {}
    garbled = {}
    for k in val:
        keep, y = _broad(sets[k])
        aucs[k] = auroc([scores[k][i] for i in np.flatnonzero(keep)], [int(v) for v in y[keep]])
        garbled[k] = [scores[k][i] for i in np.flatnonzero(keep & y)]
    cl = {s: [v for v, r in zip(scores["val_clean"], clean.records) if r.source == s] for s in ENGLISH_ORIGINAL}
    return {"auroc": aucs, "macro_auroc": float(np.mean(list(aucs.values()))), "filter_recall": filter_recall(garbled, cl)}


def _f(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def card_section(m: dict[str, Any], command: str) -> str:
    """The model card's accurate-mode section: the fused mode next to the encoder alone and SmolLM2 on the same
    records."""
    enc, acc, rec = m["encoder_only"]["default"], m["default"], m["recall"]
    sm = m["smollm2_mean_surprisal"]
    lines = [CARD_HEADING, "",
             "`Detector.load(accurate=True)` / `mtdetect score --accurate`: SmolLM2-135M (ONNX Runtime, built once by "
             "`mtdetect build-lm`) reads the passages whose encoder probability is at least the cutoff "
             f"({m['cutoff']}); a small network turns each read passage's token evidence into an LM logit, added to "
             f"the encoder's calibrated logit with weight {m['chosen_lm_weight']}. Fitted by `{command}` "
             f"({m['seconds']} s).", "",
             "| source | n | AUROC encoder | AUROC fused | AUROC SmolLM2 | filter recall encoder | fused | SmolLM2 | "
             "span F1 fused default | span F1 fused recall |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in VAL_SOURCES:
        lines.append(f"| {s} | {acc[s]['n']} | {_f(enc[s]['auroc_broad'])} | {_f(acc[s]['auroc_broad'])} | "
                     f"{_f(sm['auroc'][s])} | {_f(enc['filter_recall']['recall'][s])} | "
                     f"{_f(acc['filter_recall']['recall'][s])} | {_f(sm['filter_recall']['recall'][s])} | "
                     f"{_f(acc[s]['span_f1'])} | {_f(rec[s]['span_f1'])} |")
    mac = [float(np.mean([x[s]["auroc_broad"] for s in VAL_SOURCES])) for x in (enc, acc)]
    span = [float(np.mean([x[s]["span_f1"] for s in VAL_SOURCES])) for x in (acc, rec)]
    lines.append(f"| mean | | {mac[0]:.3f} | {mac[1]:.3f} | {sm['macro_auroc']:.3f} | "
                 f"{_f(enc['filter_recall']['mean'])} | {_f(acc['filter_recall']['mean'])} | "
                 f"{_f(sm['filter_recall']['mean'])} | {span[0]:.3f} | {span[1]:.3f} |")
    lines += ["", "Filter recall: garbled MT (broad label) caught at the score that flags 1% of English-original "
              "human English (val_clean, every source weighing the same).", "",
              "| operating point | threshold | span rule | val_clean flagged per source | test_clean flagged per source "
              "| seed article |", "|---|---|---|---|---|---|"]
    for name, x in (("fused default", acc), ("fused recall", rec), ("encoder default", enc)):
        st = x["settings"]
        rule = "whole flagged passage" if st["span_threshold"] == 0 else f"token spans >= {st['span_threshold']}"
        per = [", ".join(f"{k} {v['flag_rate'] * 100:.1f}%" for k, v in sorted(x[c]["by_source"].items()))
               for c in ("val_clean", "test_clean")]
        seed = x["seed_article"]
        lines.append(f"| {name} | {st['threshold']} | {rule} | {per[0]} | {per[1]} | "
                     f"{'passes' if seed['passed'] else 'fails'}, {seed['fluent_passages_flagged']} fluent of "
                     f"{seed['passages']} passages flagged |")
    lines.append("")
    for point in ("default", "recall"):
        rules = m["span_rules"][point]
        whole = rules.get("whole passage", {}).get("macro_span_f1")
        tokens = {k: v["macro_span_f1"] for k, v in rules.items() if k != "whole passage"}
        best = max(tokens.items(), key=lambda kv: kv[1]) if tokens else None
        lines.append(f"Spans at the fused {point} point (inside flagged passages, at most 1% of each clean source with "
                     f"a span): the whole flagged passage gives macro span F1 "
                     + (_f(whole) if whole is not None else "n/a (more than 1% of a clean source's records would carry "
                        "a span)")
                     + (f"; the best token-span threshold ({best[0].removeprefix('token spans ')}) {_f(best[1])}"
                        if best else "") + ".")
    lines += ["", "| mode and point | Spearman score vs words, human English | the same, garbled MT | recall on garbled outputs "
              "of at most 8 words (n) |", "|---|---|---|---|"]
    for name, x in (("fused default", acc), ("fused recall", rec), ("encoder default", enc)):
        r = x["length"]
        lines.append(f"| {name} | {_f(r['spearman_words_human'])} | {_f(r['spearman_words_garbled'])} | "
                     f"{_f(r['short_garbled_recall'])} ({r['short_garbled_n']}) |")
    cas = m["cascade"][str(m["cutoff"])]
    lines += ["", f"Cascade: {cas['passages_read']:.1%} of the validation passages reach the reader; "
              f"{cas['decisions_changed']:.2%} of decisions differ from reading every passage. MLQE-PE Spearman with "
              f"DA: encoder {_f(enc['val_mlqe'].get('spearman_da'))}, fused {_f(acc['val_mlqe'].get('spearman_da'))}.",
              ""]
    pairs = acc["val_mlqe"].get("spearman_da_by_pair") or {}
    if pairs:
        lines += ["| MLQE-PE pair | n | Spearman with DA, encoder | fused |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['n']} | {_f(enc['val_mlqe']['spearman_da_by_pair'][k]['spearman'])} | "
                  f"{_f(v['spearman'])} |" for k, v in pairs.items()]
        lines.append("")
    return "\n".join(lines)


def with_card_section(text: str, section: str) -> str:
    """The card with ``section`` as its accurate-mode section (any earlier one dropped), before the licence."""
    for heading in (CARD_HEADING, "## Accurate mode (lm_fusion.json, opt-in)"):
        if heading in text:
            a = text.index(heading)
            b = text.find("\n## ", a + len(heading))
            text = text[:a] + (text[b + 1 :] if b >= 0 else "")
    at = text.find("## Licence")
    return text[:at] + section + "\n" + text[at:] if at >= 0 else text.rstrip("\n") + "\n\n" + section + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
