"""Context windows: how a text's passages become model inputs, and how window outputs go back to its passages and
tokens. The one owner of both halves (the runtime and training build windows here).

A window is ``[CLS] left context, targets, right context [SEP]``; each target is a run of one passage's tokens whose
outputs the window gives (token class probabilities, and the passage head pooled over the target's tokens).

- **Per passage** (``shared=False``; training examples, and the layout the network was trained on): one window per
  passage, with up to ``context`` tokens of neighbouring text on each side; a passage longer than the window is cut
  into chunks.
- **Shared** (``shared=True``; the runtime): consecutive short passages of a text share one window of up to
  ``length`` tokens, still with ``context`` tokens of neighbouring text before the first and after the last, so every
  passage keeps at least the context it has per passage (the passages beside it in the window add more). A document
  then costs about its own tokens instead of each passage plus twice the context. Passages too long to share a window
  get per-passage windows.

Either way a window depends only on the text, never on batching, and each token is a target in exactly one window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._modelfiles import ModelConfig
from ._text import Piece, Tokenized, split_passages, tokenize_passages


@dataclass(frozen=True)
class Target:
    """A run of one passage's tokens inside a window."""

    passage: int  # index of the passage in its text
    tokens: tuple[int, int]  # [start, end) of the passage's tokens
    positions: tuple[int, int]  # [start, end) of the same tokens in the window's ids


@dataclass(frozen=True)
class Window:
    """Model input: token ids and shape ids with the targets whose outputs it gives."""

    ids: list[int]
    shapes: list[int]
    targets: tuple[Target, ...]

    @property
    def target(self) -> tuple[int, int]:
        """Token positions of the first target (the only one in a per-passage window)."""
        return self.targets[0].positions

    @property
    def passage(self) -> int:
        """The passage of the first target."""
        return self.targets[0].passage

    @property
    def token_slice(self) -> tuple[int, int]:
        """Which tokens of that passage the first target covers."""
        return self.targets[0].tokens


def _left(toks: Sequence[Tokenized], pi: int, s: int, n: int) -> tuple[list[int], list[int]]:
    """Up to ``n`` tokens before token ``s`` of passage ``pi``: the passage's own earlier tokens, then earlier
    passages (slices bounded by ``n``: linear time)."""
    ids: list[int] = []
    shapes: list[int] = []
    t = toks[pi]
    src_ids, src_sh = t.ids[max(0, s - n) : s], t.shapes[max(0, s - n) : s]
    q = pi - 1
    while len(ids) < n:
        take = n - len(ids)
        if src_ids:
            ids = src_ids[-take:] + ids
            shapes = src_sh[-take:] + shapes
        if len(ids) >= n or q < 0:
            break
        src_ids, src_sh = toks[q].ids, toks[q].shapes
        q -= 1
    return ids, shapes


def _right(toks: Sequence[Tokenized], pi: int, e: int, n: int) -> tuple[list[int], list[int]]:
    """Up to ``n`` tokens from token ``e`` of passage ``pi`` on."""
    ids = list(toks[pi].ids[e : e + n])
    shapes = list(toks[pi].shapes[e : e + n])
    q = pi + 1
    while len(ids) < n and q < len(toks):
        take = n - len(ids)
        ids += toks[q].ids[:take]
        shapes += toks[q].shapes[:take]
        q += 1
    return ids, shapes


