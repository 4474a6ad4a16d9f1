"""Calibrate, choose thresholds, measure every validation set and write the shipped model folder.

    python -m training.finalize --model build/models/mtdetect-minilm-shape --out models

Every choice is made on every labelled validation source, each weighing the same (issue #11): calibration weights
by the mean broad-label AUROC over the sources, the flag threshold by the mean F1 and the span rule by the mean span
F1, subject to the clean-English budgets (default: at most 2% of val_clean flagged and 1% carrying a span;
``--clean-rule per-source --max-clean-flag-rate 0.01`` applies them to each clean source) and to the seed article's
gold rule. A leave-one-source-out run makes the same choices without each source and measures on it.

A second operating point, ``quiet``, keeps the calibration and the span rule and raises the flag threshold (and the
span gate with it) to the lowest one that flags at most ``--quiet-max-rate`` (1%) of *each* English-original
val_clean source (the issue #11 bound; WMT21 reference A, a human translation, is measured but not bound); it is
written to config.json's ``operating_points`` and measured like the default (``Detector.load(operating_point=
"quiet")``, ``mtdetect score --operating-point quiet``).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from corpus.records import read_records
from detector import Detector
from detector.evaluation import evaluate, gold_rule, jsonable, rates_by_source
from detector.network import ModelFolder, OperatingPoint

from .card import model_card, write_card
from .categories import category_report, length_report
from .search import (
    CHOICE_SETS,
    QUIET_MAX_RATE,
    QUIET_UNBOUND,
    REPORT_SETS,
    SEARCH_CAP,
    ScoredSet,
    calibrated_macro,
    choose_flag_threshold,
    choose_macro,
    predictions,
    record_scores,
    score_set,
    seed_accepts,
)


def log(msg: str) -> None:
    print(f"[finalize {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


SEED_DIR = Path(__file__).resolve().parents[2] / "shared" / "examples"


def load_seed(seed_dir: Path = SEED_DIR) -> tuple[str, dict]:
    """The seed article's text and its gold spans / pass rule."""
    text = (seed_dir / "russia-china-article.txt").read_text(encoding="utf-8")
    return text, json.loads((seed_dir / "russia-china-article.gold.json").read_text(encoding="utf-8"))


def by_source(s: ScoredSet) -> dict[str, ScoredSet]:
    """A set split by the records' source (e.g. val_clean into abc, brown, gum ...)."""
    out: dict[str, ScoredSet] = {}
    for r, x in zip(s.records, s.raws):
        part = out.setdefault(r.source or "?", ScoredSet([], []))
        part.records.append(r)
        part.raws.append(x)
    return out


def clean_budgets(s: ScoredSet, rule: str, unbound: Sequence[str] = ()) -> dict[str, ScoredSet]:
    """The clean-English sets the flag and span budgets bind: val_clean as a whole (``rule="pooled"``) or each of
    its sources (``"per-source"``), less the sources in ``unbound`` (still measured and reported, e.g. a human
    translation such as WMT21 reference A, which the data README calls translationese, not English-original)."""
    kept = ScoredSet([], [])
    for r, x in zip(s.records, s.raws):
        if (r.source or "?") not in unbound:
            kept.records.append(r)
            kept.raws.append(x)
    return by_source(kept) if rule == "per-source" else {"val_clean": kept}


def capped(s: ScoredSet, n: int) -> ScoredSet:
    """At most ``n`` evenly spaced records of a set."""
    if len(s) <= n:
        return s
    idx = [round(i * (len(s) - 1) / (n - 1)) for i in range(n)]
    return ScoredSet([s.records[i] for i in idx], [s.raws[i] for i in idx])


def gate_grid(det: Detector, labelled: dict[str, ScoredSet], n: int = 12) -> list[float]:
    """Span gates tried: none, and the deciles-and-up of the labelled records' calibrated scores (the gate works on
    the calibrated scale, whose spread depends on the calibration)."""
    scores = sorted(x for s in labelled.values() for x in record_scores(det, s))
    if not scores:
        return [0.0]
    qs = [0.3 + 0.65 * i / (n - 1) for i in range(n)]
    return [0.0] + sorted({round(scores[int(q * (len(scores) - 1))], 3) for q in qs})


