"""The network, its inputs and the model-folder schema: what training and export code build on.

Nothing here is needed to score text (use :class:`detector.Detector`); it is public so that code outside the runtime
package (training, ablations, tests) builds the same windows, batches and config files as the runtime does, and
the accurate mode's LM pieces (its features, the ``lm_fusion.json`` schema, the LM scorer) that ``training.lm_fusion``
fits.
"""

from ._backend import ONNX_FILES, ONNX_INPUTS, ONNX_OUTPUTS
from ._collate import WindowLike, collate
from ._lm import FEATURES as LM_FEATURES
from ._lm import FUSION_FILE, LmFusion, LmScorer, LmToken, chunks, load_causal_lm, passage_features, token_stats
from ._model import SpanDetector, passage_mean
from ._modelfiles import MANIFEST, ModelConfig, OperatingPoint, sha256_file, write_manifest
from ._rarity import RARITY_CAP, WordTable
from ._text import N_SHAPES, Piece, Tokenized, Window, build_windows, split_passages, token_shape, tokenize_passages

__all__ = [
    "FUSION_FILE",
    "LM_FEATURES",
    "LmFusion",
    "LmScorer",
    "LmToken",
    "chunks",
    "load_causal_lm",
    "passage_features",
    "token_stats",
    "MANIFEST",
    "RARITY_CAP",
    "WordTable",
    "ONNX_FILES",
    "ONNX_INPUTS",
    "ONNX_OUTPUTS",
    "N_SHAPES",
    "ModelConfig",
    "OperatingPoint",
    "Piece",
    "SpanDetector",
    "Tokenized",
    "Window",
    "WindowLike",
    "build_windows",
    "collate",
    "passage_mean",
    "sha256_file",
    "split_passages",
    "token_shape",
    "tokenize_passages",
    "write_manifest",
]
