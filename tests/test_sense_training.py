"""The sense head's training side: features equal to the runtime's, the head fit, CoLA/BLiMP readers and the BLiMP
benchmark's pair accuracy. Nothing here trains a network: tiny random models and synthetic features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("yaml")  # training extras

from detector import Detector  # noqa: E402

from .conftest import SHARED, build_tiny_model, require_shared  # noqa: E402

TEXTS = ["Short one.", "It rained all day", "We agree, they said."]  # one window each (the tiny model's windows
# are character-level and at most 48 tokens)


@pytest.mark.parametrize("layers", [(), (1,), (1, 2)], ids=["features-only", "layer-1", "layers-1-2"])
def test_training_features_give_the_runtime_sense_logit(tmp_path: Path, layers: tuple[int, ...]) -> None:
    """What training.sense_head fits on (features.record_features + with_layers) is what the network's sense head
    reads at run time: the head applied to it gives the passage's sense logit."""
    from training.features import record_features, with_layers

    det = Detector.load(build_tiny_model(tmp_path / "m", seed=5, sense=True, sense_layers=layers), backend="torch")
    feats, logits, means = record_features(det, TEXTS)
    assert means.shape == (len(TEXTS), 2, det.config.bert["hidden_size"])
    x = with_layers(feats, means, layers)
    head = det.network.sense_head
    assert x.shape[1] == head.in_features
    sense = x @ head.weight.detach().numpy()[0] + float(head.bias.detach()[0])
    runtime = [float(np.max(r.passage_logits[:, 2])) for r in det.score_raw(TEXTS)]
    assert sense == pytest.approx(logits[:, 2], abs=2e-2)  # layer means are stored in float16
    assert logits[:, 2] == pytest.approx(runtime, abs=1e-4)  # one passage each: its only window


def test_fit_head_soft_targets_groups_and_pairs() -> None:
    from training.sense_head import fit_head, soft_target

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    hard = (x[:, 0] > 0).astype(float)
    soft = 1 / (1 + np.exp(-2 * x[:, 1]))  # a second group with soft targets on another feature
    y = np.concatenate([hard[:300], soft[300:]])
    group = np.repeat([0, 1], 300)
    w, b = fit_head(x, y, group, l2=1e-3)
    assert w[0] > 1 and w[1] > 0.5 and abs(w[2]) < 0.3
    # a pairwise term on feature 3 (bad minus good rows) turns its weight positive
    diffs = np.abs(rng.normal(size=(200, 4))) * np.array([0, 0, 0, 1.0])
    w2, _ = fit_head(x, y, group, l2=1e-3, diffs=diffs, pair_weight=5.0)
    assert w2[3] > 0.5 > abs(w[3])
    assert [soft_target({"meta": {"da": d}}) for d in (10, 30, 50, 70, 95)] == [1.0, 1.0, 0.5, 0.0, 0.0]


def test_acceptability_readers_and_fixed_blimp_holdout() -> None:
    require_shared(SHARED / "data" / "acceptability")
    from corpus.acceptability import blimp_pairs, cola_rows, held_paradigm

    pairs = blimp_pairs(2)
    uids = sorted({p["UID"] for p in pairs})
    assert len(pairs) == 2 * 67 and len(uids) == 67
    assert blimp_pairs(2) == pairs  # fixed sample
    held = [u for u in uids if held_paradigm(u)]
    assert 15 <= len(held) <= 30
    assert all(p["sentence_good"] != p["sentence_bad"] for p in pairs)
    cola = cola_rows()
    assert {r["split"] for r in cola} == {"in_domain_train", "in_domain_dev", "out_of_domain_dev"}
    assert {r["label"] for r in cola} == {0, 1} and all(r["text"].strip() for r in cola)


@pytest.mark.parametrize("bad,good,expected", [([2, 1], [1, 2], 0.5), ([1, 1], [1, 0], 0.75), ([], [], None)],
                         ids=["one-each", "tie-half", "empty"])
def test_blimp_pair_accuracy(bad: list[float], good: list[float], expected: float | None) -> None:
    from benchmarks.blimp import pair_accuracy

    got = pair_accuracy(bad, good)
    assert (expected is None and got != got) or got == expected


