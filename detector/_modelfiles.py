"""Finding, verifying and loading a model folder (config.json, tokenizer.json, model.safetensors)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ._errors import ModelError, SettingsError
from ._types import PASSAGE_OUTPUTS, SENSE_OUTPUT, TOKEN_LABELS, Settings

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


_MANIFEST_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


def read_manifest(folder: Path) -> dict[str, str]:
    """The folder's SHA256SUMS as {file name: digest}: well formed, naming only plain files of the folder, each
    once, and listing exactly the folder's files (besides itself): a file missing from the folder or present but
    unlisted is an error. Raises :class:`ModelError`."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise ModelError(f"{folder} has no {MANIFEST}")
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError) as e:
        raise ModelError(f"cannot read {manifest}: {e}") from None
    entries: dict[str, str] = {}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        m = _MANIFEST_LINE.fullmatch(line.rstrip("\r"))
        if not m:
            raise ModelError(f"{manifest}:{n} is not a 'SHA256  NAME' line")
        digest, name = m.group(1), m.group(2)
        if name in (".", "..") or "/" in name or "\\" in name or name != name.strip():
            raise ModelError(f"{manifest}:{n} names {name!r}, not a file of the model folder")
        if name in entries:
            raise ModelError(f"{manifest}:{n} lists {name} twice")
        entries[name] = digest
    if not entries:
        raise ModelError(f"{manifest} is empty: nothing is verified")
    for name in entries:
        if not (folder / name).is_file():
            raise ModelError(f"{folder / name} listed in {MANIFEST} is missing")
    extra = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and p.name not in entries)
    if extra:
        raise ModelError(f"{folder / extra[0]} is not listed in {MANIFEST}: the folder holds files it should not "
                         f"({len(extra)} unlisted)")
    return entries


def verify_manifest(folder: Path, reads: tuple[str, ...] = REQUIRED) -> str:
    """Check the folder's SHA256SUMS (:func:`read_manifest`: well formed, exactly the folder's files) and the digest
    of every file the loader reads (``reads``: config.json, tokenizer.json and the weights of the backend in use),
    which must be listed. Returns "ok" or raises :class:`ModelError`. :func:`verify_all` checks every digest."""
    entries = read_manifest(folder)
    for name in reads:
        if name not in entries:
            raise ModelError(f"{folder / MANIFEST} has no entry for {name}, which the loader reads")
    for name in reads:
        if sha256_file(folder / name) != entries[name]:
            raise ModelError(f"checksum mismatch for {folder / name}: the model files are damaged or were changed")
    return "ok"


def verify_all(folder: Path) -> str:
    """Every listed file's digest: "ok" when all match, else "mismatch: NAME, ..." (never raises for a mismatch;
    :class:`ModelError` for a malformed manifest or folder, as :func:`read_manifest`)."""
    entries = read_manifest(folder)
    bad = [name for name, digest in sorted(entries.items()) if sha256_file(folder / name) != digest]
    return "ok" if not bad else "mismatch: " + ", ".join(bad)


def point_settings(owner: str, default: Settings, points: Sequence[OperatingPoint], name: str) -> Settings:
    """The settings of operating point ``name`` among ``default`` and ``points`` (a model's or a fused mode's);
    raises :class:`ModelError` naming ``owner`` and the points it has."""
    if name == DEFAULT_POINT:
        return default
    for p in points:
        if p.name == name:
            return p.settings
    raise ModelError(f"{owner} has no operating point {name!r} "
                     f"(it has: {', '.join((DEFAULT_POINT, *(p.name for p in points)))})")


