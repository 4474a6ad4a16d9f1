"""Inference-time ablations of an exported model, plus the training runs compared, as a markdown table.

    python -m training.experiments.ablate --model models/mtdetect-minilm-shape --out training/ABLATION.md

Inference-time variants show what the trained model relies on (they are not retrained models):
case/shape input zeroed, no neighbouring context, spans from fluency+accuracy probability.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from corpus.records import read_records
from detector import Detector
from detector.evaluation import auroc, evaluate, gold_rule
from detector.network import ModelFolder

from ..finalize import by_source, choose_settings, load_seed
from ..search import ScoredSet, predictions, score_set, span_f1, span_peaks


def run_variant(det: Detector, news: list[dict], clean: list[dict], mode: str) -> dict[str, Any]:
    """Segment and span metrics of one variant with span score ``mode`` and the model's span threshold and gate."""
    text, gold = load_seed()
    det = det.with_settings(span_score=mode)
    sn, sc = score_set(det, news), score_set(det, clean)
    m = evaluate(sn.records, predictions(det, sn))
    peaks = sorted(span_peaks(det, sc, det.span_gate))
    thr2 = min(1.0, peaks[int(0.98 * (len(peaks) - 1))] + 1e-6)  # <= 2% of the clean records carry a span
    seed = gold_rule(text, gold, [(s.start, s.end) for s in det.detect(text).spans])
    clean_preds = predictions(det, sc)
    return {"auroc_strict": m["auroc_strict"], "auroc_broad": m["auroc_broad"],
            "span_f1_default_thr": m["span_f1"], "span_f1_2pct_clean": span_f1(det.with_settings(span_threshold=thr2), sn),
            "thr_2pct_clean": thr2, "clean_span_rate_default": sum(bool(p.spans) for p in clean_preds) / max(1, len(sc)),
            "seed_passed": seed["passed"], "seed_must_hit": sum(seed["must_flag_hit"].values()),
            "seed_other": seed["other_sentences_touched"]}


def trained_variant(model_dir: Path, news: list[dict], clean: list[dict]) -> dict[str, Any]:
    """A separately trained model, calibrated and thresholded by the finalize rules on the same data (here with
    val_news as the one labelled source and the clean records split by source)."""
    det = Detector.load(model_dir)
    text, gold = load_seed()
    sn, sc = score_set(det, news), score_set(det, clean)
    chosen, _ = choose_settings(det, {"val_news": sn}, by_source(sc), text, gold, max_flag=0.02, max_span=0.01)
    m = evaluate(sn.records, predictions(chosen, sn))
    mc = evaluate(sc.records, predictions(chosen, sc))
    seed = gold_rule(text, gold, [(s.start, s.end) for s in chosen.detect(text).spans])
    hist = json.loads((model_dir / "train_history.json").read_text()) if (model_dir / "train_history.json").exists() else {}
    return {**m, "clean_flag_rate": mc["clean_flag_rate"], "clean_span_rate": mc["clean_span_rate"],
            "seed_passed": seed["passed"], "seed_must_hit": sum(seed["must_flag_hit"].values()),
            "seed_other": seed["other_sentences_touched"], "epochs": len(hist.get("history", [])),
            "minutes": round(hist.get("seconds", 0) / 60)}


