"""detector.evaluation on hand-made records: one set of names, one rule for undefined values."""

from __future__ import annotations

import json
import math

import pytest

from detector.evaluation import METRICS, EvalRecord, Prediction, evaluate, jsonable, markdown, pair_metrics


def _r(label: str, gold=(), source: str = "x", text: str = "aaaa bbbb", **kw) -> EvalRecord:  # type: ignore[no-untyped-def]
    return EvalRecord(text, label, source, tuple(gold), tuple(gold), tuple(gold), **kw)


def _p(score: float, spans=()) -> Prediction:  # type: ignore[no-untyped-def]
    return Prediction(score, score >= 0.5, tuple(spans))


def test_evaluate_hand_case() -> None:
    records = [_r("strict", gold=[(0, 4)]), _r("broad", gold=[(5, 9)]), _r("clean", source="brown"),
               _r("clean", source="brown"), _r("ambiguous")]
    preds = [_p(0.9, [(0, 4)]), _p(0.6), _p(0.2), _p(0.7, [(0, 4)]), _p(0.1)]
    m = evaluate(records, preds)
    assert m["auroc_strict"] == pytest.approx(1.0)  # 0.9 vs (0.2, 0.7)
    assert m["auroc_broad"] == pytest.approx(0.75)  # (0.9, 0.6) vs (0.2, 0.7): 3 of 4 pairs
    assert m["flag_precision"] == pytest.approx(2 / 3) and m["flag_recall"] == pytest.approx(1.0)
    assert m["span_precision"] == pytest.approx(0.5) and m["span_recall"] == pytest.approx(0.5)
    assert m["span_f1"] == pytest.approx(0.5)
    assert m["clean_flag_rate"] == pytest.approx(0.5) and m["clean_span_rate"] == pytest.approx(0.5)
    assert (m["n"], m["n_strict"], m["n_broad"], m["n_clean"]) == (5, 1, 2, 2)
    assert "| span F1 (characters, all gold spans) | 0.500 |" in markdown(m)


@pytest.mark.parametrize(
    ("records", "preds", "undefined", "defined"),
    [
        ([_r("clean")], [_p(0.1)], ["auroc_strict", "auroc_broad", "flag_precision", "flag_recall", "span_f1",
                                    "span_precision", "span_recall"], {"clean_flag_rate": 0.0}),
        ([_r("strict", gold=[(0, 4)])], [_p(0.1)], ["auroc_strict", "flag_precision", "span_precision",
                                                     "clean_flag_rate"], {"span_f1": 0.0, "span_recall": 0.0}),
    ],
    ids=["clean-only", "positive-only-nothing-predicted"],
)
def test_undefined_metrics_are_nan(records: list[EvalRecord], preds: list[Prediction], undefined: list[str],
                                   defined: dict[str, float]) -> None:
    m = evaluate(records, preds)
    for k in undefined:
        assert math.isnan(m[k]), k
    for k, v in defined.items():
        assert m[k] == v, k


def test_jsonable_writes_nan_as_null() -> None:
    m = evaluate([_r("clean")], [_p(0.1)], bootstrap=5)
    text = json.dumps(jsonable(m), allow_nan=False)  # strict JSON: raises on NaN
    assert json.loads(text)["auroc_strict"] is None


def test_bootstrap_intervals_present() -> None:
    records = [_r("strict") for _ in range(10)] + [_r("clean") for _ in range(10)]
    preds = [_p(0.8 + i / 100) for i in range(10)] + [_p(0.1 + i / 100) for i in range(10)]
    m = evaluate(records, preds, bootstrap=50)
    lo, hi = m["auroc_strict_ci"]
    assert lo <= m["auroc_strict"] <= hi


def test_pair_metrics_within_segment() -> None:
    """Two outputs of one source segment: the worse-labelled one should score higher."""
    recs = [_r("strict", doc_id="d", seg=1, system="A"), _r("clean", doc_id="d", seg=1, system="B"),
            _r("strict", doc_id="d", seg=2, system="A"), _r("clean", doc_id="d", seg=2, system="B")]
    m = pair_metrics(recs, [0.9, 0.1, 0.2, 0.8])
    assert m["pair_acc_strict_clean"] == pytest.approx(0.5) and m["n_pairs_strict_clean"] == 2


def test_record_from_canonical_dict() -> None:
    d = {"text": "He go to school.", "label": "strict", "source": "wmt21_news", "doc_id": "d1", "seg": 3,
         "system": "sysA", "spans": [{"start": 3, "end": 5, "severity": "major", "category": "fluency"},
                                     {"start": 9, "end": 15, "severity": "minor", "category": "accuracy"}]}
    r = EvalRecord.from_dict(d)
    assert r.spans == ((3, 5), (9, 15)) and r.spans_major == ((3, 5),) and r.spans_fluency == ((3, 5),)
    assert (r.doc_id, r.seg, r.system) == ("d1", 3, "sysA")


def test_every_listed_metric_is_computed() -> None:
    recs = [_r("strict", gold=[(0, 4)], doc_id="d", seg=1, system="A"), _r("broad", gold=[(5, 9)]),
            _r("clean", doc_id="d", seg=1, system="B")]
    m = evaluate(recs, [_p(0.9, [(0, 4)]), _p(0.6), _p(0.2)])
    missing = [k for k in METRICS if k not in m]
    assert missing == []
