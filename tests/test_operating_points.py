"""Named operating points: config.json's operating_points, Detector.load(operating_point=...) and the CLI option."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from detector import Detector, ModelError, Settings
from detector.cli import main
from detector.network import ModelConfig, write_manifest

QUIET = {"threshold": 0.9, "span_threshold": 0.5, "span_gate": 0.9, "span_score": "fluency", "rule": "test rule"}


def _with_points(src: Path, dst: Path, points: dict[str, Any]) -> Path:
    """A copy of a model folder whose config.json has ``points`` as its operating_points."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**cfg, "operating_points": points}))
    write_manifest(dst)
    return dst


@pytest.fixture(scope="module")
def quiet_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _with_points(tiny_model_dir, tmp_path_factory.mktemp("points") / "tiny-quiet", {"quiet": QUIET})


def test_config_round_trip_and_lookup(quiet_dir: Path) -> None:
    cfg = ModelConfig.from_dict(json.loads((quiet_dir / "config.json").read_text()))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["operating_points"] == {"quiet": QUIET}
    assert cfg.operating_point_names == ("default", "quiet")
    assert cfg.operating_point("default") == cfg.settings
    assert cfg.operating_point("quiet") == Settings(threshold=0.9, span_threshold=0.5, span_gate=0.9,
                                                    span_score="fluency")
    assert "operating_points" not in cfg.replace(operating_points=()).to_dict()
    with pytest.raises(ModelError, match=r"no operating point 'loud' \(it has: default, quiet\)"):
        cfg.operating_point("loud")


@pytest.mark.parametrize("points, message", [
    pytest.param([], "must be an object of named settings", id="not-an-object"),
    pytest.param({"default": QUIET}, "name 'default'", id="reserved-name"),
    pytest.param({"Quiet!": QUIET}, "name 'Quiet!'", id="bad-name"),
    pytest.param({"quiet": {"threshold": 0.9}}, "must be an object with threshold", id="missing-settings"),
    pytest.param({"quiet": {**QUIET, "colour": "red"}}, "must be an object with threshold", id="unknown-key"),
    pytest.param({"quiet": {**QUIET, "threshold": 1.5}}, "threshold must be a number between 0 and 1",
                 id="threshold-out-of-range"),
    pytest.param({"quiet": {**QUIET, "rule": 3}}, "rule must be a string", id="rule-not-text"),
])
def test_malformed_operating_points_are_model_errors(tiny_model_dir: Path, points: Any, message: str) -> None:
    d = json.loads((tiny_model_dir / "config.json").read_text())
    with pytest.raises(ModelError, match=message):
        ModelConfig.from_dict({**d, "operating_points": points})


def test_load_at_an_operating_point(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Same probabilities, the point's decisions (a threshold and gate between this text's passage scores, every
    token a span candidate: spans in the passages above the gate, none below); a changed setting is no named point."""
    text = "Xi Jinping. accepted. The talks went well. Mentally challenged people. common sense."
    scores = sorted(p.score for p in Detector.load(tiny_model_dir).detect(text).passages)
    cut = round((scores[0] + scores[-1]) / 2, 6)
    point = {"threshold": cut, "span_threshold": 0.0, "span_gate": cut, "span_score": "error", "rule": "mid"}
    folder = _with_points(tiny_model_dir, tmp_path / "mid", {"mid": point})
    default = Detector.load(folder)
    mid = Detector.load(folder, operating_point="mid")
    assert default.operating_point == "default" and mid.operating_point == "mid"
    assert mid.info()["operating_point"] == "mid" and mid.info()["operating_points"] == ["default", "mid"]
    a, b = default.detect(text), mid.detect(text)
    assert [p.score for p in a.passages] == [p.score for p in b.passages]
    assert [p.flagged for p in b.passages] == [p.score >= cut for p in b.passages]
    above = [p for p in b.passages if p.score >= cut]
    assert above and b.spans
    assert all(any(p.start <= sp.start and sp.end <= p.end for p in above) for sp in b.spans)
    assert mid.with_settings(threshold=0.3).operating_point is None


def test_unknown_point_and_accurate_mode_are_refused(quiet_dir: Path, tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="has no operating point 'quiet'"):
        Detector.load(tiny_model_dir, operating_point="quiet")
    with pytest.raises(ModelError, match="has no accurate mode"):  # the fused mode's points live in its fusion.json
        Detector.load(quiet_dir, operating_point="quiet", accurate=True)


def test_cli_operating_point(quiet_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`--operating-point quiet` applies the point, explicit options apply on top, an unknown name is a one-line
    model error (exit 3)."""
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps({"id": "a", "text": "Xi Jinping. accepted. The talks went well."}) + "\n")

    def score(*extra: str) -> tuple[int, dict[str, Any], str]:
        code = main(["score", "--format", "jsonl", "--model", str(quiet_dir), str(p), *extra])
        out, err = capsys.readouterr()
        return code, json.loads(out) if out else {}, err

    code, default, _ = score()
    code_q, quiet, _ = score("--operating-point", "quiet")
    assert quiet["score"] == default["score"] and quiet["flagged"] == (quiet["score"] >= 0.9)
    _, low, _ = score("--operating-point", "quiet", "--threshold", "0.0")
    assert low["flagged"] is True
    code, _, err = score("--operating-point", "loud")
    assert code == 3 and err.count("\n") == 1 and "no operating point 'loud'" in err
    assert main(["info", "--format", "json", "--model", str(quiet_dir), "--operating-point", "quiet"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["operating_point"] == "quiet" and info["threshold"] == 0.9


def test_datatrove_filter_takes_an_operating_point(quiet_dir: Path) -> None:
    pytest.importorskip("datatrove")
    from detector.datatrove_filter import MTDetectFilter

    det = MTDetectFilter(model=quiet_dir, operating_point="quiet")._detector()
    assert det.operating_point == "quiet" and det.threshold == 0.9
    det = MTDetectFilter(model=quiet_dir, operating_point="quiet", threshold=0.2)._detector()
    assert det.operating_point is None and det.threshold == 0.2


def test_clean_sources_benchmark_reports_every_operating_point(quiet_dir: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m benchmarks.clean_sources MODEL`: one line per operating point, each with its own flag rate."""
    from benchmarks.clean_sources import main as clean_main

    rows = [{"text": t, "source": src} for t, src in [("The cat sat on the mat.", "brown"), ("It rained.", "brown"),
                                                        ("Xi Jinping. accepted.", "gum")]]
    (tmp_path / "test_clean.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert clean_main([str(quiet_dir), "--corpus", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "(default point): n=3" in lines[0] and "(quiet point): n=3" in lines[1]
    quiet = Detector.load(quiet_dir, operating_point="quiet")
    n_flagged = sum(d.flagged for d in quiet.detect_batch([r["text"] for r in rows]))
    assert f"flagged={n_flagged / 3:.2%}" in lines[1]


def test_peer_benchmark_has_a_recall_row() -> None:
    """benchmarks.run scores the shipped model's recall point as its own row (same scores as the default row)."""
    from benchmarks.run import SAME_SCORES, SYSTEMS, System

    assert "mtdetect-recall" in SYSTEMS and SAME_SCORES["mtdetect-recall"] == "mtdetect"
    recall, default = System("mtdetect-recall", []), System("mtdetect", [])
    assert recall.label.endswith(", recall point)") and recall.det.operating_point == "recall"
    rows = [{"text": "Xi Jinping. accepted.", "label": "strict", "source": "x", "spans": []}]
    assert recall.score(rows)[0].pred.score == default.score(rows)[0].pred.score
