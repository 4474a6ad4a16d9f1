"""Speed and quality of the scoring backends, side by side in one run (issue #12); writes the throughput section of
docs/benchmarks.md (between markers) and docs/throughput.json.

    python -m benchmarks.throughput --corpus build/corpus

Every figure comes from this one run on this machine: end-to-end ``mtdetect score --format jsonl`` on news sentences
(reading, scoring, span decoding, writing; a fresh process each), one editor's paragraph after loading, CLI cold
start, peak memory on a large JSONL file, and per-source quality (segment AUROC, span F1, clean flag rate) of every
backend against the torch fp32 reference. The SmolLM2 surprisal peer's speed is measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from corpus.records import read_records
from detector import Detector
from detector.evaluation import EvalRecord, evaluate, fmt, gold_rule, predict, score_records

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "examples"
MARK_START, MARK_END = "<!-- throughput:start -->", "<!-- throughput:end -->"
BACKENDS = [("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]  # the first is the reference
MODEL: Path | None = None  # a copy of the shipped model with the int8 graph exported too (set in main)
SOURCES = ["val_news", "val_ted", "val_wmt22", "val_bio", "val_mlqe", "val_clean"]
PARAGRAPH = ("The minister said on Tuesday that the new rules would take effect next month. Companies that fail to "
             "comply will face fines of up to 5% of their annual turnover. Critics argue that the measures do not go "
             "far enough, while industry groups warn of rising costs. The government has rejected both claims. "
             "A final vote is expected before the end of the year.")


def log(msg: str) -> None:
    print(f"[throughput {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_cli(args: list[str], stdin_path: Path | None = None) -> dict[str, float]:
    """Wall time and peak RSS (MB) of one fresh ``mtdetect`` process; its output is discarded."""
    runner = ("import resource, subprocess, sys, time\n"
              "t = time.perf_counter()\n"
              "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stdin=sys.stdin)\n"
              "print(r.returncode, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    cmd = [sys.executable, "-c", runner, sys.executable, "-m", "detector.cli", "score", *args]
    with open(stdin_path or os.devnull, "rb") as f:
        out = subprocess.run(cmd, stdin=f, capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    if out[0] not in ("0", "1"):  # 1: something was flagged
        raise RuntimeError(f"mtdetect {' '.join(args)} exited {out[0]}")
    return {"wall_s": float(out[1]), "peak_rss_mb": round(int(out[2]) / 1024, 1)}


def export_onnx(folder: Path, *args: str) -> None:
    """Export a model folder's graphs with the pipeline's own command (benchmarks import no training code)."""
    subprocess.run([sys.executable, "-m", "training.export_onnx", "--model", str(folder), *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def backend_args(backend: str, precision: str) -> list[str]:
    model = ["--model", str(MODEL)] if MODEL is not None else []
    return [*model, "--backend", backend, "--precision", precision, "--threads", "2", "--quiet", "--format", "jsonl"]


def speed(corpus: Path, n: int, big_mb: int, tmp: Path) -> dict[str, Any]:
    news = [r["text"] for r in read_records(corpus / "val_news.jsonl")]
    news = sorted(set(news), key=news.index)[:n]
    words = sum(len(t.split()) for t in news) / len(news)
    jsonl = tmp / "news.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(news)), encoding="utf-8")
    para = tmp / "paragraph.txt"
    para.write_text(PARAGRAPH + "\n", encoding="utf-8")
    big = tmp / "big.jsonl"
    with open(big, "w", encoding="utf-8") as f:
        i = 0
        while f.tell() < big_mb << 20:
            f.write(json.dumps({"id": i, "text": news[i % len(news)]}) + "\n")
            i += 1
    big_records = i
    out: dict[str, Any] = {"n_sentences": len(news), "words_per_sentence": round(words, 1), "big_mb": big_mb,
                           "big_records": big_records, "rows": {}}
    for backend, precision in BACKENDS:
        name = f"{backend} {precision}"
        args = backend_args(backend, precision)
        log(f"{name}: cold start, batch CLI")
        cold = run_cli([*args[:-2], "--format", "jsonl", "--plain", str(para)])
        batch = run_cli([*args, str(jsonl)])
        row = {"cold_start_s": round(cold["wall_s"], 2), "cli_wall_s": round(batch["wall_s"], 2),
               "cli_sent_per_s": round(len(news) / batch["wall_s"], 1),
               "cli_sent_per_s_loaded": round(len(news) / max(batch["wall_s"] - cold["wall_s"], 1e-3), 1),
               "cli_peak_rss_mb": batch["peak_rss_mb"]}
        det = Detector.load(MODEL, backend=backend, precision=precision, threads=2)
        det.detect(PARAGRAPH)
        t = time.perf_counter()
        reps = 20
        for _ in range(reps):
            det.detect(PARAGRAPH)
        row["paragraph_sent_per_s"] = round(5 * reps / (time.perf_counter() - t), 1)
        if backend == "onnx" and precision == "fp32":
            log(f"{name}: {big_mb} MB JSONL")
            row["big_peak_rss_mb"] = run_cli([*args, str(big)])["peak_rss_mb"]
        out["rows"][name] = row
    log("smollm2 peer")
    r = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--system", "smollm2", "--sentences", str(jsonl),
                        "--n", "48"], capture_output=True, text=True, cwd=ROOT)
    out["smollm2"] = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"error": r.stderr[-300:]}
    return out


def quality(corpus: Path, limit: int) -> dict[str, Any]:
    sets = {s: [EvalRecord.from_dict(r) for r in read_records(corpus / f"{s}.jsonl")][:limit] for s in SOURCES}
    text = (SEED / "russia-china-article.txt").read_text(encoding="utf-8")
    gold = json.loads((SEED / "russia-china-article.gold.json").read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for backend, precision in BACKENDS:
        name = f"{backend} {precision}"
        det = Detector.load(MODEL, backend=backend, precision=precision, threads=2)
        row: dict[str, Any] = {}
        for s, recs in sets.items():
            log(f"{name}: {s} ({len(recs)} records)")
            m = evaluate(recs, predict(det, score_records(det, recs, batch_size=64)))
            row[s] = {k: m[k] for k in ("auroc_broad", "span_f1", "clean_flag_rate")}
        d = det.detect(text)
        row["seed_passes"] = bool(gold_rule(text, gold, [(s.start, s.end) for s in d.spans])["passed"])
        out[name] = row
    return out


def markdown(res: dict[str, Any]) -> str:
    sp, q = res["speed"], res["quality"]
    ref = q["torch fp32"]
    lines = [MARK_START, "", f"## Throughput and backends ({res['date']}, {res['cores']} cores, 2 threads)", "",
             f"`python -m benchmarks.throughput --corpus build/corpus` ({res['minutes']:.0f} min). "
             f"End to end: `mtdetect score --format jsonl --threads 2` on {sp['n_sentences']} unique news sentences "
             f"({sp['words_per_sentence']} words on average) from a JSONL file, a fresh process per backend "
             "(reading, scoring, span decoding, writing; stdout discarded). *Loaded*: the same minus the cold start. "
             "onnx int8 is not shipped (see the README's Backends); it is exported here into a copy of the model. "
             "Cold start: the whole CLI process for one paragraph (imports, model load, scoring, output). "
             "Paragraph: `Detector.detect` on one 5-sentence paragraph after loading.", "",
             "| backend | end to end (sent/s) | once loaded (sent/s) | paragraph after load (sent/s) | cold start (s) "
             "| peak RSS, batch (MB) | speed vs torch fp32 |", "|---|---|---|---|---|---|---|"]
    base = sp["rows"]["torch fp32"]["cli_sent_per_s"]
    for name, r in sp["rows"].items():
        lines.append(f"| {name} | {r['cli_sent_per_s']} | {r['cli_sent_per_s_loaded']} | {r['paragraph_sent_per_s']} "
                     f"| {r['cold_start_s']} | {r['cli_peak_rss_mb']} | {r['cli_sent_per_s'] / base:.2f}x |")
    peer = sp.get("smollm2", {})
    if "sent_per_s_b64" in peer:
        best = max(r["cli_sent_per_s"] for r in sp["rows"].values())
        lines += ["", f"SmolLM2-135M surprisal peer (`benchmarks.speed`, 48 sentences, batch 64): "
                      f"{peer['sent_per_s_b64']} sent/s, cold start {peer['cold_start_s']} s; the fastest backend "
                      f"above is {best / peer['sent_per_s_b64']:.0f}x that."]
    big = sp["rows"].get("onnx fp32", {}).get("big_peak_rss_mb")
    if big is not None:
        lines += ["", f"Peak RSS of `mtdetect score --format jsonl` (onnx fp32) on a {sp['big_mb']} MB JSONL file "
                      f"({sp['big_records']} records): {big} MB."]
    lines += ["", "Quality of each backend against the torch fp32 reference, per validation source "
                  "(broad-label segment AUROC, character span F1, share of clean records flagged; the whole of each "
                  f"set up to {res['limit']} records), and the seed article's gold rule:", "",
              "| backend | source | AUROC broad | Δ vs torch | span F1 | Δ vs torch | clean flagged |",
              "|---|---|---|---|---|---|---|"]
    for name, row in q.items():
        for s in SOURCES:
            m, r0 = row[s], ref[s]
            lines.append(f"| {name} | {s} | {fmt(m['auroc_broad'])} | {fmt(m['auroc_broad'] - r0['auroc_broad'])} "
                         f"| {fmt(m['span_f1'])} | {fmt(m['span_f1'] - r0['span_f1'])} | {fmt(m['clean_flag_rate'])} |")
    lines += ["", "Seed rule: " + ", ".join(f"{n} {'passes' if r['seed_passes'] else 'FAILS'}" for n, r in q.items()),
              "", MARK_END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "build" / "corpus")
    ap.add_argument("--n", type=int, default=2000, help="news sentences for the end-to-end runs")
    ap.add_argument("--limit", type=int, default=3000, help="records per validation source for quality")
    ap.add_argument("--big-mb", type=int, default=3,
                    help="size of the JSONL file for the memory run (MB; scoring it takes about 2 min per MB here)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument("--skip-quality", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.time()
    res: dict[str, Any] = {"date": datetime.date.today().isoformat(), "cores": os.cpu_count(), "limit": a.limit}
    global MODEL
    with tempfile.TemporaryDirectory() as tmp:
        MODEL = Path(tmp) / "model"
        shutil.copytree(Detector.load(language_id=False).path or "", MODEL)
        log("exporting the int8 graph into a copy of the shipped model")
        export_onnx(MODEL, "--int8")
        res["speed"] = speed(a.corpus, a.n, a.big_mb, Path(tmp))
        res["quality"] = {} if a.skip_quality else quality(a.corpus, a.limit)
    res["minutes"] = (time.time() - t0) / 60
    (a.out.parent / "throughput.json").write_text(json.dumps(res, indent=1, default=str) + "\n", encoding="utf-8")
    if res["quality"]:
        old = a.out.read_text(encoding="utf-8")
        block = markdown(res)
        if MARK_START in old:
            head, rest = old.split(MARK_START, 1)
            a.out.write_text(head + block + rest.split(MARK_END, 1)[1], encoding="utf-8")
        else:
            a.out.write_text(old.rstrip("\n") + "\n\n" + block + "\n", encoding="utf-8")
    print(json.dumps(res["speed"]["rows"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
