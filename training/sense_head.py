"""Fit the "makes no sense" head on a frozen model and write a model folder that has it.

    python -m training.sense_head --model models/mtdetect-minilm-shape --corpus build/corpus \
        --out build/models/mtdetect-minilm-shape-sense

The head is one logistic unit on the passage features the passage head reads (mean- and max-pooled encoder states
of the passage, peak and mean token error probability; :mod:`training.features`). Targets (issue #11):

- MLQE-PE training outputs rated as meaning lost (mean DA < 30) are positives; outputs with HTER 0 and DA >= 70 are
  negatives; the middle is left out. Wikipedia articles are split: a fixed fifth of each pair's articles
  (sha256 of pair + article) is held back, written to ``<corpus>/val_mlqe_doc.jsonl`` and never fitted on;
- clean human English of the training split (abc, brown, gum, sotu, newstest, WMT21 references) as negatives, so
  that clean English stays below garbled MT;
- WMT20/21 news and Bio-MQM training records (strict/broad positives, clean negatives).

Each of the three groups weighs the same, and within a group the two classes weigh the same. Features are
standardised; the standardisation is folded into the head's weights. The encoder and the other heads are unchanged
(same weights as the input model). The logit becomes the third passage output ("sense"); its weight in the passage
probability (calibration ``d``) is chosen by :mod:`training.finalize` on every validation source.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from detector import Detector
from detector.evaluation import auroc, jsonable, spearman
from detector.network import write_manifest

from .features import cached_features
from .records import read_records
from .search import fit_logistic

MLQE_PAIRS = ("ro-en", "et-en", "ne-en", "si-en", "ru-en")
CLEAN_SOURCES = ("abc", "brown", "gum", "sotu", "newstest_en", "wmt21_ref_a")
LOW_DA, HIGH_DA = 30.0, 70.0


def log(msg: str) -> None:
    print(f"[sense {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def held_back(record: dict[str, Any]) -> bool:
    """The fixed fifth of MLQE-PE articles (per pair) that no fit sees."""
    key = record["meta"]["pair"] + "\x00" + record["meta"]["article"]
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 5 == 0


def mlqe_target(record: dict[str, Any]) -> int | None:
    """1: meaning lost (DA < 30); 0: clean (HTER 0, DA >= 70); None: in between."""
    da, hter = record["meta"]["da"], record["meta"]["hter"]
    return 1 if da < LOW_DA else (0 if hter == 0 and da >= HIGH_DA else None)


def training_groups(train: list[dict[str, Any]], n_clean: int, n_news: int, seed: int) -> dict[str, list[tuple]]:
    rnd = random.Random(seed)
    mlqe = [(r, t) for r in train if r["source"] == "mlqe_pe" and not held_back(r)
            for t in [mlqe_target(r)] if t is not None]
    clean = [r for r in train if r["source"] in CLEAN_SOURCES and r["label"] == "clean"]
    news = [r for r in train if r["source"] in ("wmt20_news", "wmt21_news", "bio_mqm") and r["label"] != "ambiguous"]
    return {"mlqe": mlqe,
            "clean": [(r, 0) for r in rnd.sample(clean, min(n_clean, len(clean)))],
            "news": [(r, int(r["label"] != "clean")) for r in rnd.sample(news, min(n_news, len(news)))]}


def fit_head(x: np.ndarray, y: np.ndarray, group: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Logistic head on standardised features, classes and groups weighted equally; returned in raw-feature
    terms (weights, bias)."""
    w = np.zeros(len(y))
    for g in np.unique(group):
        for c in (0, 1):
            m = (group == g) & (y == c)
            if m.any():
                w[m] = 1.0 / m.sum()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    coef, bias = fit_logistic((x - mu) / sd, y.astype(np.float64), w, l2=l2)
    weights = coef / sd
    return weights, float(bias - np.dot(weights, mu))