def choose_settings(det: Detector, labelled: dict[str, ScoredSet], clean: dict[str, ScoredSet],
                    seed_text: str | None, gold: dict | None, *, max_flag: float = 0.01, max_span: float = 0.01, gate_spans: bool = True,
                    require_seed: bool = True, span_scores: Sequence[str] = ("fluency",),
                    max_sense_weight: float = math.inf) -> tuple[Detector, dict[str, Any]]:
    """The finalize rules on every labelled source (:func:`training.search.calibrated_macro` then
    :func:`training.search.choose_macro` for each span score in ``span_scores``; the best mean span F1 among settings
    the seed accepts is kept). Returns the calibrated detector with the chosen settings, and the search's record."""
    cal, cal_info = calibrated_macro(det, labelled, clean, sense=det.config.sense_head, max_rd=max_sense_weight)
    log(f"calibration weights any_major {cal_info['rc']}, sense {cal_info['rd']}, word rarity {cal_info['re']}: "
        f"macro AUROC {cal_info['macro_auroc']:.4f}")
    accept = None
    if require_seed and seed_text is not None and gold is not None:
        accept = seed_accepts(seed_text, gold, cal.score_raw([seed_text])[0])
    search = {k: capped(v, SEARCH_CAP) for k, v in labelled.items()}
    gates = gate_grid(cal, search) if gate_spans else [0.0]
    best: dict[str, Any] | None = None
    for mode in span_scores:
        th = choose_macro(cal.with_settings(span_score=mode), search, clean, max_flag=max_flag, max_span=max_span,
                          gates=gates, accept=accept)
        log(f"span score {mode}: {th}")
        if best is None or (th["accepted"], th["macro_span_f1"]) > (best["accepted"], best["macro_span_f1"]):
            best = th
    assert best is not None
    best["calibration_search"] = {k: v for k, v in cal_info.items() if k != "grid"}
    chosen = cal.with_settings(threshold=best["threshold"], span_threshold=best["span_threshold"],
                               span_gate=best["span_gate"], span_score=best["span_score"])
    return chosen, best


def leave_one_out(det: Detector, labelled: dict[str, ScoredSet], clean: dict[str, ScoredSet],
                  seed_text: str | None, gold: dict | None, **rules: Any) -> dict[str, dict[str, Any]]:
    """For each labelled source: the choices made without it, measured on it (nothing with fewer than 2 sources)."""
    out: dict[str, dict[str, Any]] = {}
    if len(labelled) < 2:
        return out
    for name, s in labelled.items():
        log(f"leave one source out: {name}")
        rest = {k: v for k, v in labelled.items() if k != name}
        chosen, th = choose_settings(det, rest, clean, seed_text, gold, **rules)
        m = evaluate(s.records, predictions(chosen, s))
        out[name] = {"auroc_broad": m["auroc_broad"], "span_f1": m["span_f1"], "flag_recall": m["flag_recall"],
                     "flag_precision": m["flag_precision"], "threshold": th["threshold"],
                     "span_threshold": th["span_threshold"], "span_gate": th["span_gate"],
                     "span_score": th["span_score"], "sense_weight": th["calibration_search"]["rd"]}
    return out


def quiet_point(det: Detector, labelled: dict[str, ScoredSet], val_clean: ScoredSet,
                max_rate: float = QUIET_MAX_RATE, unbound: Sequence[str] = QUIET_UNBOUND) -> OperatingPoint:
    """The ``quiet`` operating point of a finalized detector: its calibration and span rule, the flag threshold of
    :func:`training.search.choose_flag_threshold` with at most ``max_rate`` of each val_clean source but ``unbound``
    flagged (never below the default threshold), and the span gate raised to that threshold, so that spans appear
    only in flagged passages (no more clean records carry a span than are flagged)."""
    clean = clean_budgets(val_clean, "per-source", unbound)
    thr, _, _ = choose_flag_threshold(det, labelled, clean, max_rate)
    thr = round(max(thr, det.threshold), 4)
    settings = det.settings.replace(threshold=thr, span_gate=round(max(det.span_gate, thr), 4))
    rule = (f"at most {max_rate * 100:g}% of each val_clean source flagged"
            + (f" ({', '.join(unbound)} measured, not bound)" if unbound else "")
            + "; calibration and span rule of the default, span gate at least the threshold")
    return OperatingPoint("quiet", settings, rule)


