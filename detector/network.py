"""The network, its inputs and the model-folder schema: what training and export code build on.

Nothing here is needed to score text (use :class:`detector.Detector`); it is public so that code outside the runtime
package (training, ablations, tests) builds the same windows, batches and config files as the runtime does, and
the fused mode's pieces (the second reader, the passage features, the ``fusion.json`` schema) that ``training.fusion``
fits.
"""

from ._backend import ONNX_FILES, ONNX_INPUTS, ONNX_OUTPUTS
from ._collate import SharedWindowLike, WindowLike, collate, collate_shared
from ._folder import ModelFolder
from ._fusion import ENCODER_FEATURES, FUSION_FILE, LM_FEATURES, Fusion, encoder_features, lm_features
from ._lm import LmToken, load_causal_lm, token_stats
from ._model import SpanDetector, passage_mean
from ._modelfiles import MANIFEST, ModelConfig, OperatingPoint, sha256_file, write_manifest
from ._rarity import RARITY_CAP, WordTable
from ._reader import (
    SMOLLM2_GGUF,
    TOKEN_STATS,
    LmReader,
    StatsGraph,
    build_reader,
    ensure_reader,
    lm_weights_folder,
    reader_folder,
)
from ._text import N_SHAPES, Piece, Tokenized, split_passages, token_shape, tokenize_passages
from ._windows import Target, TextWindows, Window, build_windows, run_windows, text_windows

__all__ = [
    "ENCODER_FEATURES",
    "FUSION_FILE",
    "LM_FEATURES",
    "Fusion",
    "LmToken",
    "encoder_features",
    "lm_features",
    "load_causal_lm",
    "token_stats",
    "MANIFEST",
    "TOKEN_STATS",
    "LmReader",
    "build_reader",
    "ensure_reader",
    "reader_folder",
    "SMOLLM2_GGUF",
    "StatsGraph",
    "lm_weights_folder",
    "RARITY_CAP",
    "WordTable",
    "ONNX_FILES",
    "ONNX_INPUTS",
    "ONNX_OUTPUTS",
    "N_SHAPES",
    "ModelConfig",
    "ModelFolder",
    "OperatingPoint",
    "Piece",
    "SpanDetector",
    "Tokenized",
    "SharedWindowLike",
    "Target",
    "TextWindows",
    "Window",
    "WindowLike",
    "build_windows",
    "collate",
    "collate_shared",
    "run_windows",
    "text_windows",
    "passage_mean",
    "sha256_file",
    "split_passages",
    "token_shape",
    "tokenize_passages",
    "write_manifest",
]
