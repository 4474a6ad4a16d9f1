"""Features of a passage for the fused passage probability (issue #31): what the encoder says about it and what the
second reader (SmolLM2, :mod:`detector._reader`) says about each of its tokens, summarised; and the small network
that reads them (:class:`FusionHead`, weights in the model folder's ``fusion.json``).

The same functions compute the features at run time and in training (``training.fusion``), so a head is always
fitted on exactly what it will read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ModelError, SettingsError
from ._modelfiles import DEFAULT_POINT, OperatingPoint, parse_points, point_settings, points_json
from ._types import RawScores, Settings

#: per-passage encoder features, in column order
ENCODER_FEATURES = ("garbled", "any_major", "sense", "rarity", "error_max", "error_mean", "error_top", "fluency_max",
                    "log_tokens")
#: per-passage features of the second reader's tokens, in column order ("gap": surprisal minus the surprisal of the
#: LM's best guess; "lrank": log(1 + rank of the observed token); "top": mean of the highest fifth)
LM_FEATURES = ("log_lm_tokens", "sur_mean", "sur_max", "sur_top", "sur_std", "ent_mean", "exc_mean", "exc_max",
               "exc_top", "gap_mean", "gap_max", "gap_top", "lrank_mean", "lrank_max", "lrank_top", "rank0",
               "rank10", "rank100", "rank1000", "first_sur", "first_lrank", "last_sur", "burst")


def _top(x: np.ndarray) -> float:
    k = max(1, x.shape[0] // 5)
    return float(np.sort(x)[-k:].mean())


def encoder_features(raw: RawScores) -> np.ndarray:
    """(P, len(ENCODER_FEATURES)): each passage's logits (garbled, any_major, sense: 0 without the sense head; -30
    for a passage without tokens), word rarity (0 without a word table) and its tokens' error probabilities."""
    n = raw.passage_offsets.shape[0]
    out = np.zeros((n, len(ENCODER_FEATURES)), dtype=np.float64)
    lg = raw.passage_logits
    finite = np.isfinite(lg[:, 0]) if n else np.zeros(0, dtype=bool)
    out[:, 0] = np.where(finite, lg[:, 0], -30.0) if n else 0.0
    out[:, 1] = np.where(finite, lg[:, 1], -30.0) if n else 0.0
    if lg.shape[1] > 2 and n:
        out[:, 2] = np.where(finite, lg[:, 2], -30.0)
    if raw.passage_rarity is not None:
        out[:, 3] = raw.passage_rarity
    err = raw.token_probs[:, 1] + raw.token_probs[:, 2]
    flu = raw.token_probs[:, 1]
    bounds = np.searchsorted(raw.token_passage, np.arange(n + 1), side="left")
    for i in range(n):
        a, b = int(bounds[i]), int(bounds[i + 1])
        if b > a:
            e = err[a:b]
            out[i, 4:9] = (e.max(), e.mean(), _top(e), flu[a:b].max(), math.log1p(b - a))
    return out


def lm_features(stats: np.ndarray) -> np.ndarray:
    """(len(LM_FEATURES),) from a passage's (M, 4) second-reader values (surprisal, entropy, top_logp, rank); all
    zero for a passage without LM tokens."""
    out = np.zeros(len(LM_FEATURES), dtype=np.float64)
    m = stats.shape[0]
    if m == 0:
        return out
    sur = stats[:, 0].astype(np.float64)
    ent = stats[:, 1].astype(np.float64)
    gap = sur + stats[:, 2].astype(np.float64)
    rank = stats[:, 3].astype(np.float64)
    lrank = np.log1p(rank)
    exc = sur - ent
    burst = float(np.convolve(gap, np.ones(3) / 3, mode="valid").max()) if m >= 3 else float(gap.mean())
    out[:] = (math.log1p(m), sur.mean(), sur.max(), _top(sur), sur.std(), ent.mean(), exc.mean(), exc.max(), _top(exc),
              gap.mean(), gap.max(), _top(gap), lrank.mean(), lrank.max(), _top(lrank), float(np.mean(rank == 0)),
              float(np.mean(rank >= 10)), float(np.mean(rank >= 100)), float(np.mean(rank >= 1000)), sur[0], lrank[0],
              sur[-1], burst)
    return out


#: name of the fused mode's file in a model folder
FUSION_FILE = "fusion.json"
FUSION_FORMAT = "mtdetect-fusion-1"


