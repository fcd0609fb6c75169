"""`python -m tj precompute`: every page from the store, computing nothing; the store itself; the disk reads.
The stored pages in a real browser: tests/test_stored_pages.py."""
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import lab
from pages import QUICK_CNN, QUICK_LECTURE
import tj
from tj.defaults import page_results
from tj.cache import DiskCache, key_text, path_for
from tj.precompute import precompute
from tj.results import RECIPES, Results
from tj.validate import query_params

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
LECTURE = QUICK_LECTURE
PAGES = ("build", "jacobian", "spectrum", "compare", "perturb", "why")


@pytest.fixture(scope="module")
def store(stored):
    return stored(LECTURE)


class Calls(list):
    """The kinds of every recipe that ran; `asked`: every key a page asked for (lab.get), and those a result
    put together from stored ones asked for (Results.get)."""
    asked: list


@pytest.fixture
def counted(monkeypatch):
    calls = Calls()
    calls.asked = []
    for kind, recipe in list(RECIPES.items()):
        def compute(*a, _real=recipe.compute, _kind=kind, **k):
            calls.append(_kind)
            return _real(*a, **k)
        monkeypatch.setitem(RECIPES, kind, dataclasses.replace(recipe, compute=compute))
    real_get = lab.get

    def get(kind, exp, *args):
        calls.asked.append((kind, exp, *args))
        return real_get(kind, exp, *args)
    monkeypatch.setattr(lab, "get", get)
    real_nested = Results.get

    def nested(self, kind, exp, *args, **k):
        calls.asked.append((kind, exp, *args))
        return real_nested(self, kind, exp, *args, **k)
    monkeypatch.setattr(Results, "get", nested)
    return calls


def fresh_server_state(monkeypatch, folder):
    """As if the server had just started with TJ_CACHE_DIR=folder: no cached limits or results."""
    monkeypatch.setenv("TJ_CACHE_DIR", str(folder))
    st.cache_resource.clear()


