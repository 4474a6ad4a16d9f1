"""In a real browser: Debian's headless Chromium, driven by selenium through Debian's chromedriver (no browser download
at run time; .ci/run installs both when missing). The report of the seed article and the served page are checked
through the DOM: both must_flag spans highlighted, and nothing from the input ran."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector import Detector

from .conftest import seed_article

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="Debian chromium and chromium-driver needed")

HOSTILE = ("<script>document.body.setAttribute('data-pwned','script')</script> "
           "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\"> &amp; &lt;b&gt; entities")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,1000"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shipped() -> Detector:
    return Detector.load()


def _gold() -> tuple[str, list[str]]:
    text, gold = seed_article()
    return text, [g["text"] for g in gold["spans"] if g["kind"] == "must_flag"]


def _check_page(browser: Any, must: list[str]) -> None:
    from selenium.webdriver.common.by import By

    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-pwned") is None  # no script from the input ran
    assert browser.execute_script("return document.querySelectorAll('script').length") == 0
    marks = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "mark.span")]
    for text in must:  # each must_flag span overlaps a highlighted span (the gold rule's "hit")
        assert any(m and (m in text or text in m) for m in marks), (text, marks)
    page_text = browser.find_element(By.TAG_NAME, "body").text
    assert "<script>document.body.setAttribute" in page_text and "&amp;" in page_text  # shown as text


def test_report_of_the_seed_article(browser: Any, shipped: Detector, tmp_path: Path) -> None:
    from detector._faces.formatting import Writer

    text, must = _gold()
    page = tmp_path / "report.html"
    with open(page, "w", encoding="utf-8") as f:
        w = Writer(f, "html", info=shipped.info())
        w.write("russia-china-article.txt", shipped.detect(text), text)
        w.write("hostile", shipped.detect(HOSTILE), HOSTILE)
        w.close()
    browser.get(page.as_uri())
    _check_page(browser, must)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_served_page_after_typing(browser: Any, shipped: Detector) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from detector._faces.serve import create_app

    text, must = _gold()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(shipped), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 30
        while not server.started and time.time() < deadline:
            time.sleep(0.1)
        browser.get(f"http://127.0.0.1:{port}/")
        box = browser.find_element(By.ID, "text")
        # the article goes in through the page's own script-free textarea; typing all of it key by key is slow,
        # so it is set as the value, then the hostile text is typed for real
        browser.execute_script("arguments[0].value = arguments[1];", box, text + "\n\n")
        box.send_keys(HOSTILE)
        browser.find_element(By.ID, "check").click()
        WebDriverWait(browser, 120).until(ec.presence_of_element_located((By.CSS_SELECTOR, "section.document")))
        _check_page(browser, must)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
