"""Score mtdetect and its peer baselines on the same validation data; write docs/benchmarks.md and plots.

    python -m benchmarks.run --corpus build/corpus --n 600

Needs the corpus (``python -m corpus.build_corpus``) and the baseline packages
(``pip install -r benchmarks/requirements.txt``). Every figure in docs/benchmarks.md comes from the last run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.records import read_records
from detector import Detector, RawScores
from detector.evaluation import EvalRecord, Prediction, evaluate, fmt, gold_rule, jsonable

from .baselines import Output, choose_span_threshold, choose_threshold, make, spans_at

SETS = [("val_news", "WMT21 news zh-en (held-back docs)"), ("val_ted", "WMT21 TED zh-en (out of domain)"),
        ("val_wmt22", "WMT22 QE zh-en dev"), ("val_bio", "Bio-MQM dev (6 source languages)"),
        ("val_mlqe", "MLQE-PE dev (5 source languages, post-edit labels)")]
THROUGHPUT_START, THROUGHPUT_END = "<!-- throughput:start -->", "<!-- throughput:end -->"
SYSTEMS = ["mtdetect", "mtdetect-accurate", "mtdetect-recall", "rules", "gector", "smollm2"]
#: mtdetect's rows: how each loads the shipped model (the recall operating point: the default's scores, other decisions)
MTDETECT: dict[str, dict[str, Any]] = {"mtdetect": {}, "mtdetect-accurate": {"accurate": True},
                                       "mtdetect-recall": {"operating_point": "recall"}}
SAME_SCORES = {"mtdetect-recall": "mtdetect"}  # no curves or speed of their own: the same network and scores
SEED = Path(__file__).resolve().parents[2] / "shared" / "examples"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Scored:
    """One record's gold side and one system's prediction for it."""

    record: EvalRecord
    pred: Prediction

    @property
    def label(self) -> str:
        return self.record.label

    @property
    def score(self) -> float:
        return self.pred.score


def evaluated(items: list[Scored], bootstrap: int) -> dict[str, Any]:
    return evaluate([s.record for s in items], [s.pred for s in items], bootstrap=bootstrap)


class System:
    """Uniform wrapper: mtdetect or a baseline with thresholds fitted on training records."""

    det: Detector  # mtdetect rows only

    def __init__(self, name: str, train: list[dict], same_scores: System | None = None) -> None:
        """``same_scores``: the already loaded mtdetect row whose network this row shares (see ``SAME_SCORES``):
        its detector at this row's operating point and its raw scores, so the network runs once for both."""
        self.name = name
        self.raw: dict[str, RawScores] = {}  # mtdetect: raw network scores by text (they depend on the text only)
        if name in MTDETECT:
            if same_scores is None:
                self.det = Detector.load(**MTDETECT[name])
            else:
                base = same_scores.det
                self.det = base.with_settings(base.config.operating_point(MTDETECT[name]["operating_point"]))
                self.raw = same_scores.raw
            point = self.det.operating_point
            mode = ", --accurate" if self.det.accurate else (f", {point} point" if point != "default" else "")
            self.label = f"mtdetect ({self.det.config.name} {self.det.config.version}{mode})"
            return
        self.impl = make(name)
        self.label = self.impl.name
        texts = [r["text"] for r in train]
        ys = [1 if r["label"] == "strict" else 0 for r in train]
        if hasattr(self.impl, "fit"):
            self.impl.fit(texts, ys)
        outs = self.impl.score(texts)
        self.threshold = choose_threshold([o.score for o in outs], ys)
        self.span_threshold = choose_span_threshold(texts, outs, [[(s["start"], s["end"]) for s in r["spans"]]
                                                                   for r in train])

    def score(self, rows: list[dict]) -> list[Scored]:
        texts = [r["text"] for r in rows]
        if self.name in MTDETECT:
            todo = [x for x in dict.fromkeys(texts) if x not in self.raw]
            self.raw.update(zip(todo, self.det.score_raw(todo, batch_size=32)))
            preds = [Prediction.of(self.det.decide(self.raw[x])) for x in texts]
        else:
            outs: list[Output] = self.impl.score(texts)
            preds = [Prediction(o.score, o.score >= self.threshold, tuple(spans_at(t, o.tokens, self.span_threshold)))
                     for t, o in zip(texts, outs)]
        return [Scored(EvalRecord.from_dict(r), p) for r, p in zip(rows, preds)]


