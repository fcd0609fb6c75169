"""The attention preset in a real browser (chromium at 1280×720), through every page: Build (Train), Training
Jacobian (Compute J), Spectrum (its region counts checked against tj's), then Compare, Perturb and Why a bulk?,
which open on the attention network without an error and offer what they compute (pressing their buttons would
compute four more Jacobians: tests/test_app_attention.py runs those pages' computations on a small attention net)."""
import pytest

import browser_walk as bw
import tj

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bw.available() is not None, reason=f"browser test: {bw.available()}")]

PAGES = {"Compare": "Compute the variants", "Perturb": "Median over each region", "Why a bulk?": "Compute J through training"}


def goto(page, title: str) -> None:
    page.locator(bw.NAV_LINK).filter(has=page.get_by_text(title, exact=True)).click()
    bw.wait_idle(page, 120)
    page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)


def no_errors(page, where: str, charts: int = 1) -> None:
    errors = page.locator(bw.ERRORS).all_inner_texts()
    assert not errors, f"{where}: Streamlit error/exception on the page: {errors}"
    if charts:
        found = bw.wait_charts(page, charts)
        assert found and all(map(bw.chart_ok, found)), f"{where}: charts not rendered: {found}"


def test_the_attention_preset_through_every_page(tmp_path):
    from playwright.sync_api import sync_playwright

    exp = tj.preset("attention")
    server = bw.Server(log_dir=tmp_path)
    try:
        with sync_playwright() as p:
            browser = bw.launch(p)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.goto(server.url + "/build?preset=attention")
                bw.wait_idle(page, 120)
                page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
                assert tj.networks.describe(exp.model) in page.locator('[data-testid="stSidebar"]').inner_text()
                page.get_by_role("button", name="Train", exact=True).click()
                bw.wait_idle(page, 300)
                page.get_by_text("Final test loss").first.wait_for(timeout=300_000)
                no_errors(page, "Build")
                assert bw.metrics(page)["parameters P"] == f"{exp.model.n_params:,}"

                goto(page, "Training Jacobian")
                page.get_by_role("button", name="Compute J", exact=True).click()
                bw.wait_idle(page, 600)
                page.get_by_text("computed in").first.wait_for(timeout=600_000)
                no_errors(page, "Training Jacobian")

                goto(page, "Spectrum")
                page.get_by_text("One direction, up close").first.wait_for(timeout=300_000)
                page.locator(bw.METRIC).first.wait_for(timeout=60_000)
                no_errors(page, "Spectrum")
                shown = bw.metrics(page)

                for title, text in PAGES.items():
                    goto(page, title)
                    page.get_by_text(text).first.wait_for(timeout=120_000)
                    no_errors(page, title, charts=0)
                    page.screenshot(path=str(tmp_path / f"{title}.png"), full_page=True)
            finally:
                browser.close()
        assert not bw.log_problems(server.log()), f"unexpected lines in the streamlit log:\n{server.log()}"
    finally:
        server.stop()

    counts = {k: int(shown[k].replace(",", "")) for k in ("chaotic", "bulk", "stable")}
    assert sum(counts.values()) == exp.model.n_params and all(counts.values()), counts  # all three regions
    assert float(shown["σ₁ (largest)"]) > 1
