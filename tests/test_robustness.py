"""Hard inputs and hostile files (issue: no tracebacks, linear time, a model folder that cannot be faked).

Every case that once crashed, hung or broke its output format has a regression test here; times are measured in
``benchmarks/robustness.py`` (docs/robustness.md), never asserted.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from detector import Detector, ModelError, RawScores
from detector.cli import main


@pytest.fixture()
def run(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def _run(args: list[str], stdin: bytes | None = None, model: Path | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(args + ["--model", str(model or tiny_model_dir)])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def _one_line(code: int, err: str, expected_code: int, *needles: str) -> None:
    assert code == expected_code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)


# ------------------------------------------------------------------ JSONL lines that once gave tracebacks


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (b'{"id": ' + b"9" * 5000 + b', "text": "x"}', "malformed JSON"),
        (b"[" * 100000 + b"]" * 100000, "malformed JSON (nested too deeply)"),
        (b'{"id": NaN, "text": "x"}', "NaN is not JSON"),
        (b'{"id": Infinity, "text": "x"}', "Infinity is not JSON"),
        (b'{"id": 1e400, "text": "Hello world."}', "number 1e400 is out of range"),
        (b'{"id": -2.5e308, "text": "x"}', "out of range"),
        (b'{"text": "a\x01b"}', "Invalid control character at column"),
    ],
    ids=["huge-integer-id", "deep-nesting", "nan-id", "infinity-id", "float-id-out-of-range", "negative-float-overflow",
         "control-character"],
)
def test_bad_jsonl_line_is_one_line_error(run, line: bytes, needle: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(["score", "--jsonl", "--format", "jsonl"], stdin=b'{"text": "ok."}\n' + line + b"\n")
    _one_line(code, err, 2, "<stdin>:2", needle)
    assert "at at" not in err


def test_bad_lines_are_skipped_and_counted(run) -> None:  # type: ignore[no-untyped-def]
    data = b'{"text": "ok."}\n' + b"[" * 100000 + b"\n" + b'{"id": NaN, "text": "x"}\n{"text": "fine."}\n'
    code, out, err = run(["score", "--jsonl", "--format", "jsonl", "--skip-bad-lines", "--threshold", "1"], stdin=data)
    assert code == 0 and len(out.splitlines()) == 2 and "skipped 2 bad line(s)" in err and "Traceback" not in err


def test_lone_surrogates_in_text_and_id_give_valid_output(run) -> None:  # type: ignore[no-untyped-def]
    data = b'{"id": "x\\ud800", "text": "Broken \\udc00 text. Xi Jinping. accepted."}\n'
    for fmt in ("jsonl", "json", "tsv", "pretty", "html"):
        code, out, err = run(["score", "--format", fmt, "--span-threshold", "0"], stdin=data)
        assert code in (0, 1) and "Traceback" not in err
        out.encode("utf-8")  # valid UTF-8: no lone surrogate written raw
        if fmt == "jsonl":
            rec = json.loads(out)
            assert rec["id"] == "x\ud800" and rec["spans"]
        if fmt == "html":
            assert "x\\ud800" in out and "\\udc00" in out  # shown as its code, escaped


def test_non_finite_float_ids_are_written_as_strict_json() -> None:
    """An id that JSON cannot hold (a Parquet double column with inf or nan) is written as a string, never as a
    crash or as non-standard JSON."""
    from detector import Detection
    from detector._faces.formatting import jsonl_line

    for rid, expected in ((float("inf"), "inf"), (float("-inf"), "-inf"), (float("nan"), "nan"), ([1.5], [1.5])):
        line = jsonl_line(rid, Detection(0.1, False))
        assert json.loads(line, parse_constant=lambda c: pytest.fail(c))["id"] == expected


def test_text_over_max_chars(run) -> None:  # type: ignore[no-untyped-def]
    data = json.dumps({"text": "word " * 100}).encode() + b"\n" + b'{"text": "short."}\n'
    code, _, err = run(["score", "--jsonl", "--max-chars", "50"], stdin=data)
    _one_line(code, err, 2, "<stdin>:1", "over --max-chars 50")
    code, out, err = run(["score", "--jsonl", "--max-chars", "50", "--skip-bad-lines", "--format", "jsonl",
                          "--threshold", "1"], stdin=data)
    assert code == 0 and len(out.splitlines()) == 1 and "skipped 1 bad line(s)" in err


def test_a_line_too_long_to_hold_is_not_read_whole(run) -> None:  # type: ignore[no-untyped-def]
    data = b'{"text": "' + b"a" * 200_000 + b'"}\n{"text": "fine."}\n'
    code, out, err = run(["score", "--jsonl", "--max-chars", "10", "--skip-bad-lines", "--format", "jsonl",
                          "--threshold", "1"], stdin=data)
    assert code == 0 and len(out.splitlines()) == 1 and "line longer than" in err


# ------------------------------------------------------------------ files that once gave tracebacks


def test_file_name_too_long(run) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(["score", "x" * 5000 + ".txt"])
    _one_line(code, err, 2, "cannot open")


def test_unreadable_file(run) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(["score", "/proc/self/mem"])
    _one_line(code, err, 2, "/proc/self/mem", "cannot read")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "secret.txt"
    p.write_text("text")
    p.chmod(0)
    code, _, err = run(["score", str(p)])
    _one_line(code, err, 2, "cannot open")


@pytest.mark.parametrize("threads", ["0", "-1", "100000"])
def test_bad_thread_counts_are_usage_errors(threads: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["score", "--threads", threads])
    assert e.value.code == 2 and "--threads must be between 1 and" in capsys.readouterr().err


def test_nul_after_the_first_block_is_binary(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "late-nul.txt"
    p.write_bytes(b"Plain text. " * 1000 + b"\x00 and more.")
    code, _, err = run(["score", str(p)])
    _one_line(code, err, 2, "NUL byte at byte offset 12000")
    p = tmp_path / "late-nul.tsv"
    p.write_bytes(b"a\tFine.\n" * 2000 + b"b\tNot\x00fine.\n")
    code, _, err = run(["score", "--tsv-column", "2", str(p)])
    _one_line(code, err, 2, "late-nul.tsv:2001", "NUL byte")


@pytest.mark.parametrize(("encoding", "args"), [("utf-16", ["--encoding", "utf-16"]), ("utf-16", []),
                                                ("utf-16-le", ["--encoding", "utf-16-le"]), ("utf-32", [])],
                         ids=["utf16-bom-given", "utf16-bom-detected", "utf16le-no-bom", "utf32-bom-detected"])
def test_utf16_and_utf32_are_read(run, tmp_path: Path, encoding: str, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "wide.jsonl"
    rows = [{"id": 1, "text": "Première ligne. Xi Jinping. accepted."}, {"id": 2, "text": "Second line."}]
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    p.write_bytes(data.encode(encoding))
    code, out, err = run(["score", "--format", "jsonl", "--threshold", "1", *args, str(p)])
    assert code == 0, err
    assert [json.loads(x)["id"] for x in out.splitlines()] == [1, 2]


def test_decoding_error_names_line_and_byte(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "latin.txt"
    p.write_bytes(b"First line.\nSecond line.\nCaf\xe9 third.\n")
    code, _, err = run(["score", str(p)])
    _one_line(code, err, 2, "latin.txt:3", "byte offset 28")  # 12 + 13 + 3


# ------------------------------------------------------------------ output that once broke its own format


def test_tsv_ids_with_tabs_and_newlines_stay_on_one_line(run) -> None:  # type: ignore[no-untyped-def]
    data = b'{"id": "a\\tb\\nc", "text": "One."}\n{"id": 2, "text": "Two."}\n'
    code, out, _ = run(["score", "--format", "tsv", "--threshold", "1"], stdin=data)
    rows = out.splitlines()
    assert len(rows) == 2 and rows[0].split("\t")[0] == "a\\tb\\nc" and all(len(r.split("\t")) == 5 for r in rows)


def test_terminal_escapes_are_escaped(run) -> None:  # type: ignore[no-untyped-def]
    data = b'{"id": "\\u001b]0;pwned\\u0007\\u001b[2J", "text": "Evil \\u001b[31m text\\u202e here. accepted."}\n'
    code, out, err = run(["score", "--format", "pretty", "--threshold", "0", "--span-threshold", "0"], stdin=data)
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in out
    code, _, err = run(["score", "--jsonl"], stdin=b'{"id": "\\u001b[2J", "body": "x"}\n')
    assert "\x1b" not in err


def test_broken_pipe_keeps_the_flagged_exit_code(tiny_model_dir: Path, tmp_path: Path) -> None:
    p = tmp_path / "many.jsonl"
    p.write_text("".join(json.dumps({"id": i, "text": f"Record {i}. accepted."}) + "\n" for i in range(3000)))
    cmd = (f"set -o pipefail; {sys.executable} -m detector score --model {tiny_model_dir} --threshold 0 "
           f"--format jsonl {p} | head -n 1")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stdout.splitlines()) == 1


def test_internal_error_has_its_own_exit_code(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(Detector, "detect_batch", boom)
    code, _, err = run(["score", "--jsonl"], stdin=b'{"text": "x"}\n')
    _one_line(code, err, 4, "internal error: RuntimeError: simulated bug")
    monkeypatch.setenv("MTDETECT_DEBUG", "1")  # the traceback, and the same exit code
    code, _, err = run(["score", "--jsonl"], stdin=b'{"text": "x"}\n')
    assert code == 4 and "Traceback" in err and "simulated bug" in err


# ------------------------------------------------------------------ model folders


def _broken_copy(src: Path, dst: Path, name: str, content: bytes | None) -> Path:
    shutil.copytree(src, dst)
    if content is None:
        (dst / name).unlink()
    else:
        (dst / name).write_bytes(content)
    return dst


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("config.json", b"[1, 2]", "JSON object"),
        ("config.json", b"\xff\xfe\x00", "not UTF-8"),
        ("SHA256SUMS", b"not a manifest line\n", "is not a 'SHA256  NAME' line"),
        ("SHA256SUMS", b"", "is empty"),
        ("SHA256SUMS", b"0" * 64 + b"  ../escape.json\n", "not a file of the model folder"),
        ("tokenizer.json", b"{broken", "tokenizer.json"),
        ("model.safetensors", b"\x00\x01garbage", "model.safetensors"),
    ],
    ids=["config-list", "config-not-utf8", "manifest-malformed", "manifest-empty", "manifest-escapes",
         "tokenizer-broken", "weights-broken"],
)
def test_broken_model_folder_is_a_model_error(run, tiny_model_dir: Path, tmp_path: Path, name: str,
                                              content: bytes, needle: str) -> None:  # type: ignore[no-untyped-def]
    folder = _broken_copy(tiny_model_dir, tmp_path / "m", name, content)
    verify = name == "SHA256SUMS"
    with pytest.raises(ModelError, match=needle.replace("(", r"\(")):
        Detector.load(folder, verify=verify)
    code, _, err = run(["info"] + ([] if verify else ["--no-verify"]), model=folder)
    _one_line(code, err, 3, "model error")


@pytest.mark.parametrize("extra", ["evil.py", "notes.txt", ".hidden"])
def test_a_file_the_manifest_does_not_list_is_refused(run, tiny_model_dir: Path, tmp_path: Path, extra: str) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / extra).write_text("print('hello')\n")
    with pytest.raises(ModelError, match=f"{extra.replace('.', '[.]')} is not listed in SHA256SUMS"):
        Detector.load(folder)
    code, _, err = run(["info"], model=folder)
    _one_line(code, err, 3, "model error", "not listed")


def test_info_says_ok_only_when_every_listed_file_matches(run, tiny_model_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A file the backend in use does not read (here: the tokenizer is read, a listed extra file is not) still
    counts: ``info`` checks every digest."""
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    from detector.network import write_manifest

    (folder / "MODEL_CARD.md").write_text("card\n")
    write_manifest(folder)
    code, out, _ = run(["info", "--format", "json"], model=folder)
    assert code == 0 and json.loads(out)["checksum"] == "ok"
    (folder / "MODEL_CARD.md").write_text("changed\n")  # listed, not read by the loader: loading still works
    det = Detector.load(folder)
    assert det.info()["checksum"] == "mismatch: MODEL_CARD.md"
    code, out, _ = run(["info", "--format", "json"], model=folder)
    assert code == 0 and json.loads(out)["checksum"] == "mismatch: MODEL_CARD.md"


