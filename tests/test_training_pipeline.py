"""Training-side code on small fixtures: searches, collation, quick evaluation, finalize and benchmark helpers.

Nothing here trains: the tiny random model stands in for a trained one.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest

pytest.importorskip("yaml")  # training extras

from detector import Detector  # noqa: E402
from detector.evaluation import EvalRecord, char_prf, evaluate, predict  # noqa: E402

from .conftest import SEED_TEXT, seed_article  # noqa: E402

SENTENCES = [
    "The committee will publish its report next week.", "Officials said the plan would cost more than expected.",
    "The river rose after three days of heavy rain.", "Schools will reopen on Monday, the mayor said.",
    "Xi Jinping. accepted.", "which can be easily understood by Mentally challenged people. common sense.",
    "The the government will will carry out the the measures.", "Economy the of growth rapid the has.",
]


def _records(n: int, seed: int, clean_only: bool = False) -> list[dict]:
    """Canonical-looking records: garbled ones carry a gold span over their first word."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randrange(4) if clean_only else rng.randrange(len(SENTENCES))
        text = SENTENCES[k]
        garbled = k >= 4
        spans = [{"start": 0, "end": text.index(" ") if " " in text else len(text), "severity": "major",
                  "category": "fluency"}] if garbled else []
        out.append({"id": f"r{seed}-{i}", "text": text, "label": "strict" if garbled else "clean",
                    "source": "brown" if clean_only else "wmt21_news", "spans": spans, "doc_id": f"d{i // 2}",
                    "seg": i // 2, "system": f"s{i % 2}", "synthetic": False})
    return out


@pytest.fixture(scope="module")
def sets(tiny_detector: Detector):  # type: ignore[no-untyped-def]
    from training.search import score_set

    return score_set(tiny_detector, _records(40, 1)), score_set(tiny_detector, _records(30, 2, clean_only=True))


def test_fit_logistic_separates_classes_and_honours_weights() -> None:
    import numpy as np

    from training.search import fit_logistic

    x = np.array([[-2.0], [-1.5], [-1.0], [1.0], [1.5], [2.0]])
    (a,), b = fit_logistic(x, np.array([0, 0, 0, 1, 1, 1.0]), l2=1e-2)
    assert a > 0
    assert 1 / (1 + math.exp(-(a * 2.0 + b))) > 0.8 > 0.2 > 1 / (1 + math.exp(-(a * -2.0 + b)))
    # one overlapping positive at -1.0: weighting it up moves the boundary towards it
    x2 = np.vstack([x, [[-1.0]]])
    y2 = np.array([0, 0, 0, 1, 1, 1, 1.0])
    _, b_plain = fit_logistic(x2, y2, l2=1e-2)
    _, b_heavy = fit_logistic(x2, y2, np.array([1, 1, 1, 1, 1, 1, 20.0]), l2=1e-2)
    assert b_heavy > b_plain


def test_choices_on_every_source_respect_each_clean_source(tiny_detector: Detector, sets) -> None:  # type: ignore[no-untyped-def]
    """calibrated_macro + choose_macro: at most max_flag of *each* clean source flagged and max_span carrying a
    span; the calibration weights come from the grid."""
    from training.finalize import by_source
    from training.search import RATIO_C, ScoredSet, calibrated_macro, choose_macro

    news, clean = sets
    half = len(news) // 2
    labelled = {"a": ScoredSet(news.records[:half], news.raws[:half]),
                "b": ScoredSet(news.records[half:], news.raws[half:])}
    cleans = {"one": ScoredSet(clean.records[:15], clean.raws[:15]),
              "two": ScoredSet(clean.records[15:], clean.raws[15:])}
    assert set(by_source(clean)) == {"brown"}
    cal, info = calibrated_macro(tiny_detector, labelled, cleans, sense=False)
    assert info["rc"] in RATIO_C and info["rd"] == 0.0 and cal.config.calibration[3] == 0.0
    th = choose_macro(cal, labelled, cleans, max_flag=0.1, max_span=0.1, gates=(0.0, 0.5))
    det = cal.with_settings(threshold=th["threshold"], span_threshold=th["span_threshold"], span_gate=th["span_gate"])
    for part in cleans.values():
        m = evaluate(part.records, predict(det, part.raws))
        assert m["clean_flag_rate"] <= 0.1 and m["clean_span_rate"] <= 0.1
    assert choose_macro(cal, labelled, cleans, accept=lambda _det: False)["accepted"] == 0.0


@pytest.mark.parametrize("gate", [0.0, 0.4], ids=["no-gate", "gate"])
def test_span_f1_shortcut_equals_the_evaluation_module(tiny_detector: Detector, sets, gate: float) -> None:  # type: ignore[no-untyped-def]
    """The search skips decoding records whose peak is below the span threshold: same F1 as decoding all."""
    from training.search import span_f1, span_peaks

    news, _ = sets
    for thr in (0.3, 0.45, 0.6):
        det = tiny_detector.with_settings(span_threshold=thr, span_gate=gate)
        full = evaluate(news.records, predict(det, news.raws))["span_f1"]
        fast = span_f1(det, news, span_peaks(det, news, gate))
        assert (math.isnan(full) and math.isnan(fast)) or fast == pytest.approx(full)


def test_span_peaks_say_which_records_carry_a_span(tiny_detector: Detector, sets) -> None:  # type: ignore[no-untyped-def]
    from training.search import span_peaks

    news, _ = sets
    peaks = span_peaks(tiny_detector, news, 0.0)
    t = sorted(peaks)[len(peaks) // 2]
    det = tiny_detector.with_settings(span_threshold=t, span_gate=0.0)
    assert [bool(p.spans) for p in predict(det, news.raws)] == [pk >= t for pk in peaks]


def test_choose_thresholds_respects_the_clean_budgets(tiny_detector: Detector, sets) -> None:  # type: ignore[no-untyped-def]
    from training.search import choose_thresholds

    news, clean = sets
    th = choose_thresholds(tiny_detector, news, clean, max_flag=0.1, max_span=0.1, gates=(0.0, 0.5))
    det = tiny_detector.with_settings(threshold=th["threshold"], span_threshold=th["span_threshold"],
                                      span_gate=th["span_gate"])
    m = evaluate(clean.records, predict(det, clean.raws))
    assert m["clean_flag_rate"] <= 0.1 and m["clean_span_rate"] <= 0.1
    assert th["span_gate"] in (0.0, 0.5) and 0.0 <= th["span_threshold"] <= 1.0


def test_flag_threshold_holds_a_budget_per_clean_set(tiny_detector: Detector, sets) -> None:  # type: ignore[no-untyped-def]
    """A mapping gives each clean set its own budget (the accurate mode's two clean views); the threshold holds
    every one of them, so it is at least the one a single budget gives for the stricter set."""
    from training.search import ScoredSet, choose_flag_threshold

    news, clean = sets
    cleans = {"one": ScoredSet(clean.records[:15], clean.raws[:15]),
              "two": ScoredSet(clean.records[15:], clean.raws[15:])}
    budgets = {"one": 0.3, "two": 0.0}
    thr, _, floor = choose_flag_threshold(tiny_detector, {"news": news}, cleans, budgets)
    assert thr >= floor
    for name, part in cleans.items():
        m = evaluate(part.records, predict(tiny_detector.with_settings(threshold=thr), part.raws))
        assert m["clean_flag_rate"] <= budgets[name] + 1e-9
    loose, _, _ = choose_flag_threshold(tiny_detector, {"news": news}, {"one": cleans["one"]}, 0.3)
    assert thr >= loose


def test_pools_per_clean_source_and_hard_negatives(tmp_path: Path) -> None:
    """clean_by_source: a pool per clean English source with its own size; hard_negatives: the records the mined
    file names form a pool of their own on top (only clean English), in their documents."""
    from training.pools import documents, load_pools

    recs = [{**r, "source": src, "doc_id": f"{src}{r['doc_id']}", "id": f"{src}-{r['id']}"}
            for src in ("brown", "gum") for r in _records(6, 3, clean_only=True)] + _records(6, 4)
    mined = tmp_path / "mined.jsonl"
    hard = ["gum-r3-1", "gum-r3-4", "r4-0"]  # the last is not clean English: never a hard negative
    mined.write_text("".join(json.dumps({"id": i, "source": "x", "score": 0.9}) + "\n" for i in hard))
    docs = documents(recs)
    cfg = {"clean_by_source": True, "hard_negatives": str(mined),
           "per_epoch": {"brown": 2, "gum": -1, "wmt21_news": -1, "hard_negative": -1}}
    pools = load_pools(docs, cfg, random.Random(0))
    assert sorted(pools) == ["brown", "gum", "hard_negative", "wmt21_news"]
    assert len(pools["brown"]) == 2 and len(pools["gum"]) == 6
    assert sorted(g[i]["id"] for g, i in pools["hard_negative"]) == ["gum-r3-1", "gum-r3-4"]
    assert all(g is docs[(g[i]["doc_id"], g[i]["system"])] for g, i in pools["hard_negative"])  # in its document
    one = load_pools(docs, {"per_epoch": {"clean_english": -1}}, random.Random(0))
    assert sorted(one) == ["clean_english", "wmt21_news"] and len(one["clean_english"]) == 12


def test_clean_length_match_draws_clean_english_at_the_garbled_mt_lengths() -> None:
    """clean_length_match: the clean English drawn per epoch follows the word counts of the garbled MT records, not
    its own (mostly short) ones; a run without it draws as before."""
    from training.pools import documents, load_pools

    def rec(src: str, i: int, words: int, label: str) -> dict:
        return {"id": f"{src}{i}", "source": src, "doc_id": f"{src}{i}", "system": "", "seg": 0, "synthetic": False,
                "label": label, "spans": [], "text": " ".join(["word"] * words)}

    clean = [rec("brown", i, 8 if i % 10 else 45, "clean") for i in range(400)]  # 90% short, 10% long
    mt = [rec("wmt21_news", i, 45, "strict") for i in range(40)] + [rec("wmt21_news", 100 + i, 8, "clean")
                                                                     for i in range(40)]
    docs = documents(clean + mt)
    sizes = {"clean_english": 30, "wmt21_news": -1}
    plain = load_pools(docs, {"per_epoch": sizes}, random.Random(0))
    matched = load_pools(docs, {"per_epoch": sizes, "clean_length_match": True}, random.Random(0))

    def long_share(pools: dict) -> float:
        return sum(len(g[i]["text"].split()) > 40 for g, i in pools["clean_english"]) / len(pools["clean_english"])

    assert long_share(plain) < 0.3 and long_share(matched) == 1.0  # every garbled MT record is long
    assert len(matched["clean_english"]) == 30 and len({g[i]["id"] for g, i in matched["clean_english"]}) == 30
    assert load_pools(docs, {"per_epoch": sizes}, random.Random(0)) == plain


def test_mined_hard_negatives_are_each_clean_sources_top_scores(tiny_detector: Detector, tmp_path: Path) -> None:
    from training.hard_negatives import mine, read_ids

    recs = [{**r, "source": src, "id": f"{src}-{r['id']}"} for src in ("brown", "gum")
            for r in _records(10, 5, clean_only=True)] + _records(10, 6)
    rows = mine(tiny_detector, recs, per_source=10, top=0.2, seed=0)
    assert [r["source"] for r in rows] == ["brown", "brown", "gum", "gum"]  # 20% of each clean source, no MT
    score = {r["id"]: d.score for r, d in zip(recs, tiny_detector.detect_batch([r["text"] for r in recs]))}
    for src in ("brown", "gum"):
        kept = [r for r in rows if r["source"] == src]
        assert kept[0]["score"] >= kept[1]["score"]  # highest first
        assert all(abs(score[r["id"]] - r["score"]) < 1e-4 for r in kept)
        rest = [v for k, v in score.items() if k.startswith(src) and k not in {r["id"] for r in kept}]
        assert kept[1]["score"] >= max(rest) - 1e-4  # the top of the source
    path = tmp_path / "mined.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_ids(path) == {r["id"] for r in rows}


def test_choose_thresholds_reports_an_unmet_constraint(tiny_detector: Detector, sets) -> None:  # type: ignore[no-untyped-def]
    from training.search import choose_thresholds

    news, clean = sets
    th = choose_thresholds(tiny_detector, news, clean, accept=lambda _det: False)
    assert th["accepted"] == 0.0


def test_collate_examples_extends_the_runtime_collation() -> None:
    from detector.network import collate
    from training.examples import Example
    from training.losses import collate_examples

    ex = [Example([2, 5, 6, 3], [0, 1, 2, 0], [6, 7, 8, 6], (1, 3), (1.0, math.nan)),
          Example([2, 5, 3], [0, 1, 0], [6, 4, 6], (1, 2), (0.0, 0.0))]
    t = collate_examples(ex)
    base = collate(ex)
    for k in ("ids", "shapes", "mask", "target"):
        assert t[k].numpy().tolist() == base[k].tolist()
    assert t["tcls"][0].tolist() == [0, 1, 2, 0] and t["tcls"][1].tolist() == [0, 1, 0, 0]
    assert t["target"][0].tolist() == [0, 1, 1, 0] and t["mask"][1].tolist() == [1, 1, 1, 0]


def test_make_config_is_a_valid_model_config() -> None:
    from detector.network import ModelConfig
    from training.train import make_config

    cfg = make_config({"name": "x", "version": "0.1", "max_length": 64, "context_tokens": 8}, {"hidden_size": 32})
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_quick_eval_on_the_tiny_model(tiny_detector: Detector) -> None:
    from training.train import quick_eval

    cfg = {"name": "tiny", "version": "0", "max_length": 48, "context_tokens": 8}
    m = quick_eval(tiny_detector.network, tiny_detector.tokenizer, cfg, tiny_detector.config.bert,
                   _records(30, 3), _records(20, 4, clean_only=True))
    assert {"auroc_strict", "span_f1", "threshold", "span_threshold"} <= set(m)
    assert all(isinstance(v, float) for v in m.values())


@pytest.mark.parametrize(("words", "seed"), [(False, True), (True, False)], ids=["no-word-table", "word-table-no-seed"])
def test_finalize_writes_a_loadable_model_folder(tiny_model_dir: Path, tmp_path: Path, words: bool, seed: bool) -> None:
    """finalize on a tiny corpus: a verified model folder whose settings come from the search, strict-JSON metrics
    computed by detector.evaluation, and a model card; with a word table, the table travels and its weight is one of
    the grid's; rewriting the card keeps the accurate-mode section. The default settings follow the quiet rule and
    the macro rule's are the recall point; without the seed article (a clone without ../shared) it still runs."""
    from detector.network import WordTable, write_manifest
    from training.card import ACCURATE_HEADING, write_card
    from training.finalize import finalize
    from training.search import RATIO_E
    from training.word_table import add_word_table

    if seed:
        seed_article()  # skips (or fails under CI) without ../shared
    model = tmp_path / "trained"
    shutil.copytree(tiny_model_dir, model)
    if words:
        add_word_table(model, WordTable({"the": 7.7, "river": 5.1, "calm": 4.4}))
    train_cfg = {"seed": 1, "epochs": 1, "batch_size": 8, "lr": 1e-4, "head_lr": 1e-3, "per_epoch": {"x": 1},
                 "config_file": "tiny.yaml"}
    (model / "train_history.json").write_text(json.dumps(
        {"history": [{"epoch": 1, "auroc_strict": 0.5, "auroc_broad": 0.5, "span_f1": 0.1}], "seconds": 60,
         "config": train_cfg}))
    write_manifest(model)  # a training run lists what it writes
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, rows in (("val_news", _records(30, 5)), ("val_clean", _records(30, 6, clean_only=True)),
                       ("test_clean", _records(20, 7, clean_only=True))):
        (corpus / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    seed_dir = SEED_TEXT.parent if seed else tmp_path / "no-seed-here"
    out = finalize(model, corpus, tmp_path / "models", seed_dir, require_seed=False, version="0.0.2", bootstrap=0,
                   data=None)
    det = Detector.load(out)
    full = json.loads((out / "metrics.json").read_text())  # strict JSON (no NaN)
    th = full["thresholds"]
    assert det.config.version == "0.0.2" and det.checksum == "ok"
    assert (det.threshold, det.span_threshold, det.span_gate, det.span_score) == (
        th["threshold"], th["span_threshold"], th["span_gate"], th["span_score"])
    assert (full["seed_article"] is not None) == seed
    news = full["metrics"]["val_news"]
    recs = [EvalRecord.from_dict(r) for r in _records(30, 5)]
    preds = predict(det, det.score_raw([r.text for r in recs]))
    assert news["span_f1"] == pytest.approx(char_prf([p.spans for p in preds], [r.spans for r in recs])["f1"])
    assert "Model card" in (out / "MODEL_CARD.md").read_text()
    # the default follows the quiet rule: at most 1% of each bound val_clean source flagged (one record of a source
    # under 100), spans only in flagged passages; the recall point is the macro rule's, with a threshold at most the
    # default's and the same span rule
    recall = det.config.operating_point("recall")
    assert recall.threshold <= det.threshold and det.span_gate >= det.threshold
    assert (recall.span_threshold, recall.span_score) == (det.span_threshold, det.span_score)
    assert th["recall"]["threshold"] == recall.threshold
    for src, r in full["metrics"]["val_clean"]["by_source"].items():
        assert r["flag_rate"] * r["n"] <= max(1, int(0.01 * r["n"])) + 1e-9, src
        assert r["span_rate"] <= r["flag_rate"]
    assert full["operating_points"]["recall"]["settings"] == recall.to_dict()
    text = (out / "MODEL_CARD.md").read_text()
    assert "## Operating points" in text and "## Rule categories and length" in text
    assert set(full["length"]) == {"default", "recall"}
    a, *_, e = det.config.calibration
    assert (det.config.word_table is not None) == words and (out / "word_zipf.json.gz").is_file() == words
    assert th["calibration_search"]["re"] in RATIO_E and (e == pytest.approx(a * th["calibration_search"]["re"]))
    card = out / "MODEL_CARD.md"
    card.write_text(card.read_text().replace("## Licence", f"{ACCURATE_HEADING}\n\nkept text\n\n## Licence"))
    write_card(out)
    assert "kept text" in card.read_text() and card.read_text().count(ACCURATE_HEADING) == 1
    assert Detector.load(out).checksum == "ok"
    assert (tmp_path / "models" / "DEFAULT").read_text().strip() == out.name


def test_benchmark_helpers() -> None:
    from benchmarks.baselines import Output, choose_span_threshold, choose_threshold, spans_at
    from benchmarks.run import Scored, evaluated
    from detector.evaluation import Prediction

    text = "aa bb cc dd"
    toks = [(0, 2, 0.9), (3, 5, 0.8), (6, 8, 0.1), (9, 11, 0.95)]
    assert spans_at(text, toks, 0.5) == [(0, 5), (9, 11)]
    assert choose_threshold([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.8
    assert choose_span_threshold([text], [Output(0.9, toks)], [[(0, 5)]]) == 0.15  # the first with F1 10/12
    items = [Scored(EvalRecord("a b", "strict", spans=((0, 1),)), Prediction(0.9, True, ((0, 1),))),
             Scored(EvalRecord("c d", "clean"), Prediction(0.1, False))]
    m = evaluated(items, bootstrap=0)
    assert m["auroc_strict"] == 1.0 and m["span_f1"] == 1.0


def _mlqe(da: float, hter: float, label: str) -> dict:
    return {"id": f"m{da}", "text": "The river is not calm as a teacher and as a colourful river.", "label": label,
            "source": "mlqe_pe", "doc_id": f"m{da}", "seg": 0, "system": "mt", "synthetic": False,
            "spans": [{"start": 4, "end": 9, "severity": "unknown", "category": "other"}] if hter else [],
            "meta": {"pair": "si-en", "article": "a", "da": da, "hter": hter}}


@pytest.mark.parametrize(("record", "expected"), [
    pytest.param(_mlqe(12.0, 0.8, "broad"), 1.0, id="mlqe-meaning-lost"),
    pytest.param(_mlqe(50.0, 0.3, "ambiguous"), 0.5, id="mlqe-middle-soft"),
    pytest.param(_mlqe(90.0, 0.0, "clean"), 0.0, id="mlqe-fluent"),
    pytest.param(_records(1, 5, clean_only=True)[0], 0.0, id="clean-english"),
    pytest.param({**_records(8, 6)[4], "label": "strict"}, 1.0, id="mt-strict"),
    pytest.param({**_records(1, 7)[0], "label": "ambiguous"}, math.nan, id="mt-ambiguous-ignored"),
    pytest.param({**_records(1, 8)[0], "synthetic": True}, math.nan, id="synthetic-ignored"),
    pytest.param({**_mlqe(12.0, 0.8, "ambiguous"), "post_edit": True}, math.nan, id="post-edit-pair-only"),
])
def test_sense_target(record: dict, expected: float) -> None:
    from training.examples import sense_target

    got = sense_target(record)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_rated_mlqe_outputs_train_only_the_sense_output(tiny_detector: Detector) -> None:
    """A DA-rated MLQE-PE output that is not clean: no token targets (weight 0), no garbled/any-major target,
    its DA as the sense target; a clean MLQE-PE output keeps its usual targets."""
    from training.examples import ExampleBuilder
    from training.losses import collate_examples

    cfg = {"max_length": 48, "context_tokens": 8, "sense_head": True}
    b = ExampleBuilder(tiny_detector.tokenizer, cfg)
    rng = random.Random(0)
    rated = b.build([_mlqe(12.0, 0.8, "broad")], 0, rng)
    fluent = b.build([_mlqe(90.0, 0.0, "clean")], 0, rng)
    assert rated is not None and fluent is not None
    assert math.isnan(rated.y[0]) and math.isnan(rated.y[1]) and rated.y[2] == 1.0
    assert fluent.y == (0.0, 0.0, 0.0)
    t = collate_examples([rated, fluent])
    assert float(t["tw"][0].sum()) == 0.0 and float(t["tw"][1].sum()) > 0.0
    assert b.__class__(tiny_detector.tokenizer, {**cfg, "sense_head": False}).build(
        [_mlqe(90.0, 0.0, "clean")], 0, rng).y == (0.0, 0.0)


def test_batch_loss_trains_the_sense_output(tmp_path: Path) -> None:
    """With three targets the sense logit gets a gradient; with two (sense targets off) it gets none."""
    import torch

    from training.examples import ExampleBuilder
    from training.losses import batch_loss, collate_examples

    from .conftest import build_tiny_model

    det = Detector.load(build_tiny_model(tmp_path / "m", sense=True), language_id=False, backend="torch")
    net = det.network
    net.train()
    recs = [_mlqe(12.0, 0.8, "broad"), _mlqe(90.0, 0.0, "clean"), *_records(4, 9)]
    for sense, expect_grad in ((True, True), (False, False)):
        b = ExampleBuilder(det.tokenizer, {"max_length": 48, "context_tokens": 8, "sense_head": sense})
        ex = [e for r in recs for e in [b.build([r], 0, random.Random(1))] if e is not None]
        net.zero_grad()
        loss, pas = batch_loss(net, collate_examples(ex), {}, torch.tensor([1.0, 2.0, 1.0]))
        loss.backward()
        assert torch.isfinite(loss) and pas.shape == (len(ex), 3 if sense else 2)
        g = net.sense_head.weight.grad
        assert (g is not None and float(g.abs().sum()) > 0) == expect_grad


@pytest.mark.parametrize(("sense", "expected"), [
    pytest.param(None, ["python -m training.finalize --model build/models/run --out models --name m --version 2.0"],
                 id="no-sense-head"),
    pytest.param({"command": "python -m training.sense_head --model build/models/run --out build/x --keep-head"},
                 ["python -m training.sense_head --model build/models/run --out build/x --keep-head",
                  "python -m training.finalize --model build/x --out models --name m --version 2.0"],
                 id="sense-head-step-recorded"),
])
def test_model_card_commands_are_the_ones_run(sense: dict | None, expected: list[str]) -> None:
    """The card's commands between training and export: the recorded sense-head command and a finalize of its
    output, under the shipped name and version."""
    from training.card import finalize_commands

    got = finalize_commands({"name": "m", "version": "2.0"}, {"sense_head": sense}, {"name": "run"})
    assert got.splitlines() == expected


def test_model_card_commands_put_the_word_table_between_sense_head_and_finalize() -> None:
    from training.card import finalize_commands

    sense = {"command": "python -m training.sense_head --model build/models/run --out build/x"}
    got = finalize_commands({"name": "m", "version": "2.0", "word_table": "w.json.gz"}, {"sense_head": sense},
                            {"name": "run"})
    assert got.splitlines() == [sense["command"],
                                "python -m training.word_table --from build/x --model build/rarity/m",
                                "python -m training.finalize --model build/rarity/m --out models --name m --version 2.0"]


def test_model_card_command_carries_the_clean_rules() -> None:
    """Non-default clean-English rules recorded in metrics.json come back as finalize options, so the card's command
    reproduces the shipped thresholds; finalize's parser accepts them."""
    from training.card import finalize_commands
    from training.finalize import main

    th = {"clean_rule": "per-source", "max_flag": 0.01, "max_span": 0.01, "clean_unbound": ["wmt21_ref_a"]}
    got = finalize_commands({"name": "m", "version": "2.0"}, {"sense_head": None, "thresholds": th}, {"name": "run"})
    assert got == ("python -m training.finalize --model build/models/run --out models --name m --version 2.0"
                   " --clean-rule per-source --max-clean-flag-rate 0.01 --clean-unbound wmt21_ref_a")
    with pytest.raises(SystemExit) as e:
        main([*got.split()[3:], "--help"])
    assert e.value.code == 0


@pytest.mark.parametrize(("rule", "unbound", "expected"), [
    pytest.param("pooled", (), {"val_clean": 3}, id="pooled"),
    pytest.param("pooled", ("ref",), {"val_clean": 2}, id="pooled-less-unbound"),
    pytest.param("per-source", (), {"brown": 2, "ref": 1}, id="per-source"),
    pytest.param("per-source", ("ref",), {"brown": 2}, id="per-source-less-unbound"),
])
def test_clean_budgets_bind_the_chosen_sources(rule: str, unbound: tuple[str, ...], expected: dict) -> None:
    """The clean budgets apply to val_clean pooled or per source; unbound sources are left out of both."""
    from training.finalize import clean_budgets
    from training.search import ScoredSet

    recs = [EvalRecord(text="A sentence.", label="clean", source=src) for src in ["brown", "ref", "brown"]]
    got = clean_budgets(ScoredSet(recs, [None, None, None]), rule, unbound)  # type: ignore[list-item]
    assert {k: len(v) for k, v in got.items()} == expected


def test_post_edit_pairs_from_the_corpus(tmp_path: Path) -> None:
    """MT-vs-post-edit pairs: damaged outputs (DA < 50) of articles not held back, against their own post-edit,
    which carries no target of its own."""
    from training.examples import sense_target
    from training.pools import load_post_edit_pairs
    from training.sense_head import held_back

    recs = [{**_mlqe(float(da), 0.5, "broad"), "id": f"m{i}", "meta": {"pair": "ro-en", "article": f"art{i}",
             "da": float(da), "hter": 0.5, "pe": f"Repaired sentence {i}."}} for i, da in enumerate(range(5, 100, 3))]
    recs.append({**recs[0], "id": "same", "meta": {**recs[0]["meta"], "pe": recs[0]["text"]}})  # nothing repaired
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    pairs = load_post_edit_pairs(tmp_path)
    want = [r for r in recs[:-1] if r["meta"]["da"] < 50 and not held_back(r)]
    assert len(pairs) == len(want) > 0
    for ((mt_doc, i), (pe_doc, j)), r in zip(pairs, want):
        mt, pe = mt_doc[i], pe_doc[j]
        assert mt["text"] == r["text"] and pe["text"] == r["meta"]["pe"] and pe["spans"] == []
        assert sense_target(mt) > 0.4 and math.isnan(sense_target(pe))


def test_pair_loss_ranks_post_edits_on_the_any_major_and_sense_outputs() -> None:
    """An MT-vs-post-edit pair is ranked on the any-major and sense outputs, never on the garbled one."""
    import torch

    from training.losses import pair_loss
    from training.pools import PE_KIND

    lo = torch.zeros((1, 3))
    for col in range(3):
        hi = torch.zeros((1, 3), requires_grad=True)
        pair_loss(hi, lo, [PE_KIND]).backward()
        assert hi.grad is not None
        assert (hi.grad[0, col] != 0) == (col in (1, 2)), col
    hi2 = torch.zeros((1, 2), requires_grad=True)  # no sense output: the any-major term alone
    pair_loss(hi2, torch.zeros((1, 2)), [PE_KIND]).backward()
    assert hi2.grad is not None and hi2.grad[0, 0] == 0 and hi2.grad[0, 1] < 0


@pytest.mark.parametrize("n_layers", [0, 1], ids=["nothing-frozen", "lowest-layer-frozen"])
def test_freeze_layers_leaves_the_lower_encoder_unchanged(tiny_model_dir: Path, n_layers: int) -> None:
    """freeze_layers: the embeddings and the lowest layers get no gradient and no optimiser step; the rest trains."""
    import torch
    from safetensors.torch import load_file

    from detector.network import SpanDetector
    from training.train import frozen_encoder_params

    cfg = json.loads((tiny_model_dir / "config.json").read_text(encoding="utf-8"))
    model = SpanDetector(cfg["bert"], sense_head=bool(cfg.get("sense_head")))
    model.load_state_dict({k: v.float() for k, v in load_file(str(tiny_model_dir / "model.safetensors")).items()})
    n = frozen_encoder_params(model, n_layers)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    ids = torch.randint(5, int(cfg["bert"]["vocab_size"]), (2, 12))
    tok, passage = model(ids, torch.zeros_like(ids), torch.ones_like(ids), torch.ones_like(ids))
    (tok.pow(2).sum() + passage.pow(2).sum()).backward()
    opt.step()
    moved = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    low = ("bert.embeddings.", *(f"bert.encoder.layer.{i}." for i in range(n_layers)))
    assert (n > 0) == (n_layers > 0)
    assert not any(k.startswith(low) for k in moved) if n_layers else any(k.startswith("bert.embeddings.") for k in moved)
    assert any(k.startswith(f"bert.encoder.layer.{n_layers}.") for k in moved)


@pytest.mark.parametrize("ignore_broad,expected", [(False, 0.0), (True, None)], ids=["broad-is-clean", "broad-ignored"])
def test_broad_records_garbled_target(tiny_detector: Detector, ignore_broad: bool, expected: float | None) -> None:
    """A record whose only major error is an accuracy error: its passage is clean for the garbled output by default,
    left out with ignore_broad; its any-major target is 1 either way, and a clean record stays 0 / 0."""
    from training.examples import ExampleBuilder

    text = "The patient was given the drug twice a day for a week."
    acc = {"start": 4, "end": 11, "category": "accuracy", "severity": "major"}
    rec = {"id": "b-1", "doc_id": "d", "system": "s", "seg": 0, "source": "bio_mqm", "text": text, "spans": [acc],
           "label": "broad", "synthetic": False, "meta": {}}
    b = ExampleBuilder(tiny_detector.tokenizer, {"max_length": 48, "context_tokens": 8, "ignore_broad": ignore_broad})
    ex = b.build([rec], 0, random.Random(0))
    assert ex is not None and ex.y[1] == 1.0
    assert math.isnan(ex.y[0]) if expected is None else ex.y[0] == expected
    clean = b.build([{**rec, "id": "c-1", "spans": [], "label": "clean"}], 0, random.Random(0))
    assert clean is not None and clean.y == (0.0, 0.0)


def test_config_extends_another(tmp_path: Path) -> None:
    """extends: the named config (relative to the file) is read first; the variant overrides its top-level keys."""
    from training.config import load_config

    (tmp_path / "base.yaml").write_text("name: base\nseed: 1\nper_epoch:\n  brown: 5\n")
    (tmp_path / "variant.yaml").write_text("extends: base.yaml\nname: variant\nfreeze_layers: 4\n")
    assert load_config(tmp_path / "variant.yaml") == {"name": "variant", "seed": 1, "per_epoch": {"brown": 5},
                                                      "freeze_layers": 4}
    assert load_config(tmp_path / "base.yaml")["name"] == "base"
