"""Behaviour of the shipped model on real garbled and clean passages, and the seed article's gold rule."""

from __future__ import annotations

import json

import pytest

from detector import Detector
from detector.evaluation import gold_rule

from .conftest import seed_article

KNOWN_MISSES = {
    "doubled-words": "known limitation: doubled function words alone score below the flag threshold",
    "word-salad": "known limitation: fully scrambled word order without case or punctuation cues is missed",
}
GARBLED = {
    "seed-stray-break": "It is not appropriate to invite foreign guests on a large scale, which can be easily understood by Mentally challenged people. common sense.",
    "seed-fragment": "Putin had received an invitation to the Games from Chinese President Xi Jinping. accepted.",
    "untranslated": "The delegation visited the 会议 center and discussed 合作 with local officials.",
    "doubled-words": "The the government will will carry out the the measures next year.",
    "word-salad": "Economy the of growth rapid the has people benefited the for.",
}
CLEAN = {
    "news": "The committee will publish its report next week, officials said on Tuesday.",
    "abbreviation": "The U.S. and Canada signed the agreement in 1994 after years of talks.",
    "initials": "The novel was written by J. R. R. Tolkien and published in 1954.",
    "short-sentence": "The White House apparently sensed that Biden was unlikely to be on the list. Period.",
    "quote": "“We support the efforts of our friends,” the president said.",
    "ellipsis": "He paused... and then he walked out of the room without a word.",
    "names-and-terms": "Chinese President Xi Jinping met Russian President Vladimir Putin in Beijing on Friday, "
                       "the Kremlin said in a statement.",
}


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector.load()


def test_shipped_model_loads_with_checksums(det: Detector) -> None:
    info = det.info()
    assert info["checksum"] == "ok" and 0 < info["threshold"] < 1 and 0 < info["span_threshold"] < 1


@pytest.mark.parametrize("point", ["default", "recall"])
def test_seed_article_passes_gold_rule(det: Detector, point: str) -> None:
    text, gold = seed_article()
    d = det.with_settings(det.config.operating_point(point)).detect(text)
    result = gold_rule(text, gold, [(s.start, s.end) for s in d.spans])
    assert result["passed"], result


def test_default_point_flags_at_most_one_percent_of_each_clean_source(det: Detector) -> None:
    """The default operating point as its rule says (1.8.0 on): spans only in flagged passages, and (in the
    finalize run recorded in metrics.json) at most 1% of each English-original val_clean source flagged (a human
    translation, WMT21 ref.A, measured but not bound); the recall point is the macro rule's, with a lower threshold
    and the same span rule."""
    recall = det.config.operating_point("recall")
    assert recall.threshold < det.threshold and det.span_gate >= det.threshold
    assert (recall.span_threshold, recall.span_score) == (det.span_threshold, det.span_score)
    assert det.path is not None
    full = json.loads((det.path / "metrics.json").read_text())
    assert full["operating_points"]["recall"]["settings"] == recall.to_dict()
    rates = full["metrics"]["val_clean"]["by_source"]
    assert {"abc", "brown", "gum", "newstest_en", "sotu"} <= set(rates)
    for src, r in rates.items():
        if src != "wmt21_ref_a":
            assert round(r["flag_rate"] * r["n"]) <= max(1, int(0.01 * r["n"])), (src, r)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_MISSES[n], strict=True)) if n in KNOWN_MISSES else n
     for n in sorted(GARBLED)],
    ids=sorted(GARBLED),
)
def test_garbled_passages_are_flagged(det: Detector, name: str) -> None:
    d = det.detect(GARBLED[name])
    assert d.flagged and d.spans, (name, d.score)


@pytest.mark.parametrize("name", sorted(CLEAN), ids=sorted(CLEAN))
def test_clean_passages_are_not_flagged(det: Detector, name: str) -> None:
    d = det.detect(CLEAN[name])
    assert not d.flagged and not d.spans, (name, d.score, d.spans)


def test_case_alone_changes_the_score(det: Detector) -> None:
    """The uncased encoder must still see case: only capitalisation differs between the two inputs."""
    garbled = "which can be easily understood by Mentally challenged people. common sense."
    fixed = "which can be easily understood by mentally challenged people. Common sense."
    assert garbled.lower() == fixed.lower()
    a, b = det.detect(garbled), det.detect(fixed)
    peak_a = max((s.score for s in a.spans), default=0.0)
    peak_b = max((s.score for s in b.spans), default=0.0)
    assert abs(a.score - b.score) > 0.1 or abs(peak_a - peak_b) > 0.2, (a.score, b.score, peak_a, peak_b)


def test_batch_equals_single_with_shipped_model(det: Detector) -> None:
    texts = [GARBLED[k] for k in sorted(GARBLED)] + [CLEAN[k] for k in sorted(CLEAN)]
    batch = det.detect_batch(texts, batch_size=5)
    for t, b in zip(texts, batch):
        s = det.detect(t)
        assert abs(s.score - b.score) < 1e-4
        assert [(x.start, x.end) for x in s.spans] == [(x.start, x.end) for x in b.spans]
