"""Web pages, Markdown, PO and XLIFF input (issue #36): only prose or translated strings are scored, and every
finding maps back to its unit, line and column in the file. The example files are in examples/."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from detector.cli import main

from .conftest import REPO, seed_article

pytest.importorskip("trafilatura")
pytest.importorskip("polib")
pytest.importorskip("lxml")
pytest.importorskip("markdown_it")

from detector.documents import read_html, read_markdown  # noqa: E402
from detector.localisation import read_po, read_xliff  # noqa: E402

EXAMPLES = REPO / "examples"


def _score(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict]]:
    code = main(["score", *args, "--format", "jsonl"])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def _at(path: Path, line: int, column: int) -> str:
    return path.read_text(encoding="utf-8").split("\n")[line - 1][column - 1 :]


@pytest.mark.parametrize(
    "name,absent,present",
    [
        ("news-page.html", ["Subscribe now", "gtag", "font-family", "Related stories", "All rights reserved",
                            "Cookie settings"],
         ["A trade delegation arrived in Beijing", "January. accepted.", "ordinary people. common sense."]),
        ("guide.md", ["title: Getting started", "pip install mtdetect", "mtdetect info", "https://example.org",
                      "indented code block", "```"],
         ["Getting started", "the changelog lists what is new", "understood by people. common sense.",
          "Scores are probabilities"]),
    ],
    ids=["html", "markdown"],
)
def test_only_prose_is_read(name: str, absent: list[str], present: list[str]) -> None:
    path = EXAMPLES / name
    reader = read_html if name.endswith(".html") else read_markdown
    text, unit = reader(path.read_text(encoding="utf-8"), name)
    for a in absent:
        assert a not in text
    for p in present:
        assert p in text
    # every character of the prose maps to the same character in the file (whitespace runs collapse to one space)
    for off, ch in enumerate(text):
        if ch.isspace():
            continue
        line, col = unit.position(off)
        assert _at(path, line, col).startswith(ch if ch != "\xa0" else "&"), (off, ch, line, col)


@pytest.mark.parametrize("name", ["news-page.html", "guide.md", "app.po", "app.xlf"], ids=lambda n: n.split(".")[1])
def test_findings_map_back_to_the_file(capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = EXAMPLES / name
    code, recs = _score(capsys, str(path))
    assert code == 1  # each example holds a garbled passage
    assert any(r["flagged"] for r in recs)
    spans = [(r, s) for r in recs for s in r["spans"]]
    assert spans
    for r, s in spans:
        assert r["unit"]["file"] == str(path)
        written = _at(path, s["line"], s["column"])
        assert written.startswith(s["text"][:1]), (s, written[:20])
    if name.endswith(".html"):
        assert all(s["element"].startswith("/html/body/main/article/p") for _, s in spans)
    if name.endswith(".md"):
        assert [s["block"] for _, s in spans] == ["list item > paragraph"]


def test_po_units(capsys: pytest.CaptureFixture[str]) -> None:
    path = EXAMPLES / "app.po"
    _, recs = _score(capsys, str(path))
    units = {r["id"]: r["unit"] for r in recs}
    # translated strings only: no header, msgid, untranslated or obsolete entry; both plural forms
    assert list(units) == ["Datei öffnen", "toolbar|Speichern unter", "Die Einladung wurde angenommen.",
                           "Eine Datei wurde gelöscht.[0]", "Eine Datei wurde gelöscht.[1]",
                           "Die Regeln sind für alle verständlich."]
    assert units["toolbar|Speichern unter"]["fuzzy"] is True
    assert units["Eine Datei wurde gelöscht.[1]"]["plural"] == 1
    lines = path.read_text(encoding="utf-8").split("\n")
    for u in units.values():
        assert lines[u["line"] - 1].startswith("msgstr")
    texts = {r["id"]: r for r in recs}
    assert "Old text" not in json.dumps(recs) and "Datei" not in "".join(r["spans"] and r["spans"][0]["text"] or ""
                                                                     for r in recs)
    # a string continued over several lines reads as one
    rid = "Die Einladung wurde angenommen."
    assert texts[rid]["flagged"]


def test_po_escapes_map_to_where_they_are_written() -> None:
    po = 'msgid "a"\nmsgstr "Say \\"hi\\"\\n"\n"again"\n'
    (rid, text, unit), = list(read_po(po, "x.po"))
    assert text == 'Say "hi"\nagain'
    assert unit.position(4) == (2, 13)  # the escaped quote: its backslash
    assert unit.position(text.index("again")) == (3, 2)


def test_xliff_units() -> None:
    path = EXAMPLES / "app.xlf"
    recs = list(read_xliff(path.read_bytes(), "app.xlf"))
    assert [r[0] for r in recs] == ["menu.open", "dialog.invite", "help.rules"]  # the empty target is left out
    _, text, unit = recs[2]
    assert text.startswith("Rules & notes") and unit.state == "needs-review-translation"
    raw = path.read_text(encoding="utf-8").split("\n")
    line, col = unit.position(text.index("&"))
    assert raw[line - 1][col - 1 :].startswith("&amp;")
    line, col = unit.position(text.index("common"))
    assert raw[line - 1][col - 1 :].startswith("common sense.")
    _, text, unit = recs[1]
    line, col = unit.position(text.index("President"))
    assert raw[line - 1][col - 1 :].startswith("President</g>")


def test_xliff_2() -> None:
    data = ('<?xml version="1.0"?>\n<xliff xmlns="urn:oasis:names:tc:xliff:document:2.0" version="2.0" srcLang="de" '
            'trgLang="en">\n<file id="f"><unit id="u1"><segment><source>A</source>\n<target>First part.</target>'
            '</segment><segment><source>B</source><target>Second. part</target></segment></unit></file></xliff>\n')
    recs = list(read_xliff(data.encode(), "x.xlf"))
    assert [(r[0], r[1]) for r in recs] == [("u1#1", "First part."), ("u1#2", "Second. part")]
    assert recs[0][2].position(0) == (4, 9)  # line 4: <target>First part.


def test_annotated_po_copy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "app.po"
    original = (EXAMPLES / "app.po").read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    assert main(["score", str(path), "--format", "po", "--mark-fuzzy"]) == 1
    out = capsys.readouterr().out
    assert path.read_text(encoding="utf-8") == original  # never overwritten
    import polib

    cat = polib.pofile(out)
    flagged = [e for e in cat if e.comment and "mtdetect:" in e.comment]
    assert {e.msgid for e in flagged} == {"Die Einladung wurde angenommen.", "Die Regeln sind für alle verständlich."}
    assert all(e.fuzzy for e in flagged)
    assert "“common sense.”" in next(e for e in flagged if e.msgid.startswith("Die Regeln")).comment
    assert not cat.find("Datei öffnen").comment  # unflagged entries untouched
    assert len(cat) == len(polib.pofile(original))


@pytest.mark.parametrize(
    "args,message",
    [(["--format", "po", "X/guide.md"], "annotates one PO file"),
     (["--mark-fuzzy", "X/app.po"], "--mark-fuzzy goes with --format po"),
     (["--format", "po", "X/app.po", "X/app.po"], "annotates one PO file")],
    ids=["po-output-of-markdown", "fuzzy-without-po", "two-files"],
)
def test_po_output_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    args = [a.replace("X/", f"{EXAMPLES}/") for a in args]
    with pytest.raises(SystemExit) as e:
        main(["score", *args])
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "name,content,message",
    [("bad.po", 'msgid "a"\nmsgstr "unterminated\n', "bad.po:2: not a valid PO file"),
     ("junk.po", "this is not gettext\n", "junk.po: not a valid PO file"),
     ("bad.xlf", '<xliff version="1.2"><file><body><trans-unit id="1"><target>x</tar', "bad.xlf:1: not valid XML"),
     ("other.xlf", "<root/>", "not an XLIFF file (the root element is <root>)"),
     ("entity.xlf", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                    '<xliff><file><body><trans-unit id="1"><target>&e;</target></trans-unit></body></file></xliff>',
      "the input is empty"),
     ("binary.html", "\x00\x01\x02<html>", "binary"),
     ("scripts.html", "<html><body><script>var x = 1;</script></body></html>", "no prose found")],
    ids=["po-unterminated", "po-junk", "xliff-broken", "xliff-not", "xliff-external-entity", "html-binary",
         "html-no-prose"],
)
def test_bad_files(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert main(["score", str(path), "--format", "jsonl"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert "root:" not in err  # the external entity is never read


@pytest.mark.parametrize("fmt,ext", [("html", "txt"), ("md", "txt"), ("po", "txt"), ("xliff", "dat")],
                         ids=["html", "md", "po", "xliff"])
def test_input_format_overrides_the_extension(capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str,
                                              ext: str) -> None:
    src = {"html": "news-page.html", "md": "guide.md", "po": "app.po", "xliff": "app.xlf"}[fmt]
    path = tmp_path / f"input.{ext}"
    path.write_bytes((EXAMPLES / src).read_bytes())
    _, recs = _score(capsys, "--input-format", fmt, str(path))
    assert recs and all(r["unit"]["format"] == fmt for r in recs)


def test_stdin_with_input_format(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    data = (EXAMPLES / "app.po").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    _, recs = _score(capsys, "--input-format", "po", "-")
    assert len(recs) == 6 and recs[0]["unit"]["file"] == "<stdin>"


def test_seed_article_as_a_web_page(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The seed article saved as a web page (menu, scripts, footer around it) gets the same flags as its text."""
    text, _ = seed_article()
    paras = [p for p in text.split("\n\n") if p.strip()]
    body = "\n".join(f"<p>{p.replace('&', '&amp;').replace('<', '&lt;')}</p>" for p in paras[1:])
    page = (f"<!DOCTYPE html><html><head><title>{paras[0]}</title><script>var menu = 'Home';</script></head>"
            f"<body><nav><ul><li><a href='/'>Home</a></li><li><a href='/world'>World</a></li></ul></nav>"
            f"<article>\n{body}\n</article><footer><p>Copyright 2021 Community News.</p></footer></body></html>")
    (tmp_path / "seed.html").write_text(page, encoding="utf-8")
    (tmp_path / "seed.txt").write_text(text, encoding="utf-8")
    _, (html_rec,) = _score(capsys, str(tmp_path / "seed.html"))
    _, (text_rec,) = _score(capsys, str(tmp_path / "seed.txt"))
    assert html_rec["flagged"] == text_rec["flagged"] is True
    assert [s["text"] for s in html_rec["spans"]] == [s["text"] for s in text_rec["spans"]]
    assert [round(s["score"], 3) for s in html_rec["spans"]] == [round(s["score"], 3) for s in text_rec["spans"]]


def test_html_report_links_each_finding_to_its_place(capsys: pytest.CaptureFixture[str]) -> None:
    path = EXAMPLES / "app.po"
    assert main(["score", str(path), "--format", "html"]) == 1
    page = capsys.readouterr().out
    assert f'href="{path}#L33"' in page and ">app.po:33:62</a>" in page  # the span "common sense."
    assert "msgstr of &#x27;Die Regeln sind für alle verständlich.&#x27;, line 33" in page


def test_xliff_target_beside_its_source() -> None:
    """A target on the same line as its source (and a second unit on that line) maps to its own text."""
    data = ('<?xml version="1.0"?>\n<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2"><file><body>\n'
            '<trans-unit id="a"><source>Quelle hier</source><target>Target text here</target></trans-unit>'
            '<trans-unit id="b"><source>Zweite</source><x:target xmlns:x="urn:oasis:names:tc:xliff:document:1.2">'
            'Second one</x:target></trans-unit>\n</body></file></xliff>\n')
    raw = data.split("\n")
    for _, text, unit in read_xliff(data.encode(), "x.xlf"):
        line, col = unit.position(0)
        assert raw[line - 1][col - 1 :].startswith(text)
