"""Batch collation (numpy, no torch): shared by every backend and by training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class WindowLike(Protocol):
    """A model input: token ids, shape ids and the [start, end) token positions of the target passage."""

    @property
    def ids(self) -> list[int]: ...

    @property
    def shapes(self) -> list[int]: ...

    @property
    def target(self) -> tuple[int, int]: ...


class SharedWindowLike(Protocol):
    """A model input with several targets (:class:`detector.network.Window`)."""

    @property
    def ids(self) -> list[int]: ...

    @property
    def shapes(self) -> list[int]: ...

    @property
    def targets(self) -> Sequence[Any]: ...  # each with ``positions``: [start, end) token positions


def collate(windows: Sequence[WindowLike], pad_id: int = 0) -> dict[str, np.ndarray]:
    """Batch collation, shared by training and inference: right-padded ``ids``, ``shapes``, attention ``mask`` and
    ``target`` (1 on the target passage's tokens), each an int64 array (B, L) with L the longest window. Padding does
    not change the results of a window."""
    batch = _pad(windows, pad_id)
    target = np.zeros_like(batch["mask"])
    for i, w in enumerate(windows):
        target[i, w.target[0] : w.target[1]] = 1
    return {**batch, "target": target}


def collate_shared(windows: Sequence[SharedWindowLike], pad_id: int = 0) -> dict[str, np.ndarray]:
    """:func:`collate` for windows with several targets (the runtime): ``target`` is (B, P, L), one mask per target
    with P the most targets of any window (the rest all zeros, their outputs ignored)."""
    batch = _pad(windows, pad_id)
    B, L = batch["mask"].shape
    target = np.zeros((B, max(len(w.targets) for w in windows), L), dtype=np.int64)
    for i, w in enumerate(windows):
        for j, t in enumerate(w.targets):
            target[i, j, t.positions[0] : t.positions[1]] = 1
    return {**batch, "target": target}


def _pad(windows: Sequence[WindowLike | SharedWindowLike], pad_id: int) -> dict[str, np.ndarray]:
    B = len(windows)
    L = max(len(w.ids) for w in windows)
    ids = np.full((B, L), pad_id, dtype=np.int64)
    shapes = np.zeros((B, L), dtype=np.int64)
    mask = np.zeros((B, L), dtype=np.int64)
    for i, w in enumerate(windows):
        n = len(w.ids)
        ids[i, :n] = w.ids
        shapes[i, :n] = w.shapes
        mask[i, :n] = 1
    return {"ids": ids, "shapes": shapes, "mask": mask}
