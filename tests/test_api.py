"""Library contract, checked against a tiny random model (behaviour is checked in test_shipped_model.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector import Detection, Detector, ModelError, Passage, RawScores, SettingsError, Span

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
    det = tiny_detector.with_settings(span_threshold=0.0)  # every token becomes part of a span: stresses offsets
    d = det.detect(text)
    for s in d.spans:
        assert 0 <= s.start < s.end <= len(text)
        assert text[s.start : s.end] == s.text
    for p in d.passages:
        assert text[p.start : p.end] == p.text


@pytest.mark.parametrize("gated", [False, True], ids=["no-gate", "gate"])
def test_span_gate(tiny_detector: Detector, gated: bool) -> None:
    text = "The first sentence is here. A second one follows it. And then a third one ends the text."
    det = tiny_detector.with_settings(span_threshold=1e-9)  # every token of an eligible passage is in a span
    top = max(p.score for p in det.detect(text).passages)
    d = det.with_settings(span_gate=top if gated else 0.0).detect(text)  # gate: only the top passage
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


@pytest.mark.parametrize(
    "bad",
    [{"span_gate": 1.5}, {"span_score": "accuracy"}, {"threshold": "high"}, {"max_length": 0},
     {"labels": ["ok", "bad"]}, {"calibration": [1, 2]}, {"unknown_key": 1}],
    ids=["gate>1", "unknown-span-score", "threshold-not-a-number", "max-length-0", "labels", "calibration-list",
         "unknown-key"],
)
def test_bad_config_is_refused_naming_the_field(tiny_model_dir: Path, tmp_path: Path, bad: dict) -> None:
    folder = _copy_with_config(tiny_model_dir, tmp_path / "bad", **bad)
    with pytest.raises(ModelError, match=next(iter(bad))):
        Detector.load(folder, verify=False)


def test_config_schema_round_trips(tiny_model_dir: Path) -> None:
    """One writer (ModelConfig.to_dict) and one reader (from_dict): every written key is read back."""
    from detector.network import ModelConfig

    raw = json.loads((tiny_model_dir / "config.json").read_text())
    cfg = ModelConfig.from_dict(raw)
    assert cfg.to_dict() == raw
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


# --------------------------------------------------------------------------- settings


def test_settings_are_frozen_and_copies_share_the_network(tiny_detector: Detector) -> None:
    with pytest.raises(AttributeError, match="with_settings"):
        tiny_detector.threshold = 0.1  # type: ignore[misc]
    other = tiny_detector.with_settings(threshold=0.1, span_gate=0.3)
    assert (other.threshold, other.span_gate) == (0.1, 0.3)
    assert tiny_detector.threshold == 0.5 and tiny_detector.span_gate == 0.0  # the original is unchanged
    assert other.network is tiny_detector.network
    with pytest.raises(dataclasses.FrozenInstanceError):
        other.settings.threshold = 0.2  # type: ignore[misc]


@pytest.mark.parametrize(
    "change",
    [{"threshold": 1.5}, {"span_threshold": -0.1}, {"span_gate": float("nan")}, {"span_score": "accuracy"},
     {"threshold": "0.5"}, {"threshold": True}, {"colour": "red"}],
    ids=["threshold>1", "span-threshold<0", "gate-nan", "span-score", "string", "bool", "unknown"],
)
def test_with_settings_rejects_bad_values(tiny_detector: Detector, change: dict) -> None:
    with pytest.raises(SettingsError, match=next(iter(change))):
        tiny_detector.with_settings(**change)
    with pytest.raises(ValueError):  # SettingsError is a ValueError too
        tiny_detector.with_settings(**change)


def test_settings_change_decisions_not_raw_scores(tiny_detector: Detector) -> None:
    text = "The first sentence is here. A second one follows it."
    raw = tiny_detector.score_raw([text])[0]
    strict = tiny_detector.with_settings(threshold=1.0, span_threshold=1.0)
    loose = tiny_detector.with_settings(threshold=0.0, span_threshold=0.0)
    assert not strict.decide(raw).flagged and not strict.decide(raw).spans
    assert loose.decide(raw).flagged and loose.decide(raw).spans
    assert [p.score for p in strict.decide(raw).passages] == [p.score for p in loose.decide(raw).passages]


# --------------------------------------------------------------------------- raw scores


def test_raw_scores_contract(tiny_detector: Detector) -> None:
    text = "The cat sat on the mat. It was happy."
    raw = tiny_detector.score_raw([text])[0]
    n, k = raw.n_tokens, raw.passage_offsets.shape[0]
    assert k == 2 and raw.passage_logits.shape == (k, 2)
    assert raw.token_offsets.shape == (n, 2) and raw.token_passage.shape == (n,) and raw.token_probs.shape == (n, 3)
    assert np.allclose(raw.token_probs.sum(1), 1.0)  # ok + fluency + accuracy
    for (s, e), pi in zip(raw.token_offsets.tolist(), raw.token_passage.tolist()):
        ps, pe = raw.passage_offsets[pi]
        assert ps <= s < e <= pe and text[s:e].strip()
    with pytest.raises(ValueError):  # read-only arrays: raw scores cannot be edited after the fact
        raw.token_probs[0, 0] = 1.0


def test_detect_is_decide_of_score_raw(tiny_detector: Detector) -> None:
    texts = ["One sentence here. Another one.", "Xi Jinping. accepted.", ""]
    assert [tiny_detector.decide(r) for r in tiny_detector.score_raw(texts)] == tiny_detector.detect_batch(texts)


def _raw(text: str, offsets: list[tuple[int, int]], probs: list[tuple[float, float]],
         passages: list[tuple[int, int]] | None = None, token_passage: list[int] | None = None) -> RawScores:
    """Hand-made raw scores; ``probs`` are (P(fluency), P(accuracy)) per token."""
    passages = passages or [(0, len(text))]
    return RawScores(
        text=text,
        passage_offsets=np.array(passages, dtype=np.int64),
        passage_logits=np.zeros((len(passages), 2)),
        token_offsets=np.array(offsets, dtype=np.int64),
        token_passage=np.array(token_passage or [0] * len(offsets), dtype=np.int64),
        token_probs=np.array([(1 - f - a, f, a) for f, a in probs]),
    )


@pytest.mark.parametrize(
    ("probs", "expected"),
    [
        ([(0.6, 0.1), (0.0, 0.0), (0.1, 0.7)], [("aaa", "fluency"), ("ccc", "accuracy")]),
        ([(0.6, 0.1), (0.1, 0.7), (0.0, 0.0)], [("aaa bbb", "accuracy")]),  # 0.7 fluency vs 0.8 accuracy
    ],
    ids=["two-spans", "merged-span"],
)
def test_span_category_follows_the_larger_class(tiny_detector: Detector, probs: list[tuple[float, float]],
                                                expected: list[tuple[str, str]]) -> None:
    raw = _raw("aaa bbb ccc", [(0, 3), (4, 7), (8, 11)], probs)
    d = tiny_detector.with_settings(span_score="error", span_threshold=0.5, span_gate=0.0).decide(raw)
    assert [(s.text, s.category) for s in d.spans] == expected


def test_spans_do_not_cross_passages_and_widen_to_words(tiny_detector: Detector) -> None:
    text = "abc def. ghi jkl"
    raw = _raw(text, [(0, 2), (2, 3), (4, 8), (9, 12), (13, 16)], [(0.9, 0)] * 4 + [(0.0, 0.0)],
               passages=[(0, 8), (9, 16)], token_passage=[0, 0, 0, 1, 1])
    d = tiny_detector.with_settings(span_score="fluency", span_threshold=0.5).decide(raw)
    assert [(s.start, s.end, s.text) for s in d.spans] == [(0, 8, "abc def."), (9, 12, "ghi")]
    raw = _raw(text, [(1, 2)], [(0.9, 0.0)], passages=[(0, 8)], token_passage=[0])
    d = tiny_detector.with_settings(span_score="fluency", span_threshold=0.5).decide(raw)
    assert [s.text for s in d.spans] == ["abc"]  # a word piece widens to its whole word


def test_error_span_score_uses_both_error_classes(tiny_detector: Detector) -> None:
    """span_score "error" cuts spans from P(fluency) + P(accuracy): at a threshold between a token's fluency
    probability and its error probability it finds spans that "fluency" does not, each labelled by the larger class."""
    text = "The first sentence is here. A second one follows it. And then a third one ends the text."
    raw = tiny_detector.score_raw([text])[0]
    flu, err = raw.span_values("fluency"), raw.span_values("error")
    thr = float((flu.max() + err.max()) / 2) if err.max() > flu.max() else float(flu.max())
    det = tiny_detector.with_settings(span_threshold=thr, span_gate=0.0)
    d_flu = det.with_settings(span_score="fluency").detect(text)
    d_err = det.with_settings(span_score="error").detect(text)
    assert err.max() > flu.max()  # P(accuracy) > 0 for a softmax over three classes
    assert not d_flu.spans and d_err.spans
    for s in d_err.spans:
        assert s.category in ("fluency", "accuracy") and s.score >= thr and text[s.start : s.end] == s.text
    assert [p.score for p in d_err.passages] == [p.score for p in d_flu.passages]  # passage scores unaffected


# --------------------------------------------------------------------------- streaming


def test_detect_stream_matches_chunking_and_offsets(tiny_detector: Detector) -> None:
    """A document given in chunks of any size gives the same result; offsets refer to the whole text."""
    det = tiny_detector.with_settings(span_threshold=0.0, threshold=0.0)
    paras = [f"Paragraph {i} has a sentence. Ünïcode “quotes” here {i}!" for i in range(40)]
    text = "\n\n".join(paras) + "\n"
    a = det.detect_stream([text], block_chars=300)
    b = det.detect_stream((text[i : i + 7] for i in range(0, len(text), 7)), block_chars=300)
    assert a == b and a.spans and a.spans[-1].end > len(text) - 10
    for s in a.spans:
        assert text[s.start : s.end] == s.text
    for p in a.passages:
        assert text[p.start : p.end] == p.text


def test_detect_stream_of_a_short_text_equals_detect(tiny_detector: Detector) -> None:
    det = tiny_detector.with_settings(span_threshold=0.0, threshold=0.0)
    text = "One short paragraph. With two sentences."
    assert det.detect_stream(iter([text[:5], text[5:]])) == det.detect(text)


def test_detect_stream_cuts_a_line_without_breaks(tiny_detector: Detector) -> None:
    text = "word " * 500
    d = tiny_detector.with_settings(span_threshold=0.0).detect_stream([text], block_chars=200)
    assert d.spans and all(text[s.start : s.end] == s.text for s in d.spans)


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
    assert Detector.load(bad, verify=False).threshold == 0.1  # the config was edited after the manifest


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


@pytest.mark.parametrize(
    ("options", "error"),
    [({"threads": 0}, "threads must be between 1 and 256"), ({"threads": 257}, "threads must be between 1 and 256"),
     ({"threads": True}, "threads"), ({"backend": "tpu"}, "backend must be one of"),
     ({"precision": "fp8"}, "precision must be one of"), ({"changes": (("threshold", 2.0),)}, "threshold"),
     ({"changes": (("colour", 1),)}, "unknown setting 'colour'")],
    ids=["threads-0", "threads-257", "threads-bool", "backend", "precision", "setting-range", "setting-name"],
)
def test_load_options_state_each_limit_once(options: dict, error: str) -> None:  # type: ignore[type-arg]
    """One validation for Detector.load, the CLI, serve, the Ray engine and the datatrove filter."""
    from detector import LoadOptions

    with pytest.raises(ValueError, match=error):
        LoadOptions(**options)


def test_load_options_load_the_same_detector(tiny_model_dir: Path) -> None:
    from detector import LoadOptions

    det = LoadOptions(model=tiny_model_dir, changes=(("threshold", 0.7),)).load()
    assert det.threshold == 0.7 and det.path == tiny_model_dir
    with pytest.raises(ValueError, match="threads must be between 1 and 256"):
        Detector.load(tiny_model_dir, threads=1000)
