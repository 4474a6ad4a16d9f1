"""Word rarity (issue #11): the word table, its place in config.json and the calibrated passage probability."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from detector import Detector, ModelError
from detector.network import RARITY_CAP, ModelConfig, WordTable, write_manifest

TABLE = WordTable({"the": 7.7, "river": 5.1, "is": 7.4, "calm": 4.4, "don't": 6.2, "cheuk": 1.9, "yan": 3.5,
                   "a": 7.4})


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("", 0.0, id="empty"),
    pytest.param("123 -- 456!", 0.0, id="no-words"),
    pytest.param("The river is calm.", RARITY_CAP - 4.4, id="rarest-word-counts"),
    pytest.param("THE RIVER IS", RARITY_CAP - 5.1, id="case-folded"),
    pytest.param("Don\u2019t", 0.0, id="curly-apostrophe-and-common"),
    pytest.param("the Cheuk-yan", RARITY_CAP - 1.9, id="hyphen-splits"),
    pytest.param("the zzqx river", RARITY_CAP, id="unknown-word"),
    pytest.param("the 2020s", RARITY_CAP, id="digits-split-off"),
])
def test_rarity_of_a_passage(text: str, expected: float) -> None:
    assert TABLE.rarity(text) == pytest.approx(expected)


def test_word_table_round_trip_is_byte_stable(tmp_path: Path) -> None:
    TABLE.write(tmp_path / "a.json.gz")
    WordTable.read(tmp_path / "a.json.gz").write(tmp_path / "b.json.gz")
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()
    assert WordTable.read(tmp_path / "a.json.gz").zipf("Calm") == 4.4
    assert len(WordTable.read(tmp_path / "a.json.gz")) == len(TABLE)
    with pytest.raises(ValueError):
        WordTable({"two words": 3.0}).write(tmp_path / "c.json.gz")


@pytest.mark.parametrize("content", [
    pytest.param(b"not gzip", id="not-gzip"),
    pytest.param(gzip.compress(b"[1, 2]"), id="not-an-object"),
    pytest.param(gzip.compress(b'{"the": 7.7}'), id="no-format"),
    pytest.param(gzip.compress(b'{"format": "mtdetect-zipf-1", "zipf_words": {"often": "the"}}'), id="not-numbers"),
    pytest.param(gzip.compress(b'{"format": "mtdetect-zipf-1", "zipf_words": {"7.7": ["the"]}}'), id="not-a-string"),
    pytest.param(gzip.compress(b"{"), id="truncated-json"),
])
def test_a_broken_word_table_is_a_model_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "t.json.gz").write_bytes(content)
    with pytest.raises(ModelError, match="word table"):
        WordTable.read(tmp_path / "t.json.gz")


def _config(**changes: object) -> dict:
    """The shipped config.json without its word table, with ``changes``."""
    d = json.loads((Path(__file__).parents[1] / "models" / "mtdetect-minilm-shape" / "config.json").read_text())
    d.pop("word_table", None)
    d["calibration"] = {k: v for k, v in d["calibration"].items() if k != "e"}
    d.update(changes)
    return d


@pytest.mark.parametrize(("changes", "message"), [
    pytest.param({"calibration": {"a": 1.0, "b": 0.0, "e": 0.2}}, "needs 'word_table'", id="e-without-table"),
    pytest.param({"word_table": "../x.gz"}, "must name a file", id="table-outside-folder"),
    pytest.param({"word_table": 3}, "must name a file", id="table-not-a-string"),
])
def test_config_rejects_a_bad_rarity_term(changes: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        ModelConfig.from_dict(_config(**changes))


def test_config_round_trips_the_rarity_term() -> None:
    cfg = ModelConfig.from_dict(_config(word_table="words.json.gz",
                                        calibration={"a": 0.1, "b": 0.0, "c": 0.0, "d": 0.2, "e": 0.15}))
    assert cfg.calibration == (0.1, 0.0, 0.0, 0.2, 0.15)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(calibration=(1.0, 0.0, 0.0, 0.0, 0.5)).calibration[4] == 0.5
    plain = ModelConfig.from_dict(_config())
    assert plain.word_table is None and plain.calibration[4] == 0.0 and "e" not in plain.to_dict()["calibration"]


@pytest.fixture(scope="module")
def rare_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a word table and a rarity weight."""
    folder = tmp_path_factory.mktemp("rare") / "tiny-rare"
    shutil.copytree(tiny_model_dir, folder)
    TABLE.write(folder / "words.json.gz")
    cfg = ModelConfig.from_dict(json.loads((folder / "config.json").read_text()))
    cfg = cfg.replace(word_table="words.json.gz", calibration=(1.0, 0.0, 0.0, 0.0, 0.7))
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    write_manifest(folder)
    return folder


def test_rarity_enters_the_passage_probability(rare_model: Path, tiny_model_dir: Path) -> None:
    """p = sigmoid(garbled + 0.7 * rarity) per passage: the same network without the term gives garbled alone."""
    texts = ["The river is calm. Zzqx qwv river.", "the river"]
    rare = Detector.load(rare_model, backend="torch")
    plain = Detector.load(tiny_model_dir, backend="torch")
    for r, base in zip(rare.score_raw(texts), plain.score_raw(texts)):
        assert r.passage_rarity is not None and base.passage_rarity is None
        expect = [TABLE.rarity(r.text[s:e]) for s, e in r.passage_offsets.tolist()]
        assert r.passage_rarity.tolist() == pytest.approx(expect)
        z = r.passage_logits[:, 0] + 0.7 * r.passage_rarity
        assert rare.passage_probabilities(r) == pytest.approx(1 / (1 + np.exp(-z)))
        assert np.allclose(r.passage_logits, base.passage_logits)
    assert rare.score_raw(texts)[0].passage_rarity.tolist() == pytest.approx([RARITY_CAP - 4.4, RARITY_CAP])


def test_rarity_does_not_depend_on_batching(rare_model: Path) -> None:
    det = Detector.load(rare_model, backend="torch")
    texts = ["The river is calm.", "Zzqx. the river", "", "Cheuk-yan is calm."]
    one = [det.detect(t) for t in texts]
    for a, b in zip(det.detect_batch(texts, batch_size=3), one):
        assert a.score == pytest.approx(b.score, abs=1e-6)
        assert [p.score for p in a.passages] == pytest.approx([p.score for p in b.passages], abs=1e-6)


def test_a_word_table_outside_the_manifest_fails_to_load(rare_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(rare_model, folder)
    WordTable({"the": 1.0}).write(folder / "words.json.gz")  # changed after the manifest was written
    with pytest.raises(ModelError):
        Detector.load(folder)
    assert math.isfinite(Detector.load(folder, verify=False).detect("the river").score)
