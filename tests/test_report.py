"""The HTML report (``--format html``) and the ``serve`` app, without a browser (tiny random model)."""

from __future__ import annotations

import io
import json
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from detector import Detector
from detector.cli import main

HOSTILE = ("<script>document.body.setAttribute('data-pwned','script')</script> "
           "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\"> &amp; &lt;b&gt; Xi Jinping. accepted.")


class _Tags(HTMLParser):
    """Collects tags, attributes and text, to check what the page really holds."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.marks: list[str] = []
        self._in_mark = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "mark":
            self._in_mark += 1
            self.marks.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._in_mark -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_mark:
            self.marks[-1] += data


def _parse(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    return p


@pytest.fixture()
def run(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def _run(args: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(args + ["--model", str(tiny_model_dir)])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def test_html_report_is_self_contained_and_escaped(run) -> None:  # type: ignore[no-untyped-def]
    data = (json.dumps({"id": "<b>id</b>", "text": HOSTILE}) + "\n" + json.dumps({"id": 2, "text": "Fine."}) + "\n")
    code, out, _ = run(["score", "--format", "html", "--threshold", "0", "--span-threshold", "0"], stdin=data.encode())
    page = _parse(out)
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "img" not in tags and "link" not in tags  # input shown as text, nothing loaded
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)  # no event handler anywhere
    assert "http" not in " ".join(v or "" for _, attrs in page.tags for v in attrs.values())  # no external asset
    text = "".join(page.text)
    assert "<script>document.body" in text and "&amp;" in text and "<b>id</b>" in text
    assert out.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in out
    assert page.marks and all(m for m in page.marks)
    hrefs = [a.get("href") for t, a in page.tags if t == "a"]
    assert hrefs == ["#doc-0", "#doc-1"]  # a table of contents for several documents


def test_html_spans_carry_score_and_category_and_read_without_colour(tiny_detector: Detector) -> None:
    from detector._faces.report import ReportItem, render_page

    det = tiny_detector.with_settings(threshold=0.0, span_threshold=0.0)
    text = "One sentence here. Xi Jinping. accepted."
    page = render_page([ReportItem("doc", text, det.detect(text))], det.info())
    marks = [a for t, a in _parse(page).tags if t == "mark"]
    assert marks and all(a.get("title", "").startswith("score ") and a.get("data-category") in ("fluency", "accuracy")
                         for a in marks)
    assert "text-decoration:underline" in page and '<sup class="score"' in page  # not colour alone


# --------------------------------------------------------------------------- serve

@pytest.fixture(scope="module")
def client(tiny_detector: Detector):  # type: ignore[no-untyped-def]
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    from starlette.testclient import TestClient

    from detector._faces.serve import create_app

    return TestClient(create_app(tiny_detector.with_settings(threshold=0.0), max_bytes=4096, max_records=3,
                                 max_chars=500), base_url="http://127.0.0.1:8000")


def test_score_endpoint_returns_the_jsonl_schema_in_order(client) -> None:  # type: ignore[no-untyped-def]
    body = '{"id": "a", "text": "The cat sat."}\n\n{"text": "Xi Jinping. accepted."}\n'
    r = client.post("/score", content=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(x) for x in r.text.splitlines()]
    assert [x["id"] for x in rows] == ["a", 3]
    assert all(set(x) == {"id", "score", "flagged", "status", "language", "spans"} for x in rows)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ("x" * 5000, 413, "over the limit of 4096 bytes"),
        ("".join(json.dumps({"text": "t."}) + "\n" for _ in range(4)), 413, "more than 3 records"),
        (json.dumps({"text": "w" * 600}), 413, "over the limit of 500"),
        ("{not json", 400, "line 1: not JSON"),
        ('{"id": NaN, "text": "x"}', 400, "NaN is not JSON"),
        ('{"id": 1e400, "text": "Hello world."}', 400, "out of range"),
        ('{"body": "x"}', 422, "string 'text' field"),
        ("", 400, "no records"),
    ],
    ids=["body-too-large", "too-many-records", "text-too-long", "malformed", "nan", "id-out-of-float-range",
         "no-text-field", "empty"],
)
def test_score_endpoint_limits_and_errors(client, body: str, status: int, needle: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/score", content=body)
    assert r.status_code == status and needle in r.json()["error"]


def test_page_shows_the_highlighted_view_escaped(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/").status_code == 200 and "<textarea" in client.get("/").text
    r = client.post("/", data={"text": HOSTILE})
    page = _parse(r.text)
    assert r.status_code == 200 and "script" not in [t for t, _ in page.tags] and "img" not in [t for t, _ in page.tags]
    assert "<script>document.body" in "".join(page.text) and page.marks
    assert client.get("/health").json()["status"] == "ok"


def test_concurrent_requests_are_safe(client) -> None:  # type: ignore[no-untyped-def]
    texts = [f"Sentence number {i}. accepted." for i in range(12)]
    expected = {t: client.post("/score", content=json.dumps({"id": t, "text": t})).json()["score"] for t in texts}
    got: dict[str, float] = {}

    def worker(t: str) -> None:
        got[t] = client.post("/score", content=json.dumps({"id": t, "text": t})).json()["score"]

    threads = [threading.Thread(target=worker, args=(t,)) for t in texts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert got == expected


def test_serve_binds_localhost_by_default() -> None:
    from detector.cli import _parser

    a = _parser().parse_args(["serve"])
    assert a.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("bind", "extra", "host", "status"),
    [
        ("127.0.0.1", (), "127.0.0.1:8000", 200),
        ("127.0.0.1", (), "localhost:8000", 200),
        ("127.0.0.1", (), "[::1]:8000", 200),
        ("127.0.0.1", (), "evil.example:8000", 400),  # DNS rebinding: another site's name resolved to 127.0.0.1
        ("127.0.0.1", ("mtdetect.lan",), "mtdetect.lan", 200),
        ("0.0.0.0", (), "anything.example", 200),  # bound to every interface on purpose: any name
        ("0.0.0.0", ("box.lan",), "anything.example", 400),
    ],
    ids=["loopback-ip", "localhost", "ipv6-loopback", "rebinding-refused", "allowed-name", "wildcard-any",
         "wildcard-named-only"],
)
def test_serve_answers_only_its_own_host_names(tiny_detector: Detector, bind: str, extra: tuple[str, ...],
                                              host: str, status: int) -> None:
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    from starlette.testclient import TestClient

    from detector._faces.serve import allowed_hosts, create_app

    client = TestClient(create_app(tiny_detector, hosts=allowed_hosts(bind, extra)), base_url="http://127.0.0.1")
    assert client.get("/health", headers={"host": host}).status_code == status


def test_client_disconnect_mid_upload_is_not_an_error(tiny_detector: Detector) -> None:
    """A client that goes away while sending its body gets no answer and leaves no traceback in the log."""
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    import asyncio

    from detector._faces.serve import create_app

    app = create_app(tiny_detector)
    sent: list[dict] = []  # type: ignore[type-arg]
    messages = [{"type": "http.request", "body": b'{"text": "Hel', "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict:  # type: ignore[type-arg]
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/score", "raw_path": b"/score", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/x-ndjson")],
             "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
             "root_path": "", "app": app}
    asyncio.run(app(scope, receive, send))  # no exception escapes
    assert sent and sent[0]["status"] == 499
