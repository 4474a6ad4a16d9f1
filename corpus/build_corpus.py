"""Build the training corpus from ../shared/data in one command.

    python -m corpus.build_corpus --data ../shared/data --out build/corpus

Writes one JSON-lines file per split (canonical records), ``stats.json`` and ``corpus/CORPUS.md``;
``val_mlqe_doc.jsonl`` is a copy of the MLQE-PE training outputs of the held-back Wikipedia articles, the
document-disjoint MLQE-PE set every report uses (they stay in ``train.jsonl``; no fit reads them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from .records import (
    AMBIGUOUS,
    BROAD,
    CLEAN,
    CLEAN_SOURCES,
    MAJOR,
    STRICT,
    DropLog,
    Record,
    check_span,
    hash_split,
    mlqe_held_back,
    norm_text,
    pick_held_out,
)
from .sources import MissingSourceError, iter_sources
from .synth import SynthConfig, generate

VAL_NEWS_FRACTION = 0.15
SPLIT_SALT = "mtdetect-v1"
MLQE_DOC_SPLIT = "val_mlqe_doc"
MQM_SOURCES = {"wmt20_news", "wmt21_news", "wmt21_ted", "bio_mqm"}


def assign_splits(records: list[Record]) -> None:
    """Document-level splits; every system output of one source document shares its split."""
    news_docs = {r.doc_id for r in records if r.source == "wmt21_news"}
    val_news = pick_held_out(news_docs, VAL_NEWS_FRACTION, SPLIT_SALT)
    bio_docs = {r.doc_id for r in records if r.source == "bio_mqm"}
    val_bio = pick_held_out(bio_docs, 0.15, SPLIT_SALT)
    for r in records:
        if r.source == "wmt20_news":
            r.split = "train"
        elif r.source == "wmt21_news":
            r.split = "val_news" if r.doc_id in val_news else "train"
        elif r.source == "wmt21_ted":
            r.split = "val_ted"
        elif r.source == "wmt22_dev":
            r.split = "val_wmt22"
        elif r.source == "bio_mqm":
            r.split = "val_bio" if r.doc_id in val_bio else "train"
        elif r.source == "mlqe_pe":
            r.split = "val_mlqe" if r.meta.get("official_split") == "dev" else "train"
        else:  # clean English, GUM included: 10% / 10% of documents by a fixed hash
            r.split = {"val": "val_clean", "test": "test_clean"}.get(hash_split(r.doc_id, SPLIT_SALT), "train")


def mlqe_doc_records(train: list[Record]) -> list[Record]:
    """MLQE-PE training outputs of the held-back articles (:func:`corpus.records.mlqe_held_back`), in corpus
    order: copied to the ``val_mlqe_doc`` split and left in ``train``, where every fit leaves them out."""
    return [r for r in train if r.source == "mlqe_pe" and mlqe_held_back(r.meta["pair"], r.meta["article"])]


def dedupe(records: list[Record], drops: DropLog) -> list[Record]:
    """Drop train records whose text also sits in an evaluation split; drop clean lines that MQM rates."""
    held = {norm_text(r.text) for r in records if r.split != "train"}
    mqm_texts = {norm_text(r.text) for r in records if r.source in MQM_SOURCES}
    out = []
    for r in records:
        t = norm_text(r.text)
        if r.source in CLEAN_SOURCES and t in mqm_texts:
            drops.drop(r.source, "clean line also rated in MQM data (label conflict or leakage)")
            continue
        if r.split == "train" and t in held:
            drops.drop(r.source, "train text duplicated in an evaluation split")
            continue
        out.append(r)
    return out


def stats_table(records: list[Record]) -> list[dict]:
    rows = []
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        groups[(r.split, r.source)].append(r)
    for (split, source), rs in sorted(groups.items()):
        labels = Counter(r.label for r in rs)
        lens = [s.end - s.start for r in rs for s in r.spans]
        major = [s for r in rs for s in r.spans if s.severity == MAJOR]
        cls = Counter(s.category for s in major)
        usable = labels[STRICT] + labels[BROAD] + labels[CLEAN]
        rows.append(
            {
                "split": split,
                "source": source,
                "records": len(rs),
                "docs": len({r.doc_id for r in rs}),
                "strict": labels[STRICT],
                "broad": labels[BROAD],
                "clean": labels[CLEAN],
                "ambiguous": labels[AMBIGUOUS],
                "pos_rate_broad": round((labels[STRICT] + labels[BROAD]) / usable, 3) if usable else None,
                "spans": len(lens),
                "major_fluency": cls.get("fluency", 0),
                "major_accuracy": cls.get("accuracy", 0),
                "major_other": cls.get("other", 0),
                "span_len_median": statistics.median(lens) if lens else None,
                "span_len_mean": round(statistics.mean(lens), 1) if lens else None,
            }
        )
    return rows


def write_markdown(path: Path, rows: list[dict], drops: DropLog, seconds: float, synth_cfg: SynthConfig,
                   artifact_counts: Counter[str], mlqe_doc: list[Record]) -> None:
    cols = ["split", "source", "records", "docs", "strict", "broad", "clean", "ambiguous", "pos_rate_broad",
            "spans", "major_fluency", "major_accuracy", "major_other", "span_len_median", "span_len_mean"]
    lines = [
        "# Corpus statistics",
        "",
        "Written by `python -m corpus.build_corpus --data ../shared/data --out build/corpus` "
        f"({seconds:.0f} s on this machine). Do not edit by hand.",
        "",
        "Labels: strict = at least one major fluency span; broad = major spans, none fluency; clean = no error;"
        " ambiguous = minor/neutral only (left out of segment metrics). `pos_rate_broad` = (strict+broad) /"
        " (strict+broad+clean). Span lengths in characters.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in rows:
        lines.append("| " + " | ".join("" if r[c] is None else str(r[c]) for c in cols) + " |")
    articles = {(r.meta["pair"], r.meta["article"]) for r in mlqe_doc}
    lines += ["", f"`{MLQE_DOC_SPLIT}.jsonl`: {len(mlqe_doc)} MLQE-PE training outputs of {len(articles)} held-back "
              "Wikipedia articles (a fifth of each pair's, `corpus.records.mlqe_held_back`), copied from the "
              "train rows above, where every fit leaves them out: the document-disjoint MLQE-PE report set."]
    lines += ["", "## Spans located (kept) and rows or spans dropped, per source", "", "| source | what | count |",
              "|---|---|---|"]
    for (s, w), n in sorted(drops.kept.items()):
        lines.append(f"| {s} | kept: {w} | {n} |")
    for s, w, n in drops.rows():
        lines.append(f"| {s} | dropped: {w} | {n} |")
    located = sum(n for (s, w), n in drops.kept.items() if s == "wmt20_news" and w.startswith("major"))
    typed = drops.counts.get(("wmt20_news", "major omission text typed in by the rater (not in the MT output)"), 0)
    lost = sum(n for (s, w), n in drops.counts.items() if s == "wmt20_news" and w.startswith("major")) - typed
    lines += [
        "",
        "## WMT20 major spans",
        "",
        f"- located: {located}; not located: {lost} ({100 * located / max(1, located + lost):.2f}% of the major spans"
        " that refer to MT output).",
        f"- omission spans whose text the rater typed into the target (not MT output, cannot be located): {typed};"
        f" counting those too, {100 * located / max(1, located + lost + typed):.2f}% located.",
        "",
        "## Synthetic artifacts",
        "",
        f"Seed {synth_cfg.seed}, {synth_cfg.n_windows} train windows, corruption share {synth_cfg.p_corrupt}.",
        "",
        "| artifact | spans |",
        "|---|---|",
    ]
    for a, n in sorted(artifact_counts.items()):
        lines.append(f"| {a} | {n} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build(data: Path, out: Path, synth_cfg: SynthConfig, markdown: Path | None) -> dict:
    t0 = time.time()
    drops = DropLog()
    records: list[Record] = []
    for name, recs in iter_sources(data, drops):
        print(f"[corpus] {name}: {len(recs)} records", file=sys.stderr)
        records.extend(recs)
    assign_splits(records)
    records = dedupe(records, drops)
    for r in records:
        for s in r.spans:
            check_span(r.text, s, None)
    clean_train = [r for r in records if r.source in CLEAN_SOURCES and r.split == "train"]
    clean_val = [r for r in records if r.source in CLEAN_SOURCES and r.split == "val_clean"]
    synth_train = generate(clean_train, synth_cfg, "synth_train")
    val_cfg = SynthConfig(**{**synth_cfg.__dict__, "n_windows": max(500, synth_cfg.n_windows // 10)})
    synth_val = generate(clean_val, val_cfg, "synth_val")
    records.extend(synth_train)
    records.extend(synth_val)
    out.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_split[r.split].append(r)
    for split, rs in sorted(by_split.items()):
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rs:
                f.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    mlqe_doc = mlqe_doc_records(by_split["train"])
    with open(out / f"{MLQE_DOC_SPLIT}.jsonl", "w", encoding="utf-8") as f:
        for r in mlqe_doc:
            f.write(json.dumps({**r.to_json(), "split": MLQE_DOC_SPLIT}, ensure_ascii=False) + "\n")
    rows = stats_table(records)
    artifacts = Counter(s.artifact for r in synth_train for s in r.spans)
    seconds = time.time() - t0
    stats = {"rows": rows, "dropped": drops.rows(), "kept": sorted([s, w, n] for (s, w), n in drops.kept.items()),
             "seconds": round(seconds, 1), "synth": synth_cfg.__dict__}
    (out / "stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    if markdown:
        write_markdown(markdown, rows, drops, seconds, synth_cfg, artifacts, mlqe_doc)
    print(f"[corpus] wrote {len(records)} records to {out} in {seconds:.0f} s", file=sys.stderr)
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("build/corpus"))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--synthetic", type=int, default=30000, help="synthetic train windows")
    ap.add_argument("--p-corrupt", type=float, default=0.5, help="share of synthetic windows with artifacts")
    ap.add_argument("--markdown", type=Path, default=Path(__file__).resolve().parent / "CORPUS.md")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: data folder {args.data} not found: expected the shared data pack (wmt20-zhen-mqm/, "
              "wmt21-zhen-mqm/, clean-english/, ... see its README.md); pass --data", file=sys.stderr)
        return 2
    cfg = SynthConfig(seed=args.seed, n_windows=args.synthetic, p_corrupt=args.p_corrupt)
    try:
        build(args.data, args.out, cfg, args.markdown)
    except MissingSourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
