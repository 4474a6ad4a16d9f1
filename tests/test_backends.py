"""Backends (torch reference, ONNX Runtime fp32/int8) and the sense head, on tiny random models built here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector import Detector, ModelError
from tests.conftest import REPO, build_tiny_model

TEXTS = ["The river is not calm as a teacher and as a colourful river.",
         "Xi Jinping. accepted. The talks lasted two hours.",
         "",
         "A much longer passage with numbers 1,234 and names, repeated. " * 6]

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.export_onnx import export

    folder = build_tiny_model(tmp_path_factory.mktemp("onnx") / "tiny", seed=3, sense=True,
                              sense_layers=(1,))
    diffs = export(folder, int8=True)
    assert diffs["fp32"] < 1e-4
    return folder


def _logits(det: Detector, batch_size: int = 32) -> list[np.ndarray]:
    return [r.passage_logits for r in det.score_raw(TEXTS, batch_size=batch_size)]


@pytest.mark.parametrize("precision,tol", [("fp32", 1e-4), ("int8", 0.5)], ids=["fp32", "int8"])
def test_onnx_matches_torch(exported: Path, precision: str, tol: float) -> None:
    ref = Detector.load(exported, backend="torch")
    got = Detector.load(exported, backend="onnx", precision=precision)
    assert (ref.backend, got.backend) == ("torch", "onnx")
    for a, b in zip(_logits(ref), _logits(got)):
        assert a.shape == b.shape and a.shape[1:] == (3,)
        fin = np.isfinite(a)
        assert (fin == np.isfinite(b)).all() and np.abs(a[fin] - b[fin]).max(initial=0.0) < tol
    for ra, rb in zip(ref.score_raw(TEXTS), got.score_raw(TEXTS)):
        assert np.abs(ra.token_probs - rb.token_probs).max(initial=0.0) < tol


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_batching_does_not_change_scores(exported: Path, backend: str) -> None:
    """On the default precisions (int8's activation scales are per batch, see detector._backend)."""
    det = Detector.load(exported, backend=backend)
    for a, b in zip(det.detect_batch(TEXTS, batch_size=1), det.detect_batch(TEXTS, batch_size=64)):
        assert a.score == pytest.approx(b.score, abs=1e-5)
        assert [(s.start, s.end) for s in a.spans] == [(s.start, s.end) for s in b.spans]


def test_onnx_backend_imports_neither_torch_nor_transformers(exported: Path) -> None:
    code = ("import sys\nfrom detector import Detector\n"
            f"d = Detector.load({str(exported)!r}, backend='onnx')\nd.detect('Some text. another one.')\n"
            "print(json.dumps(['torch' in sys.modules, 'transformers' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, cwd=REPO,
                         check=True)
    assert json.loads(out.stdout) == [False, False]


def test_auto_backend_and_missing_graph(tmp_path: Path, exported: Path) -> None:
    bare = build_tiny_model(tmp_path / "bare")
    assert Detector.load(bare).backend == "torch"  # no graph: the reference
    assert Detector.load(exported).backend == "onnx"
    with pytest.raises(ModelError, match="export_onnx"):
        Detector.load(bare, backend="onnx")
    with pytest.raises(ValueError, match="backend"):
        Detector.load(bare, backend="tpu")
    r = subprocess.run([sys.executable, "-m", "detector.cli", "score", "--model", str(bare), "--backend", "onnx",
                        "--plain", "-"], input="Some text.", capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 3 and "export_onnx" in r.stderr and "Traceback" not in r.stderr


def test_tampered_graph_fails_the_checksum(tmp_path: Path, exported: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(exported, folder)
    with open(folder / "model.int8.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="checksum"):
        Detector.load(folder, backend="onnx", precision="int8")
    Detector.load(folder, backend="onnx")  # the fp32 graph is intact and is what is read


def test_graph_stores_weights_in_fp16_losslessly(exported: Path) -> None:
    import onnx

    g = onnx.load(str(exported / "model.onnx")).graph
    halves = [i for i in g.initializer if i.name.endswith("__fp16")]
    assert halves and all(i.data_type == onnx.TensorProto.FLOAT16 for i in halves)


def test_sense_weight_enters_the_passage_probability(exported: Path) -> None:
    det = Detector.load(exported, backend="torch")
    assert det.config.sense_head and det.config.passage_outputs[-1] == "sense"
    raw = det.score_raw(TEXTS[:2])
    a, b, c, d, e = det.config.calibration
    assert d == 0.5 and e == 0.0  # no word table: no rarity term
    for r in raw:
        z = a * r.passage_logits[:, 0] + c * r.passage_logits[:, 1] + d * r.passage_logits[:, 2] + b
        assert det.passage_probabilities(r) == pytest.approx(1 / (1 + np.exp(-z)))
    no_sense = det.with_config(det.config.replace(calibration=(a, b, c, 0.0)))
    z0 = a * raw[0].passage_logits[:, 0] + c * raw[0].passage_logits[:, 1] + b
    assert no_sense.passage_probabilities(raw[0]) == pytest.approx(1 / (1 + np.exp(-z0)))


def test_sense_config_round_trip_and_errors(exported: Path) -> None:
    from detector.network import ModelConfig

    d = json.loads((exported / "config.json").read_text())
    assert d["passage_outputs"] == ["garbled", "any_major", "sense"] and "d" in d["calibration"]
    assert ModelConfig.from_dict(d).to_dict() == d
    with pytest.raises(ModelError, match="sense"):
        ModelConfig.from_dict({**d, "passage_outputs": ["garbled", "any_major"]})
    with pytest.raises(ModelError, match="passage_outputs"):
        ModelConfig.from_dict({**d, "passage_outputs": ["garbled", "sense"]})


@pytest.mark.parametrize("layers", [[0], [3], [1, 1], [2, 1], ["1"], [True]],
                         ids=["zero", "past-last", "repeated", "unordered", "string", "bool"])
def test_sense_layers_rejected(exported: Path, layers: list) -> None:
    from detector.network import ModelConfig

    d = json.loads((exported / "config.json").read_text())
    assert d["sense_layers"] == [1]
    with pytest.raises(ModelError, match="sense_layers"):
        ModelConfig.from_dict({**d, "sense_layers": layers})


def test_sense_layers_feed_only_the_sense_logit(exported: Path) -> None:
    """The sense head reads the passage features plus layer 1's mean-pooled passage states: changing the weights on
    those states moves the sense logit and nothing else."""
    import torch

    det = Detector.load(exported, backend="torch")
    before = det.score_raw(TEXTS[:2])
    head = det.network.sense_head
    n_feats = head.in_features - det.config.bert["hidden_size"]
    with torch.no_grad():
        head.weight[0, n_feats:] += torch.linspace(-1.0, 1.0, head.in_features - n_feats)  # not constant: the
        # pooled states are layer-normed, so a constant shift would cancel
    after = det.score_raw(TEXTS[:2])
    for a, b in zip(before, after):
        assert np.allclose(a.passage_logits[:, :2], b.passage_logits[:, :2])
        assert np.abs(a.passage_logits[:, 2] - b.passage_logits[:, 2]).max() > 1e-3
