"""Corpus scale: `mtdetect score-corpus` (local engine), the same job on Ray, and the datatrove filter (tiny model)."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main

SENTS = ["The committee will publish its report next week.", "Xi Jinping. accepted.",
         "Officials said the plan would cost more than expected.", "which can be easily understood by people. common sense."]


def _corpus(folder: Path, shards: int = 3, per: int = 40, parquet: bool = True) -> list[str]:
    """JSONL, .jsonl.gz and (optionally) Parquet shards with a malformed line in the first; returns all record ids."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for k in range(shards):
        rows = [{"id": f"j{k}-{i}", "text": SENTS[(i * 7 + k) % 4], "meta": {"shard": k}} for i in range(per)]
        ids += [r["id"] for r in rows]
        lines = [json.dumps(r) for r in rows]
        if k == 0:
            lines.insert(5, "{not json")
            lines.insert(9, json.dumps({"id": "no-text", "body": "x"}))
            lines.insert(12, "")
        data = "\n".join(lines) + "\n"
        if k == shards - 1:
            with gzip.open(folder / f"s{k}.jsonl.gz", "wt", encoding="utf-8") as f:
                f.write(data)
        else:
            (folder / f"s{k}.jsonl").write_text(data, encoding="utf-8")
    if parquet:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        rows = [{"id": f"p-{i}", "text": SENTS[i % 4], "n": i} for i in range(per)]
        pq.write_table(pa.Table.from_pylist(rows), folder / "p0.parquet")
        ids += [r["id"] for r in rows]
    return ids


def _read_outputs(out: Path) -> dict[str, list[dict[str, Any]]]:
    res: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(out.iterdir()):
        if p.name.endswith(".rejects.jsonl") or p.name.startswith("."):
            continue
        if p.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            res[p.name] = pq.read_table(p).to_pylist()
        else:
            opener: Any = gzip.open if p.name.endswith(".gz") else open
            with opener(p, "rt", encoding="utf-8") as f:
                res[p.name] = [json.loads(x) for x in f]
    return res


@pytest.fixture()
def cli(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def _run(args: list[str]) -> tuple[int, str]:
        code = main(args + ["--model", str(tiny_model_dir)])
        return code, capsys.readouterr().err

    return _run


def test_local_job_annotates_every_record_and_rejects_the_bad_ones(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = _corpus(tmp_path / "in")
    code, err = cli(["score-corpus", str(tmp_path / "in"), str(tmp_path / "out")])
    assert code == 0, err
    outs = _read_outputs(tmp_path / "out")
    assert set(outs) == {"s0.jsonl", "s1.jsonl", "s2.jsonl.gz", "p0.parquet"}
    got = [r["id"] for rows in outs.values() for r in rows]
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))
    for rows in outs.values():
        for r in rows:
            assert {"mtdetect_score", "mtdetect_flagged", "mtdetect_status", "mtdetect_language", "mtdetect_spans"} <= set(r)
            assert all(r["text"][s["start"] : s["end"]] for s in r["mtdetect_spans"])
    assert outs["s0.jsonl"][0]["meta"] == {"shard": 0}  # the input record is kept whole
    rejects = [json.loads(x) for x in (tmp_path / "out" / "s0.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"].split(" (")[0]) for r in rejects] == [(6, "malformed JSON"),
                                                                           (10, "no string 'text' field")]
    assert "s0.jsonl: 40 records" in err and "2 rejected" in err and "4 shard(s) scored" in err


