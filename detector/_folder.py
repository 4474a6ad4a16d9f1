"""The model folder: the one owner of its files (issue #33). The runtime reads a folder through it; every training
step, the ONNX export and the benchmarks write ``config.json``, ``fusion.json`` and the rest through it, and each
write leaves the folder verifying (its ``SHA256SUMS`` rewritten)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ._errors import ModelError
from ._fusion import FUSION_FILE, Fusion
from ._modelfiles import MANIFEST, ModelConfig, read_config, verify_all, verify_manifest, write_manifest

CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ModelFolder:
    """A model folder on disk: read and validate its config and fused-mode parameters, write them (and any other
    file) with the manifest kept in step, and check its checksums."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # ------------------------------------------------------------------ reading
    def config(self) -> ModelConfig:
        """``config.json``, validated (:class:`ModelError` naming the field)."""
        return read_config(self.path)

    @property
    def has_fusion(self) -> bool:
        """Whether the folder has the fused (accurate) mode."""
        return (self.path / FUSION_FILE).is_file()

    def fusion(self) -> Fusion:
        """``fusion.json``, validated."""
        return Fusion.read(self.path)

    # ------------------------------------------------------------------ writing
    def write_config(self, config: ModelConfig) -> None:
        """Write ``config.json`` from the one schema (:meth:`ModelConfig.to_dict`) and refresh the manifest."""
        self._write(CONFIG_FILE, json.dumps(config.to_dict(), indent=1) + "\n")

    def write_fusion(self, fusion: Fusion) -> None:
        """Write ``fusion.json`` (:meth:`Fusion.to_dict`) and refresh the manifest."""
        self._write(FUSION_FILE, json.dumps(fusion.to_dict(), indent=1) + "\n")

    def write_text(self, name: str, text: str) -> None:
        """Write another file of the folder (a model card, metrics) and refresh the manifest."""
        if name in (CONFIG_FILE, FUSION_FILE, MANIFEST):
            raise ValueError(f"{name} is written by write_config / write_fusion / the manifest itself")
        self._write(name, text)

    def _write(self, name: str, text: str) -> None:
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"{name!r} is not a file name of the folder")
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / name).write_text(text, encoding="utf-8")
        self.write_manifest()

    def write_manifest(self) -> None:
        """Rewrite ``SHA256SUMS`` from the files the folder holds (after files were copied or written directly, e.g.
        weights and graphs)."""
        if not self.path.is_dir():
            raise ModelError(f"model folder {self.path} not found")
        write_manifest(self.path)

    # ------------------------------------------------------------------ checking
    def verify(self, reads: tuple[str, ...] | None = None) -> str:
        """"ok" when the manifest lists exactly the folder's files and every file in ``reads`` (default: all of
        them) matches its digest; with ``reads`` a mismatch raises :class:`ModelError`, without it the answer is
        "mismatch: NAMES"."""
        return verify_all(self.path) if reads is None else verify_manifest(self.path, reads)
