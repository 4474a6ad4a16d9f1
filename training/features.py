"""Passage features of a model's network, for fitting heads on top of a frozen encoder.

The feature of a window is what the passage head reads: mean- and max-pooled encoder states over the target tokens
and the peak and mean fluency-error probability (2h + 2 numbers), next to the passage logits. Records are scored one
window per passage, exactly as the runtime builds them; a record's feature is the window with the highest
``garbled`` logit (the runtime's record score is the maximum over passages). Next to them, the mean over the passage
tokens of every encoder layer's output: what a sense head with ``sense_layers`` reads as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from detector import Detector
from detector.network import Window, collate, passage_mean
from detector.network import text_windows as network_windows


def text_windows(det: Detector, texts: Sequence[str]) -> list[tuple[int, Window]]:
    """(text index, window) for every window of ``texts``, built as the runtime builds them, sorted by length."""
    items = [(k, w) for k, t in enumerate(texts) for w in network_windows(det.tokenizer, det.config, t).windows]
    items.sort(key=lambda x: len(x[1].ids))
    return items


def record_features(det: Detector, texts: Sequence[str], batch_size: int = 64
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per text, from the window with the highest garbled logit: the passage features (N, 2h+2), the passage logits
    (N, K) and the mean over the passage tokens of every encoder layer's output (N, layers, h), float16."""
    net = det.network
    pad_id = det.tokenizer.token_to_id("[PAD]")
    items = text_windows(det, texts)
    captured: list[torch.Tensor] = []
    states: list[torch.Tensor] = []
    layers = net.bert.encoder.layer if hasattr(net.bert, "encoder") else net.bert.transformer.layer
    hooks = [net.passage_head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))]
    for layer in layers:
        hooks.append(layer.register_forward_hook(
            lambda _m, _a, out: states.append((out[0] if isinstance(out, tuple) else out).detach())))
    h2 = net.passage_head[0].in_features
    feats = np.zeros((len(texts), h2), dtype=np.float32)
    means = np.zeros((len(texts), len(layers), (h2 - 2) // 2), dtype=np.float16)
    logits: np.ndarray | None = None
    try:
        with torch.inference_mode():
            for b in range(0, len(items), batch_size):
                chunk = items[b : b + batch_size]
                x = {k: torch.from_numpy(v) for k, v in collate([w for _, w in chunk], pad_id).items()}
                captured.clear()
                states.clear()
                _, pas = net(x["ids"], x["shapes"], x["mask"], x["target"])
                pooled = torch.stack([passage_mean(s, x["target"]) for s in states], 1).numpy()
                f = captured[0].numpy()
                p = pas.float().numpy()
                if logits is None:
                    logits = np.full((len(texts), p.shape[1]), -np.inf, dtype=np.float32)
                for i, (k, _) in enumerate(chunk):
                    if p[i, 0] > logits[k, 0]:
                        logits[k] = p[i]
                        feats[k] = f[i]
                        means[k] = pooled[i]
    finally:
        for hk in hooks:
            hk.remove()
    if logits is None:
        logits = np.full((len(texts), 2), -10.0, dtype=np.float32)
    logits[~np.isfinite(logits[:, 0])] = -10.0
    return feats, logits, means


def features_key(det: Detector, texts: Sequence[str]) -> str:
    """The cache key of :func:`cached_features`: model name and version, and a digest of the texts."""
    digest = hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{det.config.name}:{det.config.version}:{len(texts)}:{digest}"


def cached_features(det: Detector, texts: Sequence[str], path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`record_features`, cached next to ``path`` in ``<stem>-<digest of features_key>.npz``: other texts or
    another model get their own file."""
    key = features_key(det, texts)
    path = path.with_name(f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.npz")
    if path.exists():
        z = np.load(path)
        if str(z["key"]) == key:
            return z["feats"], z["logits"], z["means"]
    f, lg, m = record_features(det, texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, feats=f, logits=lg, means=m, key=np.array(key))
    return f, lg, m


def with_layers(feats: np.ndarray, means: np.ndarray, layers: Sequence[int]) -> np.ndarray:
    """The sense head's input: passage features followed by the pooled states of ``layers`` (1-based), as the
    network builds it (:class:`detector.network.SpanDetector`)."""
    return np.concatenate([feats, *(means[:, k - 1].astype(np.float32) for k in layers)], 1)
