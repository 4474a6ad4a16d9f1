"""Export a model folder's network to ONNX (fp32) and an int8 dynamically quantised copy, next to the weights.

    python -m training.export_onnx --model models/mtdetect-minilm-shape

Writes ``model.onnx`` (fp32 arithmetic; weights stored in fp16 where that is lossless, cast back when the session
loads) and, with ``--int8``, ``model.int8.onnx`` (int8 dynamic quantisation of the MatMul weights) into the folder,
checks each against the torch network on sample texts, and rewrites the folder's SHA256SUMS. The runtime's ONNX
backend (``Detector.load(backend="onnx")``, ``mtdetect score --backend onnx``, the default when onnxruntime is
installed) reads ``model.onnx`` (``model.int8.onnx`` with ``precision="int8"``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from detector import Detector
from detector.network import (
    ONNX_FILES,
    ONNX_INPUTS,
    ONNX_OUTPUTS,
    ModelFolder,
    collate_shared,
    text_windows,
)

SAMPLES = [
    "The river is not calm as a teacher and as a colourful river.",
    "Xi Jinping. accepted. The talks lasted two hours, officials said.",
    "Short.",
    "This is a much longer sentence that goes on for a while so that the exported graph sees windows of several "
    "lengths, with commas, numbers like 1,234 and names like Moscow and Beijing.",
]


def _inputs(det: Detector) -> dict[str, np.ndarray]:
    """A batch of the runtime's shared windows over the sample texts (several targets per window)."""
    windows = [w for t in SAMPLES for w in text_windows(det.tokenizer, det.config, t, shared=True).windows]
    return collate_shared(windows, det.tokenizer.token_to_id("[PAD]"))


def store_fp16(graph_path: Path, out: Path) -> int:
    """Rewrite an fp32 graph so that weights which are exactly representable in fp16 (all of them for a model
    stored in fp16, like the shipped one) are stored in fp16 and cast back to fp32 by a Cast node, which ONNX
    Runtime folds when the session is created: lossless, half the file. Returns the number of weights converted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(graph_path))
    g = model.graph
    for node in g.node:  # the exporter annotates the branches of scatter_reduce's If with wrong ranks; ONNX Runtime
        if node.op_type == "If":  # then warns on every run: leave their shapes to inference
            for attr in node.attribute:
                for value in attr.g.output:
                    value.type.tensor_type.ClearField("shape")
    casts, keep, n = [], [], 0
    for init in g.initializer:
        arr = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        if arr is None or arr.size < 1024 or not np.array_equal(arr.astype(np.float16).astype(np.float32), arr):
            keep.append(init)
            continue
        half = numpy_helper.from_array(arr.astype(np.float16), init.name + "__fp16")
        keep.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=init.name + "__cast"))
        n += 1
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.save(model, str(out))
    return n


def export(folder: Path, opset: int = 18, int8: bool = False, per_channel: bool = True) -> dict[str, float]:
    """Write ``model.onnx`` (and with ``int8`` ``model.int8.onnx``) into ``folder``; return the largest absolute
    logit difference of each against torch on the sample texts."""
    det = Detector.load(folder, language_id=False, backend="torch", verify=False)
    net = det.network
    x = _inputs(det)
    args = tuple(torch.from_numpy(x[k]) for k in ONNX_INPUTS)
    axes = {k: {0: "batch", 1: "length"} for k in ONNX_INPUTS}
    axes["target"] = {0: "batch", 1: "targets", 2: "length"}  # one mask per passage sharing the window
    axes[ONNX_OUTPUTS[0]] = {0: "batch", 1: "length"}
    axes[ONNX_OUTPUTS[1]] = {0: "batch", 1: "targets"}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        with torch.inference_mode():
            torch.onnx.export(net, args, str(fp32), input_names=list(ONNX_INPUTS),
                              output_names=list(ONNX_OUTPUTS), dynamic_axes=axes, opset_version=opset, dynamo=False)
        store_fp16(fp32, folder / ONNX_FILES["fp32"])
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic
            from onnxruntime.quantization.shape_inference import quant_pre_process

            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
            quantize_dynamic(str(pre), str(folder / ONNX_FILES["int8"]), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul"], per_channel=per_channel)
        else:
            (folder / ONNX_FILES["int8"]).unlink(missing_ok=True)
    ModelFolder(folder).write_manifest()
    with torch.inference_mode():
        ref = [o.numpy() for o in net(*args)]
    out = {}
    for precision in ("fp32", "int8") if int8 else ("fp32",):
        got = Detector.load(folder, language_id=False, backend="onnx", precision=precision).network(x)
        real = x["target"].any(-1)  # targets that hold tokens (the rest pad a window's slots; their logits unused)
        out[precision] = max(float(np.abs(ref[0] - got[0]).max()), float(np.abs(ref[1] - got[1])[real].max()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="model folder (rewritten in place)")
    ap.add_argument("--opset", type=int, default=18, help="ONNX opset (18: the passage max-pool is a ScatterElements max)")
    ap.add_argument("--int8", action="store_true",
                    help="also write model.int8.onnx (int8 dynamic quantisation; its scores depend slightly on which "
                         "windows share a batch)")
    ap.add_argument("--per-tensor", action="store_true", help="int8: one scale per weight matrix, not per channel")
    a = ap.parse_args(argv)
    diffs = export(a.model, a.opset, int8=a.int8, per_channel=not a.per_tensor)
    for k, v in diffs.items():
        print(f"{k}: max |logit difference| against torch on {len(SAMPLES)} sample texts = {v:.2e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
