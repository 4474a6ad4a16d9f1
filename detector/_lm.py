"""SmolLM2-135M in torch, for training-time explorations (``training.lm_targets``): per-token surprisal and entropy.

The runtime never imports this module: the fused mode reads SmolLM2 through ONNX Runtime (:mod:`detector._reader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import ModelError
from ._reader import SMOLLM2_GGUF, lm_weights_folder

#: at most this many LM tokens per text
MAX_LM_TOKENS = 256

LmToken = tuple[int, int, float, float]  # start, end, surprisal, entropy (nats)


def load_causal_lm(path: str | Path | None = None) -> tuple[Any, Any]:
    """Tokenizer and model of SmolLM2-135M (see :func:`lm_folder`), dequantised to float32, in eval mode."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise ModelError(f"the accurate mode needs torch and transformers ({e})") from None
    folder = lm_weights_folder(path)
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