def mlqe_report(det: Detector, rows: list[dict[str, Any]], weights: np.ndarray, bias: float,
                clean_sense: np.ndarray, cache: Path) -> dict[str, Any]:
    """Per pair on held-back articles: Spearman of the sense logit (and of the 1.x passage score) with DA and with
    HTER, AUROC of meaning-lost vs clean MT, and AUROC of meaning-lost MT vs clean English."""
    feats, logits = cached_features(det, [r["text"] for r in rows], cache)
    sense = feats @ weights + bias
    a, _, c, _ = det.config.calibration
    old = a * logits[:, 0] + c * logits[:, 1]
    out: dict[str, Any] = {}
    for pair in MLQE_PAIRS:
        idx = [i for i, r in enumerate(rows) if r["meta"]["pair"] == pair]
        da = [rows[i]["meta"]["da"] for i in idx]
        hter = [rows[i]["meta"]["hter"] for i in idx]
        t = [mlqe_target(rows[i]) for i in idx]
        row: dict[str, Any] = {"n": len(idx), "n_low_da": sum(1 for x in t if x == 1)}
        for name, s in (("sense", sense), ("passage", old)):
            v = [float(s[i]) for i in idx]
            row[f"{name}_spearman_da"] = -spearman(v, da)
            row[f"{name}_spearman_hter"] = spearman(v, hter)
            row[f"{name}_auroc_lowda_vs_clean_mt"] = auroc([x for x, y in zip(v, t) if y is not None],
                                                          [y for y in t if y is not None])
        low = [float(sense[i]) for i, y in zip(idx, t) if y == 1]
        row["sense_auroc_lowda_vs_clean_english"] = auroc(low + list(map(float, clean_sense)),
                                                          [1] * len(low) + [0] * len(clean_sense))
        out[pair] = row
    return out


def write_model(src: Path, out: Path, weights: np.ndarray, bias: float, version: str) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from detector.network import ModelConfig

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(src, out)
    state = load_file(str(src / "model.safetensors"))
    dtype = state["token_head.weight"].dtype
    state["sense_head.weight"] = torch.tensor(weights, dtype=torch.float32).reshape(1, -1).to(dtype)
    state["sense_head.bias"] = torch.tensor([bias], dtype=torch.float32).to(dtype)
    save_file(state, str(out / "model.safetensors"))
    for f in ("model.onnx", "model.int8.onnx"):
        (out / f).unlink(missing_ok=True)  # graphs of the input model: re-export
    cfg = ModelConfig.from_dict(json.loads((src / "config.json").read_text(encoding="utf-8")))
    cfg = cfg.replace(sense_head=True, version=version)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1) + "\n", encoding="utf-8")
    write_manifest(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path("build/sense_features"))
    ap.add_argument("--n-clean", type=int, default=12000)
    ap.add_argument("--n-news", type=int, default=9000)
    ap.add_argument("--l2", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--version", default="1.5.0-rc")
    a = ap.parse_args(argv)
    t0 = time.time()
    det = Detector.load(a.model, language_id=False, backend="torch", threads=2)
    train = read_records(a.corpus / "train.jsonl")
    groups = training_groups(train, a.n_clean, a.n_news, a.seed)
    xs, ys, gs = [], [], []
    for gi, (name, items) in enumerate(groups.items()):
        log(f"{name}: {len(items)} records ({sum(t for _, t in items)} positive)")
        f, _ = cached_features(det, [r["text"] for r, _ in items], a.cache / f"train_{name}.npz")
        xs.append(f)
        ys.append(np.array([t for _, t in items]))
        gs.append(np.full(len(items), gi))
    weights, bias = fit_head(np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), a.l2)
    held = [r for r in train if r["source"] == "mlqe_pe" and held_back(r)]
    with open(a.corpus / "val_mlqe_doc.jsonl", "w", encoding="utf-8") as fh:
        for r in held:
            fh.write(json.dumps({**r, "split": "val_mlqe_doc"}, ensure_ascii=False) + "\n")
    clean_val = read_records(a.corpus / "val_clean.jsonl")
    cf, _ = cached_features(det, [r["text"] for r in clean_val], a.cache / "val_clean.npz")
    report = mlqe_report(det, held, weights, bias, cf @ weights + bias, a.cache / "val_mlqe_doc.npz")
    for pair, row in report.items():
        log(f"{pair}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    write_model(a.model, a.out, weights, bias, a.version)
    summary = {"command": " ".join(["python -m training.sense_head", *(argv or sys.argv[1:])]),
               "groups": {k: {"n": len(v), "positives": sum(t for _, t in v)} for k, v in groups.items()},
               "l2": a.l2, "seed": a.seed, "held_back_mlqe_records": len(held), "mlqe_held_back": report,
               "seconds": round(time.time() - t0)}
    (a.out / "sense_head.json").write_text(json.dumps(jsonable(summary), indent=1) + "\n", encoding="utf-8")
    write_manifest(a.out)
    log(f"wrote {a.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
