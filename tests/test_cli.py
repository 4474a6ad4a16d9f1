"""The mtdetect command line: formats, exit codes and bad input (tiny random model)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detector.cli import main


@pytest.fixture()
def run(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def _run(args: list[str], stdin: bytes | None = None, model: bool = True) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        full = args + (["--model", str(tiny_model_dir)] if model else [])
        code = main(full)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture()
def jsonl(tmp_path: Path) -> Path:
    p = tmp_path / "in.jsonl"
    rows = [{"id": "a", "text": "The cat sat on the mat."}, {"id": 7, "text": "Xi Jinping. accepted."},
            {"text": "No id here."}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return p


def test_jsonl_contract(run, jsonl: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(["score", "--format", "jsonl", "--threshold", "1.0", str(jsonl)])
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["a", 7, 3]  # ids carried through; line number when absent
    for x in lines:
        assert set(x) == {"id", "score", "flagged", "status", "language", "spans"}
        for s in x["spans"]:
            assert set(s) == {"start", "end", "text", "score", "category"}
    assert code == 0


def test_stdin_jsonl_contract_exactly_as_written(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`mtdetect score --format jsonl < in.jsonl > out.jsonl`, run by a shell as written: JSONL on stdin is
    recognised by its content; one output line per input line, in order, ids carried through."""
    rows = [{"id": "a", "text": "The cat sat on the mat."}, {"id": 7, "text": "Xi Jinping. accepted."},
            {"id": None, "text": "Third."}, {"text": "No id: the line number."}]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    env = {**os.environ, "MTDETECT_MODEL": str(tiny_model_dir),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run("mtdetect score --format jsonl < in.jsonl > out.jsonl", shell=True, cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [x["id"] for x in out] == ["a", 7, None, 4]
    assert all(set(x) == {"id", "score", "flagged", "status", "language", "spans"} for x in out)


@pytest.mark.parametrize(
    ("data", "args", "n_out"),
    [
        (b'\n\n  {"id": 1, "text": "Hello there."}\n{"id": 2, "text": "Second."}\n', [], 2),
        (b'\xef\xbb\xbf{"id": 1, "text": "BOM first."}\n{"id": 2, "text": "Second."}\n', [], 2),
        (b'{"id": 1, "text": "Hello there."}\n{"id": 2, "text": "Second."}\n', ["--plain"], 1),
        (b'{"id": 1, "body": "Hello."}\n', ["--text-field", "body"], 1),
        (b"Plain text. Two sentences.\nAnd a second line.\n", [], 1),
        (b'{curly} plain text that is not JSON.\n{"text": "x"}\n', [], 1),
        (b'["a JSON list", "is not a record"]\n', [], 1),
    ],
    ids=["jsonl-after-blank-lines", "jsonl-with-bom", "plain-forced", "text-field", "plain", "curly-plain",
         "json-list-plain"],
)
def test_stdin_kind_is_detected_by_content(run, data: bytes, args: list[str], n_out: int) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(["score", "--format", "jsonl", "--threshold", "1", *args], stdin=data)
    assert code == 0 and len(out.splitlines()) == n_out


def test_jsonl_without_the_text_field_is_an_error(run) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(["score", "--format", "jsonl"], stdin=b'{"id": 1, "body": "Hello."}\n')
    _one_line_error(code, err, "'text' field", "--text-field", "--plain")
    assert out == ""


def test_jsonl_content_in_a_txt_file_is_jsonl(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "records.txt"
    p.write_text('{"id": "x", "text": "One."}\n{"id": "y", "text": "Two."}\n', encoding="utf-8")
    code, out, _ = run(["score", "--format", "jsonl", "--threshold", "1", str(p)])
    assert [json.loads(x)["id"] for x in out.splitlines()] == ["x", "y"]


@pytest.mark.parametrize("data", [b"", b"   \n\t\n", b"\n\n"], ids=["empty", "whitespace", "blank-lines"])
def test_empty_stdin_is_an_input_error(run, data: bytes) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(["score", "--format", "jsonl"], stdin=data)
    _one_line_error(code, err, "empty")


def test_large_stdin_document_is_streamed(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import detector._faces.reading as reading

    monkeypatch.setattr(reading, "STREAM_BYTES", 2048)
    text = "\n\n".join(f"Paragraph {i} has a sentence." for i in range(400)) + "\n"
    code, out, _ = run(["score", "--format", "json", "--span-threshold", "0", "--threshold", "1"],
                       stdin=text.encode())
    item = json.loads(out)[0]
    assert item["spans"] and item["spans"][-1]["end"] > len(text) - 10
    assert all(text[s["start"] : s["end"]] == s["text"] for s in item["spans"])


def test_stdin_jsonl_pipe(run) -> None:  # type: ignore[no-untyped-def]
    data = b'{"id": 1, "text": "Hello there."}\n{"id": 2, "text": "Second."}\n'
    code, out, _ = run(["score", "--jsonl", "--format", "jsonl", "-"], stdin=data)
    assert [json.loads(x)["id"] for x in out.splitlines()] == [1, 2]


@pytest.mark.parametrize("fmt", ["pretty", "json", "jsonl", "tsv"])
def test_every_format(run, jsonl: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(["score", "--format", fmt, "--threshold", "0.0", str(jsonl)])
    assert code == 1
    if fmt == "json":
        items = json.loads(out)
        assert len(items) == 3 and "passages" in items[0]
    elif fmt == "tsv":
        rows = [r.split("\t") for r in out.splitlines()]
        assert len(rows) == 3 and all(len(r) == 5 and r[4] == "scored" for r in rows)
    elif fmt == "pretty":
        assert "FLAGGED" in out
    else:
        assert len(out.splitlines()) == 3


@pytest.mark.parametrize("threshold,extra,expected", [("1.0", [], 0), ("0.0", [], 1), ("0.0", ["--exit-zero"], 0)],
                         ids=["nothing-flagged", "flagged", "exit-zero"])
def test_exit_codes(run, jsonl: Path, threshold: str, extra: list[str], expected: int) -> None:  # type: ignore[no-untyped-def]
    code, _, _ = run(["score", "--format", "jsonl", "--threshold", threshold, *extra, str(jsonl)])
    assert code == expected


def test_plain_text_file_is_one_document(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "doc.txt"
    p.write_text("First sentence. Second sentence.\n\nNew paragraph.", encoding="utf-8")
    code, out, _ = run(["score", "--format", "jsonl", str(p)])
    rows = out.splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["id"] == str(p)


def test_tsv_column(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "in.tsv"
    p.write_text("x\tFirst text.\ny\tSecond text.\n", encoding="utf-8")
    code, out, _ = run(["score", "--tsv-column", "2", "--format", "jsonl", str(p)])
    assert [json.loads(r)["id"] for r in out.splitlines()] == [1, 2]


def test_info(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(["info", "--format", "json"])
    info = json.loads(out)
    assert code == 0 and info["name"] == "tiny-random" and info["checksum"] == "ok"


# ---------------------------------------------------------------- bad input: one line, exit 2


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]


def test_non_utf8_names_file_and_offset(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "latin.txt"
    p.write_bytes("Caf\u00e9 ok.".encode("latin-1"))
    code, _, err = run(["score", "--format", "jsonl", str(p)])
    _one_line_error(code, err, "latin.txt", "byte offset 3")


def test_non_utf8_with_errors_replace(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "latin.txt"
    p.write_bytes("Caf\u00e9 ok.".encode("latin-1"))
    code, out, _ = run(["score", "--format", "jsonl", "--errors", "replace", "--threshold", "1", str(p)])
    assert code == 0 and len(out.splitlines()) == 1


def test_encoding_option(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "latin.txt"
    p.write_bytes("Caf\u00e9 ok.".encode("latin-1"))
    code, out, _ = run(["score", "--format", "json", "--encoding", "latin-1", "--threshold", "1", str(p)])
    assert code == 0 and json.loads(out)[0]["passages"][0]["text"] == "Caf\u00e9 ok."


def test_non_utf8_jsonl_names_line(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    code, _, err = run(["score", "--format", "jsonl", str(p)])
    _one_line_error(code, err, "bad.jsonl:2", "byte offset 30")


def test_empty_input(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "empty.jsonl"
    p.write_text("", encoding="utf-8")
    code, _, err = run(["score", str(p)])
    _one_line_error(code, err, "empty")


def test_binary_file(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "blob.bin"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    code, _, err = run(["score", str(p)])
    _one_line_error(code, err, "blob.bin", "binary")


def test_malformed_jsonl_line(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok."}\n{"text": oops}\n{"text": "fine."}\n', encoding="utf-8")
    code, out, err = run(["score", "--format", "jsonl", str(p)])
    _one_line_error(code, err, "bad.jsonl:2", "malformed JSON")


def test_skip_bad_lines_reports_count(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok."}\n{"text": oops}\n[1, 2]\n{"id": 4}\n{"text": "fine."}\n', encoding="utf-8")
    code, out, err = run(["score", "--format", "jsonl", "--skip-bad-lines", "--threshold", "1", str(p)])
    assert code == 0
    assert [json.loads(r)["id"] for r in out.splitlines()] == [1, 5]
    assert "skipped 3 bad line(s)" in err


def test_missing_text_field(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "nofield.jsonl"
    p.write_text('{"body": "text here"}\n', encoding="utf-8")
    code, _, err = run(["score", str(p)])
    _one_line_error(code, err, "nofield.jsonl:1", "'text'")
    code, out, _ = run(["score", "--text-field", "body", "--format", "jsonl", "--threshold", "1", str(p)])
    assert code == 0 and len(out.splitlines()) == 1


def test_missing_file(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(["score", str(tmp_path / "nope.txt")])
    _one_line_error(code, err, "nope.txt", "no such file")


def test_bad_model_path_exit_3(run, tmp_path: Path, jsonl: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(["score", str(jsonl), "--model", str(tmp_path / "nomodel")], model=False)
    assert code == 3 and "model error" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["score", "--batch-size", "0"], ["score", "--threshold", "2"],
                                  ["score", "--span-gate", "-0.5"], ["score", "--span-score", "accuracy"], ["bogus"], []],
                         ids=["batch-size", "threshold", "span-gate", "span-score", "unknown-command", "no-command"])
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_large_jsonl_is_streamed(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Many records go through in input order, none lost (the reader holds one line at a time)."""
    p = tmp_path / "big.jsonl"
    with open(p, "w", encoding="utf-8") as f:
        for i in range(3000):
            f.write(json.dumps({"id": i, "text": f"Record {i} is short."}) + "\n")
    code, out, _ = run(["score", "--format", "jsonl", "--batch-size", "256", "--threshold", "1", str(p)])
    ids = [json.loads(r)["id"] for r in out.splitlines()]
    assert ids == list(range(3000))


def test_console_script_runs(tiny_model_dir: Path, jsonl: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "detector", "score", "--model", str(tiny_model_dir), "--format", "jsonl",
                        "--threshold", "1", str(jsonl)], capture_output=True, text=True)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3


def test_eval_markdown_and_json(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "gold.jsonl"
    rows = [
        {"text": "The cat sat. The dog ran.", "spans": [], "label": "clean", "source": "brown"},
        {"text": "He go to the the school.", "spans": [{"start": 3, "end": 5}], "label": "strict"},
        {"text": "Names are wrong here.", "spans": [{"start": 0, "end": 5}], "label": "broad"},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    code, out, _ = run(["eval", str(p), "--bootstrap", "20"])
    assert code == 0 and "segment AUROC, strict vs clean" in out and "span F1 (characters, all gold spans)" in out
    code, out, _ = run(["eval", str(p), "--format", "json", "--bootstrap", "0"])
    m = json.loads(out)
    assert code == 0 and m["n"] == 3 and m["n_strict"] == 1 and m["n_clean"] == 1
    assert set(m) >= {"auroc_strict", "span_f1", "flag_precision", "clean_flag_rate"}
    assert "auroc_strict_ci" not in m  # --bootstrap 0: no intervals


def test_eval_rejects_bad_span(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "gold.jsonl"
    p.write_text(json.dumps({"text": "abc", "spans": [{"start": 2, "end": 9}], "label": "strict"}) + "\n")
    code, _, err = run(["eval", str(p)])
    _one_line_error(code, err, "gold.jsonl:1", "not inside the text")


def test_large_plain_text_is_streamed_in_blocks(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A plain-text file over the streaming size is scored block by block; offsets stay exact."""
    import detector._faces.reading as reading

    monkeypatch.setattr(reading, "STREAM_BYTES", 2048)
    paras = [f"Paragraph {i} has a sentence. Ünïcode “quotes” here {i}!" for i in range(200)]
    text = "\n\n".join(paras) + "\n"
    p = tmp_path / "big.txt"
    p.write_text(text, encoding="utf-8")
    assert p.stat().st_size > 4 * 2048
    code, out, _ = run(["score", "--format", "json", "--span-threshold", "0", "--threshold", "1", str(p)])
    item = json.loads(out)[0]
    assert item["spans"] and item["spans"][-1]["end"] > len(text) - 10
    for s in item["spans"]:
        assert text[s["start"] : s["end"]] == s["text"]


@pytest.mark.parametrize("gate", ["0", "1"])
def test_span_gate_option(run, tmp_path: Path, gate: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "t.txt"
    p.write_text("A first sentence here. A second sentence follows.\n", encoding="utf-8")
    code, out, _ = run(["score", "--format", "json", "--span-threshold", "0.000001", "--span-gate", gate, str(p)])
    spans = json.loads(out)[0]["spans"]
    assert code in (0, 1) and (bool(spans) if gate == "0" else spans == [])


@pytest.mark.parametrize("mode", ["fluency", "error"])
def test_span_score_option(run, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "t.txt"
    p.write_text("A first sentence here. A second sentence follows.\n", encoding="utf-8")
    code, out, _ = run(["score", "--format", "json", "--span-threshold", "0.000001", "--span-gate", "0",
                        "--span-score", mode, str(p)])
    spans = json.loads(out)[0]["spans"]
    assert code in (0, 1) and spans
    assert {s["category"] for s in spans} <= ({"fluency"} if mode == "fluency" else {"fluency", "accuracy"})


def test_non_english_record_is_marked_on_stderr(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "mixed.jsonl"
    rows = [{"id": "en", "text": "This is English."}, {"id": "zh", "text": "这是一个中文句子，不是英文。"}]
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    code, out, err = run(["score", "--format", "jsonl", "--threshold", "1", str(p)])
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["en", "zh"]  # every record written, in order
    assert [x["language"] for x in lines] == ["en", "zh"] and lines[1]["score"] == 0.0
    assert "record zh: not English (zh)" in err and "record en" not in err
    assert "1 record(s) do not look like English" in err
