"""Fit the accurate mode (``Detector.load(accurate=True)``, ``mtdetect score --accurate``): SmolLM2-135M read next
to the encoder (issue #11, item 2: "if fusing the LM at run time wins clearly, an opt-in --accurate mode").

    python -m training.lm_fusion --model models/mtdetect-minilm-shape --corpus build/corpus \\
        --cache build/lm_fusion/tokens.jsonl

1. A fixed sample (seed 7): training records of WMT20/21 news, Bio-MQM, MLQE-PE and every clean English source;
   up to ``--n-val`` records of each validation source; 100 records of each val_clean and test_clean source; and
   1,000 records drawn from val_clean as a whole (``val_clean_pooled``: Brown and ABC weigh there as they do in
   val_clean, where the per-source sample weighs every source the same).
2. The LM scores every sampled text as the runtime does (:meth:`detector._lm.LmScorer.text_tokens`); tokens are
   cached as JSON lines keyed by record id (resumable: the LM reads about 7 records/s on 2 cores).
3. The LM model: a weighted logistic regression of the per-passage LM features (:data:`detector._lm.FEATURES`) of
   the training records, garbled (strict or broad) against clean, every source-and-label group weighing the same.
   The encoder is not involved: its outputs on its own training records would be overconfident.
4. On the validation sources: the weight of the LM logit next to the shipped calibrated passage logit that
   maximises the macro broad-label AUROC (the finalize rule) among the weights the seed article allows (at least as
   many of its passages holding a must-flag phrase flagged as in the default mode, and no more of its fluent
   passages), the scale and intercept by logistic regression (every source and clean English weighing the same),
   then
   the flag threshold by :func:`training.search.choose_flag_threshold` (best mean flag F1 over the sources) with
   the clean budgets the default mode spends on both clean views (the per-source sample and the pooled one): the
   accurate mode flags no larger share of either than the default mode does. Spans are the default mode's (cut by
   the model's span settings, gated on the encoder's probability).
5. Leave-one-source-out: the LM weight chosen without each source, measured on it.

Writes ``lm_fusion.json`` into the model folder (with the measured table under ``"measured"``), refreshes its
SHA256SUMS, and prints the table (default mode and accurate mode on the same records).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from detector import Detector
from detector.evaluation import auroc, evaluate, jsonable, rates_by_source, spearman
from detector.network import FUSION_FILE, LmFusion, LmScorer, LmToken, passage_features, split_passages, write_manifest
from detector.network import LM_FEATURES as FEATURES

from .finalize import load_seed
from .lm_targets import fill_cache, read_targets
from .records import CLEAN_SOURCES
from .search import (
    ScoredSet,
    _broad,
    _quantile_floor,
    choose_flag_threshold,
    fit_logistic,
    predictions,
    record_scores,
    score_set,
)

VAL_SOURCES = ("val_news", "val_ted", "val_wmt22", "val_bio", "val_mlqe")
CLEAN_VIEWS = ("val_clean", "val_clean_pooled")  # both budgets hold (training.search.choose_flag_threshold)
LmParts = tuple[np.ndarray, np.ndarray, np.ndarray, float]  # the LM model: mean, scale, weights, bias
POOLED_CLEAN = 1000  # records of val_clean as a whole (the second clean view)
LM_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def log(msg: str) -> None:
    print(f"[lm_fusion {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def sample(corpus: Path, n_val: int, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """The fixed sample: {"train": ..., each validation source: ..., "val_clean": ..., "test_clean": ...,
    "val_clean_pooled": ...}."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {}

    def take(rows: list[dict[str, Any]], n: int, group: str) -> None:
        rows = list(rows)
        rng.shuffle(rows)
        out.setdefault(group, []).extend(rows[:n])

    for s in VAL_SOURCES:
        take([r for r in _rows(corpus / f"{s}.jsonl") if r["label"] != "ambiguous" or s == "val_mlqe"], n_val, s)
    def clean(split: str) -> None:
        rows = _rows(corpus / f"{split}.jsonl")
        for src in sorted({r["source"] for r in rows}):
            take([r for r in rows if r["source"] == src], 100, split)

    clean("val_clean")
    tr = _rows(corpus / "train.jsonl")
    take([r for r in tr if r["source"] in ("wmt20_news", "wmt21_news") and r["label"] != "ambiguous"], 800, "train")
    take([r for r in tr if r["source"] == "bio_mqm" and r["label"] != "ambiguous"], 400, "train")
    take([r for r in tr if r["source"] == "mlqe_pe"], 800, "train")
    for src in CLEAN_SOURCES:
        take([r for r in tr if r["source"] == src], 100, "train")
    clean("test_clean")
    take(_rows(corpus / "val_clean.jsonl"), POOLED_CLEAN, "val_clean_pooled")  # last: the groups above stay as before
    return out


