"""The stored pages in a real browser: a restarted server shows every page from precompute's store; the guided
lecture on a computed run hides every answer until Reveal; every page fits a 390 px phone and its captions read
on a projector. On the lecture preset and the cnn preset, each on fewer training steps (pages.QUICK)."""
import sys
import time
from urllib.parse import urlencode

import pytest

import browser_walk as bw
import tj
from pages import QUICK_CNN, QUICK_LECTURE
from tj.validate import query_params

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bw.available() is not None, reason=f"browser test: {bw.available()}")]

PAGES = ("build", "jacobian", "spectrum", "compare", "perturb", "why")
EXPERIMENTS = {"lecture": QUICK_LECTURE, "cnn": QUICK_CNN}


@pytest.fixture(params=EXPERIMENTS)
def run(request, stored):
    """(its URL's query, the folder of its store, the experiment)"""
    exp = EXPERIMENTS[request.param]
    return "?" + urlencode(query_params(exp, compact=True)), stored(exp), exp


def test_a_restarted_server_shows_every_page_from_the_store_in_a_real_browser(stored, monkeypatch, tmp_path):
    from playwright.sync_api import sync_playwright

    exp = EXPERIMENTS["lecture"]
    monkeypatch.setenv("TJ_CACHE_DIR", str(stored(exp)))
    server = bw.Server(log_dir=tmp_path)   # a fresh process: nothing in memory, everything on disk
    seconds = {}
    try:
        with sync_playwright() as p:
            browser = bw.launch(p)
            try:
                page = bw.new_page(browser, server.url)
                page.goto(f"{server.url}/?{urlencode(query_params(exp, compact=True))}")
                bw.wait_idle(page, 60)
                for i, step in enumerate(bw.STORED_WALK, 1):
                    start = time.perf_counter()
                    bw.run_step(page, step, i, None)
                    seconds[step.page] = time.perf_counter() - start
            finally:
                browser.close()
        assert not bw.log_problems(server.log())
    finally:
        server.stop()
    # how fast is the benchmark's business (scripts/paper_class.py measures a class); printed here, not asserted
    print("seconds per page from the store: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()), file=sys.stderr)


def test_the_guided_lecture_on_a_computed_run_hides_every_answer_until_reveal(run, monkeypatch, tmp_path):
    # Every result is in the store, so every page opens computed: the guide must still ask first, and once
    # revealed its "what to notice" must say what the page's numbers say, on the MLP and on the CNN.
    from playwright.sync_api import sync_playwright

    query, folder, exp = run
    monkeypatch.setenv("TJ_CACHE_DIR", str(folder))
    server = bw.Server(log_dir=tmp_path)
    try:
        with sync_playwright() as p:
            browser = bw.launch(p)
            try:
                page = bw.new_page(browser, server.url)
                page.goto(f"{server.url}/{query}")
                bw.wait_idle(page, 60)
                for i, step in enumerate(bw.STORED_WALK, 1):
                    bw.run_step(page, step, i, None, guided=True, computed=True)
                    if isinstance(exp.model, tj.CNNSpec):  # no dead-pixel weights, no W1: no page may speak of them
                        said = page.locator(bw.SCROLLER).inner_text()
                        assert "dead pixel" not in said.lower() and "W1" not in said, (step.page, said)
            finally:
                browser.close()
        assert not bw.log_problems(server.log())
    finally:
        server.stop()


def test_every_stored_page_fits_a_phone_and_its_captions_read_on_a_projector(run, monkeypatch, tmp_path):
    from playwright.sync_api import sync_playwright

    query, folder, _ = run
    monkeypatch.setenv("TJ_CACHE_DIR", str(folder))
    server, problems = bw.Server(log_dir=tmp_path), {}
    try:
        with sync_playwright() as p:
            browser = bw.launch(p)
            try:
                for width, height in ((390, 844), (1280, 720)):
                    page = bw.open_page(browser, {"width": width, "height": height})
                    for path in ("", *PAGES):
                        page.goto(f"{server.url}/{path}{query}")
                        bw.wait_idle(page, 300)
                        page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
                        bw.wait_charts(page, 0)
                        found = bw.layout_problems(page) + bw.readability_problems(page, phone=width < 500)
                        if found:
                            problems[f"{path or 'home'} at {width}×{height}"] = found
                    page.close()
            finally:
                browser.close()
    finally:
        server.stop()
    assert not problems, problems
