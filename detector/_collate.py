"""Batch collation (numpy, no torch): shared by every backend and by training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class WindowLike(Protocol):
    """A model input: token ids, shape ids and the [start, end) token positions of the target passage."""

    @property
    def ids(self) -> list[int]: ...

    @property
    def shapes(self) -> list[int]: ...

    @property
    def target(self) -> tuple[int, int]: ...


def collate(windows: Sequence[WindowLike], pad_id: int = 0) -> dict[str, np.ndarray]:
    """Batch collation, shared by inference (every backend) and training: right-padded ``ids``, ``shapes``,
    attention ``mask`` and ``target`` (1 on the target passage's tokens), each an int64 array (B, L) with L the
    longest window. Padding does not change the results of a window."""
    B = len(windows)
    L = max(len(w.ids) for w in windows)
    ids = np.full((B, L), pad_id, dtype=np.int64)
    shapes = np.zeros((B, L), dtype=np.int64)
    mask = np.zeros((B, L), dtype=np.int64)
    target = np.zeros((B, L), dtype=np.int64)
    for i, w in enumerate(windows):
        n = len(w.ids)
        ids[i, :n] = w.ids
        shapes[i, :n] = w.shapes
        mask[i, :n] = 1
        target[i, w.target[0] : w.target[1]] = 1
    return {"ids": ids, "shapes": shapes, "mask": mask, "target": target}