def cached_tokens(scorer: LmScorer, rows: list[dict[str, Any]], cache: Path) -> list[list[LmToken]]:
    """The runtime's LM tokens of every row (:meth:`LmScorer.text_tokens` on the text's own passages), read from
    ``cache`` or computed and appended to it by :func:`training.lm_targets.fill_cache` (the one cache writer)."""
    def score(texts: list[str]) -> list[list[LmToken]]:
        spans = [np.array([(p.start, p.end) for p in split_passages(t)], dtype=np.int64).reshape(-1, 2) for t in texts]
        return scorer.text_tokens(texts, spans)

    fill_cache(rows, cache, score)
    have = read_targets(cache)
    return [have[r["id"]] for r in rows]


def with_features(s: ScoredSet, toks: list[list[LmToken]]) -> ScoredSet:
    return ScoredSet(s.records, [dataclasses.replace(x, lm_features=passage_features(x.passage_offsets, t))
                                 for x, t in zip(s.raws, toks)])


def lm_record_features(det: Detector, s: ScoredSet) -> np.ndarray:
    """Per record, the LM features of its passage with the highest calibrated encoder probability."""
    out = []
    for x in s.raws:
        assert x.lm_features is not None
        p = det.passage_probabilities(x)
        out.append(x.lm_features[int(np.argmax(p))] if p.size else np.zeros(len(FEATURES)))
    return np.array(out)


def fit_lm_model(det: Detector, train: ScoredSet, exclude: tuple[str, ...] = ()) -> LmParts:
    """(mean, scale, weights, bias) of the LM model, fitted on the training sample (groups weighted equally);
    features in ``exclude`` get weight 0."""
    keep, y = _broad(train)
    x = lm_record_features(det, train)[keep]
    y = y[keep].astype(np.float64)
    groups = [f"{r.source}:{r.label != 'clean'}" for r, k in zip(train.records, keep) if k]
    count = {g: groups.count(g) for g in set(groups)}
    w = np.array([1.0 / count[g] for g in groups])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    cols = [i for i, n in enumerate(FEATURES) if n not in exclude]
    coef, bias = fit_logistic(((x - mean) / scale)[:, cols], y, w, l2=1e-3)
    weights = np.zeros(len(FEATURES))
    weights[cols] = coef
    return mean, scale, weights, bias


