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

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bw.available() is not None, reason=f"browser test: {bw.available()}")]

# The sidebar of app.py's st.navigation, in order. Streamlit's legacy file-based navigation would list the
# script names instead ("app", "build", ...), without the Preset selectbox of app.py's frame.
PAGE_TITLES = ["Home", "Build a network", "Training Jacobian", "Spectrum", "Compare", "Perturb", "Why a bulk?"]


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


def test_guided_lecture_walked_end_to_end_in_a_real_browser(page, shots):
    # One test: the steps build on each other (train, then J of that run, then its spectrum, then the variants,
    # the perturbations and the float64 count, all of the same run). Each page is reached with the guided
    # lecture's Start / Next buttons; each step's buttons are pressed and its numbers read off the page; every
    # chart's layout is checked at 1280×720 (no title clipped, legends inside the column, every legend entry drawn).
    page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
    bw.screenshot(page, shots / "00_home.png")
    took = {}
    for i, step in enumerate(STEPS, 1):
        start = time.perf_counter()
        path = bw.run_step(page, step, i, shots, guided=True)
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
        page = bw.open_page(browser)
        try:
            page.goto(srv.url + "/spectrum")
            bw.wait_idle(page, 60)
            page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
            titles = [t.strip().splitlines()[-1] for t in page.locator(bw.NAV_LINK).all_inner_texts()]  # no icon
            assert titles == PAGE_TITLES, f"sidebar navigation shows {titles}, not the app's pages {PAGE_TITLES}"
            sidebar = page.locator('[data-testid="stSidebar"]')
            preset = sidebar.get_by_role("combobox", name="Preset", exact=True)
            try:  # on a loaded machine the first run may still be drawing the frame
                preset.first.wait_for(timeout=30_000)
            except Exception:  # playwright TimeoutError: assert with the message below
                pass
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
    page = bw.open_page(browser)
    try:
        page.goto(server.url + "/?classroom=1")
        bw.wait_idle(page, 60)
        page.locator(bw.NAV_LINK).filter(has=page.get_by_text("Build a network", exact=True)).click()
        bw.wait_idle(page, 60)
        page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
        assert "classroom=1" in page.url, f"the classroom flag left the URL: {page.url}"
        assert page.get_by_text("Classroom mode: advanced controls are hidden.").count() == 1
        assert page.get_by_text("activation", exact=True).count() == 0, "advanced controls shown in classroom mode"
    finally:
        page.close()


def test_the_walk_follows_the_guide():
    import guide

    assert [(s.page, s.buttons) for s in STEPS] == [(g.title, g.press) for g in guide.STEPS]


# --- issue 14's points, each in a fresh browser session on the server the walk above filled ------------------
def _session(browser, url: str):
    page = bw.open_page(browser)
    page.goto(url)
    bw.wait_idle(page, 60)
    page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
    return page