def point_report(det: Detector, sets: dict[str, ScoredSet], seed_text: str | None, gold: dict | None
                 ) -> dict[str, Any]:
    """What a detector's settings do on every set (flag and span metrics, per-source clean rates; no bootstrap) and
    whether the seed article passes its gold rule."""
    out: dict[str, Any] = {"settings": det.settings.to_dict()}
    for name, s in sets.items():
        m = measure(det, s)
        out[name] = {k: m.get(k) for k in ("n", "flag_recall", "flag_precision", "span_f1", "clean_flag_rate",
                                            "clean_span_rate", "by_source")}
    if seed_text is not None and gold is not None:
        d = det.detect(seed_text)
        out["seed_article"] = gold_rule(seed_text, gold, [(sp.start, sp.end) for sp in d.spans])
    return out


def length_of(det: Detector, sets: dict[str, ScoredSet]) -> dict[str, float]:
    """:func:`training.categories.length_report` of a detector: human English = the English-original val_clean
    records, garbled = the broad positives of the labelled sources."""
    from detector.evaluation import ENGLISH_ORIGINAL

    scores, words, garbled, human, flagged = [], [], [], [], []
    for name, s in sets.items():
        if name not in (*CHOICE_SETS, "val_clean"):
            continue
        for r, p in zip(s.records, predictions(det, s)):
            is_human = name == "val_clean" and r.source in ENGLISH_ORIGINAL
            is_garbled = name != "val_clean" and r.label in ("strict", "broad")
            if is_human or is_garbled:
                scores.append(p.score)
                words.append(len(r.text.split()))
                garbled.append(is_garbled)
                human.append(is_human)
                flagged.append(p.flagged)
    return length_report(scores, words, garbled, human, flagged)


def measure(det: Detector, s: ScoredSet, bootstrap: int = 0) -> dict[str, Any]:
    """Every metric of one set through detector.evaluation, plus per-source flag and span rates."""
    preds = predictions(det, s)
    m = evaluate(s.records, preds, bootstrap=bootstrap)
    m["by_source"] = rates_by_source(s.records, preds)
    return m


def scored_sets(det: Detector, corpus: Path, limit: int) -> dict[str, ScoredSet]:
    """Raw scores of every report set, val_clean and test_clean."""
    sets: dict[str, ScoredSet] = {}
    for split, _, cap in REPORT_SETS:
        p = corpus / f"{split}.jsonl"
        if p.exists():
            rows = read_records(p, min(x for x in (limit, cap) if x) if (limit or cap) else 0)
            log(f"scoring {split}: {len(rows)} records")
            sets[split] = score_set(det, rows)
        else:
            log(f"{p} is missing: {split} is left out of the metrics and the card"
                + (" (rebuild the corpus: corpus.build_corpus writes it)" if split == "val_mlqe_doc" else ""))
    clean_rows = read_records(corpus / "val_clean.jsonl", limit)
    log(f"scoring val_clean: {len(clean_rows)} records")
    sets["val_clean"] = score_set(det, clean_rows)
    sets["test_clean"] = score_set(det, read_records(corpus / "test_clean.jsonl", limit or 3000, seed=1))
    return sets


