"""The model folder's one owner (detector.network.ModelFolder): reads, writes with the manifest in step, checks."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from detector import Detector, ModelError
from detector.network import ModelFolder

from .conftest import REPO


@pytest.fixture()
def folder(tiny_model_dir: Path, tmp_path: Path) -> ModelFolder:
    shutil.copytree(tiny_model_dir, tmp_path / "m")
    return ModelFolder(tmp_path / "m")


def test_write_config_keeps_the_folder_verifying(folder: ModelFolder) -> None:
    cfg = folder.config().replace(version="9.9.9", shared_window=64)
    folder.write_config(cfg)
    assert folder.config() == cfg and folder.verify() == "ok"
    assert Detector.load(folder.path).config.version == "9.9.9"


def test_write_text_and_manifest(folder: ModelFolder) -> None:
    folder.write_text("MODEL_CARD.md", "# card\n")
    assert folder.verify() == "ok"
    (folder.path / "MODEL_CARD.md").write_text("# changed\n")
    assert folder.verify() == "mismatch: MODEL_CARD.md"
    with pytest.raises(ModelError, match="checksum mismatch"):
        folder.verify(("MODEL_CARD.md",))
    folder.write_manifest()
    assert folder.verify() == "ok"


@pytest.mark.parametrize("name", ["config.json", "fusion.json", "SHA256SUMS", "../x.md", ".hidden"],
                         ids=["config", "fusion", "manifest", "outside", "hidden"])
def test_write_text_refuses_owned_and_foreign_names(folder: ModelFolder, name: str) -> None:
    with pytest.raises(ValueError):
        folder.write_text(name, "x")


def test_no_fusion_is_a_model_error(folder: ModelFolder) -> None:
    assert not folder.has_fusion
    with pytest.raises(ModelError, match="no accurate mode"):
        folder.fusion()


# training's exploration of another encoder writes a transformers config of its own, not a model folder's
_OTHER_SCHEMAS = {"quire_encoder.py"}  # training/experiments/


@pytest.mark.parametrize("package", ["training", "benchmarks", "corpus"])
def test_config_and_fusion_are_written_only_through_the_folder(package: str) -> None:
    direct = re.compile(r"""(["']config\.json["']\)|FUSION_FILE\)|["']fusion\.json["']\))\.write_(text|bytes)""")
    found = [f"{p.relative_to(REPO)}:{n}" for p in sorted((REPO / package).rglob("*.py")) if p.name not in _OTHER_SCHEMAS
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if direct.search(line)]
    assert found == []
