"""Overhead over the network itself (issue #34): `mtdetect score` end to end against the bare ONNX Runtime forward
pass of the shipped graph on the very windows the detector builds, in one run on the same inputs; writes
docs/overhead.md and docs/overhead.json.

    python -m benchmarks.overhead --corpus build/corpus --sentences 1000

Inputs, built from English-original news of the corpus's test_clean split (abc, newstest_en):

- ``news.jsonl``: one sentence per JSON Lines record;
- ``articles.txt``: the same sentences as a plain-text document of paragraphs of 5 sentences (blank lines between);
- ``words.jsonl`` and ``lines.txt``: twice as many single words (the words of those sentences) as there are
  sentences, one per JSON Lines record and one per line of a plain-text file.

For each: the bare forward (windows built and collated beforehand, only the graph timed, batches of 32 sorted by
length as the detector does), ``mtdetect score --format jsonl`` in a fresh process (wall time; and less the cold start
of the same command on a one-word file), and a profile of the same scoring in this process (cumulative seconds of each
stage: reading, splitting, tokenising, windows, collation, forward, language id, rarity, rules, decoding, writing).
Plain text against JSON Lines compares the same sentences: the document's windows carry context, the records' do not.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from detector import Detector
from detector.network import (
    ModelFolder,
    collate,
    collate_shared,
    split_passages,
    text_windows,
)

ROOT = Path(__file__).resolve().parents[1]
NEWS = ("abc", "newstest_en")
#: profile stages: (name, file suffix, function name) whose cumulative time is the stage's
STAGES = [
    ("reading", "_reading.py", None), ("splitting", "_text.py", "split_passages"),
    ("tokenising", "_text.py", "tokenize_passages"), ("windows", "_windows.py", "build_windows"),
    ("collation", "_collate.py", None), ("forward", "_backend.py", "__call__"),
    ("language id", "_language.py", "passage_languages"), ("rarity", "_rarity.py", "rarity"),
    ("rules", "_rules.py", "text_rules"), ("decoding", "_detector.py", "decide"),
    ("writing", "_formatting.py", "write"),
]


def log(msg: str) -> None:
    print(f"[overhead {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sentences(corpus: Path, n: int) -> list[str]:
    """``n`` single-passage English-original news sentences of test_clean, in file order."""
    out = []
    with (corpus / "test_clean.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            t = r["text"].strip()
            if r["source"] in NEWS and "\n" not in t and len(split_passages(t)) == 1 and len(t.split()) >= 5:
                out.append(t)
                if len(out) == n:
                    break
    return out


def write_inputs(folder: Path, sents: list[str]) -> dict[str, tuple[Path, list[str]]]:
    """The three input files and, for each, the texts the CLI reads from it (records, or the one document)."""
    news = folder / "news.jsonl"
    news.write_text("".join(json.dumps({"id": i, "text": s}) + "\n" for i, s in enumerate(sents)), encoding="utf-8")
    doc = "\n\n".join(" ".join(sents[i : i + 5]) for i in range(0, len(sents), 5)) + "\n"
    articles = folder / "articles.txt"
    articles.write_text(doc, encoding="utf-8")
    words = [w.strip(".,;:!?\"'()“”’") for s in sents for w in s.split()]
    words = [w for w in words if w.isalpha()][: 2 * len(sents)]
    lines_text = "\n".join(words) + "\n"
    lines = folder / "lines.txt"
    lines.write_text(lines_text, encoding="utf-8")
    words_jsonl = folder / "words.jsonl"
    words_jsonl.write_text("".join(json.dumps({"id": i, "text": w}) + "\n" for i, w in enumerate(words)),
                           encoding="utf-8")
    return {"news sentences (JSON Lines)": (news, sents), "the same sentences as a plain-text document":
            (articles, [doc]), "one-word lines (JSON Lines)": (words_jsonl, words),
            "the same one-word lines as plain text": (lines, [lines_text])}


def bare_forward(det: Detector, texts: list[str], batch_size: int = 32) -> tuple[float, int, int]:
    """Seconds of the graph alone on the detector's windows of ``texts``; the number of windows and of tokens."""
    tok, cfg, net = det.tokenizer, det.config, det.network
    pad = tok.token_to_id("[PAD]") or 0
    windows = [w for t in texts for w in text_windows(tok, cfg, t).windows]
    windows.sort(key=lambda w: len(w.ids))
    shared = getattr(net, "shared", False)
    batches = [(collate_shared if shared else collate)(windows[b : b + batch_size], pad)  # type: ignore[operator]
               for b in range(0, len(windows), batch_size)]
    net(batches[0])  # warm-up: the first run of a session allocates
    t = time.perf_counter()
    for x in batches:
        net(x)
    return time.perf_counter() - t, len(windows), sum(len(w.ids) for w in windows)


