"""``mtdetect score-corpus``: score shards of JSONL (plain or .gz) or Parquet into an output folder.

One output file per input shard, with the same name and format: each input record plus ``mtdetect_score``,
``mtdetect_flagged``, ``mtdetect_status`` (``scored`` or ``not_english``), ``mtdetect_language`` and ``mtdetect_spans``. A shard is written under a temporary name and
renamed when complete, so a rerun skips shards whose output exists and redoes the one a crash interrupted: no record
is lost or written twice. Malformed records go to ``<shard>.rejects.jsonl`` (line number and reason) and are counted.
Memory is bounded by one batch of records. The local engine and the Ray engine (:mod:`detector._faces.ray_engine`) share
:func:`annotate_lines` and :func:`annotate_rows`, so they give the same results record for record.
"""

from __future__ import annotations

import glob
import gzip
import os
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .._types import SCORED
from .formatting import json_line
from .reading import JsonLineError, parse_json_line

SUFFIXES = (".jsonl.gz", ".jsonl", ".parquet")
FILTERS = ("none", "keep-clean", "keep-flagged")
FIELDS = ("mtdetect_score", "mtdetect_flagged", "mtdetect_status", "mtdetect_language", "mtdetect_spans")


class CorpusError(Exception):
    """A usage problem with the corpus job (no shards, bad paths): one line, exit 2."""


class ShardDamaged(Exception):
    """A shard that cannot be read to its end (truncated or corrupt gzip, not gzip, corrupt Parquet): the shard is
    reported by name and left unwritten, and the job goes on with the others."""


#: what reading a damaged shard raises: gzip and zlib errors are OSError/EOFError, pyarrow's are ArrowException
def _damage(shard: Path, e: BaseException) -> ShardDamaged:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, EOFError):
        msg = f"ends early ({msg})"
    return ShardDamaged(f"{shard.name}: damaged, not scored: {msg}")


def _read_errors() -> tuple[type[BaseException], ...]:
    # ValueError: pyarrow also raises UnicodeDecodeError for a column name that is not UTF-8 (found by fuzzing)
    errors: tuple[type[BaseException], ...] = (EOFError, OSError, zlib.error, ValueError)
    try:
        import pyarrow as pa

        errors += (pa.ArrowException,)
    except ImportError:
        pass
    return errors


@dataclass(frozen=True)
class CorpusOptions:
    text_field: str = "text"
    filter: str = "none"
    batch_records: int = 256
    batch_size: int = 32
    max_chars: int = 1_000_000


@dataclass
class ShardStats:
    shard: str
    records: int = 0
    flagged: int = 0
    kept: int = 0
    rejected: int = 0
    seconds: float = 0.0
    skipped: bool = False
    damaged: str | None = None  # why the shard could not be read (nothing written for it)

    def line(self) -> str:
        if self.skipped:
            return f"{self.shard}: already done, skipped"
        if self.damaged:
            return self.damaged
        return (f"{self.shard}: {self.records} records, {self.flagged} flagged, {self.kept} written, "
                f"{self.rejected} rejected, {self.seconds:.1f} s")


def find_shards(spec: str) -> list[Path]:
    """A file, a folder (its *.jsonl, *.jsonl.gz and *.parquet files) or a glob, sorted."""
    p = Path(spec)
    if p.is_dir():
        found = [q for q in p.iterdir() if q.is_file() and q.name.endswith(SUFFIXES)]
    elif p.is_file():
        found = [p]
    else:
        found = [Path(x) for x in glob.glob(spec) if Path(x).is_file()]
    found = sorted(q for q in found if q.name.endswith(SUFFIXES) and not q.name.endswith(".rejects.jsonl"))
    if not found:
        raise CorpusError(f"{spec}: no .jsonl, .jsonl.gz or .parquet shard found")
    if any(kind_of(q) == "parquet" for q in found):
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise CorpusError("Parquet shards need pyarrow: pip install 'mtdetect[parquet]'") from None
    names = [q.name for q in found]
    if len(set(names)) != len(names):
        raise CorpusError(f"{spec}: two shards share a file name; outputs are named after their input")
    return found


def kind_of(shard: Path) -> str:
    return "parquet" if shard.name.endswith(".parquet") else "jsonl"


def annotated(record: dict[str, Any], d: Any) -> dict[str, Any]:
    """The input record plus the mtdetect fields."""
    out = dict(record)
    out["mtdetect_score"] = round(d.score, 6)
    out["mtdetect_flagged"] = d.flagged
    out["mtdetect_status"] = d.status
    out["mtdetect_language"] = d.language
    out["mtdetect_spans"] = [{"start": s.start, "end": s.end, "score": round(s.score, 6), "category": s.category}
                             for s in d.spans]
    return out


def _keep(d: Any, how: str) -> bool:
    """Whether a scored record is written: every one (none), clean English ones (keep-clean: scored and not
    flagged), or the others (keep-flagged: flagged, or not English at all): the two filters partition the input."""
    clean = d.status == SCORED and not d.flagged
    return how == "none" or (how == "keep-clean") == clean


