"""The evaluation harness on hand-made scored records."""

from __future__ import annotations

import pytest

from detector._eval import Scored, evaluate, markdown


def _s(label: str, score: float, gold=(), spans=(), source: str = "x", text: str = "aaaa bbbb") -> Scored:  # type: ignore[no-untyped-def]
    return Scored(text, label, source, tuple(gold), score, score >= 0.5, tuple(spans))


def test_evaluate_hand_case() -> None:
    items = [
        _s("strict", 0.9, gold=[(0, 4)], spans=[(0, 4)]),
        _s("broad", 0.6, gold=[(5, 9)]),
        _s("clean", 0.2, source="brown"),
        _s("clean", 0.7, source="brown", spans=[(0, 4)]),
        _s("ambiguous", 0.1),
    ]
    m = evaluate(items, bootstrap=0)
    assert m["auroc_strict"] == pytest.approx(1.0)  # 0.9 vs (0.2, 0.7)
    assert m["auroc_broad"] == pytest.approx(0.75)  # (0.9, 0.6) vs (0.2, 0.7): 3 of 4 pairs
    assert m["flag_precision"] == pytest.approx(2 / 3) and m["flag_recall"] == pytest.approx(1.0)
    assert m["span_precision"] == pytest.approx(0.5) and m["span_recall"] == pytest.approx(0.5)
    assert m["clean_english_flag_rate"] == pytest.approx(0.5)
    assert m["clean_english_span_rate"] == pytest.approx(0.5)
    assert "| span F1 (char) | 0.500 |" in markdown(m)


def test_bootstrap_intervals_present() -> None:
    items = [_s("strict", 0.8 + i / 100) for i in range(10)] + [_s("clean", 0.1 + i / 100) for i in range(10)]
    m = evaluate(items, bootstrap=50)
    lo, hi = m["auroc_strict_ci"]
    assert lo <= m["auroc_strict"] <= hi
