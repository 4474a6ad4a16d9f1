"""A datatrove filter (the ``datatrove`` extra): keep or drop documents by mtdetect's verdict, inside the pipelines
that FineWeb-style corpora are built with.

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from detector.datatrove_filter import MTDetectFilter

    LocalPipelineExecutor(pipeline=[JsonlReader("in/"), MTDetectFilter(keep="clean"), JsonlWriter("out/")],
                          tasks=4).run()

Each document gets ``mtdetect_score``, ``mtdetect_flagged``, ``mtdetect_status`` (``scored``, or ``not_english`` for
a document with no English passage), ``mtdetect_language`` and ``mtdetect_spans`` in its metadata, kept or dropped;
``keep="clean"`` keeps scored documents that are not flagged, ``keep="flagged"`` the others. Dropped documents go
to the ``exclusion_writer`` when one is given, with the reason ``mtdetect_flagged``, ``mtdetect_not_english`` (or
``mtdetect_clean`` with ``keep="flagged"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

__all__ = ["MTDetectFilter"]


class MTDetectFilter(BaseFilter):
    """Keep clean English documents (``keep="clean"``, the default) or the others: flagged or not English
    (``keep="flagged"``)."""

    name = "mtdetect"

    def __init__(self, keep: str = "clean", model: str | Path | None = None, batch_size: int = 64,
                 exclusion_writer: DiskWriter | None = None, operating_point: str = "default",
                 **settings: Any) -> None:
        super().__init__(exclusion_writer, batch_size=batch_size)
        if keep not in ("clean", "flagged"):
            raise ValueError(f"keep must be 'clean' or 'flagged', not {keep!r}")
        self.keep = keep
        self.model = model
        self.operating_point = operating_point  # the model's named settings (default, quiet); settings on top
        self.settings = settings  # threshold, span_threshold, span_gate, span_score (validated on first use)
        self._det: Any = None

    def _detector(self) -> Any:
        if self._det is None:  # loaded in the worker, once: the step itself is pickled to the workers
            from detector import LoadOptions

            self._det = LoadOptions(model=Path(self.model) if self.model is not None else None, operating_point=self.operating_point,
                                    changes=tuple(self.settings.items())).load()
        return self._det

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        dets = self._detector().detect_batch([d.text for d in batch])
        out: list[bool | tuple[bool, str]] = []
        for doc, d in zip(batch, dets):
            doc.metadata["mtdetect_score"] = round(d.score, 6)
            doc.metadata["mtdetect_flagged"] = d.flagged
            doc.metadata["mtdetect_status"] = d.status
            doc.metadata["mtdetect_language"] = d.language
            doc.metadata["mtdetect_spans"] = [{"start": s.start, "end": s.end, "score": round(s.score, 6),
                                               "category": s.category} for s in d.spans]
            why = "mtdetect_flagged" if d.flagged else "mtdetect_not_english" if d.status != "scored" else None
            if self.keep == "clean":
                out.append(True if why is None else (False, why))
            else:
                out.append(True if why is not None else (False, "mtdetect_clean"))
        return out
