"""The CNN path in a real browser (chromium at 1280×720): Build a CNN → Training Jacobian → Spectrum, with the key
numbers checked against the same experiment computed here by tj; then Compare and Why a bulk? announce their waits.
A tiny CNN (P = 350, 50 steps) keeps it quick."""
import re

import numpy as np
import pytest

import browser_walk as bw
import tj
from tj import CNNSpec, Conv
from tj.spectrum import direction_by_block

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bw.available() is not None, reason=f"browser test: {bw.available()}")]

CONVS, EPOCHS, P = "2x3 same pool2", 2, 350
# What the page builds from the lecture preset: its GELU, learning rate and the rest carry over to the CNN.
EXPECTED = tj.preset("lecture").replace(model=CNNSpec(convs=(Conv(2, 3, "SAME", 2),), activation="gelu_tanh"),
                                        **{"train.epochs": EPOCHS})


def test_a_cnn_built_in_the_browser_its_spectrum_its_drawn_direction_and_announced_waits(tmp_path):
    with bw.projector_page(tmp_path) as page:
        bw.goto(page, "Build a network")
        page.get_by_text("CNN (convolutions, then dense layers)").click()
        bw.wait_idle(page, 60)
        bw.field(page, "convolution layers").fill(CONVS)
        bw.field(page, "dense widths before the 10 outputs").fill("none")
        bw.field(page, "epochs").fill(str(EPOCHS))
        shown = bw.train_jacobian_and_spectrum(page, 300)
        assert shown["parameters P"] == f"{P:,}"
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()  # "→ 32 features →", not a hidden layer
        assert tj.networks.describe(EXPECTED.model) in sidebar and "features" in sidebar, sidebar
        page.screenshot(path=str(tmp_path / "spectrum_cnn.png"), full_page=True)
        drawn = page.get_by_text("the block that holds most of").first.inner_text()
        for title, patterns in (("Compare", (bw.ESTIMATES["compare"],)), ("Why a bulk?", bw.ESTIMATES["why"])):
            bw.goto(page, title)
            missing = bw.unseen(page, patterns)
            assert not missing, f"{title} on a CNN: no estimate before its wait ({missing})"

    res = tj.training_jacobian(EXPECTED)
    spec = tj.spectrum(res.jacobian, res.theta0, res.theta_final)
    sigma = spec.singular_values
    counts = tj.region_counts(tj.regions(sigma, threshold=0.1))
    got = {k: int(shown[k].replace(",", "")) for k in ("chaotic", "bulk", "stable")}
    assert sum(got.values()) == P
    assert got == counts, f"the page shows {got}, tj computes {counts}"
    assert shown["σ₁ (largest)"] == f"{sigma[0]:.2f}"
    assert np.isclose(float(shown["σ₁ (largest)"]), sigma[0], rtol=0, atol=0.006)

    # The direction is drawn in the block that holds most of it, on the whole vector's colour scale.
    block, index, scale = re.search(r"Drawn: (\S+), the block that holds most of v_(\d+).*\(±([\d.e+-]+)\)",
                                    drawn, re.S).groups()
    direction = direction_by_block(EXPECTED.model, spec.Vh[int(index)])
    assert (block, scale) == (direction.block, f"{direction.scale:.2g}"), f"drawn {block} ±{scale}, tj: {direction}"
