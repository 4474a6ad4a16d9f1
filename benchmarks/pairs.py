"""Within-segment ranking on val_news: can a scorer tell two MT outputs of the same source sentence apart?

    python -m benchmarks.pairs [--model models/mtdetect-minilm-shape] [--no-smollm2] [--no-accurate]

val_news holds the outputs of several MT systems for the same source segments, each rated by MQM annotators.
Segment AUROC over all records mixes two things: which *sentences* are long or hard (and so carry more errors
in every system's output) and which *outputs* contain the errors. Pair accuracy keeps only the second: over pairs
of outputs of one source segment with different labels, the share where the worse-labelled output scores higher
(0.5 = chance). Scorers: mtdetect's passage probability (default mode, and the accurate mode when the model has
one and SmolLM2 is installed), SmolLM2-135M surprisal (mean, peak, sum over tokens) and the token count. Writes
docs/pairs.md.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

from corpus.records import read_records
from detector import Detector
from detector.evaluation import EvalRecord, auroc, pair_metrics, predict, score_records

from .baselines import accurate_detector


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("docs/pairs.md"))
    ap.add_argument("--no-smollm2", action="store_true", help="skip the SmolLM2 surprisal scorer (3 minutes)")
    ap.add_argument("--no-accurate", action="store_true", help="skip mtdetect's accurate mode (4 minutes)")
    args = ap.parse_args(argv)
    t0 = time.time()
    recs = read_records(args.corpus / "val_news.jsonl")
    gold = [EvalRecord.from_dict(r) for r in recs]
    det = Detector.load(args.model)
    scorers: dict[str, list[float]] = {
        f"mtdetect {det.config.version} passage probability": [p.score for p in predict(det, score_records(det, recs))],
        "token count (whitespace words)": [float(len(r["text"].split())) for r in recs],
    }
    acc = None if args.no_accurate else accurate_detector(args.model)
    if acc is not None:
        scorers[f"mtdetect {det.config.version} accurate mode (--accurate) passage probability"] = [
            p.score for p in predict(acc, score_records(acc, recs))]
    if not args.no_smollm2:
        from .baselines import SurprisalBaseline

        raw = SurprisalBaseline().raw([r["text"] for r in recs])
        scorers["SmolLM2-135M surprisal, mean per token"] = [m for m, _, _ in raw]
        scorers["SmolLM2-135M surprisal, peak token"] = [p for _, p, _ in raw]
        scorers["SmolLM2-135M surprisal, sum over tokens"] = [sum(v for _, _, v in t) for _, _, t in raw]
    lines = [
        "# Within-segment ranking on val_news",
        "",
        f"Written by `python -m benchmarks.pairs` on {datetime.datetime.now():%Y-%m-%d %H:%M}, 2 CPU cores "
        f"({round(time.time() - t0)} s). val_news: {len(recs)} MT outputs (WMT21 zh-en news, held-back documents).",
        "",
        "Pair accuracy: over pairs of outputs of the same source segment by different systems, the share where the",
        "worse-labelled one scores higher (ties half; 0.5 = chance). AUROC: over all records (strict vs clean;",
        "strict+broad vs clean), which also rewards knowing which source sentences are long or hard.",
        "",
        "| scorer | AUROC strict | AUROC broad | pairs strict > clean | pairs strict/broad > clean | pairs strict > broad |",
        "|---|---|---|---|---|---|",
    ]
    n_pairs = {}
    for name, xs in scorers.items():
        st = [(x, r["label"] == "strict") for x, r in zip(xs, recs) if r["label"] in ("strict", "clean")]
        br = [(x, r["label"] != "clean") for x, r in zip(xs, recs) if r["label"] in ("strict", "broad", "clean")]
        pm = pair_metrics(gold, xs)
        n_pairs = {k: int(v) for k, v in pm.items() if k.startswith("n_pairs")}
        lines.append(f"| {name} | {auroc([a for a, _ in st], [int(b) for _, b in st]):.3f} | "
                     f"{auroc([a for a, _ in br], [int(b) for _, b in br]):.3f} | {pm['pair_acc_strict_clean']:.3f} | "
                     f"{pm['pair_acc_broad_clean']:.3f} | {pm['pair_acc_strict_broad']:.3f} |")
    lines += ["", f"Pairs: {n_pairs.get('n_pairs_strict_clean')} strict > clean, "
              f"{n_pairs.get('n_pairs_broad_clean')} strict/broad > clean, {n_pairs.get('n_pairs_strict_broad')} "
              "strict > broad (from 8 documents, so neighbouring pairs share segments and raters)."]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
