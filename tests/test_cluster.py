"""J's column blocks on a Dask cluster: bit-identical to training_jacobian, resumable, fault-tolerant."""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tj
from tj.cluster import block_task, compute
from tj.jstore import StoreError, create_or_open, open_store

ROOT = Path(__file__).resolve().parents[1]
LECTURE = tj.preset("lecture")  # P = 1,210: 5 blocks of 256 columns (the last 186)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def reference():
    return tj.training_jacobian(LECTURE).jacobian.numpy()


@pytest.fixture(scope="module")
def lecture_store(tmp_path_factory, client):
    path = tmp_path_factory.mktemp("cluster") / "J.zarr"
    report = compute(LECTURE, str(path), client=client)
    return path, report


def tree(path: Path) -> dict:
    """Every file of a store and its SHA-256: to prove nothing was touched."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_stored_J_is_bit_identical_to_training_jacobian(lecture_store, reference):
    path, report = lecture_store
    assert report.computed == report.n_blocks == 5 and report.already == 0
    store = open_store(path)
    assert store.finished and store.verify() == []
    assert np.array_equal(store.read(), reference)  # same chunk padding, single-threaded kernels: same bits
    assert store.attrs["config_hash"] and store.attrs["code_version"] and store.attrs["n_params"] == 1210


def test_workers_run_single_threaded_and_keep_their_run(lecture_store):
    _, report = lecture_store
    assert {m["torch_threads"] for m in report.blocks} == {1}
    assert {m["omp_threads"] for m in report.blocks} == {"1"}
    pids = [m["pid"] for m in report.blocks]
    assert os.getpid() not in pids  # worker processes, not the test's own
    recorded = [m["pid"] for m in report.blocks if m["recorded"]]
    assert sorted(recorded) == sorted(set(pids))  # each worker recorded the run once, then kept it


def test_lazy_products_match_the_dense_J(lecture_store, reference):
    store = open_store(lecture_store[0])
    rng = np.random.default_rng(0)
    v, u = rng.normal(size=(2, store.n_params))
    J = reference.astype(np.float64)
    tol = 1e-5 * np.abs(J).sum(1).max()  # float32 entries, float64 products
    assert np.abs(store.matvec(v) - J @ v).max() < tol
    assert np.abs(store.rmatvec(u) - J.T @ u).max() < tol
    from scipy.sparse.linalg import svds
    top = svds(store.operator(), k=3, return_singular_vectors=False)
    exact = np.linalg.svd(J, compute_uv=False)[:3]
    assert np.allclose(np.sort(top)[::-1], exact, rtol=1e-5)


def test_another_config_is_refused_and_untouched(lecture_store):
    path = lecture_store[0]
    before = tree(path)
    others = [LECTURE.replace(seed=1), LECTURE.replace(dtype="float64"), tj.preset("paper")]
    for other in others:
        with pytest.raises(StoreError) as err:
            create_or_open(path, other, None, 64)
        assert "nothing was changed" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StoreError):
        create_or_open(path, LECTURE, 128, 64)  # another block size
    assert tree(path) == before


def test_a_corrupt_block_is_detected_and_recomputed(lecture_store, client, reference, tmp_path):
    path = tmp_path / "J.zarr"
    shutil.copytree(lecture_store[0], path)
    chunk = path / "J" / "c" / "0" / "2"
    raw = bytearray(chunk.read_bytes())
    raw[1000:1004] = b"\xff\xff\xff\xff"
    chunk.write_bytes(bytes(raw))
    (path / "J" / "c" / "0" / "4").write_bytes(b"truncated")
    store = open_store(path)
    assert store.missing() == ([2, 4], [2, 4])
    report = compute(LECTURE, str(path), client=client)
    assert (report.computed, report.corrupt, report.already) == (2, 2, 3)
    assert np.array_equal(open_store(path).read(), reference)


def test_losing_a_worker_mid_run_still_completes_with_the_same_J(client, reference, tmp_path):
    path = tmp_path / "J.zarr"
    store = create_or_open(path, LECTURE, 64, 64)  # 19 blocks, so the kill lands mid-run
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    from distributed import as_completed

    futures = [client.submit(block_task, str(path), i, pure=False) for i in range(store.n_blocks)]
    done_at_kill = None
    for fut in as_completed(futures):
        fut.result()
        if done_at_kill is None:
            os.kill(victim, signal.SIGKILL)  # a worker process of this test's cluster
            done_at_kill = int(store.complete().sum())
    assert done_at_kill < store.n_blocks  # the kill came mid-run
    assert store.finished and store.verify() == []
    assert victim not in client.run(os.getpid).values()  # the nanny started a new worker process
    assert np.array_equal(store.read(), reference)
