"""Every page through streamlit.testing.v1.AppTest on the lecture preset (its network on fewer steps where a test
computes J: pages.QUICK_LECTURE)."""
from pathlib import Path

import sys
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import lab
import tj
import tj.jacobian
from pages import QUICK_LECTURE

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def app(page=None, exp=None) -> AppTest:
    """The app through app.py (router and sidebar included), then optionally on a page and an experiment."""
    at = AppTest.from_file(APP, default_timeout=300).run()  # the first run registers st.navigation's pages
    if exp is not None:
        at.session_state["experiment"] = exp
    if page:
        at.switch_page(f"views/{page}.py")
        at.run()
        assert at.sidebar.selectbox, "the page ran without app.py's frame"
    return at


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture(autouse=True)
def fresh_cache():
    lab.results().clear()
    yield


def test_home_explains_and_times_both_presets():
    at = ok(app())
    text = " ".join(m.value for m in at.markdown)
    assert "training Jacobian" in text and "bulk" in text
    assert at.latex and "lecture" in at.dataframe[0].value.to_string() and "paper" in at.dataframe[0].value.to_string()
    assert "P = 1,210" in " ".join(m.value for m in at.sidebar.markdown)


def test_build_trains_and_a_control_changes_the_result():
    at = ok(app("build"))
    assert charts(at) and metric(at, "parameters P") == "1,210"
    at.button[0].click()
    ok(at.run())
    first = next(m.value for m in at.markdown if "Final test loss" in m.value)
    assert len(charts(at)) == 6  # data grid and predictions, each for a wide screen and a phone; loss; accuracy
    at.number_input[0].set_value(0.02)  # learning rate
    at.button[0].click()
    ok(at.run())
    second = next(m.value for m in at.markdown if "Final test loss" in m.value)
    assert first != second
    assert at.session_state["experiment"].train.lr == 0.02


def test_absurd_learning_rate_is_refused_in_words():
    at = ok(app("build"))
    at.number_input[0].set_value(1e10)
    at.button[0].click()
    ok(at.run())
    assert any("Learning rate must be at most 10" in e.value for e in at.error)


def test_too_large_a_learning_rate_says_the_network_did_not_learn():
    at = ok(app("build"))
    at.number_input[0].set_value(10.0)
    at.number_input[1].set_value(0.99)  # momentum
    next(s for s in at.selectbox if s.label == "schedule").set_value("constant")
    at.button[0].click()
    ok(at.run())
    assert any("did not learn" in w.value for w in at.warning)


def test_training_that_diverges_to_nan_is_explained(monkeypatch):
    module = sys.modules["tj.train"]  # where the app's training step looks `train` up
    real = module.train

    def diverging(*args, **kwargs):
        res = real(*args, **kwargs)
        return tj.TrainResult(res.theta0, res.theta_final * float("nan"), res.metrics, diverged_at=(17, 0))

    monkeypatch.setattr(module, "train", diverging)
    st.cache_resource.clear()  # a fresh server: no earlier test's run of this config in its caches or cache folder
    at = ok(app("build"))
    at.button[0].click()
    ok(at.run())
    assert any("Training diverged" in e.value and "step 17" in e.value for e in at.error)


def test_width_input_is_validated():
    at = ok(app("build"))
    at.text_input[0].set_value("16, x")
    at.button[0].click()
    ok(at.run())
    assert any("whole numbers" in e.value for e in at.error)


def test_spectrum_first_offers_to_compute_then_jacobian_is_computed_once(monkeypatch):
    calls = []
    real = tj.training_jacobian

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tj.jacobian, "training_jacobian", counting)
    at = ok(app("spectrum", QUICK_LECTURE))
    assert any("not computed yet" in w.value for w in at.warning)
    assert not charts(at)
    at.button(key="compute_spectrum").click()
    ok(at.run())
    assert len(charts(at)) >= 7 and int(metric(at, "bulk").replace(",", "")) > 0
    bulk_tau = metric(at, "bulk")
    at.select_slider(key="tau").set_value(1e-2)
    ok(at.run())
    assert metric(at, "bulk") != bulk_tau  # a control changes the result
    for page in ("jacobian", "build", "spectrum", "jacobian"):
        at.switch_page(f"views/{page}.py")
        ok(at.run())
    assert metric(at, "computed in").endswith(" s")
    assert len(calls) == 1


def test_jacobian_page_computes_verifies_and_offers_downloads():
    at = ok(app("jacobian", QUICK_LECTURE))
    assert [b.label for b in at.button][:2] == ["Stop", "Compute J"]
    at.button(key="compute_jacobian").click()
    ok(at.run())
    assert charts(at)  # block heatmap
    at.button(key="fd_check").click()
    ok(at.run())
    assert float(metric(at, "relative error ‖J·v − FD‖ / ‖FD‖")) < 1e-4
    assert at.get("download_button")


