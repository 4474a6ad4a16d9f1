"""Label rules read off the records: which MLQE-PE outputs count as meaning lost or clean, and the held-back fifth
of MLQE-PE articles that no fit sees."""

from __future__ import annotations

from typing import Any

from .records import mlqe_held_back

MLQE_PAIRS = ("ro-en", "et-en", "ne-en", "si-en", "ru-en")
LOW_DA, HIGH_DA = 30.0, 70.0
PE_PAIR_DA = 50.0  # MT-vs-post-edit pairs: outputs rated below this ("major mistakes" or worse)


def held_back(record: dict[str, Any]) -> bool:
    """The fixed fifth of MLQE-PE articles (per pair) that no fit sees (:func:`corpus.records.mlqe_held_back`)."""
    return mlqe_held_back(record["meta"]["pair"], record["meta"]["article"])


def mlqe_target(record: dict[str, Any]) -> int | None:
    """1: meaning lost (DA < 30); 0: clean (HTER 0, DA >= 70); None: in between."""
    da, hter = record["meta"]["da"], record["meta"]["hter"]
    return 1 if da < LOW_DA else (0 if hter == 0 and da >= HIGH_DA else None)


def soft_target(record: dict[str, Any]) -> float:
    """DA as a soft target: 1 at DA <= 30 (meaning lost), 0 at DA >= 70, linear in between."""
    return min(1.0, max(0.0, (HIGH_DA - record["meta"]["da"]) / (HIGH_DA - LOW_DA)))


def post_edit_of(record: dict[str, Any]) -> str | None:
    """The human post-edit of an MLQE-PE training output of an article not held back, where it differs from the
    output (else None): the one rule for which outputs stand against their post-edits, in the sense head's fit and
    in training."""
    pe = record["meta"].get("pe") if record["source"] == "mlqe_pe" else None
    return pe if pe and pe != record["text"] and not held_back(record) else None
