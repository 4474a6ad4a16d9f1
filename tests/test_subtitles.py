"""Subtitle input (issue #36, part 1): SRT and WebVTT cues as records, markup removed, every finding mapped back to
its line and column in the file."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from detector import Detector
from detector.cli import main

pytest.importorskip("srt")
pytest.importorskip("webvtt")

from detector.subtitles import read_subtitles  # noqa: E402

SRT = ("1\n00:00:01,000 --> 00:00:03,000\nThe committee will publish\nits report next week.\n\n"
       "2\n00:00:04,000 --> 00:00:06,500\n<i>Putin had received an invitation.</i> <b>accepted.</b>\n\n"
       "3\n00:00:07,000 --> 00:00:09,000\n{\\an8}Which can be understood by people. common sense.\n\n"
       "4\n00:00:10,000 --> 00:00:11,000\n<i></i>\n")
VTT = ("WEBVTT - a header\n\nNOTE a comment\nspanning lines\n\nintro\n00:00:01.000 --> 00:00:03.000 align:start\n"
       "<v Anna>The committee will publish</v>\nits <c.yellow>report</c> next week.\n\n"
       "00:00:04.000 --> 00:00:06.500\nPutin had received an invitation. accepted.\n")
CASES = {
    "srt": ("srt", SRT, [(1, "The committee will publish its report next week.", 3),
                         (2, "Putin had received an invitation. accepted.", 8),
                         (3, "Which can be understood by people. common sense.", 12)]),
    "srt-crlf-bom": ("srt", "\ufeff" + SRT.replace("\n", "\r\n"), []),  # the same cues as "srt"
    "vtt": ("vtt", VTT, [("intro", "The committee will publish its report next week.", 8),
                         (2, "Putin had received an invitation. accepted.", 12)]),
}


CASES["srt-crlf-bom"] = ("srt", CASES["srt-crlf-bom"][1], CASES["srt"][2])


def _lines(raw: str) -> list[str]:
    return raw.lstrip("\ufeff").replace("\r\n", "\n").split("\n")


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_cues_are_records_with_their_place_in_the_file(case: str) -> None:
    """Ids, text without markup (an empty cue is no record) and each cue's first text line; every character of a
    record's text is the character at its (line, column) in the file, or the space that joins two lines."""
    fmt, raw, want = CASES[case]
    got = list(read_subtitles(raw, f"x.{fmt}", fmt))
    assert [(cue, text, unit.line) for cue, text, unit in got] == want
    lines = _lines(raw)
    for _, text, unit in got:
        assert len(unit.origin) == len(text)
        for i, ch in enumerate(text):
            line, col = unit.position(i)
            src = lines[line - 1]
            assert ch == " " or src[col - 1] == ch, (text, i)  # a space may be the join of two lines
        assert unit.position(len(text))[1] == unit.origin[-1][1] + 1


@pytest.mark.parametrize(("name", "raw", "needle"), [
    ("bad.srt", "this is not a subtitle file\n", "not a valid SRT file"),
    ("bad.vtt", "1\n00:00:01,000 --> 00:00:02,000\nan SRT body\n", "not a valid VTT file"),
    ("bin.srt", "\x00\x01\x02", "binary"),
], ids=["srt-garbage", "vtt-without-header", "binary"])
def test_bad_subtitle_files_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                tiny_model_dir: Path, name: str, raw: str, needle: str) -> None:
    p = tmp_path / name
    p.write_bytes(raw.encode())
    assert main(["score", str(p), "--model", str(tiny_model_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and name in err[0] and "Traceback" not in err[0]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "tsv", "pretty", "html"])
def test_every_output_format_says_where_a_finding_is(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     tiny_model_dir: Path, fmt: str) -> None:
    """Scores are the library's on the cue texts; with every passage flagged and spanned whole (threshold 0, span
    threshold 0) each span's line and column point at its first character in the file."""
    p = tmp_path / "film.srt"
    p.write_text(SRT, encoding="utf-8")
    opts = ["--threshold", "0", "--span-threshold", "0", "--span-gate", "0", "--model", str(tiny_model_dir)]
    code = main(["score", str(p), "--format", fmt, *opts])
    out = capsys.readouterr().out
    assert code == 1  # everything is flagged at threshold 0
    det = Detector.load(tiny_model_dir).with_settings(threshold=0, span_threshold=0, span_gate=0)
    texts = [t for _, t, _ in CASES["srt"][2]]
    expected = det.detect_batch(texts)
    lines = _lines(SRT)
    if fmt in ("jsonl", "json"):
        recs = [json.loads(x) for x in out.splitlines()] if fmt == "jsonl" else json.loads(out)
        assert [r["id"] for r in recs] == [1, 2, 3]
        for r, d, (_, _, first) in zip(recs, expected, CASES["srt"][2]):
            assert r["score"] == pytest.approx(d.score, abs=1e-6) and r["unit"]["line"] == first
            assert r["unit"]["file"] == str(p) and r["unit"]["format"] == "srt" and r["spans"]
            for s in r["spans"]:
                assert lines[s["line"] - 1][s["column"] - 1] == s["text"][0]
    elif fmt == "tsv":
        rows = [x.split("\t") for x in out.splitlines()]
        assert [len(r) for r in rows] == [6, 6, 6]
        for r in rows:
            for place in r[5].split(";"):
                line, col = map(int, place.rsplit(":", 2)[1:])
                assert lines[line - 1][col - 1].isalpha()
    elif fmt == "pretty":
        assert "1: cue 1 at 00:00:01,000, line 3 FLAGGED" in out and "cue 3 at 00:00:07,000, line 12" in out
    else:
        assert "cue 2 at 00:00:04,000, line 8" in out


def test_subtitles_option_reads_any_name_and_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    p = tmp_path / "captions.txt"
    p.write_text(VTT, encoding="utf-8")
    assert main(["score", str(p), "--subtitles", "vtt", "--format", "jsonl", "--model", str(tiny_model_dir)]) in (0, 1)
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == ["intro", 2]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SRT.encode())))
    assert main(["score", "--subtitles", "srt", "--format", "jsonl", "--model", str(tiny_model_dir)]) in (0, 1)
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in recs] == [1, 2, 3] and recs[0]["unit"]["file"] == "<stdin>"


def test_a_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from detector._faces.reading import InputError

    monkeypatch.setitem(sys.modules, "srt", None)  # import srt raises ImportError
    with pytest.raises(InputError, match=r"pip install 'mtdetect\[formats\]'"):
        list(read_subtitles(SRT, "x.srt", "srt"))