def _da_record(pair: str, i: int, da: float, hter: float) -> dict:
    return {"id": f"{pair}:{i}", "text": f"output {i}", "meta": {"pair": pair, "da": da, "hter": hter}}


def test_mlqe_da_benchmark_samples_per_pair_and_orients_its_metrics() -> None:
    from benchmarks.mlqe_da import pair_row, sample_per_pair

    rows = [_da_record(p, i, da, 0.0 if da >= 70 else 0.5) for p in ("si-en", "ro-en", "xx-en")
            for i, da in enumerate([10, 20, 50, 80, 90, 95])]
    got = sample_per_pair(rows, 4)
    assert [r["meta"]["pair"] for r in got] == ["ro-en"] * 4 + ["si-en"] * 4  # MLQE_PAIRS order, other pairs left out
    assert sample_per_pair(rows, 4) == got and len(sample_per_pair(rows, 0)) == 12
    si = [r for r in rows if r["meta"]["pair"] == "si-en"]
    worse = [100.0 - r["meta"]["da"] for r in si]  # a score that rises exactly as meaning is lost
    m = pair_row(si, worse, clean=[0.0, 1.0])
    assert m["spearman_da"] == pytest.approx(1.0) and m["spearman_hter"] > 0
    assert m["auroc_lowda_vs_clean_mt"] == 1.0  # DA 10 and 20 above the HTER-0, DA >= 70 outputs
    assert m["auroc_lowda_vs_clean_english"] == 1.0  # 90 and 80 above clean English's 0 and 1


def test_mlqe_da_benchmark_writes_its_table(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The command as documented, on a tiny corpus and the tiny random model: one row per pair and scorer, the
    clean-English flag rate, and a clear parser error when the held-back split is missing."""
    from benchmarks.mlqe_da import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [{**_da_record(p, i, da, 0.0 if da >= 70 else 0.6), "text": f"The {p} output number {i} is here."}
            for p in ("ro-en", "si-en") for i, da in enumerate([10, 25, 60, 75, 90, 95])]
    clean = [{"id": f"c{i}", "text": f"A clean sentence number {i}.", "source": "brown", "meta": {}} for i in range(5)]
    for name, recs in (("val_mlqe_doc", rows), ("val_clean", clean)):
        (corpus / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    out = tmp_path / "mlqe_da.md"
    assert main(["--model", str(tiny_model_dir), "--corpus", str(corpus), "--per-pair", "4", "--no-smollm2",
                 "--no-accurate", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| ") and "default" in line]
    assert [line.split(" | ")[0] for line in table] == ["| ro-en", "| si-en", "| all"]
    assert all(line.split(" | ")[1] == n for line, n in zip(table, ["4", "4", "8"]))
    assert "Clean English flagged at the default threshold" in text
    (corpus / "val_mlqe_doc.jsonl").unlink()
    with pytest.raises(SystemExit) as e:
        main(["--model", str(tiny_model_dir), "--corpus", str(corpus), "--no-smollm2", "--no-accurate"])
    assert e.value.code == 2


def test_fit_head_more_pairs_adds_a_pairwise_term() -> None:
    """MT-vs-post-edit pairs enter the fit as another (diffs, weight) term, next to BLiMP's."""
    from training.sense_head import fit_head

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] > 0).astype(float)
    group = np.zeros(400, dtype=int)
    diffs = np.abs(rng.normal(size=(150, 3))) * np.array([0, 0, 1.0])
    w0, _ = fit_head(x, y, group, l2=1e-3)
    w1, _ = fit_head(x, y, group, l2=1e-3, more_pairs=[(diffs, 5.0)])
    w2, _ = fit_head(x, y, group, l2=1e-3, more_pairs=[(diffs, 0.0), (diffs[:0], 5.0)])  # off / empty: no term
    assert w1[2] > 0.5 > abs(w0[2])
    assert w2 == pytest.approx(w0)


def _pe_record(i: int, pair: str, da: float, text: str, pe: str) -> dict:
    return {"id": f"mlqe_pe:{pair}-train:{i}", "source": "mlqe_pe", "text": text,
            "meta": {"pair": pair, "article": f"art{i}", "da": da, "hter": 0.0 if text == pe else 0.5, "pe": pe}}