def record_logit(det: Detector, s: ScoredSet) -> np.ndarray:
    """Per record, the max over its passages of the logit of ``det``'s passage probability."""
    p = np.clip(np.array(record_scores(det, s)), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def fusion_of(det: Detector, mean: np.ndarray, scale: np.ndarray, w: np.ndarray, bias: float, lm_weight: float,
              cal: tuple[float, ...], settings: dict[str, Any] | None = None) -> LmFusion:
    return LmFusion(mean=tuple(map(float, mean)), scale=tuple(map(float, scale)), weights=tuple(map(float, w)),
                    bias=float(bias), lm_weight=float(lm_weight),
                    calibration=tuple(float(x) for x in cal[: 5 if len(cal) > 4 and cal[4] else 4]),
                    settings=settings if settings is not None else det.settings.to_dict())


def macro_by_weight(det: Detector, lm: LmScorer, parts: LmParts, val: dict[str, ScoredSet]
                    ) -> dict[float, dict[str, float]]:
    """Broad AUROC per validation source for each LM weight (the shipped calibration, the LM logit added)."""
    table = {}
    for lw in LM_WEIGHTS:
        d = det.with_lm(lm, fusion_of(det, *parts, lw, det.config.calibration))
        per = {}
        for name, s in val.items():
            keep, y = _broad(s)
            z = record_logit(d, s)
            per[name] = auroc([float(v) for v in z[keep]], [int(v) for v in y[keep]])
        table[lw] = per
    return table


def rescaled(det: Detector, lm: LmScorer, parts: LmParts, lw: float, val: dict[str, ScoredSet],
             clean: ScoredSet) -> LmFusion:
    """Scale and intercept of the fused logit by logistic regression, every source and clean English weighing
    the same (the finalize rule)."""
    d = det.with_lm(lm, fusion_of(det, *parts, lw, det.config.calibration))
    zs, ys, ws = [], [], []
    for s in [*val.values(), clean]:
        keep, y = _broad(s)
        zs.append(record_logit(d, s)[keep])
        ys.append(y[keep].astype(np.float64))
        ws.append(np.full(int(keep.sum()), 1.0 / max(1, keep.sum())))
    coef, b = fit_logistic(np.concatenate(zs)[:, None], np.concatenate(ys), np.concatenate(ws), l2=0.0)
    alpha = float(coef[0])
    a, b0, c, dd, e = det.config.calibration
    return fusion_of(det, *parts, alpha * lw, (alpha * a, alpha * b0 + b, alpha * c, alpha * dd, alpha * e))


CURVE_RATES = (0.01, 0.02, 0.05, 0.1, 0.2)


def recall_at_clean_rates(det: Detector, val: dict[str, ScoredSet], clean: dict[str, ScoredSet],
                          rates: tuple[float, ...] = CURVE_RATES) -> list[dict[str, Any]]:
    """For each share of the val_clean sample flagged: the threshold that flags it, flag recall per source and
    their mean, and the share of the test_clean sample flagged at that threshold."""
    ref = np.sort(np.array(record_scores(det, clean["val_clean"])))[::-1]
    test = np.array(record_scores(det, clean["test_clean"]))
    scored = {name: (np.array(record_scores(det, s)), *_broad(s)) for name, s in val.items()}
    out = []
    for rate in rates:
        t = float(ref[min(len(ref) - 1, int(rate * len(ref)))]) + 1e-9
        rec = {name: float(((sc >= t) & y & keep).sum() / max(1, (y & keep).sum()))
               for name, (sc, keep, y) in scored.items()}
        out.append({"val_clean_rate": rate, "threshold": t, "recall": rec,
                    "macro_recall": float(np.mean(list(rec.values()))), "test_clean_rate": float(np.mean(test >= t))})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.lm_fusion", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("models/mtdetect-minilm-shape"))
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--cache", type=Path, default=Path("build/lm_fusion/tokens.jsonl"))
    ap.add_argument("--n-val", type=int, default=400, help="records per validation source (default 400)")
    ap.add_argument("--max-clean-flag-rate", type=float,
                    help="at most this share of each clean view flagged (the val_clean sample of 100 records per "
                         "source, and 1,000 records of val_clean as a whole; default: the share the default mode "
                         "flags of each at its own threshold: as quiet on human English as it on both)")
    ap.add_argument("--report", type=Path, help="also write the markdown table to this file")
    ap.add_argument("--exclude-features", nargs="*", default=[], choices=FEATURES, metavar="NAME",
                    help=f"LM features the model leaves out (weight 0); of: {', '.join(FEATURES)}")
    ap.add_argument("--lm-model", type=Path, metavar="LM_FUSION_JSON",
                    help="take the LM model (mean, scale, weights, bias) from this lm_fusion.json instead of fitting "
                         "it on the training sample (then the training records need no LM pass); the LM weight, "
                         "calibration and threshold are still chosen")
    ap.add_argument("--keep-fusion", type=Path, metavar="LM_FUSION_JSON",
                    help="keep this lm_fusion.json's accurate mode as it is (LM model, LM weight, calibration and "
                         "threshold: nothing is chosen) and measure it next to the model's default mode")
    ap.add_argument("--dry-run", action="store_true", help="measure and print, write nothing into the model folder")
    args = ap.parse_args(argv)
    if (args.lm_model or args.keep_fusion) and args.exclude_features:
        ap.error("--exclude-features applies to a fitted LM model, not one read with --lm-model or --keep-fusion")
    if args.lm_model and args.keep_fusion:
        ap.error("--keep-fusion brings its own LM model; leave out --lm-model")

    t0 = time.time()
    det = Detector.load(args.model, backend="torch")
    lm = LmScorer.load()
    groups = sample(args.corpus, args.n_val)
    source = args.keep_fusion or args.lm_model
    kept = LmFusion.from_dict(json.loads(source.read_text(encoding="utf-8"))) if source else None
    if kept is not None:  # the LM model is read, not fitted: its training records need no LM tokens
        groups.pop("train")
    sets: dict[str, ScoredSet] = {}
    for name, rows in groups.items():
        s = score_set(det, rows)
        toks = cached_tokens(lm, rows, args.cache)
        sets[name] = with_features(s, toks)
        log(f"{name}: {len(rows)} records")
    if kept is not None:
        parts: LmParts = (np.array(kept.mean), np.array(kept.scale), np.array(kept.weights), kept.bias)
        log(f"LM model read from {source}")
    else:
        parts = fit_lm_model(det, sets["train"], tuple(args.exclude_features))
    log("LM model: " + ", ".join(f"{n} {w:+.2f}" for n, w in zip(FEATURES, parts[2])))
    val = {k: sets[k] for k in VAL_SOURCES}
    table = macro_by_weight(det, lm, parts, val)
    seed_text, gold = load_seed()
    seed_raw = det.with_lm(lm, fusion_of(det, *parts, 0.0, det.config.calibration)).score_raw([seed_text])[0]
    seed_default = seed_passages(det, seed_raw, gold)
    clean_views = {k: sets[k] for k in CLEAN_VIEWS}
    default_rates = {k: float(np.mean([p.flagged for p in predictions(det, s)])) for k, s in clean_views.items()}
    budget = {k: args.max_clean_flag_rate if args.max_clean_flag_rate is not None else r
              for k, r in default_rates.items()}
    log("clean budgets " + ", ".join(f"{k} {budget[k]:.4f} (the default mode flags {r:.4f})"
                                     for k, r in default_rates.items()))

    def settle(lw: float) -> tuple[LmFusion, dict[str, Any]]:
        fu = rescaled(det, lm, parts, lw, val, sets["val_clean"])
        thr, flag_f1, floor = choose_flag_threshold(det.with_lm(lm, fu), val, clean_views, budget)
        fu = fusion_of(det, *parts, fu.lm_weight, fu.calibration, {"threshold": thr})
        return fu, {"threshold": thr, "mean_flag_f1": flag_f1, "clean_floor": floor, "clean_budget": budget,
                    "seed_passages": seed_passages(det.with_lm(lm, fu), seed_raw, gold)}

    # the seed article's passages: at least as many holding a must-flag phrase flagged as in the default mode, and
    # no more of its fluent passages (those outside every gold span)
    if args.keep_fusion and kept is not None:  # nothing chosen: the kept mode, measured
        fusion = kept
        best, ok = kept.lm_weight, [kept.lm_weight]
        th = {"threshold": kept.settings.get("threshold"), "kept_from": str(args.keep_fusion),
              "seed_passages": seed_passages(det.with_lm(lm, kept), seed_raw, gold)}
        loso: dict[str, dict[str, float | None]] = {name: {"lm_weight": None, "auroc_broad": None}
                                                     for name in VAL_SOURCES}
        log(f"accurate mode kept from {args.keep_fusion} (LM weight {kept.lm_weight:.4f})")
    else:
        settled = {lw: settle(lw) for lw in LM_WEIGHTS}
        ok = [lw for lw in LM_WEIGHTS if settled[lw][1]["seed_passages"]["must_flag_flagged"]
              >= seed_default["must_flag_flagged"] and settled[lw][1]["seed_passages"]["other_flagged"]
              <= seed_default["other_flagged"]] or [0.0]
        best = max(ok, key=lambda lw: float(np.mean(list(table[lw].values()))))
        loso = {}
        for name in VAL_SOURCES:
            lw = max(ok, key=lambda w: float(np.mean([v for k, v in table[w].items() if k != name])))
            loso[name] = {"lm_weight": lw, "auroc_broad": table[lw][name]}
        log(f"LM weights the seed article allows: {ok}; chosen {best}: macro broad AUROC "
            f"{np.mean(list(table[best].values())):.4f} (without the LM {np.mean(list(table[0.0].values())):.4f})")
        fusion, th = settled[best]
    acc = det.with_lm(lm, fusion)
    if "clean_floor" in th:
        log(f"threshold {th['threshold']} (clean floor {th['clean_floor']:.4f}, mean flag F1 "
            f"{th['mean_flag_f1']:.4f})")
    # the default mode at the accurate mode's share of flagged clean English: flag recall at a matched budget
    rate = float(np.mean([p.flagged for p in predictions(acc, sets["val_clean"])]))
    matched = det.with_settings(threshold=min(1.0, _quantile_floor(record_scores(det, sets["val_clean"]), rate)))
    th["default_threshold_at_matched_clean_rate"] = matched.threshold
    th["seed_allowed_lm_weights"] = ok
    measured: dict[str, Any] = {"sample": {k: len(v) for k, v in sets.items()}, "lm_weight_grid": table,
                                "chosen_lm_weight": best, "leave_one_source_out": loso, "search": th,
                                "default": {}, "accurate": {}, "default_matched": {}}
    for mode, d in (("default", det), ("accurate", acc), ("default_matched", matched)):
        for name in (*VAL_SOURCES, *CLEAN_VIEWS, "test_clean"):
            preds = predictions(d, sets[name])
            m = evaluate(sets[name].records, preds)
            if name == "val_mlqe":
                da = [(r, p.score) for r, p in zip(groups[name], preds) if r.get("meta", {}).get("da") is not None]
                m["spearman_da"] = -spearman([p for _, p in da], [r["meta"]["da"] for r, _ in da])
            if name in (*CLEAN_VIEWS, "test_clean"):
                m["by_source"] = rates_by_source(sets[name].records, preds)
            measured[mode][name] = {k: m[k] for k in ("n", "auroc_broad", "flag_recall", "flag_precision", "span_f1",
                                                      "clean_flag_rate", "clean_span_rate", "spearman_da",
                                                      "by_source") if k in m}
        measured[mode]["seed_article"] = gold_of(d, seed_raw, gold)
        measured[mode]["seed_passages"] = seed_passages(d, seed_raw, gold)
    clean_sets = {"val_clean": sets["val_clean"], "test_clean": sets["test_clean"]}
    measured["recall_at_clean_rates"] = {mode: recall_at_clean_rates(d, val, clean_sets)
                                         for mode, d in (("default", det), ("accurate", acc))}
    measured["seconds"] = round(time.time() - t0)
    table_md = report(measured)
    print(table_md)
    if args.report:
        args.report.write_text(table_md + "\n", encoding="utf-8")
    if args.dry_run:
        return 0
    out = fusion.to_dict()
    out["measured"] = jsonable(measured)
    out["command"] = "python -m training.lm_fusion " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.model / FUSION_FILE).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    card_section(args.model / "MODEL_CARD.md", table_md, out["command"])
    write_manifest(args.model)
    log(f"wrote {args.model / FUSION_FILE} and refreshed SHA256SUMS")
    return 0


