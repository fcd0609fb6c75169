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
import torch

import tj
import tj.jacobian
import tj.store
from tj.cluster import block_task, compute
from tj.jstore import StoreError, create_or_open, open_store

ROOT = Path(__file__).resolve().parents[1]
LECTURE = tj.preset("lecture")  # P = 1,210: 5 blocks of 256 columns (the last 186)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
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


# The command line, run as a user would: a slower variant of the lecture preset (1,000 steps, 19 blocks of 64
# columns on 2 workers, about 0.5 s each on a quiet machine, ten times the poll below), so that interruptions
# land mid-run.
SLOW = LECTURE.replace(**{"train.epochs": 40})


def _ctrl_c_delivered() -> None:
    """In the child before exec: Ctrl-C neither ignored nor blocked, whatever an earlier test left in this process."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "tj", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_ctrl_c_delivered, **kw)


def signal_state(pid: int) -> str:
    """The process's blocked, ignored and caught signal masks, as /proc shows them."""
    try:
        return " ".join(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith(("SigBlk", "SigIgn", "SigCgt")))
    except OSError:
        return "exited"


def wait_for_blocks(path: Path, at_least: int, proc, timeout=300) -> str:
    """Poll the store until `at_least` blocks are complete; returns the last polls (seconds: blocks or error)."""
    start, polls = time.monotonic(), []
    while time.monotonic() - start < timeout:
        try:
            if (path / "checksums").exists():
                done = int(open_store(path).complete().sum())
                polls.append(f"{time.monotonic() - start:.1f} s: {done}")
                if done >= at_least:
                    return "; ".join(polls[-4:])
        except StoreError as err:  # the CLI is still creating the store
            polls.append(f"{time.monotonic() - start:.1f} s: {err}")
        assert proc.poll() is None, (proc.communicate(), polls[-4:])
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} blocks after {timeout} s: {polls[-4:]}")


@pytest.mark.slow
def test_interrupted_cli_resumes_with_only_the_missing_blocks(tmp_path):
    config = tmp_path / "slow.json"
    config.write_text(SLOW.to_json())
    path = tmp_path / "J.zarr"
    args = ("jacobian", "--config", str(config), "--store", str(path), "--workers", "2", "--block", "64")
    first = cli(*args)
    polls = wait_for_blocks(path, 2, first)
    state = signal_state(first.pid)
    first.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop that keeps the finished blocks
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "kept" in err and "Traceback" not in err, \
        f"{err}\npolls: {polls}; the CLI's signals when sent Ctrl-C: {state}"
    first_blocks = set(np.flatnonzero(open_store(path).complete()))
    kept = len(first_blocks)
    assert 2 <= kept < 19

    second = cli(*args)
    wait_for_blocks(path, kept + 2, second)
    os.killpg(second.pid, signal.SIGKILL)  # no clean stop at all: the CLI and its workers die mid-write
    second.communicate(timeout=60)
    store = open_store(path)
    todo, _ = store.missing()
    assert 0 < len(todo) < 19 - kept

    third = cli(*args)
    out, err = third.communicate(timeout=600)
    assert third.returncode == 0, err
    assert f"computed {len(todo)} missing blocks" in out and f"{19 - len(todo)} were already complete" in out
    assert "blocks" in err and "columns" in err and "elapsed" in err  # progress on stderr
    store = open_store(path)
    assert store.finished and store.verify() == []
    # a block from each of the three runs, bit for bit against the engine's own columns (whose bits do not depend
    # on which columns are asked for): a fifth of the cost of the whole J
    second_blocks = set(range(19)) - first_blocks - set(todo)
    run = tj.jacobian.record(SLOW)
    for i in (min(first_blocks), min(second_blocks), max(todo)):
        direct = tj.training_jacobian(SLOW, columns=store.columns(i), trajectory=run).jacobian.numpy()
        assert np.array_equal(store.read_block(i), direct), i


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_real_cluster_on_localhost(tmp_path, lecture_store, reference):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        worker = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
                  "--dashboard-address", ":0"]
        procs += [subprocess.Popen(worker, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True) for _ in range(2)]
        from distributed import Client

        with Client(address, timeout="60s") as c:
            c.wait_for_workers(2, timeout=120)
            path = tmp_path / "J.zarr"
            run = subprocess.run([sys.executable, "-m", "tj", "jacobian", "--preset", "lecture", "--store", str(path),
                                  "--scheduler", address], cwd=ROOT, capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, run.stderr
            assert f"on {address}" in run.stdout and "computed 5 missing blocks" in run.stdout
            assert np.array_equal(open_store(path).read(), reference)
            assert np.array_equal(open_store(path).read(), open_store(lecture_store[0]).read())
            meta = c.submit(block_task, str(path), 0, pure=False).result()  # rewrites block 0: same bits
            assert meta["torch_threads"] == 1 and meta["omp_threads"] == "1"
            assert open_store(path).verify() == []
    finally:
        for p in procs[::-1]:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)