def _sidebar(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def test_a_second_session_after_the_walk_finds_train_j_and_spectrum_computed(server, browser, page):
    # After the walk, a lecturer tries 25 more directions of the finite-difference check: 25 small results,
    # enough to push the first pages' results out of a plain LRU cache (the one before issue 14 held 24).
    lecturer = _session(browser, server.url + "/jacobian")
    try:
        lecturer.get_by_text("computed in").filter(visible=True).first.wait_for(timeout=30_000)  # J, from the walk
        seed = lecturer.get_by_role("spinbutton", name="random direction seed")
        for direction in range(1, 26):
            seed.fill(str(direction))
            seed.press("Enter")
            bw.wait_idle(lecturer, 60)
            check = lecturer.get_by_role("button", name="Check J·v against finite differences")
            assert check.count() == 1, f"J was dropped after {direction - 1} more checks: {_sidebar(lecturer)!r}"
            check.click()
            bw.wait_idle(lecturer, 60)
            lecturer.get_by_text("relative error").first.wait_for(timeout=30_000)
    finally:
        lecturer.close()
    fresh = _session(browser, server.url + "/build")
    try:
        text = _sidebar(fresh)
        for what in ("trained", "Jacobian", "spectrum"):
            assert f"✅ {what}" in text, f"a new session's sidebar after the walk: {text!r}"
        fresh.get_by_text("Final test loss").filter(visible=True).first.wait_for(timeout=10_000)
        assert fresh.get_by_text("Press Train").count() == 0
        fresh.goto(server.url + "/jacobian")
        # The page shows either J's metrics or its "not computed yet" offer once its script has run.
        fresh.get_by_text("computed in").or_(fresh.get_by_text("is not computed yet")).filter(visible=True).first \
            .wait_for(timeout=60_000)
        assert "computed in" in bw.metrics(fresh), "J is gone for a second session"
    finally:
        fresh.close()


def test_clicking_a_point_of_the_spectrum_selects_that_index(server, browser, page):
    spectrum = _session(browser, server.url + "/spectrum")
    try:
        box = spectrum.get_by_role("spinbutton", name="singular index i")
        first = int(box.input_value())
        chart = spectrum.locator(".vega-embed").first
        chart.scroll_into_view_if_needed()
        bw.wait_charts(spectrum, 7)
        r = chart.bounding_box()
        picked, value = [], first
        for fx in (0.25, 0.8):  # two places along the index axis: two different indices, in order
            # On a loaded machine the rerun can start seconds after the click, and a click that lands while the
            # chart is redrawn is lost (CI at 15:23 UTC on 2026-12-06: two clicks, no selection in 120 s): a
            # click that selects nothing in 20 s is repeated, at most three clicks in all.
            for _ in range(3):
                spectrum.mouse.click(r["x"] + fx * r["width"], r["y"] + 0.5 * r["height"])
                deadline = time.monotonic() + 20
                while int(box.input_value()) == value and time.monotonic() < deadline:
                    spectrum.wait_for_timeout(250)
                if int(box.input_value()) != value:
                    break
                r = chart.bounding_box()
            bw.wait_idle(spectrum, 60, started=True)
            value = int(box.input_value())
            picked.append(value)
            spectrum.get_by_text(f"σ_{value} =").first.wait_for(timeout=60_000)
        assert picked[0] != first and picked[0] < picked[1], f"opened on {first}, clicks gave {picked}"
    finally:
        spectrum.close()


def test_the_sidebar_matches_the_url_right_after_train(server, browser, page):
    build = _session(browser, server.url + "/build")
    try:
        seed = build.get_by_role("spinbutton", name="seed")
        seed.fill("5")
        build.get_by_role("button", name="Train", exact=True).click()
        bw.wait_idle(build, 120)
        build.get_by_text("Final test loss").filter(visible=True).first.wait_for(timeout=60_000)
        assert "seed=5" in build.url, build.url
        deadline = time.monotonic() + 30  # the rerun that redraws the sidebar; no navigation in between
        while not ("seed 5" in (text := _sidebar(build)) and "✅ trained" in text) and time.monotonic() < deadline:
            build.wait_for_timeout(250)
        assert "seed 5" in text and "✅ trained" in text, f"sidebar right after Train: {text!r}"
    finally:
        build.close()


@pytest.mark.parametrize("stop", ["the page's Stop", "Streamlit's toolbar Stop"])
def test_stop_says_where_it_stopped_and_removes_the_bar(server, browser, page, stop):
    jac = _session(browser, server.url + "/jacobian?preset=lecture&epochs=150")
    try:
        jac.get_by_role("button", name="Compute J", exact=True).click()
        jac.locator('[data-testid="stProgress"]').first.wait_for(timeout=60_000)
        jac.wait_for_timeout(1_000)
        if stop == "the page's Stop":
            jac.locator(bw.SCROLLER).get_by_role("button", name="Stop", exact=True).click()
        else:
            jac.locator(bw.STATUS_WIDGET).get_by_role("button", name="Stop").click()
        jac.get_by_text("Stopped after").first.wait_for(timeout=60_000)
        bw.wait_idle(jac, 60, started=True)
        jac.wait_for_timeout(1_000)
        assert jac.locator('[data-testid="stProgress"]').count() == 0, "a progress bar is left on screen"
    finally:
        jac.close()


def test_the_tau_set_on_spectrum_is_what_compare_perturb_and_why_use(server, browser, page):
    spectrum = _session(browser, server.url + "/spectrum")
    try:
        slider = spectrum.get_by_role("slider").first
        slider.focus()
        for _ in range(2):  # 0.1 → 0.03 → 0.01
            slider.press("ArrowLeft")
            bw.wait_idle(spectrum, 60)
        assert "tau=0.01" in spectrum.url, spectrum.url
        assert "τ = 0.01" in _sidebar(spectrum)
        for title, text in (("Compare", "τ = 0.01"), ("Perturb", "τ = 0.01"), ("Why a bulk?", "τ = 0.01")):
            spectrum.locator(bw.NAV_LINK).filter(has=spectrum.get_by_text(title, exact=True)).click()
            bw.wait_idle(spectrum, 120)
            spectrum.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
            main = spectrum.locator(bw.SCROLLER)
            main.get_by_text(text).filter(visible=True).first.wait_for(timeout=60_000)
            assert "tau=0.01" in spectrum.url, f"{title}: τ left the URL: {spectrum.url}"
    finally:
        spectrum.close()