def _passage_windows(toks: Sequence[Tokenized], pi: int, max_len: int, context: int, cls_id: int, sep_id: int
                     ) -> list[Window]:
    """The per-passage windows of passage ``pi`` (several chunks when it is long)."""
    budget = max_len - 2
    chunk_len = max(8, budget - 2 * context)
    t = toks[pi]
    n = len(t.ids)
    out = []
    for s in range(0, max(n, 1), chunk_len) if n > chunk_len else [0]:
        e = min(n, s + chunk_len) if n > chunk_len else n
        room = budget - (e - s)
        left_n = min(context, room // 2 + room % 2)
        left_ids, left_sh = _left(toks, pi, s, left_n)
        right_ids, right_sh = _right(toks, pi, e, min(context, room - left_n))
        a = 1 + len(left_ids)
        out.append(Window([cls_id] + left_ids + t.ids[s:e] + right_ids + [sep_id],
                          [0] + left_sh + t.shapes[s:e] + right_sh + [0], (Target(pi, (s, e), (a, a + e - s)),)))
        if n == 0:
            break
    return out


def _shared_window(toks: Sequence[Tokenized], group: Sequence[int], context: int, cls_id: int, sep_id: int
                   ) -> Window:
    """One window whose targets are the whole passages ``group`` (consecutive), with context around them."""
    first, last = group[0], group[-1]
    left_ids, left_sh = _left(toks, first, 0, context)
    right_ids, right_sh = _right(toks, last, len(toks[last].ids), context)
    ids = [cls_id] + left_ids
    shapes = [0] + left_sh
    targets = []
    for pi in group:
        a = len(ids)
        ids += toks[pi].ids
        shapes += toks[pi].shapes
        targets.append(Target(pi, (0, len(toks[pi].ids)), (a, len(ids))))
    return Window(ids + right_ids + [sep_id], shapes + right_sh + [0], tuple(targets))


def build_windows(toks: Sequence[Tokenized], max_len: int, context: int, cls_id: int, sep_id: int, *,
                  shared: bool = False, length: int | None = None) -> list[Window]:
    """The windows of one text's tokenised passages (see the module docstring). ``max_len`` and ``context``: the
    per-passage layout; ``shared``: let consecutive passages share windows of up to ``length`` tokens (default
    ``max_len``); a passage shares only when it fits beside ``context`` tokens on each side."""
    if not shared:
        return [w for pi in range(len(toks)) for w in _passage_windows(toks, pi, max_len, context, cls_id, sep_id)]
    room = (length or max_len) - 2 - 2 * context  # target tokens a shared window holds
    windows: list[Window] = []
    group: list[int] = []
    size = 0
    for pi, t in enumerate(toks):
        n = len(t.ids)
        if n > room:
            if group:
                windows.append(_shared_window(toks, group, context, cls_id, sep_id))
                group, size = [], 0
            windows += _passage_windows(toks, pi, max_len, context, cls_id, sep_id)
            continue
        if group and size + n > room:
            windows.append(_shared_window(toks, group, context, cls_id, sep_id))
            group, size = [], 0
        group.append(pi)
        size += n
    if group:
        windows.append(_shared_window(toks, group, context, cls_id, sep_id))
    return windows


@dataclass
class TextWindows:
    """One text on its way through the network: its passages, their tokens and windows, and the outputs gathered
    so far (each token's class probabilities; each passage's logits, the maximum over its targets)."""

    text: str
    pieces: list[Piece]
    toks: list[Tokenized]
    windows: list[Window]
    n_outputs: int
    base: np.ndarray = field(init=False)  # (P + 1,) index of each passage's first token among the text's tokens
    token_probs: np.ndarray = field(init=False)  # (N, 3)
    passage_logits: np.ndarray = field(init=False)  # (P, K), -inf until a window gives them

    def __post_init__(self) -> None:
        self.base = np.zeros(len(self.pieces) + 1, dtype=np.int64)
        self.base[1:] = np.cumsum([len(x.ids) for x in self.toks])
        self.token_probs = np.zeros((int(self.base[-1]), 3), dtype=np.float64)
        self.passage_logits = np.full((len(self.pieces), self.n_outputs), -np.inf, dtype=np.float64)

    def place(self, window: Window, token_probs: np.ndarray, passage_logits: np.ndarray) -> int:
        """Put one window's outputs back: ``token_probs`` (L, 3) for its positions, ``passage_logits`` (P, K) for its
        targets in order. Returns the number of characters of passage text the window's targets cover."""
        chars = 0
        for j, t in enumerate(window.targets):
            a, e = t.positions
            start = int(self.base[t.passage]) + t.tokens[0]
            self.token_probs[start : start + (e - a)] = token_probs[a:e]
            self.passage_logits[t.passage] = np.maximum(self.passage_logits[t.passage], passage_logits[j])
            if e > a:
                offs = self.toks[t.passage].offsets
                chars += offs[t.tokens[1] - 1][1] - offs[t.tokens[0]][0]
        return chars

    @property
    def token_offsets(self) -> np.ndarray:
        """(N, 2) character offsets of the text's tokens."""
        return np.array([o for x in self.toks for o in x.offsets], dtype=np.int64).reshape(-1, 2)

    @property
    def token_passage(self) -> np.ndarray:
        """(N,) the passage of each token."""
        return np.repeat(np.arange(len(self.pieces), dtype=np.int64), np.diff(self.base))


def text_windows(tokenizer: Any, config: ModelConfig, text: str, *, shared: bool | None = None) -> TextWindows:
    """A text as the runtime scores it: its passages, their tokens and the windows of the config's layout (with
    ``shared`` True, shared windows of ``config.shared_window`` tokens, or ``max_length`` when it has none; False: one
    window per passage)."""
    pieces = split_passages(text)
    toks = tokenize_passages(tokenizer, text, pieces)
    share = bool(config.shared_window) if shared is None else shared
    windows = build_windows(toks, config.max_length, config.context_tokens, tokenizer.token_to_id("[CLS]"),
                            tokenizer.token_to_id("[SEP]"), shared=share, length=config.shared_window or None)
    return TextWindows(text, pieces, toks, windows, len(config.passage_outputs))


def run_windows(texts: Sequence[TextWindows], forward: Callable[[list[Window]], tuple[np.ndarray, np.ndarray]],
                batch_size: int, progress: Callable[[int], None] | None = None) -> None:
    """Score every window of ``texts`` in batches of ``batch_size`` (sorted by length: padding does not change
    results) with ``forward`` (windows -> token probabilities (B, L, 3), passage logits (B, P, K)), putting the
    outputs back into each text; ``progress`` gets the characters scored after each batch."""
    items = [(k, w) for k, tw in enumerate(texts) for w in tw.windows]
    items.sort(key=lambda x: len(x[1].ids))
    for b in range(0, len(items), batch_size):
        chunk = items[b : b + batch_size]
        probs, pas = forward([w for _, w in chunk])
        done = sum(texts[k].place(w, probs[i], pas[i]) for i, (k, w) in enumerate(chunk))
        if progress is not None:
            progress(done)
