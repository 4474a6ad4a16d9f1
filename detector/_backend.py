"""Backends: what turns a collated batch (numpy arrays) into token and passage logits.

``torch`` runs :class:`detector.network.SpanDetector` from ``model.safetensors`` (the reference); ``onnx`` runs the
exported graph with ONNX Runtime (``model.onnx``, fp32: the same numbers as torch to about 1e-6; or
``model.int8.onnx``, int8 dynamic quantisation, when exported with ``--int8``: its activation scales are computed per
batch, so a window's scores then depend slightly on the windows batched with it) and never imports torch or
transformers. Both take and return numpy arrays.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ModelError

#: graph inputs and outputs, in order (the export and the runtime share these names)
ONNX_INPUTS = ("ids", "shapes", "mask", "target")
ONNX_OUTPUTS = ("token_logits", "passage_logits")
#: graph file per precision inside a model folder
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
BACKENDS = ("auto", "onnx", "torch")
PRECISIONS = tuple(ONNX_FILES)
WEIGHTS = "model.safetensors"


def resolve(folder: Path, backend: str, precision: str) -> tuple[str, str]:
    """The backend to use and the weights file it reads. ``auto`` is ONNX when onnxruntime is installed and the
    folder has the graph, else torch."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    graph = ONNX_FILES[precision]
    if backend == "auto":
        has_ort = importlib.util.find_spec("onnxruntime") is not None
        backend = "onnx" if has_ort and (folder / graph).is_file() else "torch"
    if backend == "onnx":
        if not (folder / graph).is_file():
            raise ModelError(f"model folder {folder} has no {graph}; export it with "
                             f"`python -m training.export_onnx --model {folder}` or use the torch backend")
        return backend, graph
    return backend, WEIGHTS


class TorchNetwork:
    """The reference path: a :class:`SpanDetector` in eager fp32."""

    name = "torch"
    shared = True  # takes windows with several targets (a (B, P, L) ``target``)

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            tok, pas = self.module(*(torch.from_numpy(batch[k]) for k in ONNX_INPUTS))
        return tok.float().numpy(), pas.float().numpy()


class OnnxNetwork:
    """An exported graph run by ONNX Runtime on the CPU."""

    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("the onnx backend needs onnxruntime: pip install onnxruntime") from None
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads is not None:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - any failure here means a broken or foreign graph file
            raise ModelError(f"cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        names = tuple(i.name for i in self.session.get_inputs())
        outs = tuple(o.name for o in self.session.get_outputs())
        if set(names) != set(ONNX_INPUTS) or outs != ONNX_OUTPUTS:
            raise ModelError(f"{path} has inputs {names} and outputs {outs}, not {ONNX_INPUTS} and {ONNX_OUTPUTS}")
        # graphs exported before the shared-window design take one target per window ((B, L)); later ones several
        rank = {i.name: len(i.shape) for i in self.session.get_inputs()}["target"]
        self.shared = rank == 3

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        tok, pas = self.session.run(list(ONNX_OUTPUTS), {k: batch[k] for k in ONNX_INPUTS})
        return tok, pas
