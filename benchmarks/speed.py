"""Speed probe run in a fresh process per system: cold start, sentences/s at batch 1 and 64, peak RSS.

    python -m benchmarks.speed --system mtdetect --sentences FILE
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss would carry over the parent's peak across fork+exec on Linux)."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", required=True, choices=["mtdetect", "mtdetect-accurate", "rules", "gector", "smollm2"])
    ap.add_argument("--sentences", required=True)
    ap.add_argument("--n", type=int, default=128)
    args = ap.parse_args()
    sents = [json.loads(x)["text"] for x in open(args.sentences, encoding="utf-8")][: args.n]
    t0 = time.perf_counter()
    if args.system in ("mtdetect", "mtdetect-accurate"):
        from detector import Detector

        # the default backend (ONNX Runtime when the model has its graph); the accurate mode adds SmolLM2-135M
        det = Detector.load(threads=2, accurate=args.system == "mtdetect-accurate")

        def run(batch: list[str], bs: int) -> None:
            det.detect_batch(batch, batch_size=bs)
    else:
        from benchmarks.baselines import make

        sys_ = make(args.system)

        def run(batch: list[str], bs: int) -> None:
            for i in range(0, len(batch), bs):
                sys_.score(batch[i : i + bs])
    run(sents[:1], 1)
    cold = time.perf_counter() - t0
    res = {"system": args.system, "cold_start_s": round(cold, 2)}
    for bs in (1, 64):  # the same sentences at both batch sizes
        t = time.perf_counter()
        if bs == 1:
            for s in sents:
                run([s], 1)
        else:
            run(sents, bs)
        res[f"sent_per_s_b{bs}"] = round(len(sents) / (time.perf_counter() - t), 1)
    res["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
