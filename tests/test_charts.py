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
    assert sum(len(v) for c in charts.curves_charts(m) for v in spec_of(c)["datasets"].values()) == 8  # 2 metrics × 2 sets × 2 epochs
    img = spec_of(charts.digits_chart(np.random.rand(3, 64), ["a", "b", "c"]))
    assert len(next(iter(img["datasets"].values()))) == 3 * 64
    heat = spec_of(charts.block_heatmap(["W1", "b1"], np.array([[1.0, 2.0], [3.0, 4.0]])))
    assert len(next(iter(heat["datasets"].values()))) == 4
    for region in ("chaotic", "bulk", "stable"):  # the bars take the direction's region colour
        bars = spec_of(charts.block_share_chart(["W1", "b1"], [0.9, 0.1], region))
        assert "tooltip" in json.dumps(bars) and bars["mark"]["color"] == charts.COLORS[region]
    signed = spec_of(charts.signed_images_chart(np.random.randn(4, 64), list("abcd")))
    assert "redblue" in json.dumps(signed)


def test_an_image_grid_for_a_phone_has_as_many_columns_as_fit():
    images, short, long = np.random.rand(20, 64), [str(i) for i in range(20)], ["pred 2 (100%) · true 2"] * 20
    assert spec_of(charts.digits_chart(images, short, columns=10, size=56))["columns"] == 10
    assert spec_of(charts.digits_chart(images, short, columns=10, size=56, width=charts.PHONE_WIDTH))["columns"] == 4
    assert spec_of(charts.digits_chart(images, long, columns=5, size=64, width=charts.PHONE_WIDTH))["columns"] == 2


