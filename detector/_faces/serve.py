"""``mtdetect serve``: a small ASGI app (Starlette, served by uvicorn; the ``serve`` extra).

- ``GET /``: a page with a text box; ``POST /`` (the form) shows the text with the same highlighted view as
  ``mtdetect score --format html``.
- ``POST /score``: JSON Lines in (``{"id": ..., "text": ...}`` per line), JSON Lines out (the record schema of
  ``mtdetect score --format jsonl``), in order.
- ``GET /health``: model name, version and whether the accurate mode is on.

The model is loaded once; scoring runs in a worker thread under a lock, so concurrent requests are safe. Limits give
clear 4xx errors as JSON ``{"error": "..."}``: 413 for a body over ``max_bytes``, more than ``max_records`` records or
a text over ``max_chars``; 400 for a line that is not JSON; 422 for a record without a string text field.
"""

from __future__ import annotations

import html
import threading
from typing import Any
from urllib.parse import parse_qs

from .formatting import json_line, record_dict
from .reading import JsonLineError, parse_json_line
from .report import ReportItem, render_page

MAX_BYTES = 1 << 20
MAX_RECORDS = 256
MAX_CHARS = 100_000


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_records(body: bytes, max_records: int, max_chars: int) -> list[tuple[Any, str]]:
    """(id, text) of each non-blank JSON line of a request body; raises :class:`RequestError`."""
    try:
        lines = body.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise RequestError(400, f"the body is not UTF-8 (byte {e.start})") from None
    out: list[tuple[Any, str]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = parse_json_line(line)
        except JsonLineError as e:
            raise RequestError(400, f"line {n}: not JSON ({e})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise RequestError(422, f"line {n}: needs a JSON object with a string 'text' field")
        if len(obj["text"]) > max_chars:
            raise RequestError(413, f"line {n}: text of {len(obj['text'])} characters, over the limit of {max_chars}")
        out.append((obj.get("id", n), obj["text"]))
        if len(out) > max_records:
            raise RequestError(413, f"more than {max_records} records in one request")
    if not out:
        raise RequestError(400, "no records: send JSON Lines, one {\"id\": ..., \"text\": ...} per line")
    return out


def _form(text: str, error: str = "") -> str:
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return ('<form method="post" action="/"><label for="text">Text to check</label>'
            f'<textarea id="text" name="text" spellcheck="false">{html.escape(text)}</textarea>'
            f'<p><button type="submit" id="check">Check</button></p></form>{err}')


#: names a local server answers to (a browser sends the name it used in the Host header)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
#: bind addresses meaning "every interface"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def allowed_hosts(bind: str, extra: tuple[str, ...] = ()) -> list[str]:
    """Host header values the server answers (others get 400, which stops DNS rebinding: a page from another site
    that resolves its own name to 127.0.0.1 sends that name, not ours). A server bound to every interface answers
    any name unless ``extra`` names them; otherwise the loopback names, the bind address and ``extra``."""
    if bind in WILDCARD_HOSTS and not extra:
        return ["*"]
    names = [*LOOPBACK_HOSTS, *([bind] if bind not in WILDCARD_HOSTS else []), *extra]
    return list(dict.fromkeys(names))


def create_app(det: Any, max_bytes: int = MAX_BYTES, max_records: int = MAX_RECORDS,
               max_chars: int = MAX_CHARS, hosts: list[str] | None = None) -> Any:
    """The Starlette app around a loaded :class:`detector.Detector`; ``hosts``: the Host header values it answers
    (:func:`allowed_hosts`; default: the loopback names)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    lock = threading.Lock()
    info = det.info()

    def score(texts: list[str]) -> list[Any]:
        with lock:
            return list(det.detect_batch(texts))

    async def body_of(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise RequestError(413, f"request body over the limit of {max_bytes} bytes")
        chunks = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise RequestError(413, f"request body over the limit of {max_bytes} bytes")
                chunks.append(chunk)
        except ClientDisconnect:  # the client went away mid-upload: nobody to answer, nothing to log
            raise RequestError(499, "the client disconnected") from None
        return b"".join(chunks)

    def error(e: RequestError) -> Response:
        return JSONResponse({"error": str(e)}, status_code=e.status)

    async def page(request: Request) -> Response:
        text, err, items = "", "", []
        if request.method == "POST":
            try:
                form = parse_qs((await body_of(request)).decode("utf-8", errors="replace"), keep_blank_values=True)
                text = form.get("text", [""])[0]
                if len(text) > max_chars:
                    raise RequestError(413, f"text of {len(text)} characters, over the limit of {max_chars}")
                if text.strip():
                    items = [ReportItem("Your text", text, (await run_in_threadpool(score, [text]))[0])]
                else:
                    err = "Type or paste some text first."
            except RequestError as e:
                return HTMLResponse(render_page([], info, "mtdetect", _form(text, str(e))), status_code=e.status)
        return HTMLResponse(render_page(items, info, "mtdetect", _form(text, err)))

    async def score_endpoint(request: Request) -> Response:
        try:
            records = parse_records(await body_of(request), max_records, max_chars)
        except RequestError as e:
            return error(e)
        dets = await run_in_threadpool(score, [t for _, t in records])
        body = "".join(json_line(record_dict(rid, d)) + "\n" for (rid, _), d in zip(records, dets))
        return PlainTextResponse(body, media_type="application/x-ndjson")

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": info["name"], "version": info["version"],
                             "accurate": info["accurate"]})

    return Starlette(routes=[Route("/", page, methods=["GET", "POST"]), Route("/score", score_endpoint, methods=["POST"]),
                             Route("/health", health, methods=["GET"])],
                     middleware=[Middleware(TrustedHostMiddleware,
                                            allowed_hosts=hosts if hosts is not None else list(LOOPBACK_HOSTS))])
