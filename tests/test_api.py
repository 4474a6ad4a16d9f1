"""Library contract, checked against a tiny random model (behaviour is checked in test_shipped_model.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector import Detection, Detector, ModelError, Passage, Span

SAMPLES = {
    "plain": "The cat sat on the mat. It was happy.",
    "crlf": "First line.\r\nSecond line, with CRLF.\r\n",
    "tabs": "Tabs\tinside\ttext. And more.",
    "emoji": "Great news 🎉🎉 everyone. Really 👍.",
    "combining": "Cafe\u0301 au lait. Nai\u0308ve.",
    "cjk": "The meeting 会议 was held. 中国 accepted.",
    "empty": "",
    "whitespace": "   \n\t  ",
}


def test_load_returns_detector(tiny_detector: Detector) -> None:
    assert isinstance(tiny_detector, Detector)
    assert tiny_detector.info()["checksum"] == "ok"
    assert tiny_detector.info()["name"] == "tiny-random"


@pytest.mark.parametrize("name", sorted(SAMPLES), ids=sorted(SAMPLES))
def test_detect_contract(tiny_detector: Detector, name: str) -> None:
    text = SAMPLES[name]
    d = tiny_detector.detect(text)
    assert isinstance(d, Detection)
    assert 0.0 <= d.score <= 1.0
    assert d.flagged == (d.score >= tiny_detector.threshold)
    for p in d.passages:
        assert isinstance(p, Passage)
        assert text[p.start : p.end] == p.text and p.text.strip() == p.text
    for s in d.spans:
        assert isinstance(s, Span) and text[s.start : s.end] == s.text
    json.dumps(d.to_dict())  # serialisable


def test_empty_text_has_no_passages(tiny_detector: Detector) -> None:
    d = tiny_detector.detect("")
    assert (d.score, d.flagged, d.spans, d.passages) == (0.0, False, (), ())


def test_results_are_frozen(tiny_detector: Detector) -> None:
    d = tiny_detector.detect("One sentence here. Another one.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.score = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.passages[0].score = 1.0  # type: ignore[misc]


def test_detect_batch_returns_list_in_order(tiny_detector: Detector) -> None:
    texts = [SAMPLES[k] for k in sorted(SAMPLES)]
    out = tiny_detector.detect_batch(texts)
    assert isinstance(out, list) and len(out) == len(texts)
    for t, d in zip(texts, out):
        assert d == tiny_detector.detect(t) or abs(d.score - tiny_detector.detect(t).score) < 1e-4


def test_detect_batch_rejects_a_bare_string(tiny_detector: Detector) -> None:
    with pytest.raises(TypeError):
        tiny_detector.detect_batch("not a list")  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_size", [1, 2, 7, 64], ids=lambda b: f"batch{b}")
def test_batch_size_does_not_change_scores(tiny_detector: Detector, batch_size: int) -> None:
    texts = ["Short one.", "A much longer text that goes on. And on, with several sentences. Three of them."] * 3
    ref = tiny_detector.detect_batch(texts, batch_size=3)
    got = tiny_detector.detect_batch(texts, batch_size=batch_size)
    for a, b in zip(ref, got):
        assert abs(a.score - b.score) < 1e-4
        for pa, pb in zip(a.passages, b.passages):
            assert abs(pa.score - pb.score) < 1e-4


def test_windowing_does_not_depend_on_distant_text(tiny_detector: Detector) -> None:
    """A passage's score depends on its own window only: text far away cannot change it."""
    body = " ".join(f"Sentence number {i} talks about topic {i * 7}." for i in range(30))
    far = " ".join(f"Unrelated filler text {i} goes here." for i in range(30))
    a = tiny_detector.detect(body)
    b = tiny_detector.detect(body + " " + far)
    # context is 8 tokens; the first 20 passages are far from the appended text
    for pa, pb in zip(a.passages[:20], b.passages[:20]):
        assert (pa.start, pa.end) == (pb.start, pb.end)
        assert abs(pa.score - pb.score) < 1e-4


def test_long_passage_is_windowed(tiny_detector: Detector) -> None:
    text = "word " * 400 + "end."
    d = tiny_detector.detect(text)
    assert len(d.passages) == 1 and 0.0 <= d.score <= 1.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_span_offsets_slice_the_input(tiny_detector: Detector, text: str) -> None:
    old = tiny_detector.span_threshold
    tiny_detector.span_threshold = 0.0  # every token becomes part of a span: stresses the offsets
    try:
        d = tiny_detector.detect(text)
    finally:
        tiny_detector.span_threshold = old
    for s in d.spans:
        assert 0 <= s.start < s.end <= len(text)
        assert text[s.start : s.end] == s.text
    for p in d.passages:
        assert text[p.start : p.end] == p.text


