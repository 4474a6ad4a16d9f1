"""Documents at the cost of their sentences? What the window layout costs and changes (issue #34); writes
docs/windows.md and docs/windows.json.

    python -m benchmarks.windows --corpus build/corpus --docs 120

Validation segments are put back together as the documents they came from (same ``doc_id`` and system, in segment
order, one segment per line: a plain-text article) and scored as documents under each window layout:

- ``per passage``: one window per passage with ``context_tokens`` of neighbouring text on each side (the shipped
  model's layout, the one it was trained on);
- ``shared N``: consecutive short passages share a window of up to N tokens, the same context around them
  (``ModelConfig.shared_window``; :mod:`detector._windows`).

A segment's score is the highest score of the passages inside it, its flag any flagged passage, its spans those
inside it; the same metrics as everywhere (:mod:`detector.evaluation`) are computed per source, with the segments
scored alone (one JSON Lines record each) as the reference. The seed article is scored under each layout (its pass
rule), and the wall time of each layout on the same documents is measured in the same run, back to back.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from detector import Detection, Detector
from detector.evaluation import EvalRecord, Prediction, evaluate, fmt, gold_rule

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "examples"
SOURCES = ["val_news", "val_ted", "val_wmt22", "val_bio", "val_mlqe", "val_clean"]
LAYOUTS = [0, 128, 256]  # shared_window: 0 = per passage
METRICS = ["auroc_strict", "auroc_broad", "flag_recall", "span_f1", "clean_flag_rate"]


def log(msg: str) -> None:
    print(f"[windows {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def documents(path: Path, n_docs: int, seed: int = 0) -> list[list[dict[str, Any]]]:
    """Up to ``n_docs`` documents of at least 3 segments: records grouped by (doc_id, system), in segment order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    with path.open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("doc_id") is not None and "\n" not in r["text"]:
                groups[(str(r["doc_id"]), str(r.get("system") or ""))].append(r)
    docs = [sorted(g, key=_seg) for g in groups.values() if len(g) >= 3]
    random.Random(seed).shuffle(docs)
    return docs[:n_docs]


def _seg(r: dict[str, Any]) -> int:
    seg = r.get("seg")
    return seg if isinstance(seg, int) else 0


def segment_predictions(d: Detection, bounds: list[tuple[int, int]]) -> list[Prediction]:
    """The predictions of a document's segments (character ranges ``bounds``) from the document's detection."""
    out = []
    for a, b in bounds:
        inside = [p for p in d.passages if a <= p.start and p.end <= b]
        out.append(Prediction(max((p.score for p in inside), default=0.0), any(p.flagged for p in inside),
                              tuple((s.start - a, s.end - a) for s in d.spans if a <= s.start and s.end <= b)))
    return out


def run(corpus: Path, n_docs: int) -> dict[str, Any]:
    base = Detector.load()
    dets = {w: base.with_config(base.config.replace(shared_window=w)) if w else base for w in LAYOUTS}
    out: dict[str, Any] = {"sources": {}, "time_s": {}, "seed": {}}
    times: dict[str, float] = defaultdict(float)
    for src in SOURCES:
        docs = documents(corpus / f"{src}.jsonl", n_docs)
        texts, bounds, records = [], [], []
        for doc in docs:
            pos, b = 0, []
            for r in doc:
                b.append((pos, pos + len(r["text"])))
                pos += len(r["text"]) + 1
                records.append(EvalRecord.from_dict(r))
            texts.append("\n".join(r["text"] for r in doc))
            bounds.append(b)
        log(f"{src}: {len(docs)} documents, {len(records)} segments")
        row: dict[str, Any] = {"documents": len(docs), "segments": len(records)}
        t = time.perf_counter()
        alone = [Prediction.of(x) for x in base.detect_batch([r.text for r in records])]
        times["segments alone (JSON Lines)"] += time.perf_counter() - t
        row["alone"] = {k: evaluate(records, alone).get(k) for k in METRICS}
        for w, det in dets.items():
            name = f"shared {w}" if w else "per passage"
            t = time.perf_counter()
            detections = det.detect_batch(texts)
            times[name] += time.perf_counter() - t
            preds = [p for d, b in zip(detections, bounds) for p in segment_predictions(d, b)]
            row[name] = {k: evaluate(records, preds).get(k) for k in METRICS}
        out["sources"][src] = row
    out["time_s"] = {k: round(v, 2) for k, v in times.items()}
    text_path, gold_path = SEED / "russia-china-article.txt", SEED / "russia-china-article.gold.json"
    if text_path.exists():
        text = text_path.read_text(encoding="utf-8")
        gold = json.loads(gold_path.read_text(encoding="utf-8"))
        for w, det in dets.items():
            d = det.detect(text)
            rule = gold_rule(text, gold, [(s.start, s.end) for s in d.spans])
            out["seed"][f"shared {w}" if w else "per passage"] = {
                "passed": rule["passed"], "must_flag_hit": rule["must_flag_hit"],
                "flagged_passages": sum(p.flagged for p in d.passages)}
    return out


