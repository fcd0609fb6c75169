"""Chart builders, without Streamlit: valid Vega-Lite, tooltips, and no 5,000-row failures."""
import json

import numpy as np

from tj import charts, regions
from tj.train import Metrics


def spec_of(chart) -> dict:
    return json.loads(chart.to_json())  # raises if Altair cannot build the spec (e.g. too many rows)


def _table(n=6000):
    sigma = np.sort(np.concatenate([np.geomspace(30, 1.2, n // 5), 1 + np.linspace(-1e-3, 1e-3, 3 * n // 5),
                                    np.geomspace(0.8, 1e-8, n - n // 5 - 3 * n // 5)]))[::-1]
    labels = regions(sigma, threshold=1e-2)
    return charts.spectrum_table(sigma, labels, np.linspace(-1, 1, n), np.geomspace(1, 1e-5, n))


def test_big_spectra_are_thinned_below_the_row_limit():
    table = _table(6000)
    for build in (charts.sigma_chart, charts.distance_chart, charts.alignment_chart, charts.movement_chart,
                  charts.log_sigma_histogram):
        spec = spec_of(build(table))
        rows = sum(len(v) for v in spec["datasets"].values())
        assert 0 < rows <= 5000 + 10, build.__name__
        assert "tooltip" in json.dumps(spec)


def test_region_bands_cover_the_regions_in_order():
    table = _table(600)
    spec = spec_of(charts.sigma_chart(table))
    bands = next(v for v in spec["datasets"].values() if len(v) == 3)
    by = {b["region"]: (b["min"], b["max"]) for b in bands}
    assert by["chaotic"][1] < by["bulk"][0] and by["bulk"][1] < by["stable"][0]
    assert "pick" in json.dumps(spec["params"] if "params" in spec else spec)


def test_log_axis_toggle():
    table = _table(300)
    assert '"type": "log"' in json.dumps(spec_of(charts.sigma_chart(table, log_y=True)))
    assert '"type": "log"' not in json.dumps(spec_of(charts.sigma_chart(table, log_y=False)))


def test_histogram_counts_every_index_once():
    table = _table(600)
    spec = spec_of(charts.log_sigma_histogram(table))
    data = next(iter(spec["datasets"].values()))
    assert sum(r["count"] for r in data) == 600


def test_small_charts():
    m = Metrics((2.3, 0.5), (2.3, 0.6), (0.1, 0.9), (0.1, 0.85))
    assert sum(len(v) for v in spec_of(charts.curves_chart(m))["datasets"].values()) == 8  # 2 metrics × 2 sets × 2 epochs
    img = spec_of(charts.digits_chart(np.random.rand(3, 64), ["a", "b", "c"]))
    assert len(next(iter(img["datasets"].values()))) == 3 * 64
    heat = spec_of(charts.block_heatmap(["W1", "b1"], np.array([[1.0, 2.0], [3.0, 4.0]])))
    assert len(next(iter(heat["datasets"].values()))) == 4
    bars = spec_of(charts.block_share_chart(["W1", "b1"], [0.9, 0.1]))
    assert "tooltip" in json.dumps(bars)
    signed = spec_of(charts.signed_images_chart(np.random.randn(4, 64), list("abcd")))
    assert "redblue" in json.dumps(signed)
