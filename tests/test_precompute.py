"""`python -m tj precompute`: every page of the lecture preset from the store, computing nothing; the store itself."""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import lab
import tj
import tj.compare
import tj.jacobian
import tj.perturb
import tj.precompute
import tj.why
from tj.diskcache import DiskCache, path_for
from tj.precompute import jobs, precompute

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
LECTURE = tj.preset("lecture")

# Every entry point that computes something a page shows (module, name): the walk must call none of them.
COMPUTATIONS = [(tj, "training_jacobian"), (tj.jacobian, "training_jacobian"), (tj, "spectrum"),
                (sys.modules["tj.spectrum"], "spectrum"), (tj.perturb, "output_effect"), (tj.perturb, "linearity"),
                (tj.perturb, "subspace_training"), (tj.perturb, "spread"), (tj.perturb, "bulk_direction"),
                (tj.why, "spectra_through_training"), (tj.why, "gd_prediction"), (tj.compare, "function_jacobian"),
                (tj.compare, "overlap_sweep"), (tj.compare, "overlap_matrix"), (tj.precompute, "trained"),
                (lab, "estimate_seconds"), (lab, "block_norms"), (lab, "finite_difference_check")]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store")
    report = precompute(LECTURE, folder, say=lambda s: None)
    assert not [k for k, v in report.items() if v.startswith("skipped")], report
    return folder


@pytest.fixture
def counted(monkeypatch):
    calls = []
    for module, name in COMPUTATIONS:
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: (calls.append(_name), _real(*a, **k))[1])
    return calls


def fresh_server_state(monkeypatch, folder):
    """As if the server had just started with TJ_CACHE_DIR=folder: no cached limits, results or bad-file marks."""
    monkeypatch.setenv("TJ_CACHE_DIR", str(folder))
    st.cache_resource.clear()
    lab._UNUSABLE.clear()


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page(f"views/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow
def test_walk_after_precompute_computes_nothing(store, counted, monkeypatch):
    fresh_server_state(monkeypatch, store)
    at = page("build")
    at.button[0].click()       # Train
    assert not at.run().exception
    at = page("jacobian")
    next(b for b in at.button if b.key == "fd_check").click()
    assert not at.run().exception and "relative error ‖J·v − FD‖ / ‖FD‖" in [m.label for m in at.metric]
    texts = {}
    for name in ("spectrum", "compare", "perturb", "why"):
        at = page(name)
        assert not [b.key for b in at.button if b.key and b.key.startswith(("compute", "run"))], name
        texts[name] = " ".join(m.value for m in (*at.markdown, *at.caption, *at.info))
    assert "Test loss without the nudge" in texts["perturb"]
    assert "Share of the predicted subspace" in texts["why"]
    assert counted == [], f"the walk computed {counted}"


def test_the_walk_without_a_store_does_compute(counted, monkeypatch, tmp_path):
    # The counter can see a computation: a page whose results are not stored computes them.
    fresh_server_state(monkeypatch, tmp_path)
    at = page("jacobian")
    next(b for b in at.button if b.key == "compute_jacobian").click()
    assert not at.run().exception
    assert "training_jacobian" in counted


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


def test_every_page_job_is_stored_under_its_own_key(store):
    keys = [j.key for j in jobs(LECTURE) if j.compute is not None and not callable(j.key)]
    assert len(set(keys)) == len(keys)
    assert all(DiskCache(store).has(k) for k in keys)


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
    from tj.diskcache import _decode
    with pytest.raises(ValueError, match="only tj's own result types"):
        _decode({"dataclass": "subprocess:Popen", "fields": {}}, {})
    value = (torch.arange(3.0), {"a": [1, float("nan")]}, tj.preset("lecture"), None)
    DiskCache(tmp_path).put(("x", LECTURE), value)
    got = DiskCache(tmp_path).get(("x", LECTURE))
    assert torch.equal(got[0], value[0]) and got[2] == value[2] and np.isnan(got[1]["a"][1]) and got[3] is None


def test_cli_says_what_is_wrong_in_one_sentence(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TJ_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-m", "tj", "precompute", "--preset", "lecture"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.startswith("error: give --cache-dir DIR") and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "tj", "precompute", "--preset", "lecture", "--cache-dir", str(tmp_path)],
                         cwd=ROOT, env={**env, "TJ_MAX_PARAMS": "1000"}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "precompute needs a dense J" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_a_restarted_server_shows_every_page_from_the_store_in_a_real_browser(store, monkeypatch, tmp_path):
    import browser_walk as bw
    if bw.available():
        pytest.skip(f"browser test: {bw.available()}")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("TJ_CACHE_DIR", str(store))
    server = bw.Server(log_dir=tmp_path)   # a fresh process: nothing in memory, everything on disk
    seconds = {}
    try:
        with sync_playwright() as p:
            browser = bw.launch(p)
            try:
                page = bw.new_page(browser, server.url)
                for i, step in enumerate(bw.STORED_WALK, 1):
                    start = time.perf_counter()
                    bw.run_step(page, step, i, None)
                    seconds[step.page] = time.perf_counter() - start
            finally:
                browser.close()
        assert not bw.log_problems(server.log())
    finally:
        server.stop()
    # how fast is the benchmark's business (scripts/paper_class.py measures a class); printed here, not asserted
    print("seconds per page from the store: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()), file=sys.stderr)
