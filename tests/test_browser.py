"""End to end in a real browser: `streamlit run app.py`, Debian's chromium driven by Playwright, the whole lecture
path of docs/lecture.md clicked through the UI (Build, Training Jacobian, Spectrum, Compare, Perturb, Why a bulk?).
On every page: each Vega-Lite chart drew marks, no Streamlit error or exception box, the key numbers are there;
a full-page screenshot per page goes to $TJ_SCREENSHOTS (default: pytest's tmp dir).

The walk itself (pages, buttons, expected texts and charts) is the STEPS list at the top of
tests/browser_walk.py, shared with scripts/screenshots.py: append a Step there to cover another page.
Skips, with the reason, only when /usr/bin/chromium or the playwright package is missing.
"""
import os
import sys
import time
from pathlib import Path

import pytest

import browser_walk as bw
from browser_walk import STEPS

pytestmark = pytest.mark.skipif(bw.available() is not None, reason=f"browser test: {bw.available()}")

# The sidebar of app.py's st.navigation, in order. Streamlit's legacy file-based navigation would list the
# script names instead ("app", "build", ...), without the Preset selectbox of app.py's frame.
PAGE_TITLES = ["Home", "Build an MLP", "Training Jacobian", "Spectrum", "Compare", "Perturb", "Why a bulk?"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = bw.Server(log_dir=tmp_path_factory.mktemp("streamlit_log"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = bw.launch(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page(server, browser):
    return bw.new_page(browser, server.url)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return Path(os.environ.get("TJ_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))


def test_lecture_path_in_a_real_browser(page, shots):
    # One test: the steps build on each other (train, then J of that run, then its spectrum, then the variants,
    # the perturbations and the float64 count, all of the same run).
    took = {}
    for i, step in enumerate(STEPS, 1):
        start = time.perf_counter()
        path = bw.run_step(page, step, i, shots)
        took[step.page] = time.perf_counter() - start
        assert path.stat().st_size > 10_000, f"{path} looks empty"
    print("seconds per page (with its screenshot): " + ", ".join(f"{k} {v:.1f}" for k, v in took.items()),
          file=sys.stderr)


def test_server_log_has_no_traceback_or_warning(server, page):
    # Runs after the walk (same module-scoped server), so it sees everything the walk made the server log.
    log = server.log()
    assert "You can now view your Streamlit app" in log, log
    assert not bw.log_problems(log), f"unexpected lines in the streamlit log:\n{log}"


def test_a_page_url_opened_first_shows_the_app_frame(browser, tmp_path):
    # A fresh server whose very first visitor lands on /spectrum, not on the home page: the sidebar must be
    # app.py's frame (page titles and the Preset selectbox), not Streamlit's legacy file-list navigation.
    srv = bw.Server(log_dir=tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(srv.url + "/spectrum")
            bw.wait_idle(page, 60)
            page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
            titles = [t.strip().splitlines()[-1] for t in page.locator(bw.NAV_LINK).all_inner_texts()]  # no icon
            assert titles == PAGE_TITLES, f"sidebar navigation shows {titles}, not the app's pages {PAGE_TITLES}"
            sidebar = page.locator('[data-testid="stSidebar"]')
            preset = sidebar.get_by_role("combobox", name="Preset", exact=True)
            assert preset.count() == 1, "no 'Preset' selectbox in the sidebar"
            assert preset.input_value() == "lecture", f"the Preset selectbox shows {preset.input_value()!r}"
            assert "P = 1,210" in sidebar.inner_text()
            heading = page.get_by_role("heading", level=1).first.inner_text()
            assert heading == "Spectrum of the training Jacobian", f"landed on {heading!r}, not the Spectrum page"
            active = page.locator(bw.NAV_LINK + '[aria-current="page"]')
            assert active.count() == 0 or active.inner_text().strip().endswith("Spectrum")
            errors = page.locator(bw.ERRORS).all_inner_texts()
            assert not errors, f"Streamlit error/exception on the page: {errors}"
        finally:
            page.close()
        assert not bw.log_problems(srv.log()), f"unexpected lines in the streamlit log:\n{srv.log()}"
    finally:
        srv.stop()


def test_classroom_mode_survives_sidebar_navigation(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(server.url + "/?classroom=1")
        bw.wait_idle(page, 60)
        page.locator(bw.NAV_LINK).filter(has=page.get_by_text("Build an MLP", exact=True)).click()
        bw.wait_idle(page, 60)
        page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
        assert "classroom=1" in page.url, f"the classroom flag left the URL: {page.url}"
        assert page.get_by_text("Classroom mode: advanced controls are hidden.").count() == 1
        assert page.get_by_text("activation", exact=True).count() == 0, "advanced controls shown in classroom mode"
    finally:
        page.close()