def test_post_edit_pool_and_report() -> None:
    """The pool keeps outputs of articles not held back whose post-edit differs; the report counts, per pair, how
    often a damaged output (DA < 50) outscores its post-edit."""
    from training.sense_head import MLQE_PAIRS, held_back, post_edit_pool, post_edit_report

    recs = [_pe_record(i, "ro-en", 20.0 + i, f"MT {i}", f"PE {i}" if i % 3 else f"MT {i}") for i in range(60)]
    pool = post_edit_pool(recs + [{"source": "gum", "text": "x", "meta": {}}], n=1000, seed=0)
    assert pool and all(r["text"] != r["meta"]["pe"] and not held_back(r) for r in pool)
    assert len(pool) == sum(1 for r in recs if r["text"] != r["meta"]["pe"] and not held_back(r))
    assert post_edit_pool(recs, n=5, seed=0) == post_edit_pool(recs, n=5, seed=0) and len(post_edit_pool(recs, 5, 0)) == 5
    rows = [_pe_record(0, "et-en", 10.0, "a", "b"), _pe_record(1, "et-en", 40.0, "c", "d"),
            _pe_record(2, "et-en", 90.0, "e", "f")]
    rep = post_edit_report(rows, np.array([2.0, 0.0, 5.0]), np.array([1.0, 1.0, 0.0]))
    assert set(rep) == set(MLQE_PAIRS)
    assert rep["et-en"]["n_pairs_low_da"] == 2 and rep["et-en"]["pair_accuracy_low_da"] == 0.5
    assert rep["et-en"]["auroc_mt_vs_pe"] == pytest.approx(6.5 / 9)  # one tie (0 vs 0) counts half
    assert rep["ro-en"]["n_pairs_low_da"] == 0 and rep["ro-en"]["pair_accuracy_low_da"] != rep["ro-en"]["pair_accuracy_low_da"]


@pytest.mark.parametrize("per_source", [False, True], ids=["plain-sample", "per-source"])
def test_clean_group_per_source(per_source: bool) -> None:
    """--clean-per-source: every clean source gets an equal share of the clean group (all of a small one)."""
    from training.sense_head import CLEAN_SOURCES, training_groups

    sizes = {"brown": 900, "abc": 300, "gum": 60, "sotu": 60, "newstest_en": 12, "wmt21_ref_a": 20}
    train = [{"source": s, "label": "clean", "text": f"{s} {i}"} for s, n in sizes.items() for i in range(n)]
    clean = training_groups(train, n_clean=120, n_news=0, seed=0, clean_per_source=per_source)["clean"]
    got = {s: sum(1 for r, _ in clean if r["source"] == s) for s in CLEAN_SOURCES}
    assert sum(got.values()) <= 120 and all(t == 0 for _, t in clean)
    if per_source:
        assert got == {"brown": 20, "abc": 20, "gum": 20, "sotu": 20, "newstest_en": 12, "wmt21_ref_a": 20}
    else:
        assert got["newstest_en"] < 12 and got["brown"] > got["abc"]


def test_hard_negative_group_is_the_mined_clean_english(tmp_path: Path) -> None:
    """--hard-negatives: the clean English training records the mined file names, in corpus order; ids of MT or of
    records missing from the corpus are skipped."""
    from training.sense_head import hard_negative_group

    train = [{"id": f"gum-{i}", "source": "gum", "label": "clean", "text": f"g {i}"} for i in range(5)]
    train += [{"id": "mt-0", "source": "wmt21_news", "label": "clean", "text": "m"},
              {"id": "sotu-0", "source": "sotu", "label": "clean", "text": "s"}]
    mined = tmp_path / "mined.jsonl"
    mined.write_text("".join(json.dumps({"id": i, "source": "x", "score": 0.5}) + "\n"
                             for i in ("sotu-0", "gum-3", "mt-0", "gone-1", "gum-1")))
    assert [r["id"] for r in hard_negative_group(train, mined)] == ["gum-1", "gum-3", "sotu-0"]
