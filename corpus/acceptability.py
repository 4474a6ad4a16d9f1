"""CoLA and BLiMP (``../shared/data/acceptability/``): readers and the fixed BLiMP hold-out.

BLiMP gives 67 paradigms of 1,000 minimal pairs (an acceptable and an unacceptable sentence that differ minimally);
a fixed third of the paradigms (sha256 of the paradigm id) is held back from every fit and used only to report pair
accuracy. CoLA gives single sentences labelled acceptable (1) or not (0).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

ACCEPTABILITY = Path(__file__).resolve().parents[2] / "shared" / "data" / "acceptability"
COLA_SPLITS = ("in_domain_train", "in_domain_dev", "out_of_domain_dev")


def held_paradigm(uid: str) -> bool:
    """True for the fixed third of BLiMP paradigms that no fit sees."""
    return int(hashlib.sha256(uid.encode("utf-8")).hexdigest(), 16) % 3 == 0


def blimp_pairs(per_paradigm: int, seed: int = 0, root: Path = ACCEPTABILITY) -> list[dict[str, Any]]:
    """A fixed sample of ``per_paradigm`` pairs from each paradigm (all fields of the BLiMP lines)."""
    rows: list[dict[str, Any]] = []
    for path in sorted((root / "blimp" / "data").glob("*.jsonl")):
        lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        rows += random.Random(f"{seed}:{path.stem}").sample(lines, min(per_paradigm, len(lines)))
    return rows


def cola_rows(root: Path = ACCEPTABILITY) -> list[dict[str, Any]]:
    """Every CoLA sentence: split, source code, label (1 = acceptable) and text."""
    rows: list[dict[str, Any]] = []
    for split in COLA_SPLITS:
        for line in (root / "cola" / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                rows.append({"split": split, "source": parts[0], "label": int(parts[1]), "text": parts[3]})
    return rows
