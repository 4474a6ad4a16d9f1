"""Fit the "makes no sense" head on a frozen model and write a model folder that has it.

    python -m training.sense_head --model models/mtdetect-minilm-shape --corpus build/corpus \
        --out build/models/mtdetect-minilm-shape-sense

The head is one logistic unit on the passage features the passage head reads (mean- and max-pooled encoder states
of the passage, peak and mean token error probability; :mod:`training.features`) and, with ``--layers``, the
mean-pooled passage states of those encoder layers (config ``sense_layers``). Targets (issue #11):

- MLQE-PE training outputs rated as meaning lost (mean DA < 30) are positives; outputs with HTER 0 and DA >= 70 are
  negatives; the middle is left out. Wikipedia articles are split: a fixed fifth of each pair's articles
  (sha256 of pair + article) is held back and never fitted on (``corpus.build_corpus`` copies its outputs to
  ``<corpus>/val_mlqe_doc.jsonl``);
- clean human English of the training split (abc, brown, gum, sotu, newstest, WMT21 references) as negatives, so
  that clean English stays below garbled MT;
- WMT20/21 news and Bio-MQM training records (strict/broad positives, clean negatives).

- optionally (``--pe-weight``) the human post-edits of MLQE-PE training outputs (same articles, meaning restored by a
  post-editor) as negatives, and (``--pe-pair-weight``) a pairwise term: an output rated as damaged (DA < 50) should
  score above its own post-edit. Same sentence, same topic: the pair cannot be told apart by topic or names, only by
  what the post-editor repaired (round 2 found the head learning the article's topic instead of meaning);
- optionally (``--hard-negatives FILE --hard-weight W``) the mined hard negatives of :mod:`training.hard_negatives`
  (clean English of the training split that the input model scores highest: long sentences, quotations, lists,
  names) as a group of negatives of their own, so that the head learns to lower exactly those (issue #11, item 5)
  without moving the encoder;
- optionally (``--cola-weight``) CoLA's training sentences, unacceptable = positive, as a fourth group, and
  (``--blimp-weight``) BLiMP minimal pairs of the paradigms not held back, as a pairwise term: the unacceptable
  sentence should score above the acceptable one (:mod:`corpus.acceptability`).

Each group weighs the same (CoLA: times its weight), and within a group the two classes weigh the same. Features are
standardised; the standardisation is folded into the head's weights. The encoder and the other heads are unchanged
(same weights as the input model). The logit becomes the third passage output ("sense"); its weight in the passage
probability (calibration ``d``) is chosen by :mod:`training.finalize` on every validation source.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpus.acceptability import blimp_pairs, cola_rows, held_paradigm
from corpus.labels import MLQE_PAIRS, PE_PAIR_DA, held_back, mlqe_target, post_edit_of, soft_target
from corpus.records import CLEAN_SOURCES, read_records
from detector import Detector
from detector.evaluation import auroc, jsonable, spearman
from detector.network import ModelFolder

from .features import cached_features, with_layers
from .hard_negatives import read_ids


def log(msg: str) -> None:
    print(f"[sense {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def training_groups(train: list[dict[str, Any]], n_clean: int, n_news: int, seed: int, soft_da: bool = False,
                    clean_per_source: bool = False) -> dict[str, list[tuple]]:
    """The fitted groups: MLQE-PE (hard targets, or with ``soft_da`` every output with :func:`soft_target`),
    clean English (a sample of all of it, or with ``clean_per_source`` an equal share of ``n_clean`` per clean
    source, so that the small news-like sources count as much as Brown), news/Bio."""
    rnd = random.Random(seed)
    pool = [r for r in train if r["source"] == "mlqe_pe" and not held_back(r)]
    mlqe = ([(r, soft_target(r)) for r in pool] if soft_da else
            [(r, t) for r in pool for t in [mlqe_target(r)] if t is not None])
    clean = [r for r in train if r["source"] in CLEAN_SOURCES and r["label"] == "clean"]
    news = [r for r in train if r["source"] in ("wmt20_news", "wmt21_news", "bio_mqm") and r["label"] != "ambiguous"]
    if clean_per_source:
        by = {src: [r for r in clean if r["source"] == src] for src in CLEAN_SOURCES}
        share = n_clean // len(CLEAN_SOURCES)
        chosen = [r for src in CLEAN_SOURCES for r in rnd.sample(by[src], min(share, len(by[src])))]
    else:
        chosen = rnd.sample(clean, min(n_clean, len(clean)))
    return {"mlqe_da" if soft_da else "mlqe": mlqe,
            "clean": [(r, 0) for r in chosen],
            "news": [(r, int(r["label"] != "clean")) for r in rnd.sample(news, min(n_news, len(news)))]}


def hard_negative_group(train: list[dict[str, Any]], mined: Path) -> list[dict[str, Any]]:
    """The clean English training records that a :mod:`training.hard_negatives` file names, in corpus order (ids
    that are not clean training records, e.g. of another corpus build, are skipped)."""
    ids = read_ids(mined)
    return [r for r in train if r["id"] in ids and r["source"] in CLEAN_SOURCES and r["label"] == "clean"]


def post_edit_pool(train: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """MLQE-PE training outputs of the articles not held back whose post-edit differs from the output (at most
    ``n``, a fixed sample): their post-edits are the ``--pe-weight`` negatives, those rated below
    :data:`PE_PAIR_DA` the MT-vs-post-edit pairs."""
    pool = [r for r in train if post_edit_of(r)]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def fit_head(x: np.ndarray, y: np.ndarray, group: np.ndarray, l2: float, group_weight: dict[int, float] | None = None,
             diffs: np.ndarray | None = None, pair_weight: float = 0.0,
             more_pairs: Sequence[tuple[np.ndarray, float]] = ()) -> tuple[np.ndarray, float]:
    """Logistic head on standardised features (L-BFGS), classes and groups weighted equally (times
    ``group_weight``), plus ``pair_weight`` times the mean log loss of ``diffs`` rows (bad minus good features)
    scoring above 0 (and the same for each ``(diffs, weight)`` of ``more_pairs``); returned in raw-feature terms
    (weights, bias)."""
    import torch

    w = np.zeros(len(y))
    for g in np.unique(group):
        gw = (group_weight or {}).get(int(g), 1.0)
        if np.isin(y[group == g], (0, 1)).all():
            for c in (0, 1):
                m = (group == g) & (y == c)
                if m.any():
                    w[m] = gw / m.sum()
        else:  # soft targets: every record the same, the group as heavy as a two-class one
            w[group == g] = 2 * gw / (group == g).sum()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mu) / sd).double()
    yt, wt = torch.from_numpy(y.astype(np.float64)), torch.from_numpy(w / w.sum())
    pair_terms = [(torch.from_numpy(d / sd).double(), pw) for d, pw in [(diffs, pair_weight), *more_pairs]
                  if d is not None and pw > 0 and len(d)]
    coef = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([coef, bias], lr=1, max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = xt @ coef + bias
        loss = (wt * torch.nn.functional.binary_cross_entropy_with_logits(z, yt, reduction="none")).sum()
        for dt, pw in pair_terms:
            loss = loss + pw * torch.nn.functional.softplus(-(dt @ coef)).mean()
        loss = loss + l2 * (coef**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    weights = coef.detach().numpy() / sd
    return weights, float(bias.item() - np.dot(weights, mu))


def mlqe_report(rows: list[dict[str, Any]], sense: np.ndarray, logits: np.ndarray,
                calibration: tuple[float, ...], clean_sense: np.ndarray) -> dict[str, Any]:
    """Per pair on held-back articles: Spearman of the sense logit (and of the input model's garbled/any_major
    passage score) with DA and with HTER, AUROC of meaning-lost vs clean MT, and of meaning-lost MT vs clean
    English."""
    a, _, c, *_ = calibration
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


def post_edit_report(rows: list[dict[str, Any]], sense_mt: np.ndarray, sense_pe: np.ndarray) -> dict[str, Any]:
    """Held-back articles, per pair: how often an output rated below :data:`PE_PAIR_DA` gets a higher sense logit
    than its own post-edit (0.5 = chance), and over all outputs the AUROC of output vs post-edit."""
    out: dict[str, Any] = {}
    for pair in MLQE_PAIRS:
        idx = [i for i, r in enumerate(rows) if r["meta"]["pair"] == pair]
        low = [i for i in idx if rows[i]["meta"]["da"] < PE_PAIR_DA]
        out[pair] = {"n_pairs_low_da": len(low),
                     "pair_accuracy_low_da": float(np.mean(sense_mt[low] > sense_pe[low])) if low else float("nan"),
                     "auroc_mt_vs_pe": auroc([float(sense_mt[i]) for i in idx] + [float(sense_pe[i]) for i in idx],
                                             [1] * len(idx) + [0] * len(idx))}
    return out


def acceptability_report(bad: np.ndarray, good: np.ndarray, uids: list[str], cola: np.ndarray,
                         cola_rows_: list[dict[str, Any]]) -> dict[str, Any]:
    """Sense-logit pair accuracy on BLiMP (held-back and fitted paradigms apart) and AUROC of unacceptable vs
    acceptable on CoLA's two dev sets."""
    held = np.array([held_paradigm(u) for u in uids])
    out: dict[str, Any] = {"blimp_pairs_held_back": int(held.sum()),
                           "blimp_pair_accuracy_held_back": float(np.mean(bad[held] > good[held])),
                           "blimp_pair_accuracy_fit_paradigms": float(np.mean(bad[~held] > good[~held]))}
    for split in ("in_domain_dev", "out_of_domain_dev"):
        idx = [i for i, r in enumerate(cola_rows_) if r["split"] == split]
        out[f"cola_{split}_auroc"] = auroc([float(cola[i]) for i in idx], [1 - cola_rows_[i]["label"] for i in idx])
    return out


