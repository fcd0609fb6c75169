"""The CNN path through every page (AppTest), on a tiny CNN so it stays quick: P = 350, 50 steps."""
import json

import pytest

import lab
import tj
from pages import metric, open_page
from pages import ok as check
from tj import CNNSpec, Conv

TINY = tj.preset("cnn").replace(model=CNNSpec(convs=(Conv(2, 3, "SAME", 2),), activation="gelu_tanh"),
                                **{"train.epochs": 2})


def app(page=None, exp=TINY):
    return open_page(page, exp, errors=False)


def ok(at):
    return check(at, errors=False)


def chart_specs(at) -> str:
    return " ".join(json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("vega_lite_chart"))


@pytest.fixture(autouse=True)
def fresh_cache():
    lab.results().clear()
    yield


def test_build_offers_the_cnn_family_and_trains_it():
    at = app("build", tj.preset("lecture"))
    at.radio(key="family_picker").set_value("cnn")
    ok(at.run())
    assert {t.label for t in at.text_input} >= {"convolution layers", "dense widths before the 10 outputs"}
    assert {s.label for s in at.selectbox} >= {"pooling", "dataset"}
    next(t for t in at.text_input if t.label == "convolution layers").set_value("2x3 same pool2")
    next(t for t in at.text_input if t.label.startswith("dense widths")).set_value("none")
    next(n for n in at.number_input if n.label == "epochs").set_value(2)
    at.button[0].click()
    ok(at.run())
    exp = at.session_state["experiment"]
    assert isinstance(exp.model, CNNSpec) and exp.model.convs == (Conv(2, 3, "SAME", 2),) and exp.model.dense == ()
    assert metric(at, "parameters P") == "350"
    assert any("Final test loss" in m.value for m in at.markdown)
    ok(at.run())  # the sidebar is drawn before the page: the next run shows the new network
    assert "CNN conv 2@3×3 pool 2 → 32 features → 10" in " ".join(m.value for m in at.sidebar.markdown)


@pytest.mark.parametrize("convs,dense,words", [
    ("4x4 same", "none", "odd kernel"),
    ("3 by 3", "none", "Convolution layers must read like"),
    ("64x3 same, 64x3 same", "512", "cluster"),
])
def test_bad_or_too_big_cnns_are_refused_in_words(convs, dense, words):
    at = app("build")
    next(t for t in at.text_input if t.label == "convolution layers").set_value(convs)
    next(t for t in at.text_input if t.label.startswith("dense widths")).set_value(dense)
    at.button[0].click()
    ok(at.run())
    assert any(words in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["experiment"] == TINY


def test_jacobian_and_spectrum_pages_draw_the_block_that_holds_a_direction():
    at = app("jacobian")
    at.button(key="compute_jacobian").click()
    ok(at.run())
    at.switch_page("views/spectrum.py")
    ok(at.run())
    at.number_input(key="direction_index").set_value(0)
    ok(at.run())
    assert any("σ_0 =" in m.value for m in at.markdown)
    from tj.spectrum import direction_by_block
    drawn = direction_by_block(TINY.model, lab.have("spectrum", TINY).Vh[0])  # the block holding most of v_0
    assert f"v_0 in {drawn.block}" in chart_specs(at)
    assert lab.have("jacobian", TINY).engine == "fast"  # the CNN's hand-written replay (tj/cnn_replay.py)


def test_why_page_explains_the_cnn_and_its_count_matches():
    at = app("why")
    text = " ".join(m.value for m in at.markdown)
    assert "freeze nothing here" in text and "Softmax shift" in text and "dead pixel" not in text.lower()
    at.button(key="compute_exact").click()
    ok(at.run())
    assert metric(at, "patch null-space directions") == "0"
    assert metric(at, "predicted in total") == metric(at, "measured |σ−1| < 1e-9") == "33"  # 1 + 32 softmax


@pytest.mark.slow
def test_compare_shows_mlp_and_cnn_side_by_side_and_perturb_runs():
    at = app("compare")
    at.button(key="compute_variants").click()
    ok(at.run())
    mlp = "MLP 64 → 16 → 10, gelu_tanh (lecture preset), same data"
    at.multiselect(key="switches").set_value([mlp])
    at.button(key="compute_switches").click()
    ok(at.run())
    table = at.dataframe[1].value
    assert table["run"].tolist() == ["main", mlp] and table["P"].tolist() == [350, 1210]
    at.switch_page("views/perturb.py")
    ok(at.run())
    assert "compute_spectrum_perturb" not in [b.key for b in at.button], "Compare's main run is Perturb's spectrum"
    assert list(at.dataframe[0].value.columns) == ["train", "test", "inverted", "noise"]
