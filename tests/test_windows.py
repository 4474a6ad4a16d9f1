"""Window layouts end to end on a tiny random model: the network's per-target passage head, the shared layout in the
detector (batching, the config field, graphs that take one target per window)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from detector import Detector, ModelError
from tests.conftest import build_tiny_model

TEXTS = ["Xi Jinping. accepted. The talks lasted two hours.",
         "One line\nanother line\nand a third one here\nfour\nfive.",
         "",
         "A much longer passage with numbers 1,234 and names, repeated. " * 6]


@pytest.fixture(scope="module")
def sense_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("win") / "tiny", seed=5, sense=True, sense_layers=(1,))


def test_network_pools_each_target_as_alone(sense_dir: Path) -> None:
    """(B, P, L) targets give, per target, what a (B, L) target of that passage alone gives."""
    import torch

    from detector.network import build_windows, collate, collate_shared, split_passages, tokenize_passages

    det = Detector.load(sense_dir, backend="torch")
    tok = det.tokenizer
    text = TEXTS[0] + " " + TEXTS[1]
    toks = tokenize_passages(tok, text, split_passages(text))
    windows = build_windows(toks, 48, 8, tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]"), shared=True, length=80)
    assert max(len(w.targets) for w in windows) > 1
    net = det.network
    with torch.inference_mode():
        x = {k: torch.from_numpy(v) for k, v in collate_shared(windows).items()}
        _, shared = net(x["ids"], x["shapes"], x["mask"], x["target"])
        for i, w in enumerate(windows):
            for j, t in enumerate(w.targets):
                single = collate([type(w)(w.ids, w.shapes, (t,))])
                y = {k: torch.from_numpy(v) for k, v in single.items()}
                _, alone = net(y["ids"], y["shapes"], y["mask"], y["target"])
                assert torch.allclose(shared[i, j], alone[0], atol=1e-5)


@pytest.fixture(scope="module")
def shared_dir(sense_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from detector.network import write_manifest

    folder = tmp_path_factory.mktemp("win") / "shared"
    shutil.copytree(sense_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "shared_window": 96}))
    write_manifest(folder)
    return folder


def test_shared_layout_changes_windows_not_batching(shared_dir: Path) -> None:
    det = Detector.load(shared_dir, backend="torch")
    assert det.config.shared_window == 96
    a = det.score_raw(TEXTS, batch_size=1)
    b = det.score_raw(TEXTS, batch_size=64)
    for x, y in zip(a, b):
        assert np.allclose(x.passage_logits, y.passage_logits, atol=1e-5)
        assert np.allclose(x.token_probs, y.token_probs, atol=1e-5)
    alone = det.score_raw([TEXTS[1]])[0]
    assert np.allclose(alone.passage_logits, a[1].passage_logits, atol=1e-5)


def test_single_passage_texts_score_the_same_in_both_layouts(sense_dir: Path, shared_dir: Path) -> None:
    texts = ["The river is not calm as a teacher.", "accepted."]
    for x, y in zip(Detector.load(sense_dir, backend="torch").score_raw(texts),
                    Detector.load(shared_dir, backend="torch").score_raw(texts)):
        assert np.allclose(x.passage_logits, y.passage_logits, atol=1e-5)


@pytest.mark.parametrize("value,message", [(20, "at least max_length"), (999, "max_position_embeddings"),
                                           ("wide", "shared_window")], ids=["short", "beyond-positions", "type"])
def test_shared_window_config_errors(sense_dir: Path, value: object, message: str) -> None:
    from detector.network import ModelConfig

    d = json.loads((sense_dir / "config.json").read_text())
    with pytest.raises(ModelError, match=message):
        ModelConfig.from_dict({**d, "shared_window": value})


def test_one_target_graph_refuses_a_shared_config(shared_dir: Path) -> None:
    class OneTarget:  # what an ONNX graph exported before the shared-window design is
        name = "onnx"
        shared = False

    det = Detector.load(shared_dir, backend="torch")
    with pytest.raises(ModelError, match="export it again"):
        Detector(OneTarget(), det.tokenizer, det.config)
    plain = det.with_config(det.config.replace(shared_window=0))
    assert Detector(OneTarget(), plain.tokenizer, plain.config).config.shared_window == 0


def test_onnx_graph_scores_shared_windows_like_torch(shared_dir: Path, tmp_path: Path,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    """The exported graph takes many targets per window (its max-pool is a scatter, so memory stays (B, P, H)), gives
    torch's numbers and prints nothing (ONNX Runtime warns on wrongly annotated shapes)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from training.export_onnx import export

    folder = tmp_path / "shared"
    shutil.copytree(shared_dir, folder)
    export(folder)
    lines = "\n".join(f"word{k}" for k in range(120))  # one-word lines: dozens of targets in one window
    ref = Detector.load(folder, backend="torch").score_raw([*TEXTS, lines])
    capfd.readouterr()
    got = Detector.load(folder, backend="onnx").score_raw([*TEXTS, lines])
    assert capfd.readouterr().err == ""
    for a, b in zip(ref, got):
        assert np.allclose(a.passage_logits, b.passage_logits, atol=1e-4)
        assert np.allclose(a.token_probs, b.token_probs, atol=1e-4)
