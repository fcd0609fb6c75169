import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _share_the_cores() -> None:
    """Under xdist each test process, and each server or CLI it starts, gets its share of the cores (TJ_THREADS,
    read when tj loads), unless the user chose a count. Two processes of two threads each on two cores: the
    full suite cost 1,633 CPU-s and 832 s; of one thread each, 1,515 CPU-s and 770 s (2026-12-06)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers and not any(os.environ.get(k, "").strip() for k in ("TJ_THREADS", "OMP_NUM_THREADS")):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        os.environ["TJ_THREADS"] = str(max(1, cores // workers))


_share_the_cores()

import pytest  # noqa: E402
import torch  # noqa: E402
from filelock import FileLock  # noqa: E402

from tj import DataSpec, Experiment, MLPSpec, TrainSpec  # noqa: E402  (installed by requirements.txt)


# The order in which the two test processes take the files (pytest.ini: --dist loadfile --no-loadscope-reorder):
# the longest first, so that neither is left alone at the end. xdist's default, the files with the most tests
# first, queued the one-test paper file (2½ minutes) last and kept a core idle for about 135 s of an 818-s run.
# The precompute stores that test_stored_pages reads are computed by test_precompute, well before it. Files not
# named follow in collection order. Times per file in the full suite on 2026-12-06: 240 s down to 20 s.
LONGEST_FIRST = ("test_paper.py", "test_precompute.py", "test_browser.py", "test_cluster.py", "test_determinism.py",
                 "test_stored_pages.py", "test_traced.py", "test_browser_attention.py", "test_sessions.py",
                 "test_app.py", "test_app_cnn.py", "test_hosting.py", "test_package.py", "test_browser_cnn.py",
                 "test_app_attention.py", "test_cnn.py", "test_bench.py", "test_from_module.py", "test_store_cli.py",
                 "test_jacobian.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own tests keep their order


def tiny(widths=(5,), activation="gelu_tanh", optimizer="sgd", dtype="float64", **train) -> Experiment:
    """A net small enough for dense reference Jacobians: 40 images, batches of 16, 3 epochs."""
    opts = dict(optimizer=optimizer, lr=0.1 if optimizer == "sgd" else 0.01, epochs=3, batch_size=16)
    opts.update(train)
    return Experiment(MLPSpec(tuple(widths), activation), DataSpec(n_train=40), TrainSpec(**opts), seed=1, dtype=dtype)


@pytest.fixture(autouse=True)
def _no_state_left():
    """Every test ends with the thread count it started with, and leaves no server state (the shared result
    cache, the limits and their cache folder) to the next test in its process."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    streamlit = sys.modules.get("streamlit")
    if streamlit is not None:
        streamlit.cache_resource.clear()
        streamlit.cache_data.clear()


def run_cli(*args):
    """`python -m tj ARGS` in a fresh process, as a user runs it, from the checkout's root."""
    return subprocess.run([sys.executable, "-m", "tj", *args], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def tj_cli(capsys):
    """tj_cli(*args) -> (exit code, stdout, stderr) of `python -m tj ARGS`, run in this process: for refusals,
    which need no fresh process (about 2 CPU-s each to import torch again)."""
    from tj.__main__ import main

    def run(*args):
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse's own refusals
            code = exit.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture(scope="session")
def stored(tmp_path_factory, worker_id):
    """stored(exp): a folder holding precompute's store of `exp`, computed once per run and shared by both test
    processes. Tests read it; one that writes works on a copy."""
    root = tmp_path_factory.getbasetemp()
    root = root if worker_id == "master" else root.parent  # under xdist: this run's folder, above every worker's

    def get(exp):
        from tj.precompute import precompute
        folder = root / f"store-{hashlib.sha256(exp.to_json().encode()).hexdigest()[:16]}"
        done = folder.with_suffix(".done")
        with FileLock(folder.with_suffix(".lock")):
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                report = precompute(exp, folder, say=lambda s: None)
                assert not [k for k, v in report.items() if v.startswith("skipped")], report
                done.touch()
        return folder
    return get
