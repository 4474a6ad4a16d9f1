"""Passage features of a model's network, for fitting heads on top of a frozen encoder.

The feature of a window is what the passage head reads: mean- and max-pooled encoder states over the target tokens
and the peak and mean fluency-error probability (2h + 2 numbers), next to the passage logits. Records are scored one
window per passage, exactly as the runtime builds them; a record's feature is the window with the highest
``garbled`` logit (the runtime's record score is the maximum over passages).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from detector import Detector
from detector.network import Window, build_windows, collate, split_passages, tokenize_passages


def text_windows(det: Detector, texts: Sequence[str]) -> list[tuple[int, Window]]:
    """(text index, window) for every window of ``texts``, built as the runtime builds them, sorted by length."""
    tok = det.tokenizer
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    items = []
    for k, t in enumerate(texts):
        toks = tokenize_passages(tok, t, split_passages(t))
        items += [(k, w) for w in build_windows(toks, det.config.max_length, det.config.context_tokens, cls_id, sep_id)]
    items.sort(key=lambda x: len(x[1].ids))
    return items


def record_features(det: Detector, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, 2h+2), passage logits (N, 2)) per text, from the window with the highest garbled logit."""
    net = det.network
    pad_id = det.tokenizer.token_to_id("[PAD]")
    items = text_windows(det, texts)
    captured: list[torch.Tensor] = []
    hook = net.passage_head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
    h2 = net.passage_head[0].in_features
    feats = np.zeros((len(texts), h2), dtype=np.float32)
    logits = np.full((len(texts), 2), -np.inf, dtype=np.float32)
    try:
        with torch.inference_mode():
            for b in range(0, len(items), batch_size):
                chunk = items[b : b + batch_size]
                x = {k: torch.from_numpy(v) for k, v in collate([w for _, w in chunk], pad_id).items()}
                captured.clear()
                _, pas = net(x["ids"], x["shapes"], x["mask"], x["target"])
                f = captured[0].numpy()
                p = pas.float().numpy()
                for i, (k, _) in enumerate(chunk):
                    if p[i, 0] > logits[k, 0]:
                        logits[k] = p[i]
                        feats[k] = f[i]
    finally:
        hook.remove()
    empty = ~np.isfinite(logits[:, 0])
    logits[empty] = -10.0
    return feats, logits


def cached_features(det: Detector, texts: Sequence[str], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """:func:`record_features`, cached in ``path`` (an .npz keyed by the model version and the texts)."""
    digest = hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    key = f"{det.config.name}:{det.config.version}:{len(texts)}:{digest}"
    if path.exists():
        z = np.load(path)
        if str(z["key"]) == key:
            return z["feats"], z["logits"]
    f, lg = record_features(det, texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, feats=f, logits=lg, key=np.array(key))
    return f, lg