def _color_scales(spec) -> list[dict]:
    """Every colour scale with an explicit domain anywhere in a Vega-Lite spec."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            color = node.get("color")
            if isinstance(color, dict) and isinstance(color.get("scale"), dict) and "domain" in color["scale"]:
                found.append(color["scale"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(spec)
    return found


def _all_charts():
    from types import SimpleNamespace

    table = _table(600)
    m = Metrics((2.3, 0.5), (2.3, 0.6), (0.1, 0.9), (0.1, 0.85))
    ks = [10, 50, 200]
    lin = SimpleNamespace(eps=np.logspace(-3, 3, 5), along=np.ones(5), across=np.ones(5), predicted=np.ones(5),
                          test_loss=np.ones(5), index=3)
    regions3 = {r: np.arange(3) for r in charts.REGIONS}
    return {
        "sigma": charts.sigma_chart(table), "distance": charts.distance_chart(table),
        "alignment": charts.alignment_chart(table), "movement": charts.movement_chart(table),
        "histogram": charts.log_sigma_histogram(table), "curves": charts.curves_charts(m)[0],
        "counts": charts.counts_chart([0, 1, 2], regions3),
        "series of regions": charts.series_chart(regions3, "count", False),
        "overlap": charts.overlap_chart(ks, {"main vs noise inputs": [0.5, 0.6, 0.7],
                                             "main vs seed 1": [0.5, 0.6, 0.7]}, [0.1, 0.2, 0.3]),
        "kl": charts.kl_chart({s: np.ones(5) for s in ("train", "test", "inverted", "noise")}, LABELS5),
        "flips": charts.flips_chart(_flips()),
        "linearity": charts.linearity_charts(lin)[0],
        "subspace": charts.subspace_chart(ks, {s: [1.0, 2.0, 3.0] for s in ("bulk", "complement of bulk",
                                                                          "top-k (chaotic)", "bottom-k (stable)")}),
    }


def test_every_chart_takes_its_region_input_and_run_colours_from_the_one_definition():
    seen = set()
    for name, chart in _all_charts().items():
        for scale in _color_scales(spec_of(chart)):
            for value, colour in zip(scale["domain"], scale["range"]):
                expected = charts.color_of(value)
                if expected is not None:
                    assert colour == expected, f"{name}: {value!r} drawn {colour}, defined {expected}"
                    seen.add(charts.ALIASES.get(value, value))
    assert set(charts.REGIONS) <= seen and {"train", "test", "inverted", "noise"} <= seen
    assert charts.color_of("top-k (chaotic)") == charts.COLORS["chaotic"]
    assert charts.color_of("main vs seed 1") == charts.color_of("seed 1")
    assert len({charts.COLORS[r] for r in charts.REGIONS}) == 3


def _colors(node):
    if isinstance(node, dict):
        if isinstance(node.get("color"), dict) and "field" in node["color"]:
            yield node["color"]
        for v in node.values():
            yield from _colors(v)
    elif isinstance(node, list):
        for v in node:
            yield from _colors(v)


def test_legends_sit_below_charts_and_titles_are_padded():
    for name, chart in _all_charts().items():
        spec = spec_of(chart)
        orients = [enc.get("legend", {}).get("orient") for enc in _colors(spec) if enc.get("legend", {}) is not None]
        # a second legend goes above: two side by side below would not fit a phone's column
        assert set(orients) in (set(), {"bottom"}, {"top", "bottom"}), f"{name}: legends at {orients}"
        assert "padding" in spec, f"{name}: no padding around the chart for its title"


LABELS5 = np.array(["chaotic", "bulk", "bulk", "bulk", "stable"])


def _flips():
    from tj.perturb import ClassFlips
    sizes = np.geomspace(0.1, 100, 4)
    return ClassFlips(3, sizes, {s: np.linspace(0, 0.5, 4) for s in ("test", "inverted", "noise")},
                      {s: np.linspace(0.2, 0.9, 4) for s in ("test", "inverted", "noise")}, 20)


def test_train_is_drawn_on_top_of_the_other_input_sets_over_the_regions_shaded():
    spec = spec_of(charts.kl_chart({s: np.ones(5) for s in ("train", "test", "inverted", "noise")}, LABELS5))
    bands, curves = spec["layer"]
    assert {r["region"]: (r["min"], r["max"]) for r in spec["datasets"][bands["data"]["name"]]} == \
        {"chaotic": (0, 0), "bulk": (1, 3), "stable": (4, 4)}
    rows = spec["datasets"][curves["layer"][-1]["data"]["name"]]
    assert {r["series"] for r in rows} == {"train"}


def test_the_class_change_chart_draws_the_direction_solid_and_the_chaotic_mean_dashed():
    spec = spec_of(charts.flips_chart(_flips()))
    rows = next(iter(spec["datasets"].values()))
    assert {(r["direction"], r["inputs"]) for r in rows} == {(d, s) for d in ("v_3", "chaotic (mean of the first 20)")
                                                            for s in ("test", "inverted", "noise")}
    assert spec["encoding"]["x"]["scale"]["type"] == "log"
    assert spec["encoding"]["strokeDash"]["scale"]["range"] == [[1, 0], [6, 4]]


def test_gallery_panels_are_keyed_by_position_so_equal_titles_do_not_merge():
    spec = spec_of(charts.digits_chart(np.random.rand(20, 64), ["same title"] * 20, columns=5))
    assert spec["facet"]["field"] == "n"
    assert len({r["n"] for r in next(iter(spec["datasets"].values()))}) == 20


def test_axes_fit_the_data():
    spec = json.dumps(spec_of(charts.overlap_chart([10, 100, 1000], {"main vs seed 1": [0.5, 0.6, 0.7]},
                                                   [0.1, 0.2, 0.3])))
    assert '"domain": [10, 1000]' in spec
    counts = spec_of(charts.counts_chart([0, 1, 2], {r: [1, 2, 3] for r in charts.REGIONS}))
    assert counts["encoding"]["x"]["type"] == "ordinal"  # epochs, not 0.5, 1.5, …
    taus = spec_of(charts.series_chart({"float64 J": [1, 2, 3]}, "count", True, x=[1e-12, 1e-6, 1], log_x=True))
    assert taus["encoding"]["x"]["scale"]["type"] == "log"


def test_a_direction_is_drawn_in_the_block_that_holds_it_on_the_whole_vectors_scale():
    import tj
    from tj.spectrum import direction_by_block
    cnn, mlp = tj.preset("cnn").model, tj.preset("lecture").model
    expected = {(cnn, "dense1.W"): ("matrix", (10, 64)), (cnn, "conv1.W"): ("kernels", (4, 1, 3, 3)),
                (mlp, "W1"): ("images", (16, 8, 8)), (mlp, "b2"): ("vector", (10,))}
    for (spec, name), (kind, shape) in expected.items():
        block = next(b for b in tj.layout(spec) if b.name == name)
        v = np.full(spec.n_params, 1e-7)
        v[block.start:block.stop] = np.linspace(-0.25, 0.2, block.stop - block.start)
        v[block.start - 1 if block.start else block.stop] = 0.3   # the largest entry, outside the block
        d = direction_by_block(spec, v)
        assert (d.block, d.kind, d.values.shape, d.scale) == (name, kind, shape, 0.3)
        drawn = spec_of(charts.direction_chart(d, 7))
        scales = [s["domain"] for s in _color_scales(drawn)] or [drawn["encoding"]["y"]["scale"]["domain"]]
        assert scales == [[-0.3, 0.3]], (name, scales)   # the whole vector's scale, not the block's own
    kernels = spec_of(charts.direction_chart(direction_by_block(cnn, np.r_[np.ones(36), np.zeros(cnn.n_params - 36)]), 0))
    assert kernels["spec"]["width"] >= 96  # a 3×3 kernel readable on a projector