def test_manifest_must_cover_what_the_loader_reads(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    lines = (folder / "SHA256SUMS").read_text().splitlines()
    (folder / "SHA256SUMS").write_text("\n".join(x for x in lines if not x.endswith("model.safetensors")) + "\n")
    with pytest.raises(ModelError, match="model.safetensors is not listed"):
        Detector.load(folder)
    assert Detector.load(folder, verify=False).checksum == "not checked"


# ------------------------------------------------------------------ spans and graphemes


def _raw(text: str, offsets: list[tuple[int, int]]) -> RawScores:
    n = len(offsets)
    return RawScores(text, np.array([(0, len(text))]), np.zeros((1, 2)), np.array(offsets, dtype=np.int64),
                     np.zeros(n, dtype=np.int64), np.tile([0.0, 1.0, 0.0], (n, 1)))


@pytest.mark.parametrize(
    ("text", "token", "expected"),
    [
        ("I \u2764\ufe0f it", (2, 3), "\u2764\ufe0f"),  # heart + variation selector
        ("a \U0001f468\u200d\U0001f469\u200d\U0001f467 b", (2, 3), "\U0001f468\u200d\U0001f469\u200d\U0001f467"),
        ("x \U0001f44d\U0001f3fd y", (2, 3), "\U0001f44d\U0001f3fd"),  # emoji + skin tone
        ("cafe\u0301 ok", (3, 4), "cafe\u0301"),  # combining accent after a word piece
        ("a \u2192\u0301 b", (3, 4), "\u2192\u0301"),  # a span never starts on a combining mark
        ("a \u200d\U0001f600 b", (2, 3), "\U0001f600"),  # nor on a joiner after a space (it joins nothing)
        ("a \u200d b", (2, 3), None),  # a lone joiner is no span at all
    ],
    ids=["heart-fe0f", "family-zwj", "skin-tone", "combining-end", "combining-start", "zwj-after-space",
         "lone-zwj"],
)
def test_span_edges_snap_to_graphemes(tiny_detector: Detector, text: str, token: tuple[int, int],
                                      expected: str | None) -> None:
    d = tiny_detector.with_settings(span_threshold=0.5, span_score="fluency").decide(_raw(text, [token]))
    assert [s.text for s in d.spans] == ([expected] if expected else [])


# ------------------------------------------------------------------ shapes that once took quadratic time


@pytest.mark.parametrize(
    "text",
    ["word\n" * 5000, " " * 200_000, "." * 50_000, "\"" * 50_000, "a." * 50_000, "x" * 300_000,
     "no punctuation " * 20_000],
    ids=["many-short-lines", "spaces", "dots", "quotes", "dotted", "one-long-word", "long-line"],
)
def test_hard_shapes_complete_with_exact_offsets(tiny_detector: Detector, text: str) -> None:
    d = tiny_detector.with_settings(span_threshold=0.0).detect(text)
    for s in d.spans:
        assert text[s.start : s.end] == s.text
    for p in d.passages:
        assert text[p.start : p.end] == p.text and p.text.strip() == p.text


def test_many_one_word_lines_through_the_cli(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(["score", "--format", "jsonl", "--threshold", "1"], stdin=b"word\n" * 20000)
    assert code == 0 and len(out.splitlines()) == 1


# ------------------------------------------------------------------ language


def test_other_languages_are_marked_not_scored(tiny_detector: Detector) -> None:
    det = tiny_detector.with_settings(threshold=0.0, span_threshold=0.0)
    texts = ["Le gouvernement a annoncé de nouvelles mesures pour soutenir l'économie du pays.",
             "Die Regierung hat neue Maßnahmen zur Unterstützung der Wirtschaft angekündigt.",
             "政府宣布了支持经济的新措施，以帮助受影响的企业。"]
    for d, lang in zip(det.detect_batch(texts), ("fr", "de", "zh")):
        assert d.language == lang and d.score == 0.0 and not d.flagged and not d.spans
        assert all(p.language == lang and not p.flagged for p in d.passages)


def test_mixed_document_keeps_its_english_passages_scored(tiny_detector: Detector) -> None:
    """English passages are scored by the network; a passage in another language inside English text is marked
    untranslated (the rule's probability, one span over it, no network span)."""
    det = tiny_detector.with_settings(threshold=0.5, span_threshold=0.0)
    text = ("The committee will publish its report next week, officials said on Tuesday. "
            "Le gouvernement a annoncé de nouvelles mesures pour soutenir l'économie du pays. Xi Jinping. accepted.")
    d = det.detect(text)
    langs = [p.language for p in d.passages]
    assert langs[0] == "en" and langs[1] == "fr" and langs[-1] == "en" and d.language == "en" and d.status == "scored"
    assert 0 < d.passages[0].score < 0.99 and d.passages[1].score == pytest.approx(0.99) and d.passages[1].flagged
    inside = [s for s in d.spans if s.start < d.passages[1].end and d.passages[1].start < s.end]
    assert [(s.text, s.category) for s in inside] == [(d.passages[1].text, "untranslated")]


@pytest.mark.parametrize("text", ["Xi Jinping. accepted.", "Period.",
                                  "Front desk reporter Yang Hong", "The delegation visited the 会议 center."])
def test_short_or_mixed_english_stays_english(tiny_detector: Detector, text: str) -> None:
    assert tiny_detector.detect(text).language == "en"


# ------------------------------------------------------------------ properties over arbitrary input

ALPHABET = st.characters(codec=None, categories=None)  # every code point, surrogates and controls included
HOSTILE = st.sampled_from(["\r\n", "\u202e", "\u200b", "\u200d", "\ufe0f", "\x00", "\x1b[2J", "\ud800", "\udfff",
                           "\u0301", "שלום", "مرحبا", " ", "\n\n", ".", "Xi Jinping. accepted."])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(alphabet=ALPHABET, max_size=30), HOSTILE), max_size=12).map("".join))
