"""Thread settings: made before torch loads, respected from TJ_THREADS and OMP_NUM_THREADS, and they take."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, os, warnings
warnings.simplefilter("always")
import tj, torch
from threadpoolctl import threadpool_info
threads = torch.get_num_threads()
blas = sorted({d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"})
print(json.dumps(dict(wait=os.environ.get("OMP_WAIT_POLICY"), blocktime=os.environ.get("KMP_BLOCKTIME"),
                      threads=threads, blas=blas)))
"""


def probe(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("TJ_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                              "KMP_BLOCKTIME", "OPENBLAS_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT,
                         env={**clean, **env, "PYTHONPATH": str(ROOT), "OMP_DISPLAY_ENV": "TRUE"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1]), out.stderr


def test_importing_tj_makes_idle_openmp_threads_sleep_unless_the_user_chose():
    # OMP_DISPLAY_ENV makes the OpenMP runtime print the policy it actually read when torch loaded it
    mine, runtime = probe()
    assert (mine["wait"], mine["blocktime"]) == ("PASSIVE", "0")
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in runtime
    spinning, runtime = probe(OMP_WAIT_POLICY="ACTIVE")
    assert spinning["wait"] == "ACTIVE" and "OMP_WAIT_POLICY = 'ACTIVE'" in runtime  # the user's choice is kept


def test_thread_count_from_tj_threads_then_omp_num_threads():
    assert probe(TJ_THREADS="1")[0]["threads"] == 1
    assert probe(OMP_NUM_THREADS="1")[0]["threads"] == 1
    both, _ = probe(TJ_THREADS="3", OMP_NUM_THREADS="1")
    assert both["threads"] == 3 and both["blas"] == [3]   # TJ_THREADS wins, and reaches OpenBLAS too
    assert probe(OMP_NUM_THREADS="1,1")[0]["threads"] == 1  # nested-level lists: the first level


def test_a_bad_thread_count_is_one_sentence_and_ignored():
    got, err = probe(TJ_THREADS="many", OMP_NUM_THREADS="1")
    assert got["threads"] == 1
    assert "TJ_THREADS='many' is not a positive whole number of threads; ignoring it" in err
    assert "Traceback" not in err


def test_limit_sets_and_restores_this_threads_count_and_leaks_nothing():
    from tj import threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads.limit(1):
            assert torch.get_num_threads() == 1
            with threads.limit(3):
                assert torch.get_num_threads() == 3
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), threads.limit(1):
            raise RuntimeError("restored on the way out, too")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
