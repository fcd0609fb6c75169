"""The attention preset's network in a real browser (chromium at 1280×720), trained on 200 images (not 1,600) to
keep it quick, through every page: Build (Train), Training Jacobian (Compute J), Spectrum (all three regions,
their counts summing to P), then Compare, Perturb and Why a bulk?,
which open on the attention network without an error and offer what they compute (pressing their buttons would
compute four more Jacobians: tests/test_app_attention.py runs those pages' computations on a small attention net)."""
from urllib.parse import urlencode

import pytest

import browser_walk as bw
import tj
from tj.validate import query_params

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bw.available() is not None, reason=f"browser test: {bw.available()}")]

EXP = tj.preset("attention").replace(**{"data.n_train": 200})
PAGES = {"Compare": "Compute the variants", "Perturb": "Median over each region", "Why a bulk?": "Compute J through training"}


def test_the_attention_network_through_every_page(tmp_path):
    with bw.projector_page(tmp_path, "/build?" + urlencode(query_params(EXP, compact=True))) as page:
        assert tj.networks.describe(EXP.model) in page.locator('[data-testid="stSidebar"]').inner_text()
        shown = bw.train_jacobian_and_spectrum(page)
        assert shown["parameters P"] == f"{EXP.model.n_params:,}"
        for title, text in PAGES.items():
            bw.goto(page, title)
            page.get_by_text(text).first.wait_for(timeout=300_000)
            bw.no_errors(page, title, charts=0)
            page.screenshot(path=str(tmp_path / f"{title}.png"), full_page=True)

    counts = {k: int(shown[k].replace(",", "")) for k in ("chaotic", "bulk", "stable")}
    assert sum(counts.values()) == EXP.model.n_params and all(counts.values()), counts  # all three regions
    assert float(shown["σ₁ (largest)"]) > 1
