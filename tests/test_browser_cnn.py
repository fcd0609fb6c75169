"""The CNN path in a real browser (chromium at 1280×720): Build a CNN → Training Jacobian → Spectrum, with the key
numbers checked against the same experiment computed here by tj. A tiny CNN (P = 350, 50 steps) keeps it quick."""
import numpy as np
import pytest

import browser_walk as bw
import tj
from tj import CNNSpec, Conv

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bw.available() is not None, reason=f"browser test: {bw.available()}")]

CONVS, EPOCHS, P = "2x3 same pool2", 2, 350
# What the page builds from the lecture preset: its GELU, learning rate and the rest carry over to the CNN.
EXPECTED = tj.preset("lecture").replace(model=CNNSpec(convs=(Conv(2, 3, "SAME", 2),), activation="gelu_tanh"),
                                        **{"train.epochs": EPOCHS})


def goto(page, title: str) -> None:
    page.locator(bw.NAV_LINK).filter(has=page.get_by_text(title, exact=True)).click()
    bw.wait_idle(page, 120)
    page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)


def field(page, label: str):
    """The one widget with this label, once Streamlit has dropped the previous run's copy of it."""
    loc = page.get_by_label(label, exact=True)
    for _ in range(120):
        if loc.count() == 1:
            return loc
        page.wait_for_timeout(250)
    raise AssertionError(f"{loc.count()} widgets labelled {label!r}")


def no_errors(page, where: str) -> None:
    errors = page.locator(bw.ERRORS).all_inner_texts()
    assert not errors, f"{where}: Streamlit error/exception on the page: {errors}"
    found = bw.wait_charts(page, 1)
    assert found and all(map(bw.chart_ok, found)), f"{where}: charts not rendered: {found}"


def test_build_a_cnn_then_its_jacobian_and_spectrum(tmp_path):
    from playwright.sync_api import sync_playwright

    server = bw.Server(log_dir=tmp_path)
    try:
        with sync_playwright() as p:
            browser = bw.launch(p)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.goto(server.url + "/")
                bw.wait_idle(page, 60)
                goto(page, "Build a network")
                page.get_by_text("CNN (convolutions, then dense layers)").click()
                bw.wait_idle(page, 60)
                field(page, "convolution layers").fill(CONVS)
                field(page, "dense widths before the 10 outputs").fill("none")
                field(page, "epochs").fill(str(EPOCHS))
                page.get_by_role("button", name="Train", exact=True).click()
                bw.wait_idle(page, 120)
                page.get_by_text("Final test loss").first.wait_for(timeout=120_000)
                no_errors(page, "Build")
                assert bw.metrics(page)["parameters P"] == f"{P:,}"

                goto(page, "Training Jacobian")
                page.get_by_role("button", name="Compute J", exact=True).click()
                bw.wait_idle(page, 300)
                page.get_by_text("computed in").first.wait_for(timeout=300_000)
                no_errors(page, "Training Jacobian")

                goto(page, "Spectrum")
                page.get_by_text("One direction, up close").first.wait_for(timeout=120_000)
                page.locator(bw.METRIC).first.wait_for(timeout=60_000)
                no_errors(page, "Spectrum")
                shown = bw.metrics(page)
                page.screenshot(path=str(tmp_path / "spectrum_cnn.png"), full_page=True)
            finally:
                browser.close()
        assert not bw.log_problems(server.log()), f"unexpected lines in the streamlit log:\n{server.log()}"
    finally:
        server.stop()

    res = tj.training_jacobian(EXPECTED)
    sigma = tj.spectrum(res.jacobian, res.theta0, res.theta_final).singular_values
    counts = tj.region_counts(tj.regions(sigma, threshold=0.1))
    got = {k: int(shown[k].replace(",", "")) for k in ("chaotic", "bulk", "stable")}
    assert sum(got.values()) == P
    assert got == counts, f"the page shows {got}, tj computes {counts}"
    assert shown["σ₁ (largest)"] == f"{sigma[0]:.2f}"
    assert np.isclose(float(shown["σ₁ (largest)"]), sigma[0], rtol=0, atol=0.006)