def test_stop_reports_progress_without_losing_anything():
    at = app("jacobian")
    at.session_state["progress"] = ("Training Jacobian", 320, 1210)
    at.button(key="stop_jacobian").click()
    ok(at.run())
    assert any("Stopped after 320 of 1,210 columns" in w.value for w in at.warning)


def test_picking_a_direction_shows_its_first_layer():
    at = ok(app("spectrum", QUICK_LECTURE))
    at.button(key="compute_spectrum").click()
    ok(at.run())
    at.number_input(key="direction_index").set_value(0)
    ok(at.run())
    assert any("σ_0 =" in m.value for m in at.markdown)


def test_the_tau_set_on_spectrum_is_the_sessions_shown_in_the_sidebar_and_the_url():
    at = ok(app("spectrum", QUICK_LECTURE))
    at.button(key="compute_spectrum").click()
    ok(at.run())
    at.select_slider(key="tau").set_value(1e-2)
    ok(at.run())
    assert "τ = 0.01" in " ".join(m.value for m in at.sidebar.markdown)
    assert at.query_params.get("tau") in ("0.01", ["0.01"])
    at.switch_page("views/perturb.py")
    ok(at.run())
    assert any("τ = 0.01" in c.value for c in at.caption), "Perturb's regions do not use the session's τ"


@pytest.mark.slow
def test_compare_page_computes_variants_overlaps_the_function_jacobian_and_switches():
    at = ok(app("compare", QUICK_LECTURE))
    assert any("Not computed yet" in w.value for w in at.warning)
    at.button(key="compute_variants").click()
    ok(at.run())
    assert len(charts(at)) >= 4  # |σ−1|, σ, overlap sweep, overlap matrix
    runs = at.dataframe[0].value["run"].tolist()
    assert runs == ["main", "shuffled labels", "noise inputs", "seed 1", "seed 2"]
    at.button(key="compute_fjac").click()
    ok(at.run())
    assert len(charts(at)) >= 6
    assert at.get("download_button")
    at.multiselect(key="switches").set_value(["momentum 0", "width 32"])
    at.button(key="compute_switches").click()
    ok(at.run())
    table = at.dataframe[1].value
    assert table["run"].tolist() == ["main", "momentum 0", "width 32"] and table["P"].tolist() == [1210, 1210, 2410]


def test_perturb_page_runs_every_experiment():
    at = ok(app("perturb", QUICK_LECTURE))
    at.button(key="compute_spectrum_perturb").click()
    ok(at.run())
    summary = at.dataframe[0].value
    assert list(summary.columns) == ["train", "test", "inverted", "noise"]
    assert summary.loc["bulk", "train"] * 10 < summary.loc["bulk", "noise"]
    at.slider(key="n_eps").set_value(6)
    at.button(key="run_linearity").click()
    ok(at.run())
    at.slider(key="n_ks").set_value(4)
    at.button(key="run_subspace").click()
    ok(at.run())
    assert len(charts(at)) >= 4 and len(at.get("download_button")) >= 3


@pytest.mark.slow
def test_why_page_counts_untouched_directions_and_follows_the_bulk():
    at = ok(app("why", QUICK_LECTURE))
    at.button(key="compute_evolution").click()
    ok(at.run())
    counts = at.dataframe[0].value
    assert counts["bulk"].iloc[0] == 1210 and counts["bulk"].iloc[-1] < 1210  # J_0 = I; training peels directions off
    at.button(key="compute_exact").click()
    ok(at.run())
    assert metric(at, "predicted in total") == metric(at, "measured |σ−1| < 1e-9") == "97"
    at.button(key="compute_gd").click()
    ok(at.run())
    assert len(charts(at)) >= 6


def test_the_guide_asks_before_it_reveals_and_each_step_starts_hidden():
    at = ok(app("build"))
    assert any("What to notice" in i.value for i in at.info)  # outside the guide: under the page, as before
    at.button(key="guide_start").click()
    ok(at.run())
    notices = lambda: [m.value for m in at.markdown if "What to notice" in m.value]  # noqa: E731
    hidden = lambda: "parameters P" not in [m.label for m in at.metric] and not notices()  # noqa: E731
    assert hidden() and at.button(key="guide_reveal")
    at.button(key="guide_reveal").click()
    ok(at.run())
    assert metric(at, "parameters P") == "1,210" and notices()
    assert any("1,464,100 entries" in m.value for m in at.markdown)  # the page's notice, from its numbers
    at.button(key="guide_next").click()
    ok(at.run())
    at.button(key="guide_prev").click()   # back on step 1: hidden again
    ok(at.run())
    assert hidden() and at.button(key="guide_reveal")


def test_no_guide_text_speaks_of_one_family():
    import guide
    for step in guide.STEPS:
        for text in (step.ask, step.look):
            assert not any(word in text for word in ("W1", "dead pixel", "orders of magnitude", "noise inputs do not"))
