"""The Detector: loads a model folder and scores texts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ._errors import ModelError
from ._modelfiles import ModelConfig, default_model_path, read_config, verify_manifest
from ._text import Window, build_windows, split_passages, tokenize_passages
from ._types import Detection, Passage, Span

_WORD_CHAR = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'-")


@dataclass
class _TextState:
    text: str
    pieces: list[Any]
    token_offsets: list[list[tuple[int, int]]]
    token_probs: list[list[tuple[float, float]]]  # (p_fluency, p_accuracy) per token
    passage_logit: list[tuple[float, float]]  # (garbled, any_major) logits, max over a passage's chunks
    windows: list[Window]


class Detector:
    """Finds garbled machine-translated passages in English text.

    Use :meth:`load` to create one; then :meth:`detect` or :meth:`detect_batch`.
    """

    def __init__(self, model: Any, tokenizer: Any, config: ModelConfig, path: Path | None = None,
                 checksum: str = "not checked") -> None:
        self._model = model
        self._tok = tokenizer
        self.config = config
        self.path = path
        self.checksum = checksum
        self.threshold = config.threshold
        self.span_threshold = config.span_threshold
        #: spans are reported only inside passages whose probability is at least this (0: anywhere)
        self.span_gate = config.span_gate
        #: "fluency": spans are runs of tokens with P(fluency) >= span_threshold; "error": 1 - P(ok) instead, each
        #: span labelled with the class (fluency or accuracy) that carries more of its probability
        self.span_score = config.span_score
        self._cls = tokenizer.token_to_id("[CLS]")
        self._sep = tokenizer.token_to_id("[SEP]")
        self._pad = tokenizer.token_to_id("[PAD]") or 0

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None, *, verify: bool = True, threads: int | None = None) -> Detector:
        """Load a model folder (default: the shipped model, or $MTDETECT_MODEL). Works offline."""
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        from ._model import SpanDetector

        folder = Path(path) if path is not None else default_model_path()
        if not folder.is_dir():
            raise ModelError(f"model folder {folder} not found")
        config = read_config(folder)
        checksum = verify_manifest(folder) if verify else "not checked"
        if threads is not None:
            torch.set_num_threads(threads)
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
        model = SpanDetector(config.bert)
        try:
            state = load_file(str(folder / "model.safetensors"))
            missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        except Exception as e:  # noqa: BLE001 - any failure here means a broken weights file
            raise ModelError(f"cannot read {folder / 'model.safetensors'}: {e}") from e
        if missing or unexpected:
            raise ModelError(f"weights do not match the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
        model.eval()
        return cls(model, tok, config, folder, checksum)

    # ------------------------------------------------------------------ scoring
    def detect(self, text: str) -> Detection:
        """Score one text."""
        return self.detect_batch([text])[0]

    def detect_batch(self, texts: Sequence[str], batch_size: int = 32) -> list[Detection]:
        """Score several texts; returns one :class:`Detection` per text, in order."""
        if isinstance(texts, str):
            raise TypeError("detect_batch takes a sequence of strings; use detect() for one text")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        states = [self._prepare(t) for t in texts]
        self._run(states, batch_size)
        return [self._finish(s) for s in states]

    def _prepare(self, text: str) -> _TextState:
        if not isinstance(text, str):
            raise TypeError(f"expected str, got {type(text).__name__}")
        pieces = split_passages(text)
        toks = tokenize_passages(self._tok, text, pieces)
        return _TextState(
            text=text,
            pieces=pieces,
            token_offsets=[t.offsets for t in toks],
            token_probs=[[(0.0, 0.0)] * len(t.ids) for t in toks],
            passage_logit=[(-math.inf, -math.inf)] * len(pieces),
            windows=build_windows(toks, self.config.max_length, self.config.context_tokens, self._cls, self._sep),
        )

    def _run(self, states: list[_TextState], batch_size: int) -> None:
        import torch

        items = [(si, w) for si, st in enumerate(states) for w in st.windows]
        items.sort(key=lambda x: len(x[1].ids))  # length buckets: padding does not change results
        with torch.inference_mode():
            for b in range(0, len(items), batch_size):
                chunk = items[b : b + batch_size]
                L = max(len(w.ids) for _, w in chunk)
                ids = torch.full((len(chunk), L), self._pad, dtype=torch.long)
                shapes = torch.zeros((len(chunk), L), dtype=torch.long)
                mask = torch.zeros((len(chunk), L), dtype=torch.long)
                target = torch.zeros((len(chunk), L), dtype=torch.long)
                for i, (_, w) in enumerate(chunk):
                    n = len(w.ids)
                    ids[i, :n] = torch.tensor(w.ids)
                    shapes[i, :n] = torch.tensor(w.shapes)
                    mask[i, :n] = 1
                    target[i, w.target[0] : w.target[1]] = 1
                tok_logits, pas_logits = self._model(ids, shapes, mask, target)
                probs = torch.softmax(tok_logits.float(), -1)
                for i, (si, w) in enumerate(chunk):
                    st = states[si]
                    a, e = w.target
                    ts, _ = w.token_slice
                    pf = probs[i, a:e, 1].tolist()
                    pa = probs[i, a:e, 2].tolist()
                    row = st.token_probs[w.passage]
                    for k in range(e - a):
                        row[ts + k] = (pf[k], pa[k])
                    g, m = st.passage_logit[w.passage]
                    st.passage_logit[w.passage] = (max(g, float(pas_logits[i, 0])), max(m, float(pas_logits[i, 1])))

    def _calibrated(self, logits: tuple[float, float]) -> float:
        g, m = logits
        if g == -math.inf:
            return 0.0
        a, b, c = self.config.calibration
        z = a * g + c * m + b
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0

    def _finish(self, st: _TextState) -> Detection:
        text = st.text
        passages = []
        for p, logits in zip(st.pieces, st.passage_logit):
            s = self._calibrated(logits)
            passages.append(Passage(p.start, p.end, text[p.start : p.end], s, s >= self.threshold))
        rows = st.token_probs
        if self.span_gate > 0.0:
            rows = [r if p.score >= self.span_gate else [(0.0, 0.0)] * len(r) for r, p in zip(rows, passages)]
        spans = _passage_spans(text, st.token_offsets, [span_values(r, self.span_score) for r in rows],
                               self.span_threshold, "fluency", rows if self.span_score == "error" else None)
        if self.span_score == "fluency" and self.config.accuracy_span_threshold <= 1.0:
            acc = _passage_spans(text, st.token_offsets, [[p[1] for p in r] for r in rows],
                                 self.config.accuracy_span_threshold, "accuracy")
            spans = sorted(spans + [a for a in acc if all(a.end <= f.start or a.start >= f.end for f in spans)],
                           key=lambda s: s.start)
        score = max((p.score for p in passages), default=0.0)
        return Detection(score, score >= self.threshold, tuple(spans), tuple(passages))

    def info(self) -> dict[str, Any]:
        """Model name, version, path, checksum status and thresholds."""
        c = self.config
        return {"name": c.name, "version": c.version, "path": str(self.path) if self.path else None,
                "base_model": c.base_model, "checksum": self.checksum, "threshold": self.threshold,
                "span_threshold": self.span_threshold, "span_gate": self.span_gate, "span_score": self.span_score,
                "max_length": c.max_length,
                "context_tokens": c.context_tokens}


def span_values(probs: Sequence[tuple[float, float]], mode: str) -> list[float]:
    """Per-token values spans are cut from, given (P(fluency), P(accuracy)) per token: P(fluency) ("fluency") or
    the error probability 1 - P(ok) = P(fluency) + P(accuracy) ("error")."""
    return [f for f, _ in probs] if mode == "fluency" else [f + a for f, a in probs]


def _passage_spans(text: str, offs: Sequence[Sequence[tuple[int, int]]], probs: Sequence[Sequence[float]], thr: float,
                   category: str, rows: Sequence[Sequence[tuple[float, float]]] | None = None) -> list[Span]:
    """Spans found passage by passage, so that no span crosses a passage boundary. With ``rows`` (the passages'
    (P(fluency), P(accuracy)) per token) each span is labelled by the class with more probability over it."""
    if rows is None:
        return [sp for o, p in zip(offs, probs) for sp in _spans(text, o, p, thr, category)]
    return [sp for o, p, r in zip(offs, probs, rows) for sp in _categorised(_spans(text, o, p, thr, category), o, r)]


def _categorised(spans: list[Span], offs: Sequence[tuple[int, int]], row: Sequence[tuple[float, float]]) -> list[Span]:
    """Label each span of a passage fluency or accuracy by which class has more probability over its tokens."""
    toks = [(a, b, pf, pa) for (a, b), (pf, pa) in zip(offs, row)]
    out = []
    for sp in spans:
        flu = sum(pf for a, b, pf, _ in toks if a < sp.end and sp.start < b)
        acc = sum(pa for a, b, _, pa in toks if a < sp.end and sp.start < b)
        out.append(replace(sp, category="fluency" if flu >= acc else "accuracy"))
    return out


def _spans(text: str, offs: Sequence[tuple[int, int]], probs: Sequence[float], thr: float,
           category: str) -> list[Span]:
    """Runs of consecutive tokens at or above ``thr``, widened to whole words."""
    out: list[Span] = []
    i = 0
    n = len(offs)
    while i < n:
        if probs[i] >= thr:
            j = i
            while j + 1 < n and probs[j + 1] >= thr:
                j += 1
            s, e = offs[i][0], offs[j][1]
            while s > 0 and text[s - 1] in _WORD_CHAR and text[s] in _WORD_CHAR:
                s -= 1
            while e < len(text) and text[e] in _WORD_CHAR and text[e - 1] in _WORD_CHAR:
                e += 1
            score = max(probs[i : j + 1])
            if out and s <= out[-1].end:
                prev = out.pop()
                s, score = prev.start, max(prev.score, score)
            out.append(Span(s, e, text[s:e], score, category))
            i = j + 1
        else:
            i += 1
    return out