def write_model(src: Path, out: Path, weights: np.ndarray, bias: float, version: str, layers: list[int]) -> None:
    import torch
    from safetensors.torch import load_file, save_file


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
    cfg = ModelFolder(src).config().replace(sense_head=True, sense_layers=layers, version=version)
    ModelFolder(out).write_config(cfg)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path("build/layer_features"))
    ap.add_argument("--layers", default="", help="encoder layers whose pooled states the head reads, e.g. 2,3")
    ap.add_argument("--n-clean", type=int, default=12000)
    ap.add_argument("--n-news", type=int, default=9000)
    ap.add_argument("--cola-weight", type=float, default=0.0, help="CoLA training sentences as a group (0: off)")
    ap.add_argument("--blimp-weight", type=float, default=0.0, help="BLiMP pairwise term (0: off)")
    ap.add_argument("--blimp-per-paradigm", type=int, default=100)
    ap.add_argument("--pe-weight", type=float, default=0.0,
                    help="MLQE-PE post-edits of training articles as a group of negatives (0: off)")
    ap.add_argument("--pe-pair-weight", type=float, default=0.0,
                    help="pairwise term: an output rated DA < 50 above its own post-edit (0: off)")
    ap.add_argument("--n-pe", type=int, default=8000, help="post-edits sampled for --pe-weight/--pe-pair-weight")
    ap.add_argument("--clean-per-source", action="store_true",
                    help="clean English group: an equal share of --n-clean per clean source (default: a plain sample)")
    ap.add_argument("--hard-negatives", type=Path,
                    help="mined clean training records (training.hard_negatives) as a group of negatives")
    ap.add_argument("--hard-weight", type=float, default=1.0, help="weight of the --hard-negatives group")
    ap.add_argument("--mlqe-weight", type=float, default=1.0, help="weight of the MLQE-PE group (others: 1)")
    ap.add_argument("--soft-da", action="store_true", help="every MLQE-PE output, DA as a soft target")
    ap.add_argument("--l2", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--version", help="version to write (default: the input's with --keep-head, else 'rc')")
    ap.add_argument("--dry-run", action="store_true", help="fit and report; write no model folder")
    ap.add_argument("--keep-head", action="store_true",
                    help="fit nothing: report the input model's own sense head (e.g. one trained with the encoder) "
                         "and write its folder with the report (sense_head.json)")
    a = ap.parse_args(argv)
    t0 = time.time()
    layers = [int(x) for x in a.layers.split(",") if x.strip()]
    det = Detector.load(a.model, language_id=False, backend="torch", threads=2)
    if a.keep_head:
        if det.network.sense_head is None:
            print(f"error: {a.model} has no sense head to keep", file=sys.stderr)
            return 2
        layers = list(det.config.sense_layers)

    def design(name: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        f, lg, m = cached_features(det, texts, a.cache / f"{name}.npz")
        return with_layers(f, m, layers), lg

    train = read_records(a.corpus / "train.jsonl")
    held = [r for r in train if r["source"] == "mlqe_pe" and held_back(r)]
    groups = training_groups(train, a.n_clean, a.n_news, a.seed, a.soft_da, a.clean_per_source)
    xs, ys, gs = [], [], []
    for gi, (name, items) in enumerate([] if a.keep_head else groups.items()):
        log(f"{name}: {len(items)} records ({sum(t for _, t in items)} positive)")
        xs.append(design(f"train_{name}", [r["text"] for r, _ in items])[0])
        ys.append(np.array([t for _, t in items], dtype=np.float64))
        gs.append(np.full(len(items), gi))
    cola = cola_rows()
    x_cola, _ = design("cola", [r["text"] for r in cola])
    weight = {0: a.mlqe_weight}  # group 0: MLQE-PE

    def add_group(x: np.ndarray, y: np.ndarray, w: float) -> None:
        """One more fitted group after the others, weighing ``w``."""
        g = len(gs)
        xs.append(x)
        ys.append(y.astype(np.float64))
        gs.append(np.full(len(y), g))
        weight[g] = w

    if a.cola_weight > 0 and not a.keep_head:
        fit_cola = np.array([r["split"] == "in_domain_train" for r in cola])
        add_group(x_cola[fit_cola], np.array([1 - r["label"] for r in cola])[fit_cola], a.cola_weight)
    hard: list[dict[str, Any]] = []
    if a.hard_negatives and not a.keep_head:
        hard = hard_negative_group(train, a.hard_negatives)
        log(f"hard negatives: {len(hard)} mined records (weight {a.hard_weight:g})")
        add_group(design("train_hard", [r["text"] for r in hard])[0], np.zeros(len(hard)), a.hard_weight)
    more_pairs: list[tuple[np.ndarray, float]] = []
    pe_pool = post_edit_pool(train, a.n_pe, a.seed) if (a.pe_weight > 0 or a.pe_pair_weight > 0) else []
    if pe_pool and not a.keep_head:
        x_pe, _ = design("train_pe", [r["meta"]["pe"] for r in pe_pool])
        if a.pe_weight > 0:
            log(f"post-edits: {len(pe_pool)} negatives")
            add_group(x_pe, np.zeros(len(pe_pool)), a.pe_weight)
        if a.pe_pair_weight > 0:
            low = [i for i, r in enumerate(pe_pool) if r["meta"]["da"] < PE_PAIR_DA]
            x_mt, _ = design("train_pe_mt", [pe_pool[i]["text"] for i in low])
            log(f"post-edit pairs: {len(low)} outputs rated DA < {PE_PAIR_DA:g} against their post-edits")
            more_pairs.append((x_mt - x_pe[low], a.pe_pair_weight))
    pairs = blimp_pairs(a.blimp_per_paradigm, a.seed)
    uids = [p["UID"] for p in pairs]
    x_good, _ = design("blimp_good", [p["sentence_good"] for p in pairs])
    x_bad, _ = design("blimp_bad", [p["sentence_bad"] for p in pairs])
    fit_pairs = np.array([not held_paradigm(u) for u in uids])
    if a.keep_head:
        head = det.network.sense_head
        weights = head.weight.detach().double().numpy().ravel()
        bias = float(head.bias.detach().double().item())
    else:
        weights, bias = fit_head(np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), a.l2, weight,
                                 x_bad[fit_pairs] - x_good[fit_pairs], a.blimp_weight, more_pairs)
    clean_val = read_records(a.corpus / "val_clean.jsonl")
    x_clean, _ = design("val_clean", [r["text"] for r in clean_val])
    x_held, lg_held = design("val_mlqe_doc", [r["text"] for r in held])
    report = mlqe_report(held, x_held @ weights + bias, lg_held, det.config.calibration, x_clean @ weights + bias)
    x_held_pe, _ = design("val_mlqe_doc_pe", [r["meta"].get("pe") or r["text"] for r in held])
    pe_report = post_edit_report(held, x_held @ weights + bias, x_held_pe @ weights + bias)
    acc = acceptability_report(x_bad @ weights + bias, x_good @ weights + bias, uids, x_cola @ weights + bias, cola)
    for pair, row in report.items():
        log(f"{pair}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    for pair, row in pe_report.items():
        log(f"{pair} post-edits: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                 for k, v in row.items()))
    log(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in acc.items()))
    summary = {"command": " ".join(["python -m training.sense_head", *(argv or sys.argv[1:])]),
               "groups": {} if a.keep_head else
               {k: {"n": len(v), "positives": round(sum(t for _, t in v), 1)} for k, v in groups.items()},
               "kept_head": a.keep_head,
               "layers": layers, "soft_da": a.soft_da, "mlqe_weight": a.mlqe_weight,
               "clean_per_source": a.clean_per_source,
               "hard_negatives": str(a.hard_negatives) if a.hard_negatives else None, "n_hard": len(hard),
               "hard_weight": a.hard_weight, "pe_weight": a.pe_weight, "pe_pair_weight": a.pe_pair_weight, "n_pe": a.n_pe,
               "cola_weight": a.cola_weight, "blimp_weight": a.blimp_weight,
               "l2": a.l2, "seed": a.seed, "held_back_mlqe_records": len(held), "mlqe_held_back": report,
               "post_edits_held_back": pe_report, "acceptability": acc, "seconds": round(time.time() - t0)}
    print(json.dumps(jsonable({k: summary[k] for k in ("layers", "cola_weight", "blimp_weight", "l2")}
                              | {f"rho_{p[:2]}": report[p]["sense_spearman_da"] for p in MLQE_PAIRS}
                              | {f"auc_{p[:2]}": report[p]["sense_auroc_lowda_vs_clean_english"] for p in MLQE_PAIRS}
                              | {f"pe_{p[:2]}": pe_report[p]["pair_accuracy_low_da"] for p in MLQE_PAIRS}
                              | acc)), flush=True)
    if a.dry_run:
        return 0
    write_model(a.model, a.out, weights, bias, a.version or (det.config.version if a.keep_head else "rc"), layers)
    ModelFolder(a.out).write_text("sense_head.json", json.dumps(jsonable(summary), indent=1) + "\n")
    log(f"wrote {a.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
