"""LM distillation targets (issue #11, item 2): the cache of SmolLM2 surprisal/entropy and how training reads it.

A tiny random causal LM stands in for SmolLM2; nothing here trains.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

pytest.importorskip("yaml")  # training extras

from detector import Detector  # noqa: E402

from .conftest import LM_WORDS as WORDS  # noqa: E402


@pytest.mark.parametrize(("offsets", "expected"), [
    ([(0, 3)], [(1.0, 0.1)]),                      # one LM token covers the encoder token
    ([(0, 2), (2, 3)], [(1.0, 0.1), (1.0, 0.1)]),  # two word pieces inside one LM token: both get its values
    ([(0, 7)], [(2.0, 0.2)]),                      # the LM token holding the last character ("right-aligned")
    ([(3, 4)], [None]),                            # a character no LM token holds (a space)
    ([(5, 5)], [None]),                            # an empty token
    ([(8, 9)], [None]),                            # past the last LM token
], ids=["inside", "pieces", "right-aligned", "gap", "empty", "past-the-end"])
def test_align_gives_each_encoder_token_the_lm_token_of_its_last_character(
        offsets: list[tuple[int, int]], expected: list) -> None:
    from training.lm_targets import align

    lm = [(0, 3, 1.0, 0.1), (4, 7, 2.0, 0.2)]
    assert align(offsets, lm) == expected


def test_token_stats_spans_values_and_batching(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    from training.lm_targets import token_stats

    tok, model = tiny_lm
    texts = ["the river is not calm", "a teacher .", ""]
    together = token_stats(model, tok, texts)
    alone = [token_stats(model, tok, [t])[0] for t in texts]
    assert [[(a, b) for a, b, _, _ in toks] for toks in together] == [
        [(0, 3), (4, 9), (10, 12), (13, 16), (17, 21)], [(0, 1), (2, 9), (10, 11)], []]
    for toks, ref in zip(together, alone):  # padding in a batch does not change a text's values
        assert [(a, b) for a, b, _, _ in toks] == [(a, b) for a, b, _, _ in ref]
        for (_, _, s, e), (_, _, s2, e2) in zip(toks, ref):
            assert s == pytest.approx(s2, abs=2e-3) and e == pytest.approx(e2, abs=2e-3)
            assert s >= 0 and 0 <= e <= math.log(len(WORDS)) + 1e-3


def test_fill_cache_is_resumable_and_skips_a_cut_off_line(tmp_path: Path) -> None:
    from training.lm_targets import fill_cache, read_targets

    recs = [{"id": f"r{i}", "text": "word " * (i + 1)} for i in range(7)]
    calls: list[list[str]] = []

    def score(texts: list[str]) -> list[list[tuple[int, int, float, float]]]:
        calls.append(texts)
        return [[(0, 4, float(len(t)), 1.0)] for t in texts]

    path = tmp_path / "lm" / "targets.jsonl"
    assert fill_cache(recs, path, score, batch_size=2, limit=3) == 3
    with path.open("a") as f:
        f.write('{"id": "r6", "toks": [[0, 4')  # an interrupted write
    assert set(read_targets(path)) == {"r0", "r1", "r2"}
    n_calls = len(calls)
    assert fill_cache(recs, path, score, batch_size=2) == 4  # only the rest (r6's cut-off line does not count)
    assert sum(len(c) for c in calls[n_calls:]) == 4
    cache = read_targets(path)
    assert set(cache) == {f"r{i}" for i in range(7)} and cache["r3"] == [(0, 4, 20.0, 1.0)]
    assert fill_cache(recs, path, score) == 0


def test_examples_carry_lm_targets_on_their_window_tokens(tiny_detector: Detector) -> None:
    from training.examples import ExampleBuilder
    from training.lm_targets import align
    from training.losses import collate_examples

    text = "The river is not calm as a teacher."
    rec = {"id": "m1", "text": text, "label": "clean", "source": "brown", "spans": [], "doc_id": "d", "seg": 0,
           "system": "", "synthetic": False}
    other = {**rec, "id": "m0", "text": "A sentence before it.", "seg": -1}
    lm = [(m.start(), m.end(), float(k + 1), 0.5) for k, m in enumerate(re.finditer(r"\w+", text))]
    cfg = {"max_length": 48, "context_tokens": 8, "p_context": 1.0}
    plain = ExampleBuilder(tiny_detector.tokenizer, cfg)
    with_lm = ExampleBuilder(tiny_detector.tokenizer, cfg)
    with_lm.lm_targets = {"m1": lm}
    a = plain.build([other, rec], 1, random.Random(3))
    b = with_lm.build([other, rec], 1, random.Random(3))
    assert a is not None and b is not None and a.lm is None and b.lm is not None
    assert (a.ids, a.codes, a.target, a.y) == (b.ids, b.codes, b.target, b.y)  # the targets do not change the rest
    assert len(b.lm) == len(b.ids) and math.isnan(b.lm[0][0]) and math.isnan(b.lm[-1][0])  # [CLS], [SEP]
    # the target passage's tokens carry the values of the word that holds their last character
    enc = tiny_detector.tokenizer.encode(text, add_special_tokens=False)
    expected = align([o for o in enc.offsets if o[1] > o[0]], lm)
    got = b.lm[b.target[0] : b.target[1]]
    assert len(got) == len(expected)
    assert [None if math.isnan(g[0]) else g for g in got] == expected
    assert sum(v is not None for v in expected) >= 8  # every word has a value
    # the context record was never scored: its tokens have no target
    ctx = b.lm[1 : b.target[0]]
    assert ctx and all(math.isnan(s) for s, _ in ctx)
    t = collate_examples([a, b])
    assert t["lm"].shape == (2, t["ids"].shape[1], 2) and bool(t["lm"][0].isnan().all())


def test_the_lm_probe_trains_the_encoder_only_where_targets_exist(tmp_path: Path) -> None:
    import torch

    from training.examples import ExampleBuilder
    from training.losses import LmProbe, batch_loss, collate_examples

    from .conftest import build_tiny_model

    det = Detector.load(build_tiny_model(tmp_path / "m"), language_id=False, backend="torch")
    net = det.network
    net.train()
    probe = LmProbe(net)
    rec = {"id": "x", "text": "The river is not calm.", "label": "clean", "source": "brown", "spans": [],
           "doc_id": "d", "seg": 0, "system": "", "synthetic": False}
    b = ExampleBuilder(det.tokenizer, {"max_length": 32, "context_tokens": 4, "p_context": 0.0})
    cls_w = torch.tensor([1.0, 2.0, 1.0])
    base, _ = batch_loss(net, collate_examples([b.build([rec], 0, random.Random(0))]), {}, cls_w, probe)
    assert probe.head.weight.grad is None
    b.lm_targets = {"x": [(0, 3, 4.0, 2.0), (4, 9, 9.0, 3.0)]}
    t = collate_examples([b.build([rec], 0, random.Random(0))])
    net.zero_grad()
    loss, _ = batch_loss(net, t, {"lm_weight": 1.0}, cls_w, probe)
    loss.backward()
    g = probe.head.weight.grad
    assert g is not None and float(g.abs().sum()) > 0
    assert float(net.bert.get_input_embeddings().weight.grad.abs().sum()) > 0
    net.eval()
    with torch.no_grad():
        l1, _ = batch_loss(net, t, {"lm_weight": 1.0}, cls_w, probe)
        l0, _ = batch_loss(net, t, {"lm_weight": 0.0}, cls_w, probe)
    assert float(l1) > float(l0)


def test_pool_records_are_the_records_training_draws(tmp_path: Path) -> None:
    from training.lm_targets import pool_records
    from training.pools import training_pools

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    recs = []
    for i in range(60):
        src = ("brown", "wmt21_news", "abc")[i % 3]
        recs.append({"id": f"{src}-{i}", "text": f"Sentence number {i}.", "label": "clean", "source": src,
                     "spans": [], "doc_id": f"{src}-d{i // 6}", "seg": i, "system": "", "synthetic": False})
    (corpus / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (corpus / "synth_train.jsonl").write_text("")
    cfg = {"seed": 5, "per_epoch": {"wmt21_news": 7, "clean_english": 9}}
    got = pool_records(cfg, corpus)
    _, _, pools, _ = training_pools(cfg, corpus)
    assert sorted(r["id"] for r in got) == sorted(g[i]["id"] for items in pools.values() for g, i in items)
    assert len(got) == 16 and [r["id"] for r in pool_records(cfg, corpus)] == [r["id"] for r in got]
