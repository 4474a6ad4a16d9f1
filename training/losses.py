"""Batches and losses of a training step: pair batches, collation of examples, the LM probe, the batch loss."""

from __future__ import annotations

import math
import random
from typing import Any

import torch

from detector.network import (
    SpanDetector,
    collate,
)

from .examples import WEIGHTS, Example, ExampleBuilder
from .pools import PAIR_KINDS, PE_KIND


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
