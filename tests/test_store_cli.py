import io

import numpy as np
import pytest

from conftest import run_cli, tiny
from tj import spectrum, training_jacobian
from tj.store import BadFile, load, save


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    exp = tiny((3,), dtype="float32")
    res = training_jacobian(exp)
    spec = spectrum(res.jacobian, res.theta0, res.theta_final)
    path = tmp_path_factory.mktemp("store") / "r.npz"
    save(path, res, spec)
    return path, res, spec


def test_round_trip(saved):
    path, res, spec = saved
    got = load(path)
    assert got.experiment == res.experiment
    assert np.array_equal(got.jacobian, res.jacobian.numpy()) and np.array_equal(got.singular_values, spec.singular_values)
    assert not list(path.parent.glob("*.tmp"))


def _rewrite(path, **changes):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    return buf


def test_bad_files_are_rejected_with_a_reason(saved):
    path, res, _ = saved
    raw = path.read_bytes()
    n = res.experiment.model.n_params
    cases = {
        "truncated": io.BytesIO(raw[: len(raw) // 2]),
        "garbage": io.BytesIO(b"not a zip file at all"),
        "pickled": _rewrite(path, theta0=np.array([{"x": 1}], dtype=object)),
        "wrong shape": _rewrite(path, jacobian=np.zeros((n - 1, n), np.float32)),
        "bad config": _rewrite(path, config=np.array("{not json")),
        "nan": _rewrite(path, theta_final=np.full(n, np.nan, np.float32)),
        "wrong dtype": _rewrite(path, U=np.zeros((n, n), np.int64)),
    }
    for name, src in cases.items():
        with pytest.raises(BadFile) as err:
            load(src)
        assert str(err.value), name


def test_cli_layout_and_bad_arguments(tj_cli):
    out = run_cli("layout", "--preset", "paper")
    assert out.returncode == 0 and out.stdout.splitlines() == ["W1 64x64 0 4096", "b1 64 4096 4160", "W2 10x64 4160 4800", "b2 10 4800 4810"]
    for bad in (["layout", "--preset", "nope"], ["jacobian", "--out", "/nonexistent/dir/J.npz", "--preset", "lecture"],
                ["jacobian", "--preset", "lecture"], ["jacobian", "--dtype", "float16", "--out", "x.npz"], ["frobnicate"]):
        code, _, err = tj_cli(*bad)
        assert code != 0 and len(err.strip().splitlines()) == 1, bad


def test_cli_jacobian_on_the_lecture_preset(tmp_path, tj_cli):
    theta0 = tmp_path / "theta0.npy"
    from tj import init_params, preset
    np.save(theta0, init_params(preset("lecture").model, 5).numpy())
    r = run_cli("jacobian", "--preset", "lecture", "--init-from", str(theta0), "--out", str(tmp_path / "J.npz"))
    assert r.returncode == 0, r.stderr
    assert "sigma_1" in r.stdout and "regions" in r.stdout and "columns" in r.stderr
    got = load(tmp_path / "J.npz")
    assert np.array_equal(got.theta0, np.load(theta0))
    assert got.jacobian.shape == (1210, 1210) and got.singular_values[0] > 5
    bad = tmp_path / "short.npy"
    np.save(bad, np.zeros(7, np.float32))
    code, _, err = tj_cli("jacobian", "--preset", "lecture", "--init-from", str(bad), "--out", str(tmp_path / "J2.npz"))
    assert code == 1 and "shape" in err and len(err.strip().splitlines()) == 1
