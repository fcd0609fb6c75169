"""The attention family through every page (AppTest), on a tiny attention net so it stays quick (P = 238, 26 steps)."""
import pytest

import lab
import tj
from pages import metric, ok, open_page
from tj.attention import AttentionSpec

TINY = tj.preset("attention").replace(model=AttentionSpec(embed=4, heads=2, hidden=4),
                                     **{"train.epochs": 2, "data.n_train": 400})


def app(page=None, exp=TINY):
    return open_page(page, exp)


@pytest.fixture(autouse=True)
def fresh_cache():
    lab.results().clear()


def test_build_offers_the_attention_family_and_trains_it():
    at = app("build", tj.preset("lecture"))
    at.radio(key="family_picker").set_value("attention")
    ok(at.run())
    assert {n.label for n in at.number_input} >= {"embedding width", "attention heads", "MLP block's hidden width"}
    next(n for n in at.number_input if n.label == "embedding width").set_value(4)
    next(n for n in at.number_input if n.label == "MLP block's hidden width").set_value(4)
    next(n for n in at.number_input if n.label == "epochs").set_value(2)
    next(n for n in at.number_input if n.label == "learning rate").set_value(0.06)  # the lecture's 0.1 diverges
    at.button[0].click()
    ok(at.run())
    assert at.session_state["experiment"].model == TINY.model
    assert metric(at, "parameters P") == f"{TINY.model.n_params:,}"
    ok(at.run())
    assert tj.networks.describe(TINY.model) in " ".join(m.value for m in at.sidebar.markdown)


@pytest.mark.slow
def test_jacobian_spectrum_compare_perturb_and_why_compute_on_attention():
    at = app("jacobian")
    at.button(key="compute_jacobian").click()
    ok(at.run())
    at.switch_page("views/spectrum.py")
    ok(at.run())
    drawn = lab.get("direction", TINY, int(at.number_input(key="direction_index").value))
    assert any(f"Drawn: {drawn.block}, the block that holds most" in c.value for c in at.caption)
    at.switch_page("views/compare.py")
    ok(at.run())
    at.button(key="compute_variants").click()
    ok(at.run())
    assert "noise inputs" in at.dataframe[0].value.to_string()
    at.switch_page("views/perturb.py")
    ok(at.run())
    at.switch_page("views/why.py")
    ok(at.run())
    text = " ".join(m.value for m in at.markdown)
    assert "freeze nothing here" in text and "W1" not in text and "dead pixel" not in text.lower()
    at.button(key="compute_exact").click()
    ok(at.run())
    assert metric(at, "softmax-shift directions") == "5"  # head.b along 1, and each of head.W's 4 columns
    assert metric(at, "the network's own symmetries") == "8"  # the key biases; embed.b traded against pos
    assert metric(at, "predicted in total") == metric(at, "measured |σ−1| < 1e-9") == "13"
