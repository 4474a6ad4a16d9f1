"""Shared fixtures: a tiny randomly initialised model folder built inside the test session."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED_TEXT = SHARED / "examples" / "russia-china-article.txt"
SEED_GOLD = SHARED / "examples" / "russia-china-article.gold.json"


def require_shared(*paths: Path) -> None:
    """Skip the calling test, with a one-line reason, when a file or folder of ``../shared`` (the data pack and the
    seed article, which the repository does not hold) is absent; fail instead when ``CI`` is set, so CI never skips
    them silently."""
    missing = [p for p in paths if not p.exists()]
    if not missing:
        return
    reason = f"needs {missing[0]} (../shared next to the repository)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this is a failure, not a skip")
    pytest.skip(reason)


def seed_article() -> tuple[str, dict]:  # type: ignore[type-arg]
    """The seed article's text and gold file (skips or fails as :func:`require_shared` says when absent)."""
    require_shared(SEED_TEXT, SEED_GOLD)
    return SEED_TEXT.read_text(encoding="utf-8"), json.loads(SEED_GOLD.read_text(encoding="utf-8"))


def build_tiny_model(folder: Path, seed: int = 0, encoder: str = "bert", sense: bool = False,
                     sense_layers: tuple[int, ...] = ()) -> Path:
    """A 2-layer, 32-wide random model (BERT or DistilBERT) with a character-level WordPiece vocabulary; with
    ``sense``, the third passage output and a calibration weight on it, reading ``sense_layers`` too."""
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    from detector import Settings
    from detector.network import ModelConfig, SpanDetector, write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation) + ["“", "”", "’", "…", "—"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    tok = Tokenizer(WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.save(str(folder / "tokenizer.json"))
    bert = {"vocab_size": len(vocab), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 64, "max_position_embeddings": 160, "type_vocab_size": 2, "pad_token_id": 0}
    if encoder == "distilbert":
        bert = {"model_type": "distilbert", "vocab_size": len(vocab), "dim": 32, "n_layers": 2, "n_heads": 2,
                "hidden_dim": 64, "max_position_embeddings": 160, "pad_token_id": 0}
    torch.manual_seed(seed)
    model = SpanDetector(bert, sense_head=sense, sense_layers=sense_layers)
    save_file({k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()},
              str(folder / "model.safetensors"))
    config = ModelConfig(name="tiny-random", version="0.0.1", base_model="random", max_length=48, context_tokens=8,
                         calibration=(1.0, 0.0, 0.0, 0.5 if sense else 0.0), bert=bert, sense_head=sense,
                         sense_layers=sense_layers,
                         settings=Settings(threshold=0.5, span_threshold=0.5, span_gate=0.0, span_score="fluency"))
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    write_manifest(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_distilbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-distil", encoder="distilbert")


@pytest.fixture(scope="session")
def tiny_detector(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    from detector import Detector

    return Detector.load(tiny_model_dir)


LM_WORDS = ["<pad>", "<s>", "[UNK]", "the", "river", "is", "not", "calm", "as", "a", "teacher", "."]


@pytest.fixture(scope="session")
def tiny_lm():  # type: ignore[no-untyped-def]
    """A tiny random causal LM (Llama, word-level tokenizer) standing in for SmolLM2: (tokenizer, model)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    t = Tokenizer(models.WordLevel({w: i for i, w in enumerate(LM_WORDS)}, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", pad_token="<pad>", unk_token="[UNK]")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(LM_WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg).eval()
    return tok, model