@dataclass(frozen=True)
class ModelConfig:
    """The model folder's ``config.json``: the one schema, read by :meth:`from_dict`, written by :meth:`to_dict`."""

    name: str
    version: str
    base_model: str
    max_length: int  # tokens per window, [CLS] and [SEP] included
    context_tokens: int  # tokens of neighbouring text on each side of a passage
    # p = sigmoid(a * garbled_logit + c * any_major_logit + d * sense_logit + e * word_rarity + b), as
    # (a, b, c, d, e); word_rarity (detector._rarity) needs the word table
    calibration: tuple[float, ...]
    settings: Settings  # the shipped decision settings (threshold, span threshold, span gate, span score)
    bert: dict[str, Any]  # the encoder's transformers config
    sense_head: bool = False  # a third passage output, "sense" (passage_outputs lists it)
    # encoder layers (1-based) whose states, mean-pooled over the passage, the sense head also reads
    sense_layers: tuple[int, ...] = ()
    # file of the folder holding the word table (gzipped JSON, detector._rarity) the rarity term reads
    word_table: str | None = None
    # named alternatives to ``settings`` (e.g. "quiet"), each with the rule finalize chose it by: same probabilities,
    # other decisions (:meth:`operating_point`)
    operating_points: tuple[OperatingPoint, ...] = ()
    # tokens of a window that consecutive short passages share (detector._windows), or 0: one window per passage
    # (the layout of every model up to 1.8.0, trained that way; a shared layout needs a model trained on it)
    shared_window: int = 0

    def __post_init__(self) -> None:
        cal = tuple(float(x) for x in self.calibration)
        if not 3 <= len(cal) <= 5:
            raise ModelError("calibration must be (a, b, c), (a, b, c, d) or (a, b, c, d, e)")
        cal = cal + (0.0,) * (5 - len(cal))  # no sense head: d = 0; no word table: e = 0
        if cal[4] and not self.word_table:
            raise ModelError("calibration e weighs word rarity, which needs a word_table")
        object.__setattr__(self, "calibration", cal)

    @property
    def passage_outputs(self) -> tuple[str, ...]:
        return PASSAGE_OUTPUTS + ((SENSE_OUTPUT,) if self.sense_head else ())

    @property
    def operating_point_names(self) -> tuple[str, ...]:
        """``default`` (the config's settings) and the names of the folder's other operating points."""
        return (DEFAULT_POINT, *(p.name for p in self.operating_points))

    def operating_point(self, name: str) -> Settings:
        """The decision settings of the operating point ``name`` (``default``: :attr:`settings`); raises
        :class:`ModelError` naming the points this model has."""
        return point_settings(f"the model {self.name} {self.version}", self.settings, self.operating_points, name)

    @classmethod
    def from_dict(cls, d: Any) -> ModelConfig:
        """Validate a parsed config.json; raises :class:`ModelError` naming the field."""
        if not isinstance(d, dict):
            raise ModelError(f"config.json must hold a JSON object, not {type(d).__name__}")
        unknown = sorted(set(d) - set(_KEYS) - set(_OPTIONAL))
        if unknown:
            raise ModelError(f"config.json has an unknown field {unknown[0]!r}")
        missing = [k for k in _KEYS if k not in d]
        if missing:
            raise ModelError(f"config.json lacks the field {missing[0]!r}")
        if d["labels"] != list(TOKEN_LABELS):
            raise ModelError(f"config.json field 'labels' must be {list(TOKEN_LABELS)}, not {d['labels']!r}")
        outputs = (list(PASSAGE_OUTPUTS), [*PASSAGE_OUTPUTS, SENSE_OUTPUT])
        if d["passage_outputs"] not in outputs:
            raise ModelError(f"config.json field 'passage_outputs' must be {outputs[0]} or {outputs[1]}, "
                             f"not {d['passage_outputs']!r}")
        sense = d["passage_outputs"] == outputs[1]
        cal = d["calibration"]
        if not isinstance(cal, dict) or set(cal) - {"a", "b", "c", "d", "e"} or not {"a", "b"} <= set(cal):
            raise ModelError("config.json field 'calibration' must be an object with numbers a, b and optionally "
                             "c, d, e")
        if "d" in cal and not sense:
            raise ModelError("config.json field 'calibration.d' weighs the sense output, which passage_outputs lacks")
        table = d.get("word_table")
        if table is not None and (not isinstance(table, str) or not table or "/" in table or "\\" in table
                                  or table.startswith(".")):
            raise ModelError(f"config.json field 'word_table' must name a file of the model folder, not {table!r}")
        if "e" in cal and table is None:
            raise ModelError("config.json field 'calibration.e' weighs word rarity, which needs 'word_table'")
        try:
            settings = Settings(threshold=d["threshold"], span_threshold=d["span_threshold"],
                                span_gate=d["span_gate"], span_score=d["span_score"])
        except SettingsError as e:
            raise ModelError(f"config.json: {e}") from None
        bert = d["bert"]
        if not isinstance(bert, dict):
            raise ModelError("config.json field 'bert' must be an object (the encoder's config)")
        layers = d.get("sense_layers", [])
        n_layers = bert.get("num_hidden_layers", bert.get("n_layers"))
        if (not isinstance(layers, list) or not all(isinstance(k, int) and not isinstance(k, bool) for k in layers)
                or layers != sorted(set(layers)) or (layers and not isinstance(n_layers, int))
                or any(not 1 <= k <= n_layers for k in layers)):
            raise ModelError(f"config.json field 'sense_layers' must be increasing encoder layer numbers from 1 to "
                             f"the encoder's layer count, not {layers!r}")
        if layers and not sense:
            raise ModelError("config.json field 'sense_layers' feeds the sense output, which passage_outputs lacks")
        points = parse_points(d.get("operating_points", {}))
        cfg = cls(
            name=_str(d, "name"), version=_str(d, "version"), base_model=_str(d, "base_model"),
            max_length=_int(d, "max_length", 16, 4096), context_tokens=_int(d, "context_tokens", 0, 1024),
            calibration=(_num(cal, "a", "calibration.a"), _num(cal, "b", "calibration.b"),
                         _num(cal, "c", "calibration.c") if "c" in cal else 0.0,
                         _num(cal, "d", "calibration.d") if "d" in cal else 0.0,
                         _num(cal, "e", "calibration.e") if "e" in cal else 0.0),
            settings=settings, bert=dict(bert), sense_head=sense, sense_layers=tuple(layers), word_table=table,
            operating_points=points, shared_window=_int(d, "shared_window", 0, 4096) if "shared_window" in d else 0,
        )
        if cfg.shared_window and cfg.shared_window < cfg.max_length:
            raise ModelError(f"config.json field 'shared_window' ({cfg.shared_window}) must be 0 or at least "
                             f"max_length ({cfg.max_length})")
        positions = bert.get("max_position_embeddings")
        if isinstance(positions, int) and cfg.shared_window > positions:
            raise ModelError(f"config.json field 'shared_window' ({cfg.shared_window}) exceeds the encoder's "
                             f"max_position_embeddings ({positions})")
        if isinstance(positions, int) and cfg.max_length > positions:
            raise ModelError(f"config.json field 'max_length' ({cfg.max_length}) exceeds the encoder's "
                             f"max_position_embeddings ({positions})")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The config.json content (every key is read back by :meth:`from_dict`)."""
        a, b, c, d, e = self.calibration
        return {
            "name": self.name, "version": self.version, "base_model": self.base_model,
            "labels": list(TOKEN_LABELS), "passage_outputs": list(self.passage_outputs),
            "max_length": self.max_length, "context_tokens": self.context_tokens,
            **self.settings.to_dict(),
            "calibration": {"a": a, "b": b, "c": c, **({"d": d} if self.sense_head else {}),
                            **({"e": e} if self.word_table else {})},
            "bert": self.bert,
            **({"sense_layers": list(self.sense_layers)} if self.sense_layers else {}),
            **({"word_table": self.word_table} if self.word_table else {}),
            **({"operating_points": points_json(self.operating_points)} if self.operating_points else {}),
            **({"shared_window": self.shared_window} if self.shared_window else {}),
        }

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied, validated like a loaded config."""
        return ModelConfig.from_dict({**self.to_dict(), **_flat(changes)})