@example("x")
@example("\ud800")
def test_any_string_scores_with_exact_offsets_and_the_same_result_twice(tiny_detector: Detector, text: str) -> None:
    det = tiny_detector.with_settings(span_threshold=0.0)
    d = det.detect(text)
    assert d == det.detect(text)
    for s in d.spans:
        assert 0 <= s.start < s.end <= len(text) and text[s.start : s.end] == s.text
    for p in d.passages:
        assert text[p.start : p.end] == p.text


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.sampled_from([[], ["--jsonl"], ["--tsv-column", "2"], ["--plain"]]))
def test_any_bytes_give_a_result_or_a_documented_error(run, data: bytes, kind: list[str]) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(["score", "--format", "jsonl", *kind], stdin=data)
    assert code in (0, 1, 2) and "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) >= 1
    for line in out.splitlines():
        json.loads(line)


def test_a_million_character_string(tiny_detector: Detector) -> None:
    import random

    rng = random.Random(0)
    text = "".join(rng.choice("ab c.\n\u0301\u200d\U0001f600é中\ud800") for _ in range(1_000_000))
    d = tiny_detector.with_settings(span_threshold=0.5).detect(text)
    assert all(text[s.start : s.end] == s.text for s in d.spans)
    assert d.passages and d.passages[-1].end <= len(text)


def test_fuzz_finding_span_never_leaves_its_passage(tiny_detector: Detector) -> None:
    """atheris found a span moved onto the newline before its passage: a combining mark opening a passage."""
    text = "WE \n\n\u0aff\u0a05\u0a05\u0a09 x"
    raw = _raw(text, [(5, 9)])
    raw = RawScores(text, np.array([(0, 2), (5, 9), (10, 11)]), np.zeros((3, 2)), raw.token_offsets,
                    np.array([1]), raw.token_probs)
    d = tiny_detector.with_settings(span_threshold=0.5, span_score="fluency").decide(raw)
    assert [(s.start, s.end) for s in d.spans] == [(5, 9)]