CARD_HEADING = "## Accurate mode (lm_fusion.json, opt-in)"


def card_section(card: Path, table_md: str, command: str) -> None:
    """Write (or replace) the model card's accurate-mode section, just before its licence section."""
    if not card.is_file():
        return
    section = (f"{CARD_HEADING}\n\n`Detector.load(accurate=True)` / `mtdetect score --accurate` adds SmolLM2-135M "
               f"per-passage surprisal features to the passage probability (spans unchanged; about 12x slower). "
               f"Fitted by `{command}`; default and accurate mode on the same validation records:\n\n{table_md}\n\n")
    card.write_text(with_card_section(card.read_text(encoding="utf-8"), section), encoding="utf-8")


def split_card_section(text: str) -> tuple[str, str]:
    """(the card without its accurate-mode section, that section: empty when it has none)."""
    if CARD_HEADING not in text:
        return text, ""
    a = text.index(CARD_HEADING)
    b = text.find("\n## ", a + len(CARD_HEADING))
    return (text[:a] + text[b + 1 :], text[a : b + 1]) if b >= 0 else (text[:a], text[a:].rstrip("\n") + "\n\n")


def with_card_section(text: str, section: str) -> str:
    """The card with ``section`` as its accurate-mode section (any earlier one dropped), before the licence."""
    text, _ = split_card_section(text)
    at = text.find("## Licence")
    return text[:at] + section + text[at:] if at >= 0 else text.rstrip("\n") + "\n\n" + section


