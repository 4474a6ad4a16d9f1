"""What training draws from: the corpus's training records as documents, the per-epoch pools (per source, clean
English, hard negatives), length matching, ranking pairs and MT-vs-post-edit pairs."""

from __future__ import annotations

import bisect
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from corpus.labels import PE_PAIR_DA, held_back, post_edit_of
from corpus.records import BROAD, CLEAN_SOURCES, STRICT, read_records

from .hard_negatives import read_ids


def log(msg: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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
