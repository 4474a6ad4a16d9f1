"""Put a word table into a model folder, so that its passage probability can weigh word rarity (issue #11).

    python -m training.word_table --model build/models/mtdetect-minilm-shape-rarity

Writes ``word_zipf.json.gz`` (wordfreq's English list: every word with its Zipf frequency, rounded to 0.1), sets
``word_table`` in the folder's config.json (the rarity weight stays 0 until ``training.finalize`` chooses it) and
refreshes SHA256SUMS. With ``--from`` the folder is first copied from another one (e.g. the shipped model).
Needs the ``wordfreq`` package (benchmarks/requirements.txt); the runtime reads only the written file.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

from detector.network import ModelConfig, ModelFolder, WordTable

TABLE_FILE = "word_zipf.json.gz"


def wordfreq_table() -> WordTable:
    """wordfreq's English words (its default "best" list), Zipf frequency rounded to one decimal."""
    import wordfreq

    return WordTable({w: round(math.log10(f) + 9.0, 1) for w, f in wordfreq.get_frequency_dict("en").items()
                      if f > 0})


def add_word_table(folder: Path, table: WordTable, name: str = TABLE_FILE) -> ModelConfig:
    """Write ``table`` into ``folder``, name it in config.json (rarity weight unchanged) and refresh the manifest."""
    mf = ModelFolder(folder)
    cfg = mf.config().replace(word_table=name)
    table.write(folder / name)
    mf.write_config(cfg)
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.word_table", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="model folder to add the table to")
    ap.add_argument("--from", dest="source", type=Path, help="copy this model folder to --model first")
    args = ap.parse_args(argv)
    if args.source is not None:
        if args.model.exists():
            shutil.rmtree(args.model)
        shutil.copytree(args.source, args.model)
    table = wordfreq_table()
    add_word_table(args.model, table)
    print(f"wrote {args.model / TABLE_FILE}: {len(table)} words", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