def seed_passages(det: Detector, raw: Any, gold: dict[str, Any]) -> dict[str, Any]:
    """The seed article's passages as ``det`` flags them (from its raw scores, with LM features): those overlapping
    a must_flag span, and those overlapping no gold span at all (the fluent sentences that must stay unflagged)."""
    def over(p: Any, kinds: tuple[str, ...]) -> bool:
        return any(p.start < g["end"] and g["start"] < p.end for g in gold["spans"] if g["kind"] in kinds)

    d = det.decide(raw)
    must = [p for p in d.passages if over(p, ("must_flag",))]
    other = [p for p in d.passages if not over(p, ("must_flag", "should_flag", "ignore"))]
    return {"must_flag_passages": len(must), "must_flag_flagged": sum(p.flagged for p in must),
            "other_passages": len(other), "other_flagged": sum(p.flagged for p in other),
            "scores_must": [round(p.score, 3) for p in must], "top_other": sorted(round(p.score, 3) for p in other)[-3:]}


def gold_of(det: Detector, raw: Any, gold: dict[str, Any]) -> dict[str, Any]:
    """The seed article's gold rule on ``det``'s decision from raw scores already computed (with LM features)."""
    from detector.evaluation import gold_rule

    return gold_rule(raw.text, gold, [(s.start, s.end) for s in det.decide(raw).spans])