@pytest.mark.parametrize("gated", [False, True], ids=["no-gate", "gate"])
def test_span_gate(tiny_detector: Detector, gated: bool) -> None:
    text = "The first sentence is here. A second one follows it. And then a third one ends the text."
    old = (tiny_detector.span_threshold, tiny_detector.span_gate)
    try:
        tiny_detector.span_threshold = 1e-9  # every token of an eligible passage is in a span
        top = max(p.score for p in tiny_detector.detect(text).passages)
        tiny_detector.span_gate = top if gated else 0.0  # gate: only the top passage may carry spans
        d = tiny_detector.detect(text)
    finally:
        tiny_detector.span_threshold, tiny_detector.span_gate = old
    eligible = [p for p in d.passages if p.score >= top]
    assert len(d.passages) == 3 and eligible and d.spans
    for s in d.spans:  # spans never cross a passage boundary
        assert any(p.start <= s.start and s.end <= p.end for p in d.passages), s
    inside = [any(p.start <= s.start and s.end <= p.end for p in eligible) for s in d.spans]
    assert all(inside) if gated else not all(inside)


def _copy_with_config(src: Path, dst: Path, **changes: object) -> Path:
    """A copy of a model folder whose config.json has ``changes`` applied (SHA256SUMS left as it was)."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(changes)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize("bad", [{"span_gate": 1.5}, {"span_score": "accuracy"}], ids=["gate>1", "unknown-span-score"])
def test_bad_span_settings_are_refused(tiny_model_dir: Path, tmp_path: Path, bad: dict) -> None:
    folder = _copy_with_config(tiny_model_dir, tmp_path / "bad", **bad)
    with pytest.raises(ModelError, match=next(iter(bad))):
        Detector.load(folder, verify=False)


def test_error_span_score_uses_both_error_classes(tiny_detector: Detector) -> None:
    """span_score "error" cuts spans from P(fluency) + P(accuracy): at a threshold between a token's fluency
    probability and its error probability it finds spans that "fluency" does not, each labelled by the larger class."""
    text = "The first sentence is here. A second one follows it. And then a third one ends the text."
    st_ = tiny_detector._prepare(text)
    tiny_detector._run([st_], 8)
    flu = [f for row in st_.token_probs for f, _ in row]
    err = [f + a for row in st_.token_probs for f, a in row]
    thr = (max(flu) + max(err)) / 2 if max(err) > max(flu) else max(flu)
    old = (tiny_detector.span_threshold, tiny_detector.span_gate, tiny_detector.span_score)
    try:
        tiny_detector.span_threshold, tiny_detector.span_gate = thr, 0.0
        tiny_detector.span_score = "fluency"
        d_flu = tiny_detector.detect(text)
        tiny_detector.span_score = "error"
        d_err = tiny_detector.detect(text)
    finally:
        tiny_detector.span_threshold, tiny_detector.span_gate, tiny_detector.span_score = old
    assert max(err) > max(flu)  # P(accuracy) > 0 for a softmax over three classes
    assert not d_flu.spans and d_err.spans
    for s in d_err.spans:
        assert s.category in ("fluency", "accuracy") and s.score >= thr and text[s.start : s.end] == s.text
    assert [p.score for p in d_err.passages] == [p.score for p in d_flu.passages]  # passage scores unaffected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([(0.6, 0.1), (0.0, 0.0), (0.1, 0.7)], [("aaa", "fluency"), ("ccc", "accuracy")]),
        ([(0.6, 0.1), (0.1, 0.7), (0.0, 0.0)], [("aaa bbb", "accuracy")]),  # 0.7 fluency vs 0.8 accuracy
    ],
    ids=["two-spans", "merged-span"],
)
def test_span_category_follows_the_larger_class(row: list[tuple[float, float]], expected: list[tuple[str, str]]) -> None:
    from detector._detector import _categorised, _spans

    text, offs = "aaa bbb ccc", [(0, 3), (4, 7), (8, 11)]
    spans = _categorised(_spans(text, offs, [f + a for f, a in row], 0.5, "fluency"), offs, row)
    assert [(s.text, s.category) for s in spans] == expected


def test_distilbert_encoder_loads_and_scores(tiny_distilbert_dir: Path) -> None:
    det = Detector.load(tiny_distilbert_dir)
    text = "A first sentence. a second one follows."
    d = det.detect(text)
    assert len(d.passages) == 2 and 0.0 <= d.score <= 1.0
    assert [x.score for x in det.detect_batch([text, text], batch_size=1)] == pytest.approx([d.score, d.score], abs=1e-5)


def test_checksum_mismatch_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = _copy_with_config(tiny_model_dir, tmp_path / "bad", threshold=0.1)
    with pytest.raises(ModelError, match="checksum"):
        Detector.load(bad)
    assert Detector.load(bad, verify=False).threshold == 0.1


def test_missing_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Detector.load(tmp_path / "nope")


def test_incomplete_model_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "partial"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="model.safetensors"):
        Detector.load(bad)


def test_import_has_no_side_effects() -> None:
    import subprocess
    import sys

    code = "import sys, detector; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
