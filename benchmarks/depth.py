"""How fast could a shallower student be? End-to-end speed of the shipped model cut to k encoder layers (#12).

    python -m benchmarks.depth [--layers 6,3,2,1,0] [--n 1500]

A distilled student with fewer layers is the remaining lever for issue #12's 600 sentences/s. Before training one,
this measures the speed ceiling it could reach on this machine: the shipped model's folder cut to its first k encoder
layers (heads unchanged, so the *scores* of k < 6 mean nothing), exported to ONNX, and run end to end through
``mtdetect score --format jsonl --threads 2`` on the same news sentences as ``benchmarks.throughput``, plus one
editor's paragraph after loading. A line fitted to seconds per sentence against k gives the cost of everything but
the transformer layers (its intercept): the ceiling no student can pass. Writes docs/depth.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from corpus.records import read_records
from detector import Detector

from .throughput import PARAGRAPH, ROOT, export_onnx, log, run_cli


def cut(src: Path, dst: Path, k: int) -> Path:
    """A copy of model folder ``src`` with only the first ``k`` encoder layers (sense head reading no layer states),
    exported to ONNX."""
    from safetensors.torch import load_file, save_file

    from detector.network import ModelFolder

    shutil.copytree(src, dst)
    for f in ("model.onnx", "model.int8.onnx"):
        (dst / f).unlink(missing_ok=True)
    cfg = ModelFolder(src).config()
    state = load_file(str(src / "model.safetensors"))
    keep = {name: t for name, t in state.items()
            if not (name.startswith("bert.encoder.layer.") and int(name.split(".")[3]) >= k)}
    if "sense_head.weight" in keep:
        h2 = keep["passage_head.0.weight"].shape[1]
        keep["sense_head.weight"] = keep["sense_head.weight"][:, :h2].contiguous()
    save_file(keep, str(dst / "model.safetensors"))
    cfg = cfg.replace(bert={**cfg.bert, "num_hidden_layers": k}, sense_layers=[], version=f"{cfg.version}-cut{k}")
    ModelFolder(dst).write_config(cfg)
    export_onnx(dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "build" / "corpus")
    ap.add_argument("--layers", default="6,3,2,1", help="encoder depths to measure (at least 1: a graph without layers "
                    "drops the mask input)")
    ap.add_argument("--n", type=int, default=1500, help="news sentences for the end-to-end runs")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "depth.md")
    a = ap.parse_args(argv)
    t0 = time.time()
    news = [r["text"] for r in read_records(a.corpus / "val_news.jsonl")]
    news = sorted(set(news), key=news.index)[: a.n]
    words = sum(len(t.split()) for t in news) / len(news)
    src = Detector.load(language_id=False).path
    assert src is not None
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "news.jsonl"
        jsonl.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(news)), encoding="utf-8")
        para = Path(tmp) / "paragraph.txt"
        para.write_text(PARAGRAPH + "\n", encoding="utf-8")
        for k in (int(x) for x in a.layers.split(",")):
            log(f"{k} layers")
            folder = cut(src, Path(tmp) / f"cut{k}", k)
            args = ["--model", str(folder), "--backend", "onnx", "--threads", "2", "--quiet", "--format", "jsonl"]
            cold = run_cli([*args, "--plain", str(para)])
            batch = run_cli([*args, str(jsonl)])
            det = Detector.load(folder, backend="onnx", threads=2)
            det.detect(PARAGRAPH)
            t = time.perf_counter()
            for _ in range(20):
                det.detect(PARAGRAPH)
            rows.append({"layers": k, "cli_sent_per_s": round(len(news) / batch["wall_s"], 1),
                         "cli_sent_per_s_loaded": round(len(news) / max(batch["wall_s"] - cold["wall_s"], 1e-3), 1),
                         "paragraph_sent_per_s": round(5 * 20 / (time.perf_counter() - t), 1),
                         "peak_rss_mb": batch["peak_rss_mb"]})
            log(json.dumps(rows[-1]))
    base = rows[0]["cli_sent_per_s"]
    ks = [r["layers"] for r in rows]
    secs = [1 / r["cli_sent_per_s"] for r in rows]
    mk, ms = sum(ks) / len(ks), sum(secs) / len(secs)
    slope = sum((k - mk) * (t - ms) for k, t in zip(ks, secs)) / max(sum((k - mk) ** 2 for k in ks), 1e-12)
    intercept = ms - slope * mk
    lines = ["# Speed ceiling by encoder depth (issue #12)", "",
             f"Written by `python -m benchmarks.depth --layers {a.layers} --n {a.n}` on "
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPU cores ({round(time.time() - t0)} s). "
             f"{len(news)} unique val_news sentences ({words:.1f} words on average), ONNX Runtime fp32, 2 threads.", "",
             "The shipped model cut to its first k encoder layers, heads unchanged: **speed only, the scores of k < 6 "
             "are meaningless**.", "",
             "| encoder layers | CLI sent/s (end to end) | x 6 layers | CLI sent/s after load | paragraph sent/s | "
             "peak RSS MB |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['layers']} | {r['cli_sent_per_s']} | {r['cli_sent_per_s'] / base:.2f} | "
                     f"{r['cli_sent_per_s_loaded']} | {r['paragraph_sent_per_s']} | {r['peak_rss_mb']} |")
    lines += ["", f"Least-squares line over the end-to-end rows: {1000 * slope:.2f} ms per sentence per encoder layer, "
              f"{1000 * intercept:.2f} ms per sentence for everything else (process start, model load, reading, "
              f"windows, tokenising, embeddings, heads, span decoding, writing). Everything else alone would run at "
              f"{1 / max(intercept, 1e-9):.0f} sentences/s; 600 sentences/s (issue #12) allows 1.67 ms per sentence in "
              "all."]
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
