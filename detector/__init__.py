"""mtdetect: find garbled machine-translated passages in English text.

>>> from detector import Detector
>>> det = Detector.load()
>>> det.detect("Xi Jinping. accepted.").flagged  # doctest: +SKIP
True

Public modules besides this one: :mod:`detector.evaluation` (metrics and the evaluation of scored records) and
:mod:`detector.network` (the network, its inputs and the model-folder schema, for training code).
"""

from ._detector import Detector
from ._errors import DetectorError, ModelError, SettingsError
from ._options import LoadOptions
from ._types import PASSAGE_OUTPUTS, SPAN_SCORES, TOKEN_LABELS, Detection, Passage, RawScores, Settings, Span

__all__ = [
    "PASSAGE_OUTPUTS",
    "SPAN_SCORES",
    "TOKEN_LABELS",
    "Detection",
    "Detector",
    "DetectorError",
    "LoadOptions",
    "ModelError",
    "Passage",
    "RawScores",
    "Settings",
    "SettingsError",
    "Span",
]
__version__ = "0.1.0"
