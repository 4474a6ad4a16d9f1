"""Passage splitting, token shapes and context windows."""

from __future__ import annotations

import pytest

from detector.network import Tokenized, build_windows, split_passages, token_shape


@pytest.mark.parametrize(
    "text,expected",
    [
        ("One. Two.", ["One.", "Two."]),
        ("Xi Jinping. accepted.", ["Xi Jinping.", "accepted."]),
        ("He said “Stop.” Then left.", ["He said “Stop.”", "Then left."]),
        ("Line one\nLine two", ["Line one", "Line two"]),
        ("  padded  ", ["padded"]),
        ("", []),
        ("No end", ["No end"]),
        ("Wait... what? Yes!", ["Wait... what?", "Yes!"]),
        ("Mr. and Mrs. R. C. Thomas left. He stayed.", ["Mr. and Mrs. R. C. Thomas left.", "He stayed."]),
        ("The U.S. and China met at 4 p.m. today. accepted.", ["The U.S. and China met at 4 p.m. today.", "accepted."]),
        ("Apples, pears, etc. are sold here.", ["Apples, pears, etc. are sold here."]),
        ("See No. 5 below. No. That is wrong.", ["See No. 5 below.", "No.", "That is wrong."]),
    ],
    ids=["two", "seed-fragment", "quote", "newline", "padded", "empty", "no-end", "ellipsis", "initials",
         "dotted-abbrev", "etc", "no-number"],
)
def test_split_passages(text: str, expected: list[str]) -> None:
    got = [text[p.start : p.end] for p in split_passages(text)]
    assert got == expected


def _shape(text: str, word: str) -> int:
    i = text.index(word)
    return token_shape(text, i, i + len(word))


def test_shape_sees_case_and_sentence_boundary() -> None:
    t = "people. common sense. Common"
    lower_after_stop = _shape(t, "common")
    title_after_stop = _shape(t, "Common")
    assert lower_after_stop != title_after_stop
    mid = "the common good"
    assert _shape(mid, "common") != lower_after_stop  # same case, but not after a full stop


def test_shape_sees_space_before_punctuation() -> None:
    a = "pressures ”"
    b = "pressures”"
    assert _shape(a, "”") != _shape(b, "”")


def _toks(n_per: list[int]) -> list[Tokenized]:
    out = []
    k = 100
    for n in n_per:
        out.append(Tokenized(list(range(k, k + n)), [1] * n, [(i, i + 1) for i in range(k, k + n)]))
        k += n
    return out


@pytest.mark.parametrize("sizes", [[3, 4, 5], [1], [50], [10, 0, 10], [200, 2]], ids=str)
def test_windows_cover_every_token_once(sizes: list[int]) -> None:
    toks = _toks(sizes)
    wins = build_windows(toks, max_len=32, context=6, cls_id=1, sep_id=2)
    seen: dict[int, list[int]] = {}
    for w in wins:
        assert len(w.ids) <= 32 and w.ids[0] == 1 and w.ids[-1] == 2
        a, b = w.target
        s, e = w.token_slice
        assert w.ids[a:b] == toks[w.passage].ids[s:e]
        seen.setdefault(w.passage, []).extend(range(s, e))
    for i, t in enumerate(toks):
        assert sorted(seen.get(i, [])) == list(range(len(t.ids)))


def test_window_context_comes_from_neighbours() -> None:
    toks = _toks([5, 5, 5])
    w = [w for w in build_windows(toks, max_len=64, context=3, cls_id=1, sep_id=2) if w.passage == 1][0]
    assert w.ids[1:4] == toks[0].ids[-3:]
    assert w.ids[w.target[1] : w.target[1] + 3] == toks[2].ids[:3]


@pytest.mark.parametrize("sizes", [[3, 4, 5], [1], [50], [10, 0, 10], [200, 2], [2] * 40, [15, 15, 15, 1, 1]],
                         ids=str)
@pytest.mark.parametrize("length", [32, 64], ids=["length32", "length64"])
def test_shared_windows_cover_every_token_once(sizes: list[int], length: int) -> None:
    toks = _toks(sizes)
    wins = build_windows(toks, max_len=32, context=6, cls_id=1, sep_id=2, shared=True, length=length)
    seen: dict[int, list[int]] = {}
    for w in wins:
        assert len(w.ids) <= length and w.ids[0] == 1 and w.ids[-1] == 2
        for t in w.targets:
            (a, b), (s, e) = t.positions, t.tokens
            assert w.ids[a:b] == toks[t.passage].ids[s:e]
            seen.setdefault(t.passage, []).extend(range(s, e))
    for i, t in enumerate(toks):
        assert sorted(seen.get(i, [])) == list(range(len(t.ids)))


def test_shared_windows_keep_the_context_of_a_passage() -> None:
    """Each target has at least the context its per-passage window gives, on both sides."""
    toks = _toks([4] * 12)
    per = {w.passage: w for w in build_windows(toks, max_len=32, context=6, cls_id=1, sep_id=2)}
    for w in build_windows(toks, max_len=32, context=6, cls_id=1, sep_id=2, shared=True, length=48):
        assert len(w.targets) > 1
        for t in w.targets:
            p = per[t.passage]
            left, right = p.target[0] - 1, len(p.ids) - 1 - p.target[1]
            assert t.positions[0] - 1 >= left and len(w.ids) - 1 - t.positions[1] >= right


def test_shared_windows_depend_only_on_the_text() -> None:
    toks = _toks([5, 9, 3, 7, 2, 30, 4])
    a = build_windows(toks, max_len=32, context=6, cls_id=1, sep_id=2, shared=True, length=48)
    b = build_windows(toks, max_len=32, context=6, cls_id=1, sep_id=2, shared=True, length=48)
    assert a == b
    # a shared window holds 48 - 2 - 2 * 6 = 34 target tokens: 5+9+3+7+2 = 26, then 30+4 = 34
    assert [[t.passage for t in w.targets] for w in a] == [[0, 1, 2, 3, 4], [5, 6]]


def test_collate_shared_masks_each_target() -> None:
    from detector.network import collate, collate_shared

    toks = _toks([3, 2, 4])
    one = build_windows(toks, max_len=32, context=2, cls_id=1, sep_id=2)
    shared = build_windows(toks, max_len=32, context=2, cls_id=1, sep_id=2, shared=True)
    x = collate_shared(shared + one)
    assert x["target"].shape == (4, 3, max(len(w.ids) for w in shared + one))
    assert x["target"][0].sum(-1).tolist() == [3, 2, 4]
    assert x["target"][1].sum(-1).tolist() == [3, 0, 0]  # a one-target window: the other slots are empty
    assert (collate(one)["target"] == collate_shared(one)["target"][:, 0]).all()