def cli_wall(path: Path, model: Path | None = None) -> float:
    """Wall seconds of a fresh ``mtdetect score PATH --format jsonl`` (output discarded)."""
    t = time.perf_counter()
    extra = ["--model", str(model)] if model is not None else []
    r = subprocess.run([sys.executable, "-m", "detector.cli", "score", str(path), "--format", "jsonl", "--quiet", *extra],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if r.returncode not in (0, 1):
        raise RuntimeError(f"mtdetect score {path} exited {r.returncode}: {r.stderr.strip()}")
    return wall


def profile(path: Path) -> tuple[float, dict[str, float]]:
    """Seconds of ``mtdetect score PATH`` in this process after a first run on a French sentence (which builds the
    lazily loaded language identifier), and the cumulative seconds of each stage."""
    from detector.cli import main

    tiny = path.with_name("warm-up.txt")  # loads the language identifier too (a passage it must look at)
    tiny.write_text("Bonjour tout le monde, comment allez-vous aujourd'hui ?\n", encoding="utf-8")
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        main(["score", str(tiny), "--format", "jsonl", "--quiet"])
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.runcall(main, ["score", str(path), "--format", "jsonl", "--quiet"])
        total = time.perf_counter() - t
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for name, suffix, func in STAGES:
        cum = [v[3] for (file, _, fn), v in stats.items() if file.endswith("detector/" + suffix)
               and (func is None or fn == func)]
        out[name] = round(max(cum) if func is None or name == "forward" else sum(cum), 3) if cum else 0.0
    out["loading"] = round(sum(v[3] for (file, _, fn), v in stats.items()
                               if file.endswith("detector/_detector.py") and fn == "load"), 3)
    return total, out


def shared_copy(folder: Path, length: int, out: Path) -> Path:
    """A copy of a model folder whose config shares windows of ``length`` tokens (manifest rewritten)."""
    shutil.copytree(folder, out)
    copy = ModelFolder(out)
    copy.write_config(copy.config().replace(shared_window=length))
    return out


def run(corpus: Path, n: int, repeats: int = 3, shared: int = 256) -> dict[str, Any]:
    shipped = Detector.load(language_id=False)
    sents = sentences(corpus, n)
    log(f"{len(sents)} sentences")
    res: dict[str, Any] = {"model": f"{shipped.config.name} {shipped.config.version}", "backend": shipped.backend,
                           "repeats": repeats, "sentences": len(sents), "layouts": {}}
    with tempfile.TemporaryDirectory() as tmp:
        files = write_inputs(Path(tmp), sents)
        tiny = Path(tmp) / "cold.txt"
        tiny.write_text("Hello.\n", encoding="utf-8")
        res["cold_start_s"] = round(min(cli_wall(tiny) for _ in range(3)), 3)
        models: dict[str, Path | None] = {"per passage (shipped)": None}
        if shared:
            models[f"shared {shared}"] = shared_copy(shipped.path or Path(), shared, Path(tmp) / "shared-model")
        for layout, model in models.items():
            det = Detector.load(model, language_id=False)
            inputs: dict[str, Any] = {}
            for name, (path, texts) in files.items():
                log(f"{layout}: {name}")
                forward, n_windows, n_tokens = min(bare_forward(det, texts) for _ in range(repeats))
                wall = min(cli_wall(path, model) for _ in range(repeats))
                row = {"file": path.name, "bytes": path.stat().st_size, "windows": n_windows,
                       "window_tokens": n_tokens, "bare_forward_s": round(forward, 3), "cli_wall_s": round(wall, 3),
                       "cli_less_cold_start_s": round(wall - res["cold_start_s"], 3),
                       "forward_share_of_cli": round(forward / max(wall - res["cold_start_s"], 1e-9), 3)}
                if model is None:
                    row["in_process_s"], row["stages_s"] = profile(path)
                inputs[name] = row
            names = list(inputs)
            for k in range(0, len(names), 2):  # each plain-text input against the JSON Lines of the same texts
                ref = inputs[names[k]]["cli_less_cold_start_s"]
                for name in names[k : k + 2]:
                    inputs[name]["vs_jsonl"] = round(inputs[name]["cli_less_cold_start_s"] / ref, 2)
            res["layouts"][layout] = inputs
    return res


def markdown(res: dict[str, Any], cmd: str) -> str:
    layouts = list(res["layouts"])
    shipped = res["layouts"][layouts[0]]
    names = list(shipped)
    lines = [
        "# Overhead over the network (issue #34)", "",
        f"Written by `{cmd}` on {datetime.date.today().isoformat()} (model {res['model']}, {res['backend']} "
        f"backend, {os.cpu_count()} CPUs). {res['sentences']} English-original news sentences; cold start of "
        f"`mtdetect score` on a one-word file: {res['cold_start_s']:.2f} s (best of 3). Bare forward and `mtdetect "
        f"score`: the best of {res['repeats']} runs each (the machine is shared: single runs vary by 20-30%). The "
        "shared layout is a copy of the shipped model with `shared_window` set: its speed is what a model trained on "
        "that layout would have; with the 1.8.0 weights its scores move (docs/windows.md), so it is not shipped.", "",
        "| layout | input | windows | window tokens | bare forward s | `mtdetect score` s | less cold start | forward "
        "share | vs the same texts as JSON Lines |", "|---|---|---|---|---|---|---|---|---|"]
    for layout in layouts:
        for k, v in res["layouts"][layout].items():
            lines.append(f"| {layout} | {k} | {v['windows']} | {v['window_tokens']} | {v['bare_forward_s']:.2f} | "
                         f"{v['cli_wall_s']:.2f} | {v['cli_less_cold_start_s']:.2f} | "
                         f"{v['forward_share_of_cli']:.2f} | {v['vs_jsonl']:.2f}x |")
    lines += ["", "Where the time goes with the shipped layout (the same scoring in one process after loading, "
              "cProfile cumulative seconds; profiling adds its own cost, so the stages are shares, not timings):", "",
              "| stage | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for s in next(iter(shipped.values()))["stages_s"]:
        lines.append(f"| {s} | " + " | ".join(f"{shipped[k]['stages_s'][s]:.2f}" for k in names) + " |")
    lines.append("| total (in process) | " + " | ".join(f"{shipped[k]['in_process_s']:.2f}" for k in names) + " |")
    j = shipped["news sentences (JSON Lines)"]
    lines += ["", "Issue #34's targets, from this run (shipped layout; the shared layout's figure after it):", "",
              f"- end to end at least 0.85x the bare forward for JSON Lines news sentences: "
              f"{j['bare_forward_s'] / j['cli_wall_s']:.2f}x with the cold start, "
              f"{j['forward_share_of_cli']:.2f}x without it;"]
    for target, key, limit in (("a plain-text document", "the same sentences as a plain-text document", "1.3x"),
                               ("many short lines", "the same one-word lines as plain text", "2x")):
        got = " / ".join(f"{res['layouts'][la][key]['vs_jsonl']:.2f}x" for la in layouts)
        lines.append(f"- {target} at most {limit} the same texts as JSON Lines: {got};")
    lines.append(f"- cold start at most 1 s: {res['cold_start_s']:.2f} s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--sentences", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="runs of the bare forward and of the CLI (the best counts)")
    ap.add_argument("--shared", type=int, default=256, help="also time the shared layout of N tokens (0: not)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "overhead.md")
    a = ap.parse_args(argv)
    if not (a.corpus / "test_clean.jsonl").is_file():
        ap.error(f"no corpus in {a.corpus}: run python -m corpus.build_corpus first")
    res = run(a.corpus, a.sentences, a.repeats, a.shared)
    cmd = (f"python -m benchmarks.overhead --corpus {a.corpus} --sentences {a.sentences} --repeats {a.repeats} "
           f"--shared {a.shared}")
    a.out.write_text(markdown(res, cmd), encoding="utf-8")
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
