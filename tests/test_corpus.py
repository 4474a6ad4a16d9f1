"""Corpus converters on small fixtures cut from the real formats; splits; the synthetic generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus.build_corpus import assign_splits, dedupe, mlqe_doc_records
from corpus.records import CLEAN, STRICT, DropLog, Record, Span, check_span, detokenize
from corpus.sources import (
    MissingSourceError,
    convert_bio_records,
    convert_mqm_rows,
    convert_tagged,
    load_mlqe,
    load_wmt20,
    read_tsv_rows,
)
from corpus.synth import ARTIFACTS, SynthConfig, generate

from .conftest import SHARED, require_shared

FIX = Path(__file__).parent / "fixtures" / "corpus"


def _mqm(name: str, source: str, omissions: bool) -> tuple[list[Record], DropLog]:
    drops = DropLog()
    _, rows = read_tsv_rows((FIX / name).read_text(encoding="utf-8"))
    return convert_mqm_rows(rows, source, drops, source_side_omissions=omissions), drops


def test_wmt20_rebuilds_corrupted_targets() -> None:
    recs, drops = _mqm("wmt20_mqm.tsv", "wmt20_news", omissions=False)
    by = {r.system: r for r in recs}
    deep = by["DeepMind.381"]
    # the raw rows hold "…southern Jiangxi<v>State-owned … Jiangxi.</v>" style duplicates; the rebuild has none
    assert deep.text.count("State-owned enterprises") == 1
    for r in recs:
        for s in r.spans:
            check_span(r.text, s, None)
    # the WeChat row whose omission text was typed in by the rater is reported, not silently lost
    assert any("typed in by the rater" in reason for _, reason, _ in drops.rows())


def test_wmt20_merges_raters_and_labels() -> None:
    recs, _ = _mqm("wmt20_mqm.tsv", "wmt20_news", omissions=False)
    by = {r.system: r for r in recs}
    assert by["Online-B.1605"].label == CLEAN  # all its raters said no-error
    assert by["WeChat_AI.1525"].n_raters == 3


def test_wmt21_non_translation_and_source_side_omissions() -> None:
    recs, drops = _mqm("wmt21_mqm.tsv", "wmt21_news", omissions=True)
    nontrans = [r for r in recs if any(s.raw_category == "Non_translation" for s in r.spans)]
    assert nontrans and all(r.label == STRICT for r in nontrans)
    for r in nontrans:
        s = [s for s in r.spans if s.raw_category == "Non_translation"][0]
        assert (s.start, s.end) == (0, len(r.text.rstrip()))  # no closing </v>: to the end of the target
    assert any("omission marked in the source" in reason for _, reason, _ in drops.rows())


def test_bio_inclusive_end_offsets() -> None:
    items = json.loads((FIX / "bio_zh2en.json").read_text(encoding="utf-8"))
    drops = DropLog()
    recs = convert_bio_records(items, "zh2en", drops, set())
    assert len(recs) == 3
    for r, it in zip(recs, items):
        terms = {e["term"].strip() for e in it["target_errors"]}
        assert {r.text[s.start : s.end] for s in r.spans} <= terms
        if not it["target_errors"]:
            assert r.label == CLEAN


def test_mlqe_interleaved_gap_tags() -> None:
    mt = (FIX / "mlqe.mt").read_text(encoding="utf-8").splitlines()
    tags = (FIX / "mlqe.tags").read_text(encoding="utf-8").splitlines()
    out = convert_tagged(mt, tags, "mlqe_pe", DropLog(), interleaved_gaps=True, eos=False)
    i, text, spans = out[0]  # type: ignore[misc]
    words = mt[0].split()
    word_tags = tags[0].split()[1::2]
    bad_words = [w for w, t in zip(words, word_tags) if t == "BAD"]
    got = " ".join(text[s.start : s.end] for s in spans).split()
    assert got == bad_words


def test_mlqe_records_carry_their_post_edit() -> None:
    """Each MLQE-PE output keeps its human post-edit (detokenised like the output) in meta; HTER 0 means the
    post-editor changed nothing."""
    require_shared(SHARED / "data" / "mlqe-pe")
    recs = load_mlqe(SHARED / "data", DropLog(), set())
    assert len(recs) == 40000 and all(r.meta["pe"].strip() for r in recs)
    same = [r.meta["pe"] == r.text for r in recs if r.meta["hter"] == 0]
    assert sum(same) / len(same) > 0.95
    assert sum(r.meta["pe"] == r.text for r in recs if r.meta["hter"] >= 0.4) == 0
    assert not any(" ," in r.meta["pe"] or " ." == r.meta["pe"][-2:] for r in recs[:2000])


def test_wmt22_tags_with_eos() -> None:
    mt = (FIX / "wmt22.mt").read_text(encoding="utf-8").splitlines()
    tags = (FIX / "wmt22.tags").read_text(encoding="utf-8").splitlines()
    out = convert_tagged(mt, tags, "wmt22_dev", DropLog(), interleaved_gaps=False, eos=True)
    assert all(o is not None for o in out)
    assert "<EOS>" not in out[0][1]  # type: ignore[index]


def test_tag_count_mismatch_is_counted() -> None:
    drops = DropLog()
    out = convert_tagged(["a b c"], ["OK OK"], "x", drops, interleaved_gaps=False, eos=False)
    assert out == [None] and drops.rows() == [("x", "tag count does not match tokens", 1)]


@pytest.mark.parametrize(
    "tokens,text",
    [
        (["Hello", ",", "world", "."], "Hello, world."),
        (["It", "&apos;s", "a", "&quot;", "test", "&quot;", "."], 'It\'s a "test".'),
        (["well", "@-@", "known"], "well-known"),
        (["(", "a", ")"], "(a)"),
    ],
    ids=["comma", "quotes", "hyphen", "brackets"],
)
def test_detokenize_offsets(tokens: list[str], text: str) -> None:
    got, offs = detokenize(tokens)
    assert got == text
    assert len(offs) == len(tokens)
    for (a, b), t in zip(offs, tokens):
        assert got[a:b] == {"&apos;s": "'s", "&quot;": '"', "@-@": "-"}.get(t, t)


def test_missing_source_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(MissingSourceError, match="wmt20-zhen-mqm"):
        load_wmt20(tmp_path, DropLog())


def _rec(source: str, doc: str, i: int, text: str | None = None) -> Record:
    return Record(id=f"{source}:{doc}:{i}", source=source, doc_id=f"{source}:{doc}", text=text or f"{doc} {i}",
                  label=CLEAN, seg=i)


def test_no_document_sits_in_two_splits() -> None:
    recs = []
    for src in ("wmt21_news", "bio_mqm", "brown", "abc", "gum"):
        for d in range(40):
            for i in range(3):
                for system in ("sysA", "sysB"):
                    r = _rec(src, f"d{d}", i, text=f"{src} {d} {i} {system}")
                    r.system = system
                    recs.append(r)
    assign_splits(recs)
    splits: dict[str, set[str]] = {}
    for r in recs:
        splits.setdefault(r.doc_id, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values())
    assert {r.split for r in recs if r.source == "wmt21_news"} == {"train", "val_news"}


def test_mlqe_doc_split_is_the_held_back_articles_of_the_training_outputs() -> None:
    from training.sense_head import held_back

    recs = []
    for pair in ("si-en", "ru-en"):
        for art in range(30):
            for i in range(2):
                r = _rec("mlqe_pe", f"mlqe_pe:{pair}:{art}:{i}", i, text=f"{pair} {art} {i}")
                r.meta = {"pair": pair, "article": f"Article {art}", "official_split": "train"}
                recs.append(r)
    assign_splits(recs)
    doc = mlqe_doc_records(recs)
    # the split that build_corpus writes is exactly what the sense head and training leave out
    assert doc == [r for r in recs if held_back({"meta": r.meta})]
    assert 0 < len(doc) < len(recs) and all(r.split == "train" for r in doc)
    # whole articles: both outputs of an article fall on the same side
    held = {(r.meta["pair"], r.meta["article"]) for r in doc}
    assert len(doc) == 2 * len(held)


def test_dedupe_drops_train_copies_of_eval_text() -> None:
    a = _rec("brown", "x", 0, "Same sentence here.")
    b = _rec("brown", "y", 0, "Same  sentence here.")
    a.split, b.split = "train", "val_clean"
    drops = DropLog()
    out = dedupe([a, b], drops)
    assert out == [b] and drops.rows()


def _clean_pool() -> list[Record]:
    sents = [
        "The committee met on Tuesday to discuss the new budget.",
        "Members said the plan would help schools in rural areas.",
        "It was approved by a wide margin after a long debate.",
        "The U.S. and Canada signed a similar accord in 1990.",
        "Officials in the United States expect the money to arrive within a few months.",
    ]
    return [_rec("brown", f"d{d}", i, s) for d in range(6) for i, s in enumerate(sents)]


def test_generator_is_deterministic() -> None:
    cfg = SynthConfig(seed=3, n_windows=60)
    a = [r.to_json() for r in generate(_clean_pool(), cfg, "synth_train")]
    b = [r.to_json() for r in generate(_clean_pool(), cfg, "synth_train")]
    assert a == b
    c = [r.to_json() for r in generate(_clean_pool(), SynthConfig(seed=4, n_windows=60), "synth_train")]
    assert a != c


@pytest.mark.parametrize("artifact", sorted(ARTIFACTS))
def test_each_artifact_records_a_correct_span(artifact: str) -> None:
    cfg = SynthConfig(seed=1, n_windows=150, p_corrupt=1.0, p_two=0.0, weights={artifact: 1.0})
    recs = generate(_clean_pool(), cfg, "synth_train")
    assert recs, artifact
    for r in recs:
        assert r.label == STRICT and r.spans
        for s in r.spans:
            check_span(r.text, s, None)
            assert r.text[s.start : s.end].strip() == r.text[s.start : s.end]
            assert s.artifact in ARTIFACTS


def test_artifacts_are_not_at_a_fixed_position() -> None:
    cfg = SynthConfig(seed=2, n_windows=300, p_corrupt=1.0)
    recs = generate(_clean_pool(), cfg, "synth_train")
    rel = {round(s.start / max(1, len(r.text)), 1) for r in recs for s in r.spans}
    lengths = {len(r.text[s.start : s.end].split()) for r in recs for s in r.spans}
    assert len(rel) >= 6 and len(lengths) >= 3


def test_clean_windows_include_hard_negatives() -> None:
    cfg = SynthConfig(seed=5, n_windows=300, p_corrupt=0.0, p_hard_negative=1.0)
    recs = generate(_clean_pool(), cfg, "synth_train")
    kinds = {r.meta.get("hard_negative") for r in recs}
    assert {"abbreviation", "short_sentence"} <= kinds
    assert all(not r.spans and r.label == CLEAN for r in recs)


def test_check_span_rejects_mismatch() -> None:
    with pytest.raises(AssertionError):
        check_span("abc", Span(0, 2, "major", "fluency"), "bc")