def page(name: str, exp=LECTURE) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    for k, v in query_params(exp, compact=True).items():
        at.query_params[k] = v
    at.run()
    at.switch_page(f"views/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, button) -> AppTest:
    button.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def walk(exp) -> dict[str, str]:
    """Every page with its default settings, pressing only Train and the finite-difference check; their texts."""
    texts = {}
    for name in PAGES:
        at = page(name, exp)
        if name == "build":
            click(at, at.button[0])
        if name == "jacobian":
            click(at, at.button(key="fd_check"))
        assert not [b.key for b in at.button if b.key and b.key.startswith(("compute", "run"))], name
        texts[name] = " ".join(m.value for m in (*at.markdown, *at.caption, *at.info))
    return texts


def stored_keys(folder) -> set[str]:
    return set(DiskCache(folder).keys())


@pytest.fixture(scope="module")
def cnn_store(stored):
    return stored(QUICK_CNN)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lecture", "cnn"])
def test_a_walk_after_precompute_computes_nothing_and_asks_for_exactly_what_is_stored(name, request, monkeypatch):
    exp = LECTURE if name == "lecture" else QUICK_CNN
    folder = request.getfixturevalue("store" if name == "lecture" else "cnn_store")
    counted = request.getfixturevalue("counted")  # after the store: only the walk is counted
    fresh_server_state(monkeypatch, folder)
    texts = walk(exp)
    assert "Test loss without the nudge" in texts["perturb"]
    assert "Share of the predicted subspace" in texts["why"]
    computed = [kind for kind in counted if RECIPES[kind].stored]  # the others put stored results together
    assert computed == [], f"the walk computed {computed}"
    assert {kind for kind, *_ in counted.asked} <= set(RECIPES)
    asked = {key_text(k) for k in counted.asked if RECIPES[k[0]].stored}
    assert asked == stored_keys(folder), (asked ^ stored_keys(folder))
    if name == "cnn":  # no MLP sentence on a CNN page: it has no dead-pixel weights and no W1
        for page_name, text in texts.items():
            assert "dead pixel" not in text.lower() and "W1" not in text, (page_name, text)


def test_every_page_result_has_a_stored_recipe_and_a_key_of_its_own(store):
    for name in ("lecture", "cnn", "attention"):
        keys = [k for ks in page_results(tj.preset(name)).values() for k in ks if not callable(k)]
        assert all(k[0] in RECIPES and RECIPES[k[0]].stored for k in keys), name
        assert len(set(keys)) == len(keys), name
    assert all(DiskCache(store).has(k) for ks in page_results(LECTURE).values() for k in ks if not callable(k))


def test_the_walk_without_a_store_does_compute(counted, monkeypatch, tmp_path):
    # The counter can see a computation: a page whose results are not stored computes them.
    fresh_server_state(monkeypatch, tmp_path)
    at = page("jacobian")
    click(at, at.button(key="compute_jacobian"))
    assert "jacobian" in counted


def test_a_jacobian_is_read_from_disk_at_most_once_on_a_miss_and_never_on_a_hit(store, monkeypatch, tmp_path):
    store = shutil.copytree(store, tmp_path / "store")  # it stores what it computes
    reads = []
    real = DiskCache.get
    monkeypatch.setattr(DiskCache, "get", lambda self, key: (reads.append(key[0]), real(self, key))[1])
    results = Results(folder=store)
    res = results.get("jacobian", LECTURE)        # a miss in memory, on disk: one read
    assert reads == ["jacobian"]
    assert results.get("jacobian", LECTURE) is res and reads == ["jacobian"]     # a hit: none
    Results(folder=store).get("jacobian", LECTURE.replace(**{"train.epochs": 1}))  # not on disk: computed, no read
    assert reads == ["jacobian"]


def test_rerun_skips_everything_stored(store, counted):
    report = precompute(LECTURE, store, say=lambda s: None)
    assert set(v for k, v in report.items() if k != "total") == {"stored"}
    assert counted == []


@pytest.mark.slow
def test_stored_results_are_the_computed_ones(store):
    # Same process, same shapes, same threads: bit for bit.
    found = DiskCache(store).get(("kl", LECTURE, 1.0))
    res = tj.training_jacobian(LECTURE)
    spec = tj.spectrum(res.jacobian, res.theta0, res.theta_final)
    again = tj.perturb.output_effect(LECTURE, res.theta_final, spec.Vh, 1.0)
    assert found.keys() == again.keys() and all(np.array_equal(found[k], again[k]) for k in again)


def test_a_damaged_or_foreign_file_reads_as_missing(tmp_path):
    store, key = DiskCache(tmp_path), ("kl", LECTURE, 2.0)
    store.put(key, {"train": np.arange(3.0)})
    path = path_for(tmp_path, key)
    path.write_bytes(path.read_bytes()[:50])                        # truncated
    assert store.get(key) is None
    store.put(("kl", LECTURE, 3.0), {"train": np.ones(2)})
    path_for(tmp_path, ("kl", LECTURE, 3.0)).replace(path)          # another key's file under this name
    assert store.get(key) is None
    np.savez(path, __key__=np.array("x"), __value__=np.array([{"a": 1}], dtype=object))  # pickled objects
    assert store.get(key) is None
    store.put(key, {"train": np.arange(3.0)})                      # what precompute does with a missing result
    assert np.array_equal(store.get(key)["train"], np.arange(3.0))


def test_only_tj_types_are_built_from_a_file(tmp_path):
    from tj.cache import _decode
    with pytest.raises(ValueError, match="only tj's own result types"):
        _decode({"dataclass": "subprocess:Popen", "fields": {}}, {})
    value = (torch.arange(3.0), {"a": [1, float("nan")]}, tj.preset("lecture"), None)
    DiskCache(tmp_path).put(("x", LECTURE), value)
    got = DiskCache(tmp_path).get(("x", LECTURE))
    assert torch.equal(got[0], value[0]) and got[2] == value[2] and np.isnan(got[1]["a"][1]) and got[3] is None


def test_cli_says_what_is_wrong_in_one_sentence(tmp_path, monkeypatch, tj_cli):
    monkeypatch.delenv("TJ_CACHE_DIR", raising=False)
    code, _, err = tj_cli("precompute", "--preset", "lecture")
    assert code == 1 and err.startswith("error: give --cache-dir DIR") and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("TJ_MAX_PARAMS", "1000")
    code, _, err = tj_cli("precompute", "--preset", "lecture", "--cache-dir", str(tmp_path))
    assert code == 1 and "precompute needs a dense J" in err and len(err.strip().splitlines()) == 1
