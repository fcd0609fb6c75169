"""End to end in a real browser: `streamlit run app.py`, Debian's chromium driven by Playwright, the lecture path
clicked through the UI. On every page: each Vega-Lite chart drew marks, no Streamlit error or exception box,
the key numbers are there; a full-page screenshot per page goes to $TJ_SCREENSHOTS (default: pytest's tmp dir).

The walk itself (pages, buttons, expected texts and charts) is the STEPS list at the top of
tests/browser_walk.py, shared with scripts/screenshots.py: append a Step there to cover another page.
Skips, with the reason, only when /usr/bin/chromium or the playwright package is missing.
"""
import os
from pathlib import Path

import pytest

import browser_walk as bw
from browser_walk import STEPS

pytestmark = pytest.mark.skipif(bw.available() is not None, reason=f"browser test: {bw.available()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = bw.Server(log_dir=tmp_path_factory.mktemp("streamlit_log"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = bw.launch(p)
        try:
            yield bw.new_page(browser, server.url)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return Path(os.environ.get("TJ_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))


def test_lecture_path_in_a_real_browser(page, shots):
    # One test: the steps build on each other (train, then J of that run, then its spectrum).
    for i, step in enumerate(STEPS, 1):
        path = bw.run_step(page, step, i, shots)
        assert path.stat().st_size > 10_000, f"{path} looks empty"


def test_server_log_has_no_traceback_or_warning(server, page):
    # Runs after the walk (same module-scoped server), so it sees everything the walk made the server log.
    log = server.log()
    assert "You can now view your Streamlit app" in log, log
    assert not bw.log_problems(log), f"unexpected lines in the streamlit log:\n{log}"