def _check(obj: Any, opts: CorpusOptions) -> str | None:
    """Why a parsed record cannot be scored, or None."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    text = obj.get(opts.text_field)
    if not isinstance(text, str):
        return f"no string {opts.text_field!r} field"
    if len(text) > opts.max_chars:
        return f"text of {len(text)} characters, over --max-chars {opts.max_chars}"
    return None


def annotate_lines(det: Any, lines: Sequence[str | bytes], opts: CorpusOptions) -> list[tuple[str | None, str | None, bool]]:
    """For each JSONL line: (output JSON line or None when filtered out or rejected, reject reason or None, flagged)."""
    parsed: list[tuple[dict[str, Any] | None, str | None]] = []
    for raw in lines:
        text = raw.decode("utf-8", errors="strict") if isinstance(raw, bytes) else raw
        if not text.strip():
            parsed.append((None, ""))  # blank: not a record, not a reject
            continue
        try:
            obj = parse_json_line(text)
        except JsonLineError as e:
            parsed.append((None, f"malformed JSON ({e})"))
            continue
        why = _check(obj, opts)
        parsed.append((obj, None) if why is None else (None, why))
    good = [obj for obj, _ in parsed if obj is not None]
    dets = iter(det.detect_batch([o[opts.text_field] for o in good], batch_size=opts.batch_size) if good else [])
    out: list[tuple[str | None, str | None, bool]] = []
    for obj, why in parsed:
        if obj is None:
            out.append((None, why, False))
            continue
        d = next(dets)
        out.append((json_line(annotated(obj, d)) if _keep(d, opts.filter) else None, None, d.flagged))
    return out


def annotate_rows(det: Any, rows: Sequence[dict[str, Any]], opts: CorpusOptions) -> list[tuple[dict[str, Any] | None, str | None, bool]]:
    """For each Parquet row: (annotated row or None, reject reason or None, flagged)."""
    ok = [(i, r) for i, r in enumerate(rows) if _check(r, opts) is None]
    dets = det.detect_batch([r[opts.text_field] for _, r in ok], batch_size=opts.batch_size) if ok else []
    by = {i: d for (i, _), d in zip(ok, dets)}
    out: list[tuple[dict[str, Any] | None, str | None, bool]] = []
    for i, r in enumerate(rows):
        if i not in by:
            out.append((None, _check(r, opts), False))
            continue
        d = by[i]
        out.append((annotated(r, d) if _keep(d, opts.filter) else None, None, d.flagged))
    return out


# ------------------------------------------------------------------------------------------ writing one shard


class ShardWriter:
    """Writes one shard's output and rejects under temporary names; :meth:`commit` renames them into place (the
    output last: its presence means the shard is complete). A Parquet output has the input's schema plus the
    mtdetect columns."""

    def __init__(self, shard: Path, out_dir: Path) -> None:
        self.final = out_dir / shard.name
        self.rejects_final = out_dir / (shard.name + ".rejects.jsonl")
        tag = f".tmp-{os.getpid()}"
        self.tmp = out_dir / f".{shard.name}{tag}"
        self.rejects_tmp = out_dir / f".{shard.name}.rejects.jsonl{tag}"
        self.kind = kind_of(shard)
        if self.kind == "parquet":  # read first: a damaged shard leaves no file behind
            import pyarrow as pa

            errors = _read_errors()
            try:
                self._schema = _with_fields(_parquet_file(shard).schema_arrow, pa)
            except errors as e:
                raise _damage(shard, e) from None
        self._rej: IO[str] = open(self.rejects_tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in commit
        self._n_rejects = 0
        self._out: Any
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            self._out = pq.ParquetWriter(str(self.tmp), self._schema)
        elif shard.name.endswith(".gz"):
            self._out = gzip.open(self.tmp, "wt", encoding="utf-8")
        else:
            self._out = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in commit

    def write_lines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self._out.write(line + "\n")

    def write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        import pyarrow as pa

        if rows:
            self._out.write_table(pa.Table.from_pylist(list(rows), schema=self._schema))

    def reject(self, where: int | str, reason: str, raw: str = "") -> None:
        self._n_rejects += 1
        self._rej.write(json_line({"line": where, "reason": reason, "raw": raw.rstrip("\r\n")[:200]}) + "\n")

    def commit(self) -> None:
        self._out.close()
        self._rej.close()
        if self._n_rejects:
            os.replace(self.rejects_tmp, self.rejects_final)
        else:
            self.rejects_tmp.unlink()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        for f in (self._out, self._rej):
            try:
                f.close()
            except Exception:  # noqa: BLE001, S110 - best effort on the way out
                pass
        for p in (self.tmp, self.rejects_tmp):
            p.unlink(missing_ok=True)


def _with_fields(schema: Any, pa: Any) -> Any:
    span = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("score", pa.float64()), ("category", pa.string())])
    extra = [("mtdetect_score", pa.float64()), ("mtdetect_flagged", pa.bool_()), ("mtdetect_status", pa.string()),
             ("mtdetect_language", pa.string()), ("mtdetect_spans", pa.list_(span))]
    fields = [f for f in schema if f.name not in FIELDS]
    return pa.schema(fields + [pa.field(n, t) for n, t in extra], metadata=schema.metadata)


def clean_stale(out_dir: Path) -> None:
    """Remove temporary files left by an interrupted run (their shards are redone)."""
    for p in out_dir.glob(".*.tmp-*"):
        p.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ the local engine


def _jsonl_lines(shard: Path) -> Iterator[bytes]:
    """The shard's lines; a read that fails half-way (truncated or corrupt gzip) raises :class:`ShardDamaged`."""
    opener: Callable[..., IO[bytes]] = gzip.open if shard.name.endswith(".gz") else open  # type: ignore[assignment]
    errors = _read_errors()
    try:
        with opener(shard, "rb") as f:
            yield from f
    except errors as e:
        raise _damage(shard, e) from None


