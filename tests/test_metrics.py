"""Metrics against small hand-computed cases."""

from __future__ import annotations

import math

import pytest

from detector.evaluation import auprc, auroc, best_f1_threshold, bootstrap_ci, char_prf, ece, mcc, word_mcc


def test_auroc_perfect_and_inverted() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0


def test_auroc_hand_case_with_ties() -> None:
    # pairs (pos, neg): (0.5 vs 0.5)=0.5, (0.5 vs 0.2)=1, (0.7 vs 0.5)=1, (0.7 vs 0.2)=1 -> 3.5/4
    assert auroc([0.5, 0.7, 0.5, 0.2], [1, 1, 0, 0]) == pytest.approx(0.875)


def test_auroc_one_class_is_nan() -> None:
    assert math.isnan(auroc([0.1, 0.2], [1, 1]))


def test_auprc_hand_case() -> None:
    # ranking: 0.9 (pos), 0.8 (neg), 0.7 (pos): AP = 1/2*1 + 1/2*(2/3)
    assert auprc([0.9, 0.8, 0.7], [1, 0, 1]) == pytest.approx(0.5 + 1 / 3)


def test_char_prf_hand_case() -> None:
    r = char_prf([[(0, 4)]], [[(2, 6)]])
    assert (r["tp"], r["fp"], r["fn"]) == (2, 2, 2)
    assert r["f1"] == pytest.approx(0.5)


def test_char_prf_empty_prediction() -> None:
    """Nothing predicted: precision is undefined (NaN), recall and F1 are 0."""
    r = char_prf([[]], [[(0, 3)]])
    assert math.isnan(r["precision"]) and r["recall"] == 0.0 and r["f1"] == 0.0


def test_char_prf_nothing_anywhere_is_nan() -> None:
    r = char_prf([[]], [[]])
    assert math.isnan(r["precision"]) and math.isnan(r["recall"]) and math.isnan(r["f1"])


def test_mcc_hand_case() -> None:
    assert mcc(5, 0, 0, 5) == 1.0
    assert mcc(0, 5, 5, 0) == -1.0
    assert math.isnan(mcc(0, 0, 0, 10))  # undefined: no positive predicted or gold


def test_word_mcc_counts_words() -> None:
    text = "aa bb cc dd"
    # gold BAD: bb; predicted BAD: bb, cc -> tp=1 fp=1 fn=0 tn=2
    assert word_mcc([text], [[(3, 8)]], [[(3, 5)]]) == pytest.approx(mcc(1, 1, 0, 2))


@pytest.mark.parametrize(
    ("floor", "expected"),
    [(-math.inf, (0.8, 0.6)),  # t=0.6 flags 0.6, 0.7, 0.9: tp 2, fp 1, fn 0 -> F1 0.8 (t=0.2 and t=0.9: 2/3)
     (0.8, (2 / 3, 0.9)),  # candidates below the floor are skipped
     (2.0, (-1.0, 0.5))],  # none left: the default
    ids=["no-floor", "floor", "nothing-above-floor"],
)
def test_best_f1_threshold(floor: float, expected: tuple[float, float]) -> None:
    scores, labels = [0.2, 0.6, 0.7, 0.9], [0, 0, 1, 1]
    f1, t = best_f1_threshold(scores, labels, [0.2, 0.6, 0.9], floor)
    assert (f1, t) == pytest.approx(expected)


def test_ece_hand_case() -> None:
    # bin [0.8,0.9): conf 0.8, acc 1 -> 0.2 ; bin [0.2,0.3): conf 0.2, acc 0 -> 0.2
    assert ece([0.8, 0.2], [1, 0]) == pytest.approx(0.2)


def test_bootstrap_ci_brackets_the_mean() -> None:
    xs = [0.0, 1.0] * 50
    lo, hi = bootstrap_ci(lambda idx: sum(xs[i] for i in idx) / len(idx), len(xs), rounds=100)
    assert lo < 0.5 < hi


GOLD = {"spans": [{"start": 3, "end": 9, "text": "met Xi", "kind": "must_flag"},
                  {"start": 36, "end": 44, "text": "Us China", "kind": "ignore"}]}
TEXT = "He met Xi today. One fine sentence. Us China here. Two fine. Three fine."


@pytest.mark.parametrize(
    "spans,passed,others",
    [([(3, 9)], True, 0), ([], False, 0), ([(3, 9), (10, 15)], True, 0), ([(3, 9), (51, 54)], True, 1),
     ([(3, 9), (51, 54), (61, 66)], False, 2), ([(3, 9), (39, 44)], True, 0)],
    ids=["hit", "miss", "stray-in-must-sentence", "one-other", "two-others", "in-ignore"],
)
def test_gold_rule(spans: list[tuple[int, int]], passed: bool, others: int) -> None:
    from detector.evaluation import gold_rule

    assert TEXT[3:9] == "met Xi" and TEXT[36:44] == "Us China"
    r = gold_rule(TEXT, GOLD, spans)
    assert r["passed"] is passed and r["other_sentences_touched"] == others
