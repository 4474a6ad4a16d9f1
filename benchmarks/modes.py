"""Speed of each mode in one run (issue #31): the encoder alone, the fused mode with its cascade, and the fused mode
reading every passage; writes docs/modes.md.

    python -m benchmarks.modes --corpus build/corpus [--n 400]

Every figure is end to end, ``mtdetect score --format jsonl --threads 2`` on the same news sentences from a JSONL file
(a fresh process each: imports, model and reader loading, reading, scoring, writing), back to back in this run;
*loaded* subtracts each mode's cold start (the same command on one sentence). The rule of issue #31: the cascade
becomes the default mode if it keeps at least half the encoder-only speed here; otherwise it is ``--accurate``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from detector import Detector
from detector.network import ModelFolder

from .throughput import run_cli

ROOT = Path(__file__).resolve().parents[1]


def news_sentences(corpus: Path, n: int, seed: int = 3) -> list[str]:
    rows = [json.loads(line) for line in (corpus / "val_news.jsonl").open(encoding="utf-8")]
    texts = sorted({r["text"] for r in rows})
    random.Random(seed).shuffle(texts)
    return texts[:n]


def read_share(det: Detector, texts: list[str]) -> float:
    """The share of passages the reader reads (a row of LM features) in the fused mode."""
    raws = det.score_raw(texts)
    read = [bool(np.isfinite(x)) for r in raws if r.lm_features is not None for x in r.lm_features[:, 0]]
    return float(np.mean(read)) if read else 0.0


def reader_vs_transformers(texts: list[str]) -> dict[str, Any]:
    """The built reader against the same graph run by torch from the GGUF weights, on the same passages."""
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from detector.network import SMOLLM2_GGUF, LmReader, StatsGraph, lm_weights_folder

    t0 = time.perf_counter()
    reader = LmReader.load(threads=2)
    onnx_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = reader.read(texts)
    onnx_s = time.perf_counter() - t0
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    src = lm_weights_folder()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    graph = StatsGraph(AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32))
    torch_load = time.perf_counter() - t0
    info = reader.info
    enc = [tok(t, add_special_tokens=False)["input_ids"][: info.max_tokens] for t in texts]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    t0 = time.perf_counter()
    ref: dict[int, np.ndarray] = {}
    with torch.inference_mode():
        for b in range(0, len(order), reader.batch_size):
            batch = [i for i in order[b : b + reader.batch_size] if enc[i]]
            if not batch:
                continue
            width = 1 + max(len(enc[i]) for i in batch)
            ids = torch.full((len(batch), width), info.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, i in enumerate(batch):
                ids[r, 0] = info.bos_id
                ids[r, 1 : len(enc[i]) + 1] = torch.tensor(enc[i])
                mask[r, : len(enc[i]) + 1] = 1
            out = graph(ids, mask).numpy()
            for r, i in enumerate(batch):
                ref[i] = out[r, : len(enc[i])]
    torch_s = time.perf_counter() - t0
    diffs, rank_off, rank_gap, n_tok = [], 0, 0.0, 0
    for i, (_, stats) in enumerate(got):
        if i in ref and len(ref[i]) == len(stats):
            diffs.append(float(np.abs(ref[i][:, :3] - stats[:, :3]).max()))
            off = ref[i][:, 3] != stats[:, 3]
            rank_off += int(off.sum())
            rank_gap = max(rank_gap, float(np.abs(ref[i][off, 3] - stats[off, 3]).max()) if off.any() else 0.0)
            n_tok += len(stats)
    return {"onnx_s": onnx_s, "onnx_load_s": onnx_load, "torch_s": torch_s, "torch_load_s": torch_load,
            "max_diff": max(diffs) if diffs else float("nan"), "tokens": n_tok, "rank_differs": rank_off,
            "max_rank_gap": rank_gap}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.modes", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "mtdetect-minilm-shape")
    ap.add_argument("--n", type=int, default=400, help="news sentences (default 400)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "modes.md")
    args = ap.parse_args(argv)
    texts = news_sentences(args.corpus, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "news.jsonl"
        data.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
        one = Path(tmp) / "one.jsonl"
        one.write_text(json.dumps({"id": 0, "text": texts[0]}) + "\n")
        every = Path(tmp) / "every-passage"  # the fused mode with the cascade off (cutoff 0)
        shutil.copytree(args.model, every)
        folder = ModelFolder(every)
        folder.write_fusion(dataclasses.replace(folder.fusion(), cutoff=0.0))
        modes: list[tuple[str, Path, list[str]]] = [
            ("encoder (default)", args.model, []), ("fused, cascade (--accurate)", args.model, ["--accurate"]),
            ("fused, every passage read", every, ["--accurate"])]
        rows: list[dict[str, Any]] = []
        for name, model, extra in modes:
            common = ["--format", "jsonl", "--threads", "2", "--model", str(model), *extra]
            cold = run_cli([str(one), *common])
            full = run_cli([str(data), *common])
            det = Detector.load(model, accurate=bool(extra), threads=2)
            share = read_share(det, texts) if extra else 0.0
            loaded = max(1e-9, full["wall_s"] - cold["wall_s"])
            rows.append({"mode": name, "wall_s": full["wall_s"], "cold_s": cold["wall_s"], "loaded_s": loaded,
                         "sentences_per_s": len(texts) / loaded, "peak_rss_mb": full["peak_rss_mb"],
                         "passages_read": share})
            print(f"{name}: {rows[-1]}", file=sys.stderr, flush=True)
    sample = texts[:200]
    reader = reader_vs_transformers(sample)
    base = rows[0]["sentences_per_s"]
    for r in rows:
        r["vs_encoder"] = r["sentences_per_s"] / base
    cascade = rows[1]["vs_encoder"]
    verdict = ("keeps at least half the encoder's speed: by the issue's rule it could be the default"
               if cascade >= 0.5 else "keeps less than half the encoder's speed: it stays the opt-in `--accurate` mode")
    lines = ["# Modes: speed in one run", "",
             f"Written by `python -m benchmarks.modes --corpus {args.corpus} --n {args.n}` on "
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, on this project's 2-core machine (shared, so figures are "
             f"noisy; the ratios come from one run). {len(texts)} unique val_news sentences as JSONL; `mtdetect score "
             "--format jsonl --threads 2`, a fresh process per mode; *loaded* = the run minus the same command on one "
             "sentence (cold start).", "",
             "| mode | sentences/s loaded | vs encoder | wall s | cold start s | peak RSS MB | passages read by SmolLM2 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['sentences_per_s']:.1f} | {r['vs_encoder']:.2f}x | {r['wall_s']:.1f} | "
                     f"{r['cold_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['passages_read']:.1%} |")
    lines += ["", f"The cascade {verdict} ({cascade:.2f}x).", "",
              f"The second reader alone, in this process on the first {len(sample)} of these sentences (each read alone, "
              "batches of 8): "
              f"ONNX Runtime {reader['onnx_s']:.1f} s after a {reader['onnx_load_s']:.1f} s load; the transformers "
              f"path it replaces (the GGUF dequantised into torch, as 1.7.1's accurate mode read it) "
              f"{reader['torch_s']:.1f} s after a {reader['torch_load_s']:.1f} s load "
              f"({reader['torch_s'] / reader['onnx_s']:.2f}x the ONNX time); largest difference of their values "
              f"{reader['max_diff']:.1e} (surprisal, entropy, best log-probability); the observed token's rank differs at "
              f"{reader['rank_differs']} of {reader['tokens']} tokens (by at most {reader['max_rank_gap']:.0f}: "
              "candidates whose logits tie within that difference).",
              ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    (args.out.with_suffix(".json")).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
