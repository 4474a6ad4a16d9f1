"""BLiMP minimal-pair accuracy: does a scorer rate the unacceptable sentence of a pair as worse?

    python -m benchmarks.blimp [--model models/mtdetect-minilm-shape] [--per-paradigm 100] [--no-smollm2]
        [--no-accurate]

BLiMP (``../shared/data/acceptability/blimp``) has 67 paradigms of minimal pairs. A fixed third of the paradigms is
held back from every fit (:func:`corpus.acceptability.held_paradigm`); the headline is pair accuracy on those,
the share of pairs where the unacceptable sentence scores higher (ties count half; 0.5 = chance). Paradigms a model
may have been fitted on are reported apart. Scorers: mtdetect's text probability (default mode, and the accurate mode
when the model has one and SmolLM2 is installed), and SmolLM2-135M surprisal summed over tokens (the usual LM method
for BLiMP) and averaged per token. Writes docs/blimp.md.
"""

from __future__ import annotations

import argparse
import datetime
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from corpus.acceptability import blimp_pairs, held_paradigm
from detector import Detector

from .baselines import accurate_detector


def pair_accuracy(bad: Sequence[float], good: Sequence[float]) -> float:
    """Share of pairs where ``bad`` scores above ``good``; ties count half."""
    if not bad:
        return float("nan")
    return sum(1.0 if b > g else 0.5 if b == g else 0.0 for b, g in zip(bad, good)) / len(bad)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--per-paradigm", type=int, default=100, help="pairs sampled per paradigm (fixed seed)")
    ap.add_argument("--out", type=Path, default=Path("docs/blimp.md"))
    ap.add_argument("--no-smollm2", action="store_true", help="skip the SmolLM2 surprisal scorer (slow)")
    ap.add_argument("--all-paradigms", action="store_true", help="also the paradigms a model may be fitted on")
    ap.add_argument("--no-accurate", action="store_true", help="skip mtdetect's accurate mode (about 10 minutes)")
    args = ap.parse_args(argv)
    t0 = time.time()
    pairs = [p for p in blimp_pairs(args.per_paradigm) if args.all_paradigms or held_paradigm(p["UID"])]
    good, bad = [p["sentence_good"] for p in pairs], [p["sentence_bad"] for p in pairs]
    det = Detector.load(args.model)
    scores: dict[str, tuple[list[float], list[float]]] = {
        f"mtdetect {det.config.version} text probability": ([d.score for d in det.detect_batch(bad)],
                                                            [d.score for d in det.detect_batch(good)]),
    }
    acc = None if args.no_accurate else accurate_detector(args.model)
    if acc is not None:
        scores[f"mtdetect {det.config.version} accurate mode (--accurate)"] = (
            [d.score for d in acc.detect_batch(bad)], [d.score for d in acc.detect_batch(good)])
    if not args.no_smollm2:
        from .baselines import SurprisalBaseline

        lm = SurprisalBaseline()
        raw_b, raw_g = lm.raw(bad), lm.raw(good)
        scores["SmolLM2-135M surprisal, sum over tokens"] = ([sum(v for _, _, v in t) for _, _, t in raw_b],
                                                             [sum(v for _, _, v in t) for _, _, t in raw_g])
        scores["SmolLM2-135M surprisal, mean per token"] = ([m for m, _, _ in raw_b], [m for m, _, _ in raw_g])
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        part = "held-back" if held_paradigm(p["UID"]) else "fit"
        groups[f"{part}: all"].append(i)
        groups[f"{part}: {p['field']}"].append(i)
    names = sorted(groups, key=lambda k: (not k.startswith("held"), not k.endswith(": all"), k))
    n_held = len({p["UID"] for p in blimp_pairs(1) if held_paradigm(p["UID"])})
    lines = [
        "# BLiMP minimal pairs",
        "",
        f"Written by `python -m benchmarks.blimp --per-paradigm {args.per_paradigm}"
        f"{' --all-paradigms' if args.all_paradigms else ''}{' --no-accurate' if args.no_accurate else ''}` on "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, 2 CPU cores ({round(time.time() - t0)} s). "
        f"{len(pairs)} pairs from {len({p['UID'] for p in pairs})} paradigms; {n_held} of the 67 are held back from "
        "every fit "
        "(`corpus.acceptability.held_paradigm`).",
        "",
        "Pair accuracy: the share of pairs where the unacceptable sentence scores higher (ties half; 0.5 = chance).",
        "Rows marked *fit* are paradigms whose other pairs a model may have been trained on.",
        "",
        "| paradigms | pairs | " + " | ".join(scores) + " |",
        "|---|---|" + "---|" * len(scores),
    ]
    for g in names:
        idx = groups[g]
        cells = [f"{pair_accuracy([b[i] for i in idx], [gd[i] for i in idx]):.3f}" for b, gd in scores.values()]
        lines.append(f"| {g} | {len(idx)} | " + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