def speed(system: str, sentences: Path) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--system", system, "--sentences", str(sentences)],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if r.returncode != 0:
        return {"system": system, "error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def plots(out: Path, curves: dict[str, dict[str, list[Scored]]], mt: dict[str, list[Scored]],
          clean: list[Scored]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for split, per_sys in curves.items():
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
        for name, sc in per_sys.items():
            items = [s for s in sc if s.label in ("strict", "broad", "clean")]
            ys = [1 if s.label != "clean" else 0 for s in items]
            xs = [s.score for s in items]
            if not ys or sum(ys) in (0, len(ys)):
                continue
            fpr, tpr = _roc(xs, ys)
            axes[0].plot(fpr, tpr, label=name)
            rec, prec = _pr(xs, ys)
            axes[1].plot(rec, prec, label=name)
        axes[0].plot([0, 1], [0, 1], "k:", lw=0.8)
        axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, broad labels: {split}")
        axes[1].set(xlabel="recall", ylabel="precision", title=f"Precision-recall, broad labels: {split}")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        f = f"roc_pr_{split}.png"
        fig.savefig(out / f, dpi=90)
        plt.close(fig)
        files.append(f)
    fig, ax = plt.subplots(figsize=(6, 4))
    news = mt.get("val_news", [])
    for lab, sel in (("strict (garbled)", [s.score for s in news if s.label == "strict"]),
                     ("clean MT (news)", [s.score for s in news if s.label == "clean"]),
                     ("clean human English", [s.score for s in clean])):
        ax.hist(sel, bins=20, range=(0, 1), alpha=0.5, density=True, label=lab)
    ax.set(xlabel="mtdetect score", ylabel="density", title="Score histogram, garbled vs clean")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "score_histogram.png", dpi=90)
    plt.close(fig)
    files.append("score_histogram.png")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    items = [s for s in news if s.label in ("strict", "clean")]
    bins: list[list[Scored]] = [[] for _ in range(10)]
    for s in items:
        bins[min(9, int(s.score * 10))].append(s)
    xs = [sum(s.score for s in b) / len(b) for b in bins if b]
    shares = [sum(s.label == "strict" for s in b) / len(b) for b in bins if b]
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.plot(xs, shares, "o-")
    ax.set(xlabel="mean predicted probability", ylabel="share strict-garbled", title="Reliability, val_news (strict)")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=90)
    plt.close(fig)
    files.append("reliability.png")
    return files


def _roc(xs: list[float], ys: list[int]) -> tuple[list[float], list[float]]:
    order = sorted(range(len(xs)), key=lambda i: -xs[i])
    P, N = sum(ys), len(ys) - sum(ys)
    tp = fp = 0
    fpr, tpr = [0.0], [0.0]
    for i in order:
        tp += ys[i]
        fp += 1 - ys[i]
        fpr.append(fp / N)
        tpr.append(tp / P)
    return fpr, tpr


def _pr(xs: list[float], ys: list[int]) -> tuple[list[float], list[float]]:
    order = sorted(range(len(xs)), key=lambda i: -xs[i])
    P = sum(ys)
    tp = 0
    rec, prec = [], []
    for k, i in enumerate(order, start=1):
        tp += ys[i]
        rec.append(tp / P)
        prec.append(tp / k)
    return rec, prec


