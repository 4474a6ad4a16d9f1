"""The model card: MODEL_CARD.md written from a finalized folder's config and metrics (the prose half of
``training.finalize``; ``python -m training.finalize --card-only`` rewrites it without scoring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from detector.evaluation import fmt
from detector.network import RARITY_CAP, ModelFolder

from .categories import markdown as categories_markdown
from .search import CHOICE_SETS, QUIET_MAX_RATE, QUIET_UNBOUND, REPORT_SETS

VERSIONS = {
    "1.0.0": "first trained model; spans anywhere at span threshold 0.21",
    "1.1.0": "same weights as 1.0.0 (same training run); span gate and span threshold searched together, spans"
             " split at passage boundaries",
    "1.3.0": "same weights again; spans cut from the error probability 1 - P(ok) instead of P(fluency) (span score"
             " searched with threshold and gate), each span labelled fluency or accuracy",
    "1.3.1": "same weights and the same finalize rules as 1.3.0; config.json written by the one schema writer"
             " (ModelConfig.to_dict: the unread keys accuracy_span_threshold and dtype are gone) and every metric"
             " recomputed through detector.evaluation (undefined values are n/a, not 0)",
    "1.4.0": "same weights and finalize rules; passages identified as another language than English are marked with"
             " their language and not scored, span edges snap to whole characters as people see them (graphemes)",
    "1.5.0": "same encoder and heads; a third passage output, the sense head (a logistic unit on the passage"
             " features fitted on MLQE-PE direct assessments, clean English and news: training.sense_head); every"
             " choice (calibration weights, flag threshold, span rule) made on all labelled validation sources at"
             " once, with at most 1% of each clean English source flagged or carrying a span; leave-one-source-out"
             " report; model.onnx for the default ONNX Runtime backend",
    "1.6.0": "same encoder and heads; the sense head refitted on every MLQE-PE training output with DA as a soft"
             " target (1 at DA <= 30, 0 at DA >= 70) and the MLQE-PE group weighted 3 against clean English and"
             " news (training.sense_head --soft-da --mlqe-weight 3); choices as for 1.5.0",
    "1.6.1": "same encoder and heads; the sense head refitted as for 1.6.0 plus a pairwise term ranking each"
             " MLQE-PE training output rated DA < 50 above its own human post-edit (training.sense_head --soft-da"
             " --mlqe-weight 3 --pe-pair-weight 0.3); choices as for 1.5.0",
    "1.7.0": "same encoder and heads as 1.6.1; a fourth term in the passage probability, word rarity (how rare the"
             " passage's rarest word is in English, from wordfreq's word list shipped as word_zipf.json.gz:"
             " training.word_table), its weight chosen with the others by the macro AUROC; choices as for 1.5.0",
    "1.7.1": "same weights, calibration and default settings as 1.7.0; a second operating point, quiet (the flag"
             " threshold that flags at most 1% of each English-original val_clean source, the span gate raised to"
             " it), in config.json's operating_points",
    "1.8.0": "same weights as 1.7.0, calibration refitted by the same rules (passages flagged by the new rule"
             " categories and the stricter language rule enter the fit); the default settings follow 1.7.1's quiet"
             " rule (at most 1% of each English-original val_clean source flagged) and the macro rule's settings are"
             " the recall point; rule categories"
             " (repetition, untranslated) and a not_english status; the accurate mode is the fused mode"
             " (fusion.json: SmolLM2-135M as an ONNX second reader, training.fusion)",
}


def write_card(folder: Path) -> None:
    """Rewrite MODEL_CARD.md of a finalized model folder from its config.json and metrics.json (no scoring); the
    accurate-mode section that ``training.fusion`` wrote into the old card is kept, before the licence."""
    cfg = json.loads((folder / "config.json").read_text())
    full = json.loads((folder / "metrics.json").read_text())
    card = folder / "MODEL_CARD.md"
    text = model_card(cfg, full, full["train_config"])
    ModelFolder(folder).write_text(card.name, keep_accurate_section(card.read_text(encoding="utf-8")
                                                                    if card.is_file() else "", text))


ACCURATE_HEADING = "## Accurate mode (fusion.json: the second reader)"


def keep_accurate_section(old: str, new: str) -> str:
    """``new`` with the accurate-mode section of ``old`` (written by ``training.fusion``), before the licence."""
    if ACCURATE_HEADING not in old:
        return new
    a = old.index(ACCURATE_HEADING)
    b = old.find("\n## ", a + len(ACCURATE_HEADING))
    section = old[a : b + 1] if b >= 0 else old[a:].rstrip("\n") + "\n\n"
    at = new.find("## Licence")
    return new[:at] + section + "\n" + new[at:] if at >= 0 else new.rstrip("\n") + "\n\n" + section


def _f(x: Any) -> str:
    return fmt(x)


def _rates(m: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v['flag_rate'] * 100:.1f}%" for k, v in m.get("by_source", {}).items())


def source_table(full: dict) -> tuple[str, str]:
    """The per-source table the card leads with, and the name of the worst source (lowest broad AUROC)."""
    m = full["metrics"]
    lines = ["| source | n | AUROC broad (95% CI) | span F1 (95% CI) | flag recall | flag precision | clean flagged |",
             "|---|---|---|---|---|---|---|"]
    worst = None
    for split in CHOICE_SETS:
        if split not in m:
            continue
        r = m[split]
        ci = r.get("auroc_broad_ci")
        sci = r.get("span_f1_ci")
        lines.append(f"| {split} | {r['n']} | {_f(r['auroc_broad'])}" + (f" ({_f(ci[0])}-{_f(ci[1])})" if ci else "")
                     + f" | {_f(r['span_f1'])}" + (f" ({_f(sci[0])}-{_f(sci[1])})" if sci else "")
                     + f" | {_f(r['flag_recall'])} | {_f(r['flag_precision'])} | {_f(r['clean_flag_rate'])} |")
        if worst is None or r["auroc_broad"] < m[worst]["auroc_broad"]:
            worst = split
    macro = [m[k]["auroc_broad"] for k in CHOICE_SETS if k in m]
    spans = [m[k]["span_f1"] for k in CHOICE_SETS if k in m]
    lines.append(f"| **macro** | | {_f(sum(macro) / len(macro))} | {_f(sum(spans) / len(spans))} | | | |")
    return "\n".join(lines), worst or "n/a"


def points_section(cfg: dict, full: dict) -> str:
    """The card's operating-points table: the default and each named point, per source."""
    points = full.get("operating_points") or {}
    if not points:
        return ""
    m = full["metrics"]
    labelled = [k for k in CHOICE_SETS if k in m]
    default = {"settings": {k: cfg[k] for k in ("threshold", "span_gate")}, "seed_article": full["seed_article"],
               **{k: m[k] for k in (*labelled, "val_clean", "test_clean") if k in m}}
    lines = ["| point | threshold | span gate | flag recall " + " / ".join(x.removeprefix("val_") for x in labelled)
             + " | flag precision (same) | val_clean flagged | test_clean flagged | seed article |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in [("default", default), *points.items()]:
        rec = " / ".join(_f(r[k]["flag_recall"]) for k in labelled)
        prec = " / ".join(_f(r[k]["flag_precision"]) for k in labelled)
        seed = r.get("seed_article")
        lines.append(f"| {name} | {r['settings']['threshold']} | {r['settings']['span_gate']} | {rec} | {prec} | "
                     f"{_rates(r['val_clean'])} | {_rates(r['test_clean'])} | "
                     f"{'n/a' if not seed else 'passes' if seed['passed'] else 'fails'} |")
    rules = "; ".join(f"`{k}`: {v['rule']}" for k, v in points.items())
    return ("\n## Operating points\n\nSame probabilities, other decisions (`Detector.load(operating_point=NAME)`, "
            "`mtdetect score --operating-point NAME`); " + rules + ".\n\n" + "\n".join(lines) + "\n")


def loso_table(full: dict) -> str:
    loo = full.get("leave_one_source_out") or {}
    if not loo:
        return "(not run)"
    m = full["metrics"]
    lines = ["| held-out source | AUROC broad | span F1 | flag recall | flag precision | threshold | span threshold "
             "| gate | sense weight | span F1 with all sources |", "|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in loo.items():
        lines.append(f"| {k} | {_f(r['auroc_broad'])} | {_f(r['span_f1'])} | {_f(r['flag_recall'])} "
                     f"| {_f(r['flag_precision'])} | {r['threshold']} | {r['span_threshold']} | {r['span_gate']} "
                     f"| {_f(r['sense_weight'])} | {_f(m[k]['span_f1'])} |")
    return "\n".join(lines)


def sense_table(full: dict) -> str:
    sense = full.get("sense_head")
    if not sense:
        return "This model has no sense head."
    lines = ["| pair | n | low-DA | Spearman with DA: sense / passage logit | Spearman with HTER: sense / passage "
             "| AUROC low-DA vs clean MT: sense / passage | AUROC low-DA vs clean English: sense |",
             "|---|---|---|---|---|---|---|"]
    for pair, r in sense["mlqe_held_back"].items():
        lines.append(f"| {pair} | {r['n']} | {r['n_low_da']} | {_f(r['sense_spearman_da'])} / "
                     f"{_f(r['passage_spearman_da'])} | {_f(r['sense_spearman_hter'])} / "
                     f"{_f(r['passage_spearman_hter'])} | {_f(r['sense_auroc_lowda_vs_clean_mt'])} / "
                     f"{_f(r['passage_auroc_lowda_vs_clean_mt'])} | {_f(r['sense_auroc_lowda_vs_clean_english'])} |")
    groups = ", ".join(f"{k} {v['n']} ({v['positives']} positive)" for k, v in sense["groups"].items())
    acc = sense.get("acceptability")
    extra = ("" if not acc else
             f"\n\nAcceptability of the sense logit (`corpus.acceptability`): BLiMP pair accuracy "
             f"{_f(acc['blimp_pair_accuracy_held_back'])} on {acc['blimp_pairs_held_back']} pairs of held-back "
             f"paradigms ({_f(acc['blimp_pair_accuracy_fit_paradigms'])} on the others); CoLA AUROC unacceptable vs "
             f"acceptable {_f(acc['cola_in_domain_dev_auroc'])} (in-domain dev), "
             f"{_f(acc['cola_out_of_domain_dev_auroc'])} (out-of-domain dev). See docs/blimp.md for SmolLM2's.")
    how = (f"Trained with the encoder (`training.train`, config `sense_head: true`, `mlqe_da: true`: the MLQE-PE "
           f"outputs of the other articles, DA as a soft target), kept as trained and reported by `{sense['command']}`"
           if sense.get("kept_head") else f"Fitted by `{sense['command']}` on {groups}")
    return (f"{how}; evaluated on {sense['held_back_mlqe_records']} MLQE-PE training outputs from held-back "
            "Wikipedia articles (a fifth of each pair's articles, never trained or fitted on):\n\n"
            + "\n".join(lines) + extra)


def rule_flags(th: dict) -> str:
    """finalize's options for the clean-English rules recorded in a metrics.json's thresholds (defaults left out)."""
    flags = []
    if th.get("clean_rule", "pooled") != "pooled":
        flags.append(f"--clean-rule {th['clean_rule']}")
    if th.get("max_flag", 0.02) != 0.02:
        flags.append(f"--max-clean-flag-rate {th['max_flag']:g}")
    if th.get("max_span", 0.01) != 0.01:
        flags.append(f"--max-clean-span-rate {th['max_span']:g}")
    if th.get("clean_unbound"):
        flags.append(f"--clean-unbound {','.join(th['clean_unbound'])}")
    if th.get("quiet_rate", QUIET_MAX_RATE) != QUIET_MAX_RATE:
        flags.append(f"--quiet-max-rate {th['quiet_rate']:g}")
    if th.get("quiet_unbound", list(QUIET_UNBOUND)) != sorted(QUIET_UNBOUND):
        flags.append(f"--quiet-unbound {','.join(th['quiet_unbound'])}")
    return "".join(" " + f for f in flags)


def finalize_commands(cfg: dict, full: dict, train_cfg: dict) -> str:
    """The commands between training and export: the sense head's (as recorded), the word table's (for a model
    with one) and finalize's, with the clean-English rules it was run with."""
    src = f"build/models/{train_cfg.get('name', cfg['name'])}"
    sense = full.get("sense_head")
    tail = f" --out models --name {cfg['name']} --version {cfg['version']}{rule_flags(full.get('thresholds', {}))}"
    lines = []
    if sense:
        lines.append(sense["command"])
        words = sense["command"].split()
        src = words[words.index("--out") + 1] if "--out" in words else src
    if cfg.get("word_table"):
        lines.append(f"python -m training.word_table --from {src} --model build/rarity/{cfg['name']}")
        src = f"build/rarity/{cfg['name']}"
    return "\n".join([*lines, f"python -m training.finalize --model {src}{tail}"])


def word_note(cfg: dict) -> str:
    """The card's words on the word-rarity term (empty for a model without a word table)."""
    if not cfg.get("word_table"):
        return ""
    return f"""
- Word rarity: {RARITY_CAP:g} minus the Zipf frequency of the passage's rarest word (0 for a word missing from the
  table), read from `{cfg['word_table']}`: the English word list of wordfreq {wordfreq_note()}, built by
  `python -m training.word_table`. Its data is licensed CC BY-SA 4.0 (wordfreq's README; sources include
  Wikipedia, OpenSubtitles, SUBTLEX and others); the code that reads it is this project's."""


def licence_note(cfg: dict) -> str:
    if not cfg.get("word_table"):
        return ""
    return (f"\nWord list `{cfg['word_table']}`: derived from wordfreq's English data, CC BY-SA 4.0 (attribution:"
            " wordfreq, Robyn Speer; its sources are listed in wordfreq's README); shared under the same licence.")


def wordfreq_note() -> str:
    try:
        from importlib.metadata import version
        return version("wordfreq")
    except Exception:  # noqa: BLE001 - only a label in the card
        return "(version unknown)"


def default_rule_note(full: dict) -> str:
    th = full["thresholds"]
    budget = (f"subject to at most {th['max_flag'] * 100:.0f}% of clean English records flagged and at most "
              f"{th['max_span'] * 100:.0f}% carrying a span, "
              + ("on each clean source" if th.get("clean_rule") == "per-source" else "over val_clean as a whole"))
    if th.get("default_rule"):
        return (f"(the default's rule: {th['default_rule']}; the span rule and the `recall` operating point are the "
                f"macro rule's: best mean F1 / mean span F1 over the labelled sources, {budget}).")
    return f"(best mean F1 / mean span F1 over the labelled sources, {budget})."


def seed_note(seed: dict | None) -> str:
    if not seed:
        return "The seed article was not next to the project in this run: not measured."
    return (f"Gold rule passed: **{seed['passed']}** (must_flag spans hit: {json.dumps(seed['must_flag_hit'])}; "
            f"other sentences touched: {seed['other_sentences_touched']}).\n\nSpans: "
            + json.dumps([(s["text"], round(s["score"], 3)) for s in seed["spans"]], ensure_ascii=False))


def categories_section(full: dict) -> str:
    """The card's words on the rule categories (issue #32) and on how much the score follows length."""
    out = ["\n## Rule categories and length\n",
           "Spans of category `repetition` (loops of a word, phrase or clause) and `untranslated` (runs of another "
           "script, `<unk>`-style tokens, a passage in another language inside English text) come from rules "
           "(`detector._rules`), next to the network's `fluency` and `accuracy` spans; a passage a rule flags gets at "
           "least probability 0.99. A text with no English passage has status `not_english` (not scored)."]
    cats = full.get("categories")
    if cats:
        out += ["", "Measured on cases built from held-back records (`python -m training.categories`; "
                "`training/categories.py` says how):", "", categories_markdown(cats)]
    length = full.get("length") or {}
    if length:
        out += ["", "| point | Spearman score vs words, human English | the same, garbled MT | recall on garbled "
                "outputs of at most 8 words (n) |", "|---|---|---|---|"]
        for name, r in length.items():
            out.append(f"| {name} | {_f(r['spearman_words_human'])} | {_f(r['spearman_words_garbled'])} | "
                       f"{_f(r['short_garbled_recall'])} ({r['short_garbled_n']}) |")
    return "\n".join(out) + "\n"


def model_card(cfg: dict, full: dict, train_cfg: dict) -> str:
    m = full["metrics"]
    lead, worst = source_table(full)
    rows = []
    names = {s: n for s, n, _ in REPORT_SETS}
    cols = ["auroc_strict", "auroc_broad", "auprc_strict", "auprc_broad", "ece_strict", "span_precision",
            "span_recall", "span_f1", "span_f1_major", "span_f1_fluency", "word_mcc", "flag_precision",
            "flag_recall", "pair_acc_strict_clean", "pair_acc_broad_clean"]
    for split in [s for s, _, _ in REPORT_SETS if s in m]:
        r = m[split]
        rows.append(f"| {split} | {r['n']} | " + " | ".join(_f(r.get(c)) for c in cols) + " |")
    seed = full["seed_article"]
    vc, tc = m["val_clean"], m["test_clean"]
    hist = "\n".join(
        f"| {h['epoch']} | {_f(h['auroc_strict'])} | {_f(h['auroc_broad'])} | {_f(h.get('span_f1', h.get('span_f1_all')))} |"
        for h in full["train_history"])
    return f"""# Model card: {cfg['name']} {cfg['version']}

Finds garbled machine-translated passages in English text, monolingually (no source text).

## Per source (every choice made on all of these, each weighing the same)

{lead}

Worst source: **{worst}** (lowest broad-label AUROC). Clean English flagged per source (val_clean; budget
{full['thresholds']['max_flag'] * 100:.0f}% flagged and {full['thresholds']['max_span'] * 100:.0f}% with a span,
{'on each source' if full['thresholds'].get('clean_rule') == 'per-source' else 'over val_clean as a whole'}):
{_rates(m['val_clean'])}; test_clean (never used for a choice): {_rates(m['test_clean'])}.

Leave one source out: the same choices made without the source, measured on it.

{loso_table(full)}

"Makes no sense" head (MLQE-PE direct assessments):

{sense_table(full)}
{points_section(cfg, full)}{categories_section(full)}
## Architecture

- Encoder: {cfg['base_model']} — BERT, 6 layers x 384, uncased WordPiece vocabulary, fine-tuned.
- Case/shape input: a learned embedding per token of (case class x preceding whitespace x follows a sentence end),
  added to the word embeddings, so the uncased encoder sees "people. common sense." and "Mentally".
- Token head: ok / fluency / accuracy. Passage head: P(garbled) from mean/max pooled passage states and the
  passage's fluency-token probabilities (a second output, P(any major error), is trained but not used).
- Input windows: each passage plus up to {cfg['context_tokens']} tokens of neighbouring text on each side,
  at most {cfg['max_length']} tokens; weights stored in fp16 (`model.safetensors`).
- Passage probability: sigmoid(a * garbled_logit + c * any_major_logit + d * sense_logit + e * word_rarity + b)
  (a={full['calibration']['a']:.3f}, c={full['calibration']['c']:.3f}, d={full['calibration'].get('d', 0.0):.3f},
  e={full['calibration'].get('e', 0.0):.3f}, b={full['calibration']['b']:.3f}): c/a, d/a and e/a chosen by the mean
  broad-label AUROC over the labelled sources, a and b by logistic regression on broad vs clean records with every
  source (and clean English) weighing the same.{word_note(cfg)}
- Thresholds: passage flag `{cfg['threshold']}`, span `{cfg['span_threshold']}` {default_rule_note(full)}
- Span score `{cfg.get('span_score', 'fluency')}`: spans are runs of tokens whose
  {'error probability 1 - P(ok) (each span labelled fluency or accuracy by the class with more probability over it)' if cfg.get('span_score') == 'error' else 'fluency probability'}
  is at least the span threshold. Span gate `{cfg.get('span_gate', 0.0)}`: spans are reported only inside passages
  whose probability is at least the gate (0 = anywhere). Span score, threshold and gate are searched together
  (gate 0 or one of 12 quantiles, 30% to 95%, of the labelled records' calibrated scores; at most 800 evenly spaced
  records per source in that search).
  {'The seed article passing its gold rule was a constraint of that search (it is the acceptance example, so its result below is not an independent test).' if full['thresholds'].get('require_seed') else ''}

## Training

```bash
python -m corpus.build_corpus --data ../shared/data --out build/corpus
python -m training.train --config training/configs/{train_cfg.get('config_file', 'minilm_shape.yaml')} --out build/models
{finalize_commands(cfg, full, train_cfg)}
python -m training.export_onnx --model models/{cfg['name']}
```

Versions: {'; '.join(f'{k}: {v}' for k, v in VERSIONS.items())}.

Seed {train_cfg['seed']}, {train_cfg['epochs']} epochs at most (early stopping on val_news), batch
{train_cfg['batch_size']}, lr {train_cfg['lr']} (heads {train_cfg['head_lr']}), 2 CPU threads,
{full['train_seconds'] // 60} minutes. Records per epoch (resampled windows and target passages each epoch):
{', '.join(f'{k} {v}' for k, v in train_cfg['per_epoch'].items())}.

Data (see `training/README.md` for the label policy and `corpus/CORPUS.md` for counts): WMT20 and WMT21 zh-en
news MQM (Google; Apache-2.0 annotations), Bio-MQM dev documents (Apache-2.0), fluent MLQE-PE outputs (CC0),
clean English from GUM (CC-BY/CC-BY-SA genres), Brown (non-commercial use), ABC (no licence stated), State of the
Union (public domain), newstest2021 English; synthetic artifacts generated over the clean train documents.
Licence caveat: Brown's "non-commercial" terms and ABC's missing licence carry over to anyone redistributing a
model trained on them.

Validation during training:

| epoch | AUROC strict | AUROC broad | span F1 |
|---|---|---|---|
{hist}

## Validation metrics

Every figure comes from `detector.evaluation` (the module behind `mtdetect eval` and the benchmarks), on the
product's own decisions (`Detector.decide`): segment score = max passage probability of the record's text scored
alone; strict: strict vs clean; broad: strict+broad vs clean. Span metrics: character-level, micro-averaged,
binary, predicted spans vs gold spans (`span_*` = every annotated span, `*_major` = major ones, `*_fluency` =
fluency spans of any severity). Word MCC: OK/BAD per whitespace word vs all gold spans. Flag precision/recall: of
`flagged` at the threshold, on broad labels. n/a = undefined (a zero denominator). Pair accuracy: over pairs of outputs of the same source segment by different MT systems, the share
where the worse-labelled one (strict vs clean; strict or broad vs clean) scores higher; 0.5 is chance. It cannot
be won by length or by how hard a source sentence is, which the AUROC can.

| set | n | {' | '.join(cols)} |
|---|---|{'---|' * len(cols)}
{chr(10).join(rows)}

Clean human English (val_clean, {vc['n']} records): {vc['clean_flag_rate'] * 100:.2f}% flagged,
{vc['clean_span_rate'] * 100:.2f}% carry a span. Per source flag rate: {_rates(vc)}.
test_clean ({tc['n']} records, not used for any choice): {tc['clean_flag_rate'] * 100:.2f}% flagged,
{tc['clean_span_rate'] * 100:.2f}% carry a span. Per source flag rate: {_rates(tc)}.

Set names: {'; '.join(f'{k}: {v}' for k, v in names.items())}.

## Seed article (`../shared/examples/russia-china-article.txt`)

{seed_note(seed)}

## Limitations

- Trained mostly on Chinese-to-English news; TED (short spoken segments), biomedical text and other source
  languages score lower (table above). From 1.5.0 every choice is made on all labelled sources at once, with at
  most {full['thresholds']['max_flag'] * 100:g}% of clean English flagged {'on each clean source' if full['thresholds'].get('clean_rule') == 'per-source' else 'over val_clean as a whole (per-source rates above)'},
  so recall on MT is low at the default threshold (rank by the score, or lower `--threshold`, when recall matters
  more than silence on human English).
- The sense head is linear on frozen features: its Spearman correlation with human "makes no sense" judgments
  (MLQE-PE DA) on held-back articles is 0.15-0.30 (table above); fluent-looking nonsense is still mostly missed.
- Monolingual: fluent mistranslations (wrong meaning, wrong names) are out of reach by design; the accuracy class is
  predicted but accuracy spans are not reported by default.
- MQM span labels are sparse and noisy (one to three raters), so span precision/recall are bounded by annotation
  agreement.
- English only; other languages in the input are treated as untranslated text.

## Licence

Code: Apache-2.0. Base encoder weights: all-MiniLM-L6-v2 (Apache-2.0). Training data licences as listed above.{licence_note(cfg)}
"""
