"""Training examples: token label codes and passage labels (tiny tokenizer, no training)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

pytest.importorskip("yaml")  # training extras

from training.examples import WEIGHTS, ExampleBuilder, token_code  # noqa: E402


def _span(s: int, e: int, cat: str = "fluency", sev: str = "major") -> dict:
    return {"start": s, "end": e, "category": cat, "severity": sev}


@pytest.mark.parametrize(
    "spans,expected_cls,expected_w",
    [([], 0, 1.0), ([_span(0, 5)], 1, 1.0), ([_span(0, 5, sev="minor")], 1, 0.3),
     ([_span(0, 5, "accuracy")], 2, 1.0), ([_span(0, 5, "accuracy", "minor")], 0, 0.0),
     ([_span(0, 5, "accuracy"), _span(2, 4)], 1, 1.0), ([_span(0, 95)], 1, 0.3)],
    ids=["ok", "major-fluency", "minor-fluency", "major-accuracy", "minor-accuracy-ignored", "fluency-wins",
         "whole-segment-downweighted"],
)
def test_token_code(spans: list[dict], expected_cls: int, expected_w: float) -> None:
    code = token_code(spans, 2, 4, record_len=100)
    assert (code % 3, WEIGHTS[code // 3]) == (expected_cls, expected_w)


def _builder(tiny_model_dir: Path, **cfg: object) -> ExampleBuilder:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    return ExampleBuilder(tok, {"max_length": 64, "context_tokens": 8, "p_context": 0.0, **cfg})


SYNTH = {"id": "s", "text": "The talks went well. Xi Jinping. accepted. Both sides agreed.", "label": "strict",
         "synthetic": True, "spans": [_span(21, 42)]}


@pytest.mark.parametrize("flag,expected", [(False, None), (True, 0.0)], ids=["shipped-ignores", "flag-labels-clean"])
def test_clean_passage_of_synthetic_window(tiny_model_dir: Path, flag: bool, expected: float | None) -> None:
    b = _builder(tiny_model_dir, clean_synthetic_passages=flag)
    seen = {}
    for seed in range(40):
        ex = b.build([SYNTH], 0, random.Random(seed))
        assert ex is not None
        seen[len(ex.ids), ex.target] = ex.y[0]
    labels = set(seen.values())
    assert 1.0 in {y for y in labels if not math.isnan(y)}  # passages holding the artifact are positive
    clean_side = [y for y in labels if y != 1.0]
    if expected is None:
        assert clean_side and all(math.isnan(y) for y in clean_side)
    else:
        assert clean_side and all(y == expected for y in clean_side)


@pytest.mark.parametrize("shared", [0, 96], ids=["per-passage", "shared-96"])
def test_examples_use_the_runtime_window_layout(tiny_model_dir: Path, shared: int) -> None:
    """With ``shared_window`` an example is the runtime's shared window holding its passage, the target narrowed to
    that passage; the label codes line up with the window's tokens either way."""
    b = _builder(tiny_model_dir, shared_window=shared, p_context=1.0)
    doc = [{**SYNTH, "id": f"s{k}", "synthetic": False} for k in range(3)]
    lengths = set()
    for seed in range(30):
        ex = b.build(doc, 1, random.Random(seed))
        assert ex is not None and len(ex.codes) == len(ex.ids) <= (shared or 64)
        a, e = ex.target
        assert 0 < a < e < len(ex.ids)
        lengths.add(len(ex.ids))
    assert max(lengths) > 64 if shared else max(lengths) <= 64
