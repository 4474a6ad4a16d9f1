"""Training examples: a record and its document neighbours as the runtime's window of one of its passages, with
token label codes and passage targets (a step of ``training.train``)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from corpus.labels import soft_target
from detector.network import (
    Tokenized,
    Window,
    build_windows,
    split_passages,
    tokenize_passages,
)

from .lm_targets import align

IGNORE_W = 0
WEIGHTS = (0.0, 0.3, 1.0)  # weight buckets for token labels; code = cls + 3 * bucket


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
