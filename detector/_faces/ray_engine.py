"""The Ray Data engine of ``mtdetect score-corpus`` (the ``ray`` extra): the same job as the local engine, on a local
Ray runtime or a cluster.

Pending shards are read by Ray (``read_text`` for JSONL and .jsonl.gz, ``read_parquet``), scored by ``map_batches``
with a pool of actors that each load the model once, and come back to the driver in input order
(``preserve_order``), which writes each shard through the same :class:`~detector._faces.corpus_jobs.ShardWriter` (temporary name,
renamed when complete) and the same :func:`~detector._faces.corpus_jobs.annotate_lines` / ``annotate_rows`` as the local engine.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._options import LoadOptions
from .corpus_jobs import CorpusOptions, ShardStats, ShardWriter, annotate_lines, annotate_rows, check_shard, kind_of


class _Scorer:
    """A Ray actor: loads the model once, then scores batches."""

    def __init__(self, options: LoadOptions, opts: CorpusOptions, kind: str) -> None:
        self.det = options.load()
        self.opts = opts
        self.kind = kind

    def __call__(self, batch: Any) -> dict[str, list[Any]]:
        if self.kind == "parquet":
            rows = batch.to_pylist()
            paths = [r.pop("path") for r in rows]
            res_rows = annotate_rows(self.det, rows, self.opts)
            outs: list[Any] = [json.dumps(r) if r is not None else None for r, _, _ in res_rows]
            return {"path": paths, "out": outs, "why": [w for _, w, _ in res_rows],
                    "flagged": [f for _, _, f in res_rows]}
        lines = [str(x) for x in batch["text"]]
        res = annotate_lines(self.det, lines, self.opts)
        return {"path": [str(p) for p in batch["path"]], "out": [o for o, _, _ in res], "why": [w for _, w, _ in res],
                "flagged": [f for _, _, f in res], "raw": lines}


def run_ray(options: LoadOptions, shards: Sequence[Path], out_dir: Path, opts: CorpusOptions,
            *, address: str | None, workers: int, progress: Callable[[int], None] | None = None) -> list[ShardStats]:
    """Score the pending ``shards`` on Ray, each actor loading the detector of ``options``; returns per-shard
    statistics (skipped shards included)."""
    import ray

    if not ray.is_initialized():  # a local runtime: one CPU per actor plus one for the read tasks
        ray.init(address=address, num_cpus=None if address else workers + 1, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    stats = {s.name: ShardStats(s.name, skipped=(out_dir / s.name).exists()) for s in shards}
    pending = [s for s in shards if not stats[s.name].skipped]
    for kind in ("jsonl", "parquet"):
        group = [s for s in pending if kind_of(s) == kind]
        while group:
            try:
                _run_group(ray, kind, group, options, out_dir, opts, workers, stats, progress)
                break
            except Exception:  # a Ray task failed: a damaged shard (read to its end here to find it), or a bug
                damaged = {s.name: why for s in group if not (out_dir / s.name).exists()
                           and (why := check_shard(s, opts.batch_records)) is not None}
                if not damaged:
                    raise
                for name, why in damaged.items():
                    stats[name] = ShardStats(name, damaged=why)
                group = [s for s in group if s.name not in damaged and not (out_dir / s.name).exists()]
                for s in group:  # the shards not finished are scored again from the start
                    stats[s.name] = ShardStats(s.name)
    return [stats[s.name] for s in shards]


def _run_group(ray: Any, kind: str, group: Sequence[Path], options: LoadOptions, out_dir: Path, opts: CorpusOptions,
               workers: int, stats: dict[str, ShardStats], progress: Callable[[int], None] | None) -> None:
    """Score the shards of one kind (jsonl or parquet) on Ray, each into its output file."""
    paths = [str(s.resolve()) for s in group]
    if kind == "jsonl":
        ds = ray.data.read_text(paths, include_paths=True, drop_empty_lines=False)
        fmt = "numpy"
    else:
        ds = ray.data.read_parquet(paths, include_paths=True)
        fmt = "pyarrow"
    scored = ds.map_batches(_Scorer, fn_constructor_kwargs={"options": options, "opts": opts, "kind": kind},
                            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                            batch_size=opts.batch_records, batch_format=fmt)
    by_name = {s.name: s for s in group}
    writer: ShardWriter | None = None
    current = ""
    line = 0
    buffered: list[dict[str, Any]] = []
    t0 = time.time()
    try:
        for row in scored.iter_rows():
            name = Path(row["path"]).name
            if name != current:
                if writer is not None:
                    writer.write_rows(buffered)
                    buffered = []
                    writer.commit()
                    stats[current].seconds = time.time() - t0
                t0 = time.time()
                current, line = name, 0
                writer = ShardWriter(by_name[name], out_dir)
            assert writer is not None
            line += 1
            st = stats[name]
            why, out = row["why"], row["out"]
            if why:
                st.rejected += 1
                writer.reject(line, why, str(row["raw"]) if "raw" in row else "")
            elif why is None:
                st.records += 1
                st.flagged += bool(row["flagged"])
                if out is not None:
                    st.kept += 1
                    if kind == "parquet":
                        buffered.append(json.loads(out))
                        if len(buffered) >= opts.batch_records:
                            writer.write_rows(buffered)
                            buffered = []
                    else:
                        writer.write_lines([out])
            if progress:
                progress(1)
        if writer is not None:
            writer.write_rows(buffered)
            writer.commit()
            stats[current].seconds = time.time() - t0
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    for s in group:  # a shard without any line gives no row: an empty output marks it done
        if not (out_dir / s.name).exists():
            ShardWriter(s, out_dir).commit()
