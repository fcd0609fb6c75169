"""Ready for a class: limits, failures in words, shared computation, saved files, shareable URLs."""
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import lab
import tj
import tj.jacobian
from tj.cache import ResultCache
from tj.cache import DiskCache, path_for
from tj.store import load, restore, save
from tj.validate import query_params

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def app(page=None, params=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(f"views/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    lab.results().clear()
    lab._limits.clear()
    yield
    lab._limits.clear()


def test_eight_threads_asking_for_the_same_jacobian_compute_it_once():
    cache, calls = ResultCache(), []
    exp = tj.preset("lecture").replace(**{"train.epochs": 1})

    def compute():
        calls.append(1)
        return tj.training_jacobian(exp)

    got = [None] * 8
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, cache.get_or_compute(("J", exp), compute)))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(g is got[0] for g in got)
    assert cache.stats.computed == 1 and cache.stats.hits == 7


def test_cache_is_bounded_in_entries_and_bytes():
    cache = ResultCache(max_entries=3, max_bytes=10_000)
    for i in range(5):
        cache.get_or_compute(i, lambda: torch.zeros(100))  # 400 bytes each
    assert len(cache._items) == 3 and cache.peek(0) is None and cache.peek(4) is not None
    cache.get_or_compute("big", lambda: torch.zeros(2_000))  # 8,000 bytes: older entries make room
    assert cache.bytes <= 10_000 and cache.peek("big") is not None


def test_over_the_limit_is_refused_in_words(monkeypatch):
    monkeypatch.setenv("TJ_MAX_PARAMS", "1000")
    at = app("jacobian")
    at.button(key="compute_jacobian").click()
    at.run()
    assert not at.exception
    assert any("too big for this server" in e.value and "1,210" in e.value for e in at.error)


def test_out_of_memory_and_svd_failure_and_stop_read_as_messages(monkeypatch):
    def no_memory(*a, **k):
        raise MemoryError("DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(tj.jacobian, "training_jacobian", no_memory)
    at = app("jacobian")
    at.button(key="compute_jacobian").click()
    at.run()
    assert not at.exception and any("Out of memory" in e.value for e in at.error)
    monkeypatch.undo()

    def no_svd(*a, **k):
        raise tj.SVDFailed("the SVD of J did not converge (simulated)")

    monkeypatch.setattr(sys.modules["tj.spectrum"], "spectrum", no_svd)
    at = app("spectrum")
    at.button(key="compute_spectrum").click()
    at.run()
    assert not at.exception and any("SVD failed" in e.value for e in at.error)
    assert lab.have("jacobian", tj.preset("lecture")) is not None  # J, computed before the failure, is kept

    def cancelled(*a, **k):
        raise tj.Cancelled("stopped after 64 of 1210 columns")

    monkeypatch.setattr(tj.jacobian, "training_jacobian", cancelled)
    at = app("jacobian", {"seed": "5"})
    at.button(key="compute_jacobian").click()
    at.run()
    assert not at.exception and any("Stopped" in e.value for e in at.error)


@pytest.mark.slow
def test_a_saved_file_reproduces_the_spectrum_page_exactly(tmp_path):
    at = app("spectrum")
    at.button(key="compute_spectrum").click()
    at.run()
    shown = {m.label: m.value for m in at.metric}
    exp = tj.preset("lecture")
    res, spec = lab.have("jacobian", exp), lab.have("spectrum", exp)
    save(tmp_path / "r.npz", res, spec)
    lab.results().clear()
    loaded_res, loaded_spec = restore(load(tmp_path / "r.npz"))
    assert np.array_equal(loaded_spec.singular_values, spec.singular_values)
    lab.results().put("jacobian", exp, value=loaded_res)
    lab.results().put("spectrum", exp, value=loaded_spec)
    at = app("spectrum")
    assert {m.label: m.value for m in at.metric} == shown


def test_disk_cache_is_used_and_a_corrupt_file_is_recomputed(tmp_path, monkeypatch):
    exp = tj.preset("lecture")
    monkeypatch.setenv("TJ_CACHE_DIR", str(tmp_path))
    folder = DiskCache(tmp_path)
    for kind in ("jacobian", "spectrum"):
        path_for(tmp_path, (kind, exp)).write_bytes(b"PK\x03\x04 truncated")
        assert folder.get((kind, exp)) is None
    at = app("spectrum")
    at.button(key="compute_spectrum").click()
    at.run()
    assert not at.exception and all(folder.get((k, exp)) is not None for k in ("jacobian", "spectrum"))  # rewritten
    lab.results().clear()
    calls = []
    monkeypatch.setattr(tj.jacobian, "training_jacobian", lambda *a, **k: calls.append(1))
    at = app("spectrum")  # straight from disk: no compute button, no computation
    assert not calls and int(metric(at, "bulk").replace(",", "")) > 0


@pytest.mark.slow
def test_a_shared_url_reproduces_the_same_sigma_bit_for_bit():
    exp = tj.preset("lecture").replace(seed=3, **{"model.widths": (12,), "train.lr": 0.07})
    params = query_params(exp, compact=True)
    at = app("spectrum", params)
    assert at.session_state["experiment"] == exp
    at.button(key="compute_spectrum").click()
    at.run()
    shown = lab.have("spectrum", exp).singular_values
    lab.results().clear()
    at = app("spectrum", params)  # a new session from the same link
    at.button(key="compute_spectrum").click()
    at.run()
    again = lab.have("spectrum", exp).singular_values
    res = tj.training_jacobian(exp)
    direct = tj.spectrum(res.jacobian, res.theta0, res.theta_final).singular_values
    assert np.array_equal(shown, again) and np.array_equal(shown, direct)


def test_bad_url_settings_are_reported_and_ignored():
    at = app(None, {"lr": "banana", "w": "0"})
    assert any("link" in e.value for e in at.error)
    assert at.session_state["experiment"] == tj.preset("lecture")


def test_classroom_mode_hides_advanced_controls():
    full = app("build")
    room = app("build", {"classroom": "1"})
    labels = {w.label for w in room.selectbox} | {w.label for w in room.number_input}
    assert "activation" in {w.label for w in full.selectbox} and "activation" not in labels
    assert "learning rate" in labels and room.query_params.get("classroom") in ("1", ["1"])