def _parquet_file(shard: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.ParquetFile(str(shard))


def _parquet_batches(shard: Path, batch_records: int) -> Iterator[Any]:
    """The shard's record batches; a corrupt file raises :class:`ShardDamaged`."""
    errors = _read_errors()
    try:
        yield from _parquet_file(shard).iter_batches(batch_size=batch_records)
    except errors as e:
        raise _damage(shard, e) from None


def check_shard(shard: Path, batch_records: int = 4096) -> str | None:
    """Read a shard to its end without scoring it: why it is damaged, or None."""
    try:
        for _ in _parquet_batches(shard, batch_records) if kind_of(shard) == "parquet" else _jsonl_lines(shard):
            pass
    except ShardDamaged as e:
        return str(e)
    return None


def process_shard(det: Any, shard: Path, out_dir: Path, opts: CorpusOptions,
                  progress: Callable[[int], None] | None = None) -> ShardStats:
    """Score one shard into ``out_dir`` (skipped when its output exists)."""
    stats = ShardStats(shard.name)
    if (out_dir / shard.name).exists():
        stats.skipped = True
        return stats
    t0 = time.time()
    try:
        _process(det, shard, out_dir, opts, stats, progress)
    except ShardDamaged as e:  # its partial output was removed: a rerun tries it again
        stats = ShardStats(shard.name, damaged=str(e))
    stats.seconds = time.time() - t0
    return stats


def _process(det: Any, shard: Path, out_dir: Path, opts: CorpusOptions, stats: ShardStats,
             progress: Callable[[int], None] | None) -> None:
    if kind_of(shard) == "parquet":
        w = ShardWriter(shard, out_dir)
        try:
            row0 = 0
            for batch in _parquet_batches(shard, opts.batch_records):
                rows = batch.to_pylist()
                res = annotate_rows(det, rows, opts)
                _account(stats, res, _rejecter(w, row0))
                w.write_rows([r for r, _, _ in res if r is not None])
                row0 += len(rows)
                if progress:
                    progress(len(rows))
            w.commit()
        except BaseException:
            w.abort()
            raise
    else:
        w = ShardWriter(shard, out_dir)
        try:
            n = 0
            chunk: list[bytes] = []
            for line in _jsonl_lines(shard):
                chunk.append(line)
                if len(chunk) >= opts.batch_records:
                    _lines_batch(det, chunk, n, opts, stats, w, progress)
                    n += len(chunk)
                    chunk = []
            if chunk:
                _lines_batch(det, chunk, n, opts, stats, w, progress)
            w.commit()
        except BaseException:
            w.abort()
            raise


def _lines_batch(det: Any, chunk: list[bytes], n0: int, opts: CorpusOptions, stats: ShardStats, w: ShardWriter,
                 progress: Callable[[int], None] | None) -> None:
    decoded: list[str] = []
    for k, raw in enumerate(chunk):
        try:
            decoded.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            decoded.append("")
            w.reject(n0 + k + 1, f"not UTF-8 at byte {e.start} of the line", raw.decode("utf-8", "replace"))
            stats.rejected += 1
    res = annotate_lines(det, decoded, opts)
    _account(stats, res, lambda i, why: w.reject(n0 + i + 1, why, decoded[i]))
    w.write_lines([x for x, _, _ in res if x is not None])
    if progress:
        progress(len(chunk))


def _rejecter(w: ShardWriter, row0: int) -> Callable[[int, str], None]:
    def reject(i: int, why: str) -> None:
        w.reject(row0 + i + 1, why)
    return reject


def _account(stats: ShardStats, res: Sequence[tuple[Any, str | None, bool]],
             reject: Callable[[int, str], None]) -> None:
    for i, (out, why, flagged) in enumerate(res):
        if why:
            stats.rejected += 1
            reject(i, why)
        elif why is None:
            stats.records += 1
            stats.flagged += flagged
            stats.kept += out is not None
