"""How a detector is loaded: one validated object shared by :meth:`detector.Detector.load`, the CLI, ``serve``, the
Ray engine and the datatrove filter, so that every limit is stated once."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._backend import BACKENDS, PRECISIONS
from ._types import Settings

if TYPE_CHECKING:
    from ._detector import Detector

#: CPU threads of the network (and the second reader): at least 1, at most this
MAX_THREADS = 256
#: the decision settings' names (the fields of :class:`detector.Settings`), as options and config keys
SETTING_NAMES = tuple(f.name for f in fields(Settings))


@dataclass(frozen=True)
class LoadOptions:
    """What to load and how; validated on creation (``ValueError``, or :class:`detector.SettingsError` for a
    setting). ``changes``: decision settings applied on top of the operating point, as (name, value) pairs.
    Picklable: the Ray engine sends it to its workers."""

    model: Path | None = None
    verify: bool = True
    threads: int | None = None
    language_id: bool = True
    backend: str = "auto"
    precision: str = "fp32"
    accurate: bool = False
    reader: Path | None = None
    operating_point: str = "default"
    changes: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or not 1 <= self.threads <= MAX_THREADS):
            raise ValueError(f"threads must be between 1 and {MAX_THREADS}, not {self.threads!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        Settings().replace(**dict(self.changes))  # names and ranges of the settings (SettingsError)
        for name in ("model", "reader"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    def load(self) -> Detector:
        """The detector these options describe (:class:`detector.ModelError` for a missing or damaged model)."""
        from ._detector import Detector

        det = Detector.load(self.model, verify=self.verify, threads=self.threads, language_id=self.language_id,
                            backend=self.backend, precision=self.precision, accurate=self.accurate,
                            lm_path=self.reader, operating_point=self.operating_point)
        return det.with_settings(**dict(self.changes)) if self.changes else det