def f(x: Any) -> str:
    return fmt(x)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--n", type=int, default=600, help="records per validation set (same sample for every system)")
    ap.add_argument("--n-train", type=int, default=400, help="training records for baseline thresholds")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    train_all = [r for r in read_records(args.corpus / "train.jsonl", 0)
                 if r["label"] in ("strict", "clean") and r["source"] in ("wmt20_news", "wmt21_news", "brown", "gum")]
    train = random.Random(1).sample(train_all, min(args.n_train, len(train_all)))
    data = {s: read_records(args.corpus / f"{s}.jsonl", args.n) for s, _ in SETS if (args.corpus / f"{s}.jsonl").exists()}
    clean = read_records(args.corpus / "val_clean.jsonl", args.n)
    seed_text = (SEED / "russia-china-article.txt").read_text(encoding="utf-8")
    gold = json.loads((SEED / "russia-china-article.gold.json").read_text(encoding="utf-8"))
    results: dict[str, Any] = {}
    curves: dict[str, dict[str, list[Scored]]] = {s: {} for s in data}
    mt_scored: dict[str, list[Scored]] = {}
    mt_clean: list[Scored] = []
    names = args.systems.split(",")
    shared: dict[str, System] = {}  # rows whose detector and raw scores a SAME_SCORES row reuses
    for name in names:
        log(f"{name}: fitting/loading")
        t = time.time()
        system = System(name, train, shared.get(SAME_SCORES.get(name, "")))
        if name in SAME_SCORES.values():
            shared[name] = system
        res: dict[str, Any] = {"label": system.label, "sets": {}}
        for split, rows in data.items():
            sc = system.score(rows)
            if name not in SAME_SCORES:
                curves[split][system.label] = sc
            res["sets"][split] = evaluated(sc, bootstrap=100)
            if name == "mtdetect":
                mt_scored[split] = sc
        cl = system.score(clean)
        if name == "mtdetect":
            mt_clean = cl
        res["clean"] = evaluated(cl, bootstrap=0)
        seed_sc = system.score([{"text": seed_text, "label": "strict", "source": "seed", "spans": []}])[0]
        res["seed"] = gold_rule(seed_text, gold, list(seed_sc.pred.spans))
        res["seconds"] = round(time.time() - t)
        results[name] = res
        log(f"{name}: done in {res['seconds']}s; seed passed={res['seed']['passed']}")
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as tf:
        for r in read_records(args.corpus / "val_news.jsonl", 128, seed=3):
            tf.write(json.dumps({"text": r["text"]}) + "\n")
    speeds = {}
    shared.clear()
    for name in [x for x in names if x not in SAME_SCORES]:
        log(f"{name}: speed")
        speeds[name] = speed(name, Path(tf.name))
    os.unlink(tf.name)
    pngs = plots(args.out, curves, mt_scored, mt_clean)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    summary = {"date": when, "cores": os.cpu_count(), "results": results, "speed": speeds}
    (args.out / "benchmarks.json").write_text(json.dumps(jsonable(summary), indent=1, default=str) + "\n")
    lines = [
        "# Benchmarks: mtdetect and peer baselines",
        "",
        f"Written by `python -m benchmarks.run --n {args.n}` on {when}, on a machine with {os.cpu_count()} CPU cores "
        f"(run took {round((time.time() - t_start) / 60)} min). Every number below comes from that run.",
        "",
        f"Each system scores the same records: a fixed random sample of up to {args.n} records per validation set, "
        f"and {len(clean)} clean human English records (val_clean). Baseline thresholds were chosen on "
        f"{len(train)} training records (WMT20/21 news strict vs clean, Brown/GUM clean) only; mtdetect uses the "
        "thresholds in its config.json (the recall row: its `recall` operating point, same scores). Segment "
        "AUROC/AUPRC: strict = strict vs clean, broad = strict+broad vs clean; span metrics: character-level against "
        "all gold spans; 95% bootstrap intervals in benchmarks.json.",
        "",
    ]
    cols = ["auroc_strict", "auroc_broad", "auprc_broad", "span_precision", "span_recall", "span_f1", "word_mcc",
            "flag_precision", "flag_recall"]
    for split, title in SETS:
        if split not in data:
            continue
        lines += [f"## {title} (`{split}`, {len(data[split])} records)", "",
                  "| system | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for res in results.values():
            m = res["sets"][split]
            lines.append(f"| {res['label']} | " + " | ".join(f(m.get(c, float('nan'))) for c in cols) + " |")
        lines.append("")
    lines += ["## Clean human English (val_clean)", "", "| system | flagged | carries a span |", "|---|---|---|"]
    for res in results.values():
        m = res["clean"]
        lines.append(f"| {res['label']} | {f(m['clean_flag_rate'])} | {f(m['clean_span_rate'])} |")
    lines += ["", "## Seed article (gold rule)", "", "| system | passed | must_flag hit | other sentences touched |",
              "|---|---|---|---|"]
    for res in results.values():
        s = res["seed"]
        hits = sum(s["must_flag_hit"].values())
        lines.append(f"| {res['label']} | {s['passed']} | {hits}/{len(s['must_flag_hit'])} | "
                     f"{s['other_sentences_touched']} |")
    base = speeds.get("rules", {}).get("sent_per_s_b64")
    lines += ["", "## Speed (the same 128 news segments at both batch sizes, a fresh process per system, same run)", "",
              "Cold start: process start to the first result (imports, model load). Peak RSS: the process's VmHWM."
              + "".join(f" {k} runs {v}'s network (same speed)." for k, v in SAME_SCORES.items()
                        if k in names), "",
              "| system | cold start (s) | sentences/s, batch 1 | sentences/s, batch 64 | peak RSS (MB) | "
              "batch-64 speed vs rules |", "|---|---|---|---|---|---|"]
    for name, sp in speeds.items():
        if "error" in sp:
            lines.append(f"| {name} | error: {sp['error']} | | | | |")
            continue
        ratio = f"{sp['sent_per_s_b64'] / base:.3f}x" if base else ""
        lines.append(f"| {name} | {sp['cold_start_s']} | {sp['sent_per_s_b1']} | {sp['sent_per_s_b64']} | "
                     f"{sp['peak_rss_mb']} | {ratio} |")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in pngs]
    md = args.out / "benchmarks.md"
    kept = ""  # the throughput section (benchmarks.throughput) is its own run: keep it
    if md.exists() and THROUGHPUT_START in (old := md.read_text(encoding="utf-8")):
        kept = "\n" + THROUGHPUT_START + old.split(THROUGHPUT_START, 1)[1].split(THROUGHPUT_END, 1)[0] + THROUGHPUT_END + "\n"
    md.write_text("\n".join(lines) + "\n" + kept, encoding="utf-8")
    log(f"wrote {args.out / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
