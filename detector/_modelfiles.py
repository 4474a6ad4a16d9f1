"""Finding, verifying and loading a model folder (config.json, tokenizer.json, model.safetensors)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import ModelError

MANIFEST = "SHA256SUMS"
REQUIRED = ("config.json", "tokenizer.json", "model.safetensors")
ENV_VAR = "MTDETECT_MODEL"


def models_root() -> Path:
    """The shipped models: installed as package data ``detector/models`` or ``models/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for cand in (here / "models", here.parent / "models"):
        if cand.is_dir():
            return cand
    raise ModelError("no models folder found next to the detector package; pass a path or set MTDETECT_MODEL")


def default_model_path() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    root = models_root()
    default = root / "DEFAULT"
    if default.is_file():
        return root / default.read_text(encoding="utf-8").strip()
    found = sorted(p.parent for p in root.glob("*/config.json"))
    if not found:
        raise ModelError(f"no model in {root}")
    return found[-1]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    lines = [f"{sha256_file(p)}  {p.name}" for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST]
    (folder / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")


def verify_manifest(folder: Path) -> str:
    """Check every file listed in SHA256SUMS; return 'ok' or raise ModelError."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise ModelError(f"{folder} has no {MANIFEST}")
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, name = line.split(None, 1)
        p = folder / name.strip()
        if not p.is_file():
            raise ModelError(f"{p} listed in {MANIFEST} is missing")
        if sha256_file(p) != digest:
            raise ModelError(f"checksum mismatch for {p}: the model files are damaged or were changed")
    return "ok"


SPAN_SCORES = ("fluency", "error")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    version: str
    base_model: str
    max_length: int
    context_tokens: int
    threshold: float
    span_threshold: float
    accuracy_span_threshold: float
    span_gate: float  # spans are reported only inside passages scored at least this (0: anywhere)
    span_score: str  # token value spans are cut from: "fluency" = P(fluency), "error" = 1 - P(ok)
    calibration: tuple[float, float, float]  # p = sigmoid(a * garbled_logit + c * any_major_logit + b)
    bert: dict[str, Any]
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        try:
            cal = d.get("calibration", {"a": 1.0, "b": 0.0})
            return cls(
                name=str(d["name"]),
                version=str(d["version"]),
                base_model=str(d.get("base_model", "")),
                max_length=int(d["max_length"]),
                context_tokens=int(d["context_tokens"]),
                threshold=float(d["threshold"]),
                span_threshold=float(d["span_threshold"]),
                accuracy_span_threshold=float(d.get("accuracy_span_threshold", 1.01)),
                span_gate=_unit("span_gate", d.get("span_gate", 0.0)),
                span_score=_choice("span_score", d.get("span_score", "fluency"), SPAN_SCORES),
                calibration=(float(cal["a"]), float(cal["b"]), float(cal.get("c", 0.0))),
                bert=dict(d["bert"]),
                raw=d,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"config.json is missing or has a bad field: {e}") from e


def _choice(name: str, v: Any, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {v!r}")
    return str(v)


def _unit(name: str, v: Any) -> float:
    x = float(v)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {v!r}")
    return x


def read_config(folder: Path) -> ModelConfig:
    for name in REQUIRED:
        if not (folder / name).is_file():
            raise ModelError(f"model folder {folder} lacks {name}")
    try:
        d = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelError(f"{folder / 'config.json'} is not valid JSON: {e}") from e
    return ModelConfig.from_dict(d)
