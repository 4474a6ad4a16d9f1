"""The data: canonical records, the readers of each source in ``../shared/data``, synthetic artifacts, the
acceptability sets, the label rules (MLQE-PE, the seed article) and the command that builds ``build/corpus``.

    python -m corpus.build_corpus --data ../shared/data --out build/corpus

Used by the training steps (``training/``) and the benchmarks (``benchmarks/``); never by the runtime (``detector/``),
and it imports neither: the first stage of the pipeline (docs/architecture.md).
"""
