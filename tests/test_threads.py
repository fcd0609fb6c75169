"""Thread settings: made before torch loads, respected from TJ_THREADS and OMP_NUM_THREADS, and they take."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, os, time, warnings
warnings.simplefilter("always")
import tj, torch
from threadpoolctl import threadpool_info
threads = torch.get_num_threads()
torch.set_num_threads(max(2, torch.get_num_threads()))  # a parallel region with a second thread
a = torch.randn(600, 600)
for _ in range(20):
    a @ a
start = time.process_time()
time.sleep(0.5)   # the second OpenMP thread is idle now: does it sleep or spin?
idle = time.process_time() - start
blas = sorted({d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"})
print(json.dumps(dict(wait=os.environ.get("OMP_WAIT_POLICY"), blocktime=os.environ.get("KMP_BLOCKTIME"),
                      threads=threads, blas=blas, idle=idle)))
"""


def probe(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("TJ_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                              "KMP_BLOCKTIME", "OPENBLAS_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1]), out.stderr


def test_importing_tj_makes_idle_openmp_threads_sleep_unless_the_user_chose():
    mine, _ = probe()
    assert (mine["wait"], mine["blocktime"]) == ("PASSIVE", "0")
    spinning, _ = probe(OMP_WAIT_POLICY="ACTIVE")
    assert spinning["wait"] == "ACTIVE"        # the user's choice is kept
    assert spinning["idle"] > 0.1              # the probe can see a spinning thread burn CPU while it waits …
    assert mine["idle"] < 0.05                 # … and with tj's default the idle thread costs nothing


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