def length_section(det: Detector, news: list[dict]) -> list[str]:
    """How much of the strict-vs-clean ranking on val_news is segment length: token count alone, and the model's
    AUROC inside length quartiles."""
    s_all: ScoredSet = score_set(det, news)
    keep = [i for i, r in enumerate(s_all.records) if r.label in ("strict", "clean")]
    scores = [p.score for p in predictions(det, s_all)]
    n_tok = [s_all.raws[i].n_tokens for i in keep]
    ys = [1 if s_all.records[i].label == "strict" else 0 for i in keep]
    xs = [scores[i] for i in keep]
    qs = sorted(n_tok)
    edges = [qs[int(q * (len(qs) - 1))] for q in (0.0, 0.25, 0.5, 0.75, 1.0)]
    lines = ["## Segment length (val_news, strict vs clean)", "",
             f"Token count alone: AUROC {auroc([float(x) for x in n_tok], ys):.3f}; the model: "
             f"{auroc(xs, ys):.3f}.", "",
             "| tokens | records | strict | model AUROC inside the quartile |", "|---|---|---|---|"]
    for i in range(4):
        idx = [k for k, x in enumerate(n_tok) if edges[i] <= x <= edges[i + 1] and (i == 0 or x > edges[i])]
        y = [ys[k] for k in idx]
        lines.append(f"| {edges[i]}-{edges[i + 1]} | {len(idx)} | {sum(y)} | "
                     f"{auroc([xs[k] for k in idx], y):.3f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("training/ABLATION.md"))
    ap.add_argument("--n-clean", type=int, default=2000)
    ap.add_argument("--runs", type=Path, nargs="*", default=[], help="metrics.json of finalized training runs")
    ap.add_argument("--trained", nargs="*", default=[], metavar="NAME=DIR",
                    help="separately trained variants (exported model folders) to calibrate and compare")
    ap.add_argument("--keep-trained", action="store_true",
                    help="keep the training-time variants table of the existing --out file (those rows do not depend"
                         " on --model) and append the --trained rows to it")
    ap.add_argument("--length-only", action="store_true", help="only (re)write the segment-length section")
    ap.add_argument("--trained-only", action="store_true", help="print the --trained variants as JSON lines only")
    ap.add_argument("--insert-only", action="store_true",
                    help="only copy an existing --out table into the model card (and refresh SHA256SUMS)")
    args = ap.parse_args(argv)
    if args.insert_only:
        insert_into_card(args.model, args.out)
        return 0
    if args.length_only:
        det = Detector.load(args.model)
        section = "\n".join(length_section(det, read_records(args.corpus / "val_news.jsonl"))) + "\n"
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Ablations\n"
        if "\n## Segment length" in old:
            head, rest = old.split("\n## Segment length", 1)
            tail = rest[rest.index("\n## ", 1):] if "\n## " in rest[1:] else "\n"
            old = head + tail
        args.out.write_text(old.rstrip("\n") + "\n\n" + section, encoding="utf-8")
        insert_into_card(args.model, args.out)
        return 0
    if args.trained_only:
        news = read_records(args.corpus / "val_news.jsonl")
        clean = read_records(args.corpus / "val_clean.jsonl", args.n_clean, seed=0)
        for spec in args.trained:
            name, _, d = spec.partition("=")
            print(json.dumps({"variant": name, **trained_variant(Path(d), news, clean)}, default=float), flush=True)
        return 0
    t0 = time.time()
    news = read_records(args.corpus / "val_news.jsonl")
    clean = read_records(args.corpus / "val_clean.jsonl", args.n_clean, seed=0)
    base = Detector.load(args.model)
    span_thr = base.span_threshold
    rows: list[tuple[str, dict[str, Any]]] = []
    mode = base.span_score
    for m_, label in (("fluency", "spans from P(fluency)"), ("error", "spans from 1 - P(ok) = P(fluency) + P(accuracy)")):
        rows.append((label + (" (as shipped)" if m_ == mode else ""), run_variant(base, news, clean, m_)))
    no_shape = Detector.load(args.model)
    with torch.no_grad():
        no_shape.network.shape_emb.weight.zero_()
    rows.append(("case/shape input zeroed (case-blind)", run_variant(no_shape, news, clean, mode)))
    no_ctx = base.with_config(base.config.replace(context_tokens=0))
    rows.append(("no neighbouring context (context_tokens=0)", run_variant(no_ctx, news, clean, mode)))
    cols = ["auroc_strict", "auroc_broad", "span_f1_default_thr", "clean_span_rate_default", "span_f1_2pct_clean",
            "seed_passed", "seed_must_hit", "seed_other"]

    def f(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [
        "# Ablations",
        "",
        f"Written by `python -m training.experiments.ablate --model {args.model}` ({round(time.time() - t0)} s). val_news "
        f"({len(news)} records) and {len(clean)} val_clean records; span threshold {span_thr} unless stated,"
        f" span gate {base.span_gate} (spans only inside passages scored at least that);"
        " `span_f1_2pct_clean` re-picks the span threshold so that 2% of the clean records carry a span.",
        "",
        "## Inference-time variants of the shipped model (not retrained)",
        "",
        "| variant | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name, r in rows:
        lines.append(f"| {name} | " + " | ".join(f(r[c]) for c in cols) + " |")
    if args.runs:
        lines += ["", "## Training runs compared (finalized models, same validation data)", "",
                  "| run | epochs trained | best epoch | val_news AUROC strict | AUROC broad | span F1 (all) | "
                  "clean flagged | clean with span | seed passed |", "|---|---|---|---|---|---|---|---|---|"]
        for p in args.runs:
            m = json.loads(p.read_text())
            v = m["metrics"]["val_news"]
            c = m["metrics"]["val_clean"]
            best = max(m["train_history"],
                       key=lambda h: h["auroc_strict"] + h["auroc_broad"] + h.get("span_f1", h.get("span_f1_all", 0)))
            lines.append(f"| {p.parent.name} ({p}) | {len(m['train_history'])} | {best['epoch']} | "
                         f"{f(v['auroc_strict'])} | {f(v['auroc_broad'])} | {f(v.get('span_f1', v.get('span_f1_all')))} | "
                         f"{f(c['clean_flag_rate'])} | {f(c['clean_span_rate'])} | {m['seed_article']['passed']} |")
    lines += [""] + length_section(base, news)
    kept: list[str] = []
    if args.keep_trained and args.out.exists():  # rows measured earlier on separately trained models
        old = args.out.read_text(encoding="utf-8")
        if "\n## Training-time variants" in old:
            table = ("## Training-time variants" + old.split("\n## Training-time variants", 1)[1]).split("\n## ", 1)[0]
            kept = table.rstrip("\n").split("\n")
    if args.trained or kept:
        tcols = ["epochs", "minutes", "auroc_strict", "auroc_broad", "span_f1", "clean_flag_rate",
                 "clean_span_rate", "seed_passed", "seed_other"]
        lines += [""] + (kept or [
            "## Training-time variants (retrained; calibrated and thresholded by the finalize rules on the"
            " same val_news and val_clean records: <= 2% clean flagged, <= 1% clean with a span, fluency spans, span"
            " gate and threshold searched with the seed rule as a constraint; seed_passed False = no setting"
            " passes it)", "",
            "| variant | " + " | ".join(tcols) + " |", "|---|" + "---|" * len(tcols)])
        for spec in args.trained:
            name, _, d = spec.partition("=")
            r = trained_variant(Path(d), news, clean)
            log_line = f"| {name} (`{d}`) | " + " | ".join(f(r[c]) for c in tcols) + " |"
            print(log_line, file=sys.stderr, flush=True)
            lines.append(log_line)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    insert_into_card(args.model, args.out)
    return 0


def insert_into_card(model: Path, table: Path) -> None:
    """Put the ablation tables into MODEL_CARD.md (replacing an earlier copy) and refresh the manifest."""
    card = model / "MODEL_CARD.md"
    text = card.read_text(encoding="utf-8")
    if "\n## Ablations" in text:
        head, rest = text.split("\n## Ablations", 1)
        tail = rest[rest.index("\n## ", 1):] if "\n## " in rest[1:] else ""
        text = head + tail
    body = table.read_text(encoding="utf-8").split("\n", 1)[1].replace("\n## ", "\n### ")
    marker = "\n## Limitations"
    section = f"\n## Ablations\n{body}\n"
    text = text.replace(marker, section + marker, 1) if marker in text else text + section
    ModelFolder(model).write_text(card.name, text)
    print(f"updated {card}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