def test_rerun_skips_complete_shards(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _corpus(tmp_path / "in", parquet=False)
    cli(["score-corpus", str(tmp_path / "in"), str(tmp_path / "out")])
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    code, err = cli(["score-corpus", str(tmp_path / "in"), str(tmp_path / "out")])
    assert code == 0 and "0 shard(s) scored, 3 skipped" in err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == before


def test_filters_partition_the_records(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _corpus(tmp_path / "in", parquet=False)
    counts = {}
    for how in ("none", "keep-clean", "keep-flagged"):
        code, err = cli(["score-corpus", str(tmp_path / "in"), str(tmp_path / how), "--filter", how,
                         "--threshold", "0.5"])
        rows = [r for v in _read_outputs(tmp_path / how).values() for r in v]
        counts[how] = rows
        assert code == 0
    assert all(not r["mtdetect_flagged"] for r in counts["keep-clean"])
    assert all(r["mtdetect_flagged"] for r in counts["keep-flagged"])
    assert len(counts["keep-clean"]) + len(counts["keep-flagged"]) == len(counts["none"])


def _damage(folder: Path) -> dict[str, str]:
    """Add damaged shards next to good ones: {name: what the job must say about it}."""
    full = gzip.compress("".join(json.dumps({"id": i, "text": f"Record {i} of a long shard."}) + "\n"
                                 for i in range(5000)).encode())
    (folder / "truncated.jsonl.gz").write_bytes(full[: len(full) // 2])
    (folder / "not-gzip.jsonl.gz").write_bytes(b'{"id": 1, "text": "plain text, gzip name"}\n')
    (folder / "corrupt.parquet").write_bytes(b"PAR1 this is not a parquet file")
    # found by fuzzing (tests/fuzz/fuzz_outputs.py): a footer whose column name is not UTF-8
    (folder / "fuzzed.parquet").write_bytes((Path(__file__).parent / "fixtures" /
                                             "fuzz-parquet-bad-column-name.parquet").read_bytes())
    return {"truncated.jsonl.gz": "ends early", "not-gzip.jsonl.gz": "Not a gzipped file",
            "corrupt.parquet": "magic bytes", "fuzzed.parquet": "utf-8"}


def test_damaged_shards_are_named_and_the_job_goes_on(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pyarrow")
    ids = _corpus(tmp_path / "in")
    expected = _damage(tmp_path / "in")
    code, err = cli(["score-corpus", str(tmp_path / "in"), str(tmp_path / "out")])
    assert code == 2 and "Traceback" not in err, err
    for name, why in expected.items():
        assert f"error: {name}: damaged, not scored: " in err and why in err, (name, err)
    assert ("4 damaged shard(s) not scored: corrupt.parquet, fuzzed.parquet, not-gzip.jsonl.gz, truncated.jsonl.gz"
            in err)
    got = _read_outputs(tmp_path / "out")
    assert sorted(got) == ["p0.parquet", "s0.jsonl", "s1.jsonl", "s2.jsonl.gz"]  # the good ones, whole
    assert sorted(r["id"] for rows in got.values() for r in rows) == sorted(ids)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no partial file left
    code, err = cli(["score-corpus", str(tmp_path / "in"), str(tmp_path / "out")])  # a rerun tries them again
    assert code == 2 and "4 skipped" in err and "4 damaged" in err


@pytest.mark.parametrize(("spec", "needle"), [("nothing-here/*.jsonl", "no .jsonl"), ("in", "must not be the input")],
                         ids=["no-shards", "output-is-input"])
def test_corpus_usage_errors(cli, tmp_path: Path, spec: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    _corpus(tmp_path / "in", parquet=False)
    out = tmp_path / "in" if spec == "in" else tmp_path / "out"
    code, err = cli(["score-corpus", str(tmp_path / spec), str(out)])
    assert code == 2 and needle in err and "Traceback" not in err


def test_a_killed_job_loses_and_duplicates_no_record(tiny_model_dir: Path, tmp_path: Path) -> None:
    """SIGKILL in the middle of the job, then a rerun: every record exactly once, no temporary file left."""
    ids = []
    (tmp_path / "in").mkdir()
    for k in range(8):
        rows = [{"id": f"k{k}-{i}", "text": SENTS[i % 4]} for i in range(300)]
        ids += [r["id"] for r in rows]
        (tmp_path / "in" / f"s{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cmd = [sys.executable, "-m", "detector", "score-corpus", str(tmp_path / "in"), str(tmp_path / "out"),
           "--model", str(tiny_model_dir), "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = [p for p in (tmp_path / "out").glob("s*.jsonl")] if (tmp_path / "out").exists() else []
        if done:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # into the next shard
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in (tmp_path / "out").glob("s*.jsonl"))
    assert 0 < len(finished) < 8, finished  # killed in the middle of the job
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = [row["id"] for rows in _read_outputs(tmp_path / "out").values() for row in rows]
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))
    assert not list((tmp_path / "out").glob(".*"))


def test_ray_engine_gives_the_same_records(tiny_model_dir: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from detector import Detector, LoadOptions
    from detector._faces.corpus_jobs import CorpusOptions, find_shards, process_shard
    from detector._faces.ray_engine import run_ray

    _corpus(tmp_path / "in")
    damaged = _damage(tmp_path / "in")
    shards = find_shards(str(tmp_path / "in"))
    opts = CorpusOptions()
    det = Detector.load(tiny_model_dir)
    (tmp_path / "local").mkdir()
    for s in shards:
        process_shard(det, s, tmp_path / "local", opts)
    (tmp_path / "ray").mkdir()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        stats = run_ray(LoadOptions(model=tiny_model_dir), shards, tmp_path / "ray", opts, address=None, workers=1)
    finally:
        ray.shutdown()
    assert _read_outputs(tmp_path / "ray") == _read_outputs(tmp_path / "local")  # record for record
    assert (tmp_path / "ray" / "s0.jsonl.rejects.jsonl").read_text() == (
        tmp_path / "local" / "s0.jsonl.rejects.jsonl").read_text()
    assert sum(s.records for s in stats) == 4 * 40 and sum(s.rejected for s in stats) == 2
    assert sorted(s.shard for s in stats if s.damaged) == sorted(damaged)  # named, and the others scored


def test_datatrove_filter_in_a_local_pipeline(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("datatrove")
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from detector import Detector
    from detector.datatrove_filter import MTDetectFilter

    (tmp_path / "in").mkdir()
    rows = [{"id": f"d{i}", "text": SENTS[i % 4]} for i in range(12)]
    (tmp_path / "in" / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    LocalPipelineExecutor(pipeline=[JsonlReader(str(tmp_path / "in")),
                                    MTDetectFilter(keep="clean", model=tiny_model_dir, threshold=0.5,
                                                   exclusion_writer=JsonlWriter(str(tmp_path / "dropped"))),
                                    JsonlWriter(str(tmp_path / "out"))],
                          tasks=1, logging_dir=str(tmp_path / "logs")).run()

    def docs(folder: Path) -> list[dict[str, Any]]:
        out = []
        for p in folder.glob("*.jsonl.gz"):
            with gzip.open(p, "rt") as f:
                out += [json.loads(x) for x in f]
        return out

    kept, dropped = docs(tmp_path / "out"), docs(tmp_path / "dropped")
    det = Detector.load(tiny_model_dir).with_settings(threshold=0.5)
    expected_flagged = {r["id"] for r, d in zip(rows, det.detect_batch([r["text"] for r in rows])) if d.flagged}
    assert {d["id"] for d in dropped} == expected_flagged and len(kept) + len(dropped) == len(rows)
    assert all("mtdetect_score" in d["metadata"] and "mtdetect_spans" in d["metadata"] for d in kept + dropped)
    assert all(d["metadata"]["filter_reason"] == "mtdetect_flagged" for d in dropped)
