"""mtdetect: find garbled machine-translated passages in English text.

>>> from detector import Detector
>>> det = Detector.load()
>>> det.detect("Xi Jinping. accepted.").flagged  # doctest: +SKIP
True
"""

from ._detector import Detector
from ._errors import DetectorError, ModelError
from ._types import Detection, Passage, Span

__all__ = ["Detection", "Detector", "DetectorError", "ModelError", "Passage", "Span"]
__version__ = "0.1.0"