_KEYS = ("name", "version", "base_model", "labels", "passage_outputs", "max_length", "context_tokens", "threshold",
         "span_threshold", "span_gate", "span_score", "calibration", "bert")
_OPTIONAL = ("sense_layers", "word_table", "operating_points", "shared_window")
DEFAULT_POINT = "default"
_POINT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class OperatingPoint:
    """A named set of decision settings other than the config's own, and the rule it was chosen by."""

    name: str
    settings: Settings
    rule: str = ""


def points_json(points: tuple[OperatingPoint, ...]) -> dict[str, Any]:
    return {p.name: {**p.settings.to_dict(), "rule": p.rule} for p in points}


def parse_points(d: Any, file: str = "config.json") -> tuple[OperatingPoint, ...]:
    """A file's ``operating_points``: {name: {threshold, span_threshold, span_gate, span_score, rule}}."""
    if not isinstance(d, dict):
        raise ModelError(f"{file} field 'operating_points' must be an object of named settings")
    out = []
    for name, v in d.items():
        if not _POINT_NAME.fullmatch(name) or name == DEFAULT_POINT:
            raise ModelError(f"{file} operating point name {name!r} must be lower-case letters, digits, - or _ "
                             f"(at most 32, starting with a letter) and not {DEFAULT_POINT!r}")
        keys = tuple(f.name for f in fields(Settings))
        if not isinstance(v, dict) or set(v) - {*keys, "rule"} or not set(keys) <= set(v):
            raise ModelError(f"{file} operating point {name!r} must be an object with {', '.join(keys)} "
                             "and optionally rule")
        rule = v.get("rule", "")
        if not isinstance(rule, str):
            raise ModelError(f"{file} operating point {name!r}: rule must be a string")
        try:
            settings = Settings(**{k: v[k] for k in keys})
        except SettingsError as e:
            raise ModelError(f"{file} operating point {name!r}: {e}") from None
        out.append(OperatingPoint(name, settings, rule))
    return tuple(out)