@pytest.mark.slow
def test_lenet5_block_through_the_cluster_equals_the_general_engine(client, tmp_path):
    # LeNet-5 itself (P = 61,706) on a shortened run, 2 SGD steps on 400 MNIST images: the authors' 900-step
    # recipe costs tens of seconds per column on one core (scripts/measure_cluster.py measures and projects it).
    exp = tj.preset("lenet5").replace(**{"data.n_train": 400, "train.epochs": 1})
    width = tj.jacobian.replay_width(exp, "general")
    store = create_or_open(tmp_path / "J.zarr", exp, 6 * width, width, "general")
    i = 156 // (6 * width)  # the block holding conv1.b's end and conv2.W's start
    meta = client.submit(block_task, store.path, i, pure=False).result()
    c0, c1 = meta["columns"]
    assert c0 < 156 < c1 and meta["torch_threads"] == 1
    torch.set_num_threads(1)  # record the run with the workers' thread count: oneDNN's convolutions round by it
    direct = tj.training_jacobian(exp, engine="general", columns=(c0, c1)).jacobian.numpy()
    got = store.read_block(i)
    identity = np.zeros_like(got)
    identity[np.arange(c0, c1), np.arange(c1 - c0)] = 1
    assert got.shape == (61706, c1 - c0) and np.abs(got - identity).max() > 1e-3
    assert np.array_equal(got, direct)


def test_spectrum_from_a_store_and_its_refusals(lecture_store, reference, tmp_path, capsys):
    from tj.__main__ import main

    path = str(lecture_store[0])
    assert main(["spectrum", "--store", path, "--out", str(tmp_path / "S.npz")]) == 0
    assert "sigma_1" in capsys.readouterr().out
    saved = tj.store.load(tmp_path / "S.npz")
    assert saved.experiment == LECTURE and np.array_equal(saved.jacobian, reference)
    exact = np.linalg.svd(reference.astype(np.float64), compute_uv=False)
    assert np.allclose(saved.singular_values, exact, rtol=1e-4, atol=1e-5 * exact[0])
    tj.store.restore(saved)  # θ_T in the file is what this code trains: the app accepts it
    bad = [["spectrum", "--store", path, "--out", str(tmp_path / "T.npz"), "--memory-gb", "0.01"],
           ["spectrum", "--store", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "T.npz")],
           ["jacobian", "--preset", "lecture", "--store", path, "--workers", "0"],
           ["jacobian", "--preset", "lecture", "--store", str(tmp_path / "new.zarr"), "--block", "100"],
           ["jacobian", "--preset", "lecture", "--workers", "2", "--out", str(tmp_path / "J.npz")],
           ["jacobian", "--preset", "paper", "--store", path]]
    for args in bad:
        assert main(args) != 0
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, args
        if args[-1] == "0.01":
            assert "GB" in err and "python -m tj spectrum --store" in err
    assert not (tmp_path / "T.npz").exists() and not (tmp_path / "new.zarr").exists()
    r = subprocess.run([sys.executable, "-m", "tj", "jacobian", "--store", path, "--workers", "2", "--scheduler",
                        "tcp://x:1"], cwd=ROOT, capture_output=True, text=True, timeout=120)  # argparse's own exit
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_app_loads_a_finished_store_from_its_cache_folder(lecture_store, reference, tmp_path, monkeypatch):
    shutil.copytree(lecture_store[0], tmp_path / "lecture.zarr")
    monkeypatch.setenv("TJ_CACHE_DIR", str(tmp_path))
    import lab
    import streamlit as st

    from tj.cache import DiskCache

    st.cache_resource.clear()  # as on a freshly started server: limits (and TJ_CACHE_DIR) read anew
    def computed(*a, **k):
        raise AssertionError("J was computed")

    monkeypatch.setattr(tj.jacobian, "training_jacobian", computed)
    assert lab.have("jacobian", LECTURE) is None  # a store is not a stored result until the recipe reads it
    assert np.array_equal(lab.results().get("jacobian", LECTURE).jacobian.numpy(), reference)
    assert DiskCache(tmp_path).has(("jacobian", LECTURE))  # then kept in the folder's one format, like any result
    with pytest.raises(AssertionError, match="J was computed"):  # no store of that experiment: computed
        lab.results().get("jacobian", LECTURE.replace(seed=3))
