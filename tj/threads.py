"""Thread settings, made before torch loads: idle OpenMP threads sleep instead of spinning; one thread count.

Spinning threads are fast when a process has the cores to itself and ruinous when it shares them: two
processes each decomposing the paper's J took 8.8× as long as one alone with OpenMP's default wait policy.
So tj asks for the passive policy unless the user chose otherwise, and every thread pool (torch/MKL and
numpy's or scipy's OpenBLAS) uses TJ_THREADS, else OMP_NUM_THREADS, else the cores this process may use.
Importing torch before tj keeps the OpenMP runtime's own defaults: set OMP_WAIT_POLICY yourself then."""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

WAIT = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


def count(environ=None) -> int:
    """Threads to use: TJ_THREADS, else OMP_NUM_THREADS, else the cores this process may run on."""
    environ = os.environ if environ is None else environ
    for key in ("TJ_THREADS", "OMP_NUM_THREADS"):
        text = environ.get(key, "").strip()
        if not text:
            continue
        try:
            n = int(text.split(",")[0])  # OMP_NUM_THREADS may list one count per nesting level
        except ValueError:
            n = 0
        if n >= 1:
            return n
        warnings.warn(f"{key}={text!r} is not a positive whole number of threads; ignoring it", stacklevel=2)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


for _key, _value in WAIT.items():
    os.environ.setdefault(_key, _value)
THREADS = count()
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))  # an OpenBLAS loaded later (scipy's) reads this

import torch  # noqa: E402  (after the settings above: the OpenMP runtime reads them once, when it loads)
from threadpoolctl import threadpool_limits  # noqa: E402

torch.set_num_threads(THREADS)
threadpool_limits(THREADS, user_api="blas")  # an OpenBLAS already loaded (numpy's, by streamlit or the user)


@contextmanager
def limit(n: int):
    """Run the block on n intra-op threads (torch, MKL, oneDNN) in the calling thread, then restore its count.

    tj's results run under limit(1): a GEMM or a convolution splits its sums by thread, so its rounding
    depends on the thread count; one thread per kernel makes θ_T and J the same bits whatever TJ_THREADS is.
    torch's count is per thread, but a thread started later inherits the last count set anywhere, so code
    that wants threads (LAPACK's SVD) asks for them with limit(THREADS) instead of trusting its thread."""
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