def finalize(model_dir: Path, corpus: Path, out_root: Path, seed_dir: Path, limit: int = 0,
             max_flag: float = 0.02, max_span: float = 0.01, gate_spans: bool = True,
             require_seed: bool = True, version: str | None = None,
             span_scores: Sequence[str] = ("fluency", "error"), bootstrap: int = 200, loso: bool = True,
             clean_rule: str = "pooled", max_sense_weight: float = math.inf, name: str | None = None,
             unbound: Sequence[str] = (), quiet_rate: float = QUIET_MAX_RATE,
             quiet_unbound: Sequence[str] = QUIET_UNBOUND, default_rule: str = "quiet",
             data: Path | None = None) -> Path:
    """Choose and measure everything, write the model folder. ``default_rule``: ``quiet`` (1.8.0 on: the default
    settings flag at most ``quiet_rate`` of each English-original val_clean source; the macro rule's settings become
    the ``recall`` operating point) or ``macro`` (the earlier default, with ``quiet`` as a named point). The seed
    article is read only when it is there or required; ``data`` (the data pack) adds the rule categories' report."""
    det = Detector.load(model_dir, backend="torch")
    t0 = time.time()
    sets = scored_sets(det, corpus, limit)
    seed_here = (seed_dir / "russia-china-article.txt").is_file()
    seed_text, gold = load_seed(seed_dir) if seed_here or require_seed else (None, None)
    labelled = {k: sets[k] for k in CHOICE_SETS if k in sets}
    clean = clean_budgets(sets["val_clean"], clean_rule, unbound)
    rules: dict[str, Any] = {"max_flag": max_flag, "max_span": max_span, "gate_spans": gate_spans,
                             "require_seed": require_seed and seed_text is not None, "span_scores": span_scores,
                             "max_sense_weight": max_sense_weight}
    final, th = choose_settings(det, labelled, clean, seed_text, gold, **rules)
    a, b, c, d_, e = final.config.calibration
    log(f"calibration a={a:.4f} b={b:.4f} c={c:.4f} d={d_:.4f} e={e:.4f}; settings {final.settings}")
    points: tuple[OperatingPoint, ...] = ()
    point_reports: dict[str, Any] = {}
    if default_rule == "quiet":
        quiet = quiet_point(final, labelled, sets["val_clean"], quiet_rate, quiet_unbound)
        recall = OperatingPoint("recall", final.settings,
                                f"the macro rule (the default before 1.8.0): best mean flag F1 with at most "
                                f"{max_flag * 100:g}% of val_clean flagged, span settings by best macro span F1")
        th["recall"] = {k: th[k] for k in ("threshold", "span_threshold", "span_gate", "span_score")}
        th.update(threshold=quiet.settings.threshold, span_gate=quiet.settings.span_gate, default_rule=quiet.rule)
        final = final.with_settings(quiet.settings)
        log(f"default settings: {final.settings} ({quiet.rule}); recall point: {recall.settings}")
        points = (recall,)
        point_reports["recall"] = {"rule": recall.rule, **point_report(final.with_settings(recall.settings), sets,
                                                                         seed_text, gold)}
    elif quiet_rate > 0:
        quiet = quiet_point(final, labelled, sets["val_clean"], quiet_rate, quiet_unbound)
        log(f"operating point quiet: {quiet.settings} ({quiet.rule})")
        points = (quiet,)
        point_reports["quiet"] = {"rule": quiet.rule,
                                  **point_report(final.with_settings(quiet.settings), sets, seed_text, gold)}
    metrics = {name: {"set": name, **measure(final, s, bootstrap if name in CHOICE_SETS else 0)}
               for name, s in sets.items()}
    loo = leave_one_out(det, labelled, clean, seed_text, gold, **{**rules, "span_scores": (th["span_score"],)}) \
        if loso else {}
    seed: dict[str, Any] | None = None
    if seed_text is not None and gold is not None:
        d = final.detect(seed_text)
        rule = gold_rule(seed_text, gold, [(s.start, s.end) for s in d.spans])
        ranked = sorted(d.passages, key=lambda p: -p.score)
        seed = {**rule, "spans": [s.to_dict() for s in d.spans],
                "top_passages": [{"text": p.text[:120], "score": round(p.score, 4)} for p in ranked[:5]]}
        log(f"seed article: {json.dumps(rule)}")
    length = {point: length_of(final.with_settings(settings), sets)
              for point, settings in (("default", final.settings), *((p.name, p.settings) for p in points))}
    cats = None
    if data is not None and (data / "mlqe-pe").is_dir():
        cats = category_report(final, corpus, data)
    # write the model folder
    config = final.config.replace(settings=final.settings, operating_points=points,
                                  calibration=(round(a, 6), round(b, 6), round(c, 6), round(d_, 6), round(e, 6)),
                                  **({"version": version} if version else {}), **({"name": name} if name else {}))
    cfg = config.to_dict()
    out = out_root / cfg["name"]
    staging = out_root / f".{cfg['name']}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for f in ("model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
              "sense_head.json", *([config.word_table] if config.word_table else [])):
        if (model_dir / f).exists():
            shutil.copy(model_dir / f, staging / f)
    ModelFolder(staging).write_config(config)
    if (model_dir / "train_history.json").exists():
        history = json.loads((model_dir / "train_history.json").read_text())
    else:  # an already finalized folder (the training run's history is kept in its metrics.json)
        old = json.loads((model_dir / "metrics.json").read_text())
        history = {"history": old["train_history"], "seconds": old["train_seconds"], "config": old["train_config"]}
    th.update({"max_flag": max_flag, "max_span": max_span, "require_seed": rules["require_seed"], "clean_rule": clean_rule,
               "clean_unbound": sorted(unbound), "quiet_rate": quiet_rate, "quiet_unbound": sorted(quiet_unbound)})
    sense = json.loads((model_dir / "sense_head.json").read_text()) if (model_dir / "sense_head.json").exists() else None
    full = {"thresholds": th, "calibration": {"a": a, "b": b, "c": c, "d": d_, "e": e}, "metrics": metrics,
            "seed_article": seed, "leave_one_source_out": loo, "sense_head": sense, "operating_points": point_reports,
            "length": length, "categories": cats,
            "train_history": history["history"], "train_seconds": history["seconds"], "train_config": history["config"],
            "finalize_seconds": round(time.time() - t0)}
    ModelFolder(staging).write_text("metrics.json", json.dumps(jsonable(full), indent=1) + "\n")
    ModelFolder(staging).write_text("MODEL_CARD.md", model_card(cfg, full, history["config"]))
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    (out_root / "DEFAULT").write_text(cfg["name"] + "\n")
    log(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("models"))
    ap.add_argument("--max-clean-flag-rate", type=float, default=0.02,
                    help="at most this share of clean English (val_clean; of each of its sources with "
                         "--clean-rule per-source) may be flagged")
    ap.add_argument("--max-clean-span-rate", type=float, default=0.01,
                    help="at most this share of clean English records (per source with --clean-rule per-source) may "
                         "carry a span")
    ap.add_argument("--max-sense-weight", type=float, default=math.inf,
                    help="largest weight of the sense logit relative to the garbled logit tried (default: the grid's)")
    ap.add_argument("--clean-rule", choices=["pooled", "per-source"], default="pooled",
                    help="apply the clean-English budgets to val_clean as a whole (default) or to each source")
    ap.add_argument("--clean-unbound", default="",
                    help="comma-separated val_clean sources measured and reported but not bound by the budgets "
                         "(e.g. wmt21_ref_a: a human translation, not English-original)")
    ap.add_argument("--no-loso", action="store_true", help="skip the leave-one-source-out report")
    ap.add_argument("--no-span-gate", action="store_true", help="spans anywhere (no passage-probability gate)")
    ap.add_argument("--no-seed-constraint", action="store_true",
                    help="do not require the seed article's gold rule when choosing the span settings")
    ap.add_argument("--version", help="model version to write (default: the training config's)")
    ap.add_argument("--name", help="model name to write, and the folder's name under --out (default: the training "
                                   "config's)")
    ap.add_argument("--span-scores", default="fluency,error",
                    help="token values to cut spans from, tried in turn: fluency = P(fluency), error = 1 - P(ok)")
    ap.add_argument("--limit", type=int, default=0, help="score at most N records per set (smoke runs)")
    ap.add_argument("--bootstrap", type=int, default=200,
                    help="bootstrap rounds for the intervals of the labelled sources (0: none)")
    ap.add_argument("--examples", type=Path, default=SEED_DIR)
    ap.add_argument("--quiet-max-rate", type=float, default=QUIET_MAX_RATE,
                    help="the quiet operating point flags at most this share of each val_clean source (0: no quiet "
                         "point)")
    ap.add_argument("--quiet-unbound", default=",".join(QUIET_UNBOUND),
                    help="val_clean sources the quiet point measures but does not bind (comma-separated)")
    ap.add_argument("--default-rule", choices=["quiet", "macro"], default="quiet",
                    help="quiet (1.8.0 on): the default settings flag at most --quiet-max-rate of each English-original "
                         "val_clean source, the macro rule's settings are the recall point; macro: the earlier default, "
                         "with quiet as a named point")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"),
                    help="the data pack (MLQE-PE dev sources for the rule categories' report; skipped when absent)")
    ap.add_argument("--card-only", action="store_true",
                    help="only rewrite MODEL_CARD.md of --model (a finalized folder) from its metrics.json")
    args = ap.parse_args(argv)
    if args.card_only:
        write_card(args.model)
        return 0
    finalize(args.model, args.corpus, args.out, args.examples, args.limit,
             args.max_clean_flag_rate, args.max_clean_span_rate, not args.no_span_gate, not args.no_seed_constraint,
             args.version, tuple(args.span_scores.split(",")), args.bootstrap, not args.no_loso,
             args.clean_rule, args.max_sense_weight, args.name,
             tuple(x for x in args.clean_unbound.split(",") if x), args.quiet_max_rate,
             tuple(x for x in args.quiet_unbound.split(",") if x), args.default_rule, args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
