"""The training config's schema (training.config): every shipped config fits it; a typo or a wrong type is an error
naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("yaml")

from training.config import ConfigError, load_config, require_complete  # noqa: E402

from .conftest import REPO  # noqa: E402

CONFIGS = sorted((REPO / "training" / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(REPO / "training" / "configs")) for p in CONFIGS])
def test_shipped_configs_fit_the_schema(path: Path) -> None:
    cfg = require_complete(load_config(path), str(path))
    assert cfg["max_length"] > 2 * cfg["context_tokens"]


@pytest.mark.parametrize(
    "text,message",
    [("name: x\nlearning_rate: 0.1\n", "unknown key 'learning_rate'"),
     ("name: x\nepochs: two\n", "'epochs' must be an integer, not 'two'"),
     ("name: x\nearly_stopping: 1\n", "'early_stopping' must be true or false"),
     ("name: x\nper_epoch: {brown: many}\n", "'per_epoch' must be a mapping of pool names to integers"),
     ("name: x\nclass_weights: [1, b, 1]\n", "'class_weights' must be a list of numbers"),
     ("- a list\n", "a mapping of keys to values"),
     ("name: [unclosed\n", "not valid YAML")],
    ids=["unknown-key", "wrong-int", "wrong-bool", "wrong-pools", "wrong-list", "not-mapping", "bad-yaml"],
)
def test_config_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")) as e:
        load_config(path)
    assert str(path) in str(e.value)


def test_a_variant_inherits_and_is_checked_whole(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("name: base\nseed: 1\n", encoding="utf-8")
    (tmp_path / "variant.yaml").write_text("extends: base.yaml\nname: variant\n", encoding="utf-8")
    cfg = load_config(tmp_path / "variant.yaml")
    assert cfg == {"name": "variant", "seed": 1}
    with pytest.raises(ConfigError, match="missing key 'version'"):
        require_complete(cfg)


def test_train_command_reports_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from training.train import main

    path = tmp_path / "c.yaml"
    path.write_text("name: x\nlr: fast\n", encoding="utf-8")
    assert main(["--config", str(path)]) == 2
    assert "'lr' must be a number" in capsys.readouterr().err