def report(m: dict[str, Any]) -> str:
    """Markdown: default vs accurate mode on the same records."""
    def f(v: Any) -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    lines = ["| source | n | AUROC default | AUROC accurate | LOSO accurate | flag recall default | default at the "
             "accurate clean rate | accurate | span F1 (both) |", "|---|---|---|---|---|---|---|---|---|"]
    for s in VAL_SOURCES:
        a, b, c = m["default"][s], m["accurate"][s], m["default_matched"][s]
        lines.append(f"| {s} | {a['n']} | {f(a['auroc_broad'])} | {f(b['auroc_broad'])} | "
                     f"{f(m['leave_one_source_out'][s]['auroc_broad'])} | {f(a['flag_recall'])} | "
                     f"{f(c['flag_recall'])} | {f(b['flag_recall'])} | {f(b['span_f1'])} |")
    mac = [float(np.mean([m[k][s][v] for s in VAL_SOURCES])) for k in ("default", "accurate", "default_matched")
           for v in ("auroc_broad", "flag_recall")]
    held = [m["leave_one_source_out"][s]["auroc_broad"] for s in VAL_SOURCES]
    loso = float(np.mean(held)) if None not in held else None  # None: a kept mode (nothing was chosen)
    lines.append(f"| macro | | {mac[0]:.3f} | {mac[2]:.3f} | {f(loso)} | {mac[1]:.3f} | {mac[5]:.3f} | "
                 f"{mac[3]:.3f} | |")
    lines.append("")
    lines.append("| clean sample | flagged default | accurate | with a span (both) | per source flagged, default "
                 "| per source flagged, accurate |")
    lines.append("|---|---|---|---|---|---|")
    for s in (*CLEAN_VIEWS, "test_clean"):
        a, b = m["default"][s], m["accurate"][s]
        per = [", ".join(f"{k} {v['flag_rate'] * 100:.0f}%" for k, v in sorted(x["by_source"].items())) for x in (a, b)]
        lines.append(f"| {s} | {f(a['clean_flag_rate'])} | {f(b['clean_flag_rate'])} | {f(b['clean_span_rate'])} | "
                     f"{per[0]} | {per[1]} |")
    lines.append("")
    lines.append("| val_clean sample flagged | macro flag recall default | accurate | test_clean flagged default "
                 "| accurate |")
    lines.append("|---|---|---|---|---|")
    for a, b in zip(m["recall_at_clean_rates"]["default"], m["recall_at_clean_rates"]["accurate"]):
        lines.append(f"| {a['val_clean_rate']:.2f} | {a['macro_recall']:.3f} | {b['macro_recall']:.3f} | "
                     f"{a['test_clean_rate']:.3f} | {b['test_clean_rate']:.3f} |")
    lines.append("")
    for mode in ("default", "accurate"):
        sp = m[mode]["seed_passages"]
        lines.append(f"Seed article, {mode} mode: {sp['must_flag_flagged']} of {sp['must_flag_passages']} passages "
                     f"holding a must-flag phrase flagged, {sp['other_flagged']} of {sp['other_passages']} others.")
    lines.append("")
    lines.append(f"MLQE-PE Spearman with DA (all pairs): default {f(m['default']['val_mlqe'].get('spearman_da'))}, "
                 f"accurate {f(m['accurate']['val_mlqe'].get('spearman_da'))}. Seed article passes: default "
                 f"{m['default']['seed_article']['passed']}, accurate {m['accurate']['seed_article']['passed']}.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