def markdown(res: dict[str, Any], cmd: str) -> str:
    names = ["alone"] + [f"shared {w}" if w else "per passage" for w in LAYOUTS]
    lines = ["# Window layouts: what sharing windows between passages costs and changes (issue #34)", "",
             f"Written by `{cmd}` on {datetime.date.today().isoformat()} (model "
             f"{res['model']}, {res['backend']} backend). Validation segments put back together as the documents they "
             "came from (one segment per line), scored as documents under each layout; `alone` is each segment "
             "scored as its own record (JSON Lines). Metrics per segment (detector.evaluation), default settings.",
             "", "| source | metric | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    empty = [src for src, row in res["sources"].items() if not row["documents"]]
    for src, row in res["sources"].items():
        if not row["documents"]:
            continue
        for k in METRICS:
            vals = [row[n].get(k) for n in names]
            if all(v is None for v in vals):
                continue
            lines.append(f"| {src} ({row['documents']} docs, {row['segments']} segments) | {k} | "
                         + " | ".join(fmt(v) for v in vals) + " |")
    if empty:
        lines += ["", f"No documents of 3 or more segments in {', '.join(empty)} (their records carry no shared "
                  "document id)."]
    lines += ["", "Wall time on the same documents (all sources, one process, back to back):", "",
              "| layout | seconds | vs per passage |", "|---|---|---|"]
    ref = res["time_s"].get("per passage", 0.0)
    for k, v in res["time_s"].items():
        lines.append(f"| {k} | {v:.1f} | {v / ref:.2f}x |" if ref else f"| {k} | {v:.1f} | |")
    if res["seed"]:
        lines += ["", "The seed article under each layout:", "", "| layout | pass rule | must-flag hits | flagged "
                  "passages |", "|---|---|---|---|"]
        for k, v in res["seed"].items():
            hits = ", ".join(f"{t!r}: {h}" for t, h in v["must_flag_hit"].items())
            lines.append(f"| {k} | {'pass' if v['passed'] else 'FAIL'} | {hits} | {v['flagged_passages']} |")
    lines += ["", "Reading (the rule of issue #34: quality unchanged on every source and the seed rule passing):", ""]
    for name in names[2:]:
        drops = {src: row["per passage"]["auroc_strict"] - row[name]["auroc_strict"]
                 for src, row in res["sources"].items() if row["documents"] and row[name]["auroc_strict"] is not None}
        worst = max(drops, key=lambda k: drops[k]) if drops else None
        seed = res["seed"].get(name, {}).get("passed")
        clean = {src: row[name]["clean_flag_rate"] - row["per passage"]["clean_flag_rate"]
                 for src, row in res["sources"].items() if row["documents"]}
        lines.append(f"- {name}: {res['time_s'][name] / ref:.2f}x the time of per-passage windows; largest segment "
                     f"AUROC (strict) drop {drops[worst]:+.3f} on {worst}; clean flag rate up to "
                     f"{max(clean.values()):+.3f}; seed rule {'passes' if seed else 'fails'}."
                     if worst else f"- {name}: no labelled documents")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--docs", type=int, default=120, help="documents per source")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "windows.md")
    a = ap.parse_args(argv)
    if not (a.corpus / "val_news.jsonl").is_file():
        ap.error(f"no corpus in {a.corpus}: run python -m corpus.build_corpus first")
    res = run(a.corpus, a.docs)
    det = Detector.load()
    res["model"] = f"{det.config.name} {det.config.version}"
    res["backend"] = det.backend
    cmd = f"python -m benchmarks.windows --corpus {a.corpus} --docs {a.docs}"
    a.out.write_text(markdown(res, cmd), encoding="utf-8")
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