@dataclass(frozen=True)
class Fusion:
    """The fused (accurate) mode: ``fusion.json``.

    The second reader's features of a passage (:data:`LM_FEATURES`, standardised by ``mean`` and ``scale``) go
    through a small network (``hidden``: one tanh layer; ``w1`` (H, F), ``b1`` (H,), ``w2`` (H,), ``b2``) to an
    "LM logit"; the passage's fused logit is ``alpha * (encoder logit + lm_weight * LM logit) + beta``, the encoder
    logit being the model's calibrated one (config.json ``calibration``). The reader reads a passage only when the
    encoder's own probability is at least ``cutoff`` (the cascade); an unread passage takes ``unread_lm_logit`` in
    place of its LM logit. ``settings``: the mode's decision settings (flag threshold, span settings);
    ``operating_points``: other named settings, as in config.json."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    w1: tuple[tuple[float, ...], ...]
    b1: tuple[float, ...]
    w2: tuple[float, ...]
    b2: float
    lm_weight: float
    alpha: float
    beta: float
    cutoff: float
    unread_lm_logit: float
    settings: Settings
    operating_points: tuple[OperatingPoint, ...] = ()
    reader: str = "smollm2-135m-onnx"
    reader_source_sha256: str = ""
    measured: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        f = len(LM_FEATURES)
        h = len(self.b1)
        if len(self.mean) != f or len(self.scale) != f:
            raise ModelError(f"{FUSION_FILE}: mean and scale must have {f} values ({', '.join(LM_FEATURES)})")
        if len(self.w1) != h or any(len(r) != f for r in self.w1) or len(self.w2) != h:
            raise ModelError(f"{FUSION_FILE}: w1 must be {h} rows of {f} numbers, w2 {h} numbers")
        numbers = (*self.mean, *self.scale, *(x for r in self.w1 for x in r), *self.b1, *self.w2, self.b2,
                   self.lm_weight, self.alpha, self.beta, self.cutoff, self.unread_lm_logit)
        if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in numbers):
            raise ModelError(f"{FUSION_FILE}: every number must be finite")
        if any(s <= 0 for s in self.scale):
            raise ModelError(f"{FUSION_FILE}: every scale must be positive")
        if not 0.0 <= self.cutoff <= 1.0:
            raise ModelError(f"{FUSION_FILE}: cutoff must be a probability between 0 and 1")

    def lm_logits(self, feats: np.ndarray) -> np.ndarray:
        """(P,) the LM logit of each row of (P, F) features."""
        z = (feats - np.asarray(self.mean)) / np.asarray(self.scale)
        hidden = np.tanh(z @ np.asarray(self.w1).T + np.asarray(self.b1))
        return np.asarray(hidden @ np.asarray(self.w2) + self.b2, dtype=np.float64)

    def fused_logits(self, encoder_logits: np.ndarray, lm_feats: np.ndarray | None, read: np.ndarray) -> np.ndarray:
        """(P,) fused logits from the encoder's calibrated logits, the LM features (rows of unread passages are
        ignored) and which passages the reader read."""
        lm = np.full(encoder_logits.shape[0], self.unread_lm_logit, dtype=np.float64)
        if lm_feats is not None and read.any():
            lm[read] = self.lm_logits(lm_feats[read])
        return self.alpha * (encoder_logits + self.lm_weight * lm) + self.beta

    @property
    def operating_point_names(self) -> tuple[str, ...]:
        """``default`` and the names of the fused mode's other operating points."""
        return (DEFAULT_POINT, *(p.name for p in self.operating_points))

    def operating_point(self, name: str) -> Settings:
        """The fused mode's settings of operating point ``name``; a :class:`ModelError` naming the points it has."""
        return point_settings("the accurate mode", self.settings, self.operating_points, name)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FUSION_FORMAT, "reader": self.reader, "reader_source_sha256": self.reader_source_sha256,
                "lm_features": list(LM_FEATURES), "mean": list(self.mean), "scale": list(self.scale),
                "w1": [list(r) for r in self.w1], "b1": list(self.b1), "w2": list(self.w2), "b2": self.b2,
                "lm_weight": self.lm_weight, "alpha": self.alpha, "beta": self.beta, "cutoff": self.cutoff,
                "unread_lm_logit": self.unread_lm_logit, "settings": self.settings.to_dict(),
                "operating_points": points_json(self.operating_points), "measured": self.measured}

    @classmethod
    def from_dict(cls, d: Any) -> Fusion:
        if not isinstance(d, dict) or d.get("format") != FUSION_FORMAT:
            raise ModelError(f"{FUSION_FILE} is not a {FUSION_FORMAT!r} object")
        try:
            if list(d["lm_features"]) != list(LM_FEATURES):
                raise ModelError(f"{FUSION_FILE}: lm_features {d['lm_features']} are not {list(LM_FEATURES)}")
            return cls(mean=tuple(d["mean"]), scale=tuple(d["scale"]), w1=tuple(tuple(r) for r in d["w1"]),
                       b1=tuple(d["b1"]), w2=tuple(d["w2"]), b2=d["b2"], lm_weight=d["lm_weight"], alpha=d["alpha"],
                       beta=d["beta"], cutoff=d["cutoff"], unread_lm_logit=d["unread_lm_logit"],
                       settings=Settings(**d["settings"]),
                       operating_points=parse_points(d.get("operating_points", {}), FUSION_FILE),
                       reader=str(d.get("reader", "smollm2-135m-onnx")),
                       reader_source_sha256=str(d.get("reader_source_sha256", "")),
                       measured=dict(d.get("measured", {})))
        except SettingsError as e:
            raise ModelError(f"{FUSION_FILE}: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{FUSION_FILE} is malformed: {e!r}") from None

    @classmethod
    def read(cls, folder: Path) -> Fusion:
        path = folder / FUSION_FILE
        if not path.is_file():
            raise ModelError(f"the model in {folder} has no accurate mode ({FUSION_FILE} missing)")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelError(f"cannot read {path}: {e}") from None
        return cls.from_dict(d)