def _flat(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    if "settings" in out:
        out.update(out.pop("settings").to_dict())
    if "sense_head" in out:
        out["passage_outputs"] = [*PASSAGE_OUTPUTS, SENSE_OUTPUT] if out.pop("sense_head") else list(PASSAGE_OUTPUTS)
    if "sense_layers" in out:
        out["sense_layers"] = list(out["sense_layers"])
    if "operating_points" in out and not isinstance(out["operating_points"], dict):
        out["operating_points"] = points_json(out["operating_points"])
    if "calibration" in out and isinstance(out["calibration"], tuple | list):
        a, b, c, *rest = out["calibration"]
        d, e = (list(rest) + [0.0, 0.0])[:2]
        out["calibration"] = {"a": a, "b": b, "c": c, **({"d": d} if d else {}), **({"e": e} if e else {})}
    return out


def _str(d: dict[str, Any], key: str) -> str:
    v = d[key]
    if not isinstance(v, str):
        raise ModelError(f"config.json field {key!r} must be a string, not {v!r}")
    return v


def _int(d: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ModelError(f"config.json field {key!r} must be an integer from {lo} to {hi}, not {v!r}")
    return v


def _num(d: dict[str, Any], key: str, name: str) -> float:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ModelError(f"config.json field {name!r} must be a finite number, not {v!r}")
    return float(v)


def read_config(folder: Path) -> ModelConfig:
    for name in REQUIRED:
        if not (folder / name).is_file():
            raise ModelError(f"model folder {folder} lacks {name}")
    try:
        d = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ModelError(f"{folder / 'config.json'} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ModelError(f"{folder / 'config.json'} is not valid JSON: {e}") from None
    except OSError as e:
        raise ModelError(f"cannot read {folder / 'config.json'}: {e.strerror}") from None
    return ModelConfig.from_dict(d)
