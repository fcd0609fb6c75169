"""J's column blocks on a Dask cluster: one task per block, written into a store by the worker itself.

Each worker process records the training run once (deterministic: same config, same bits) and keeps it;
a task replays the tangents of its block with the single-threaded engine, writes the block and its
checksum into the store, and returns only metadata. Finished blocks survive interruptions and lost
workers; rerunning computes only what is missing or corrupt.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from . import live
from .jacobian import Diverged, basis_rows, propagate, record, replay_width, resolve_engine
from .jstore import JStore, config_hash, create_or_open, open_store
from .presets import Experiment

SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
_RUNS: dict = {}  # per worker process: config hash → recorded run (the latest one only)


class Interrupted(Exception):
    """Stopped by the user (Ctrl-C); finished blocks are kept."""


@dataclass(frozen=True)
class RunReport:
    """What one `compute` call did."""

    path: str
    n_blocks: int
    computed: int      # blocks computed by this call
    corrupt: int       # of which found corrupt on disk
    already: int       # blocks that were complete and verified before
    seconds: float
    workers: int
    blocks: tuple      # per computed block: the metadata its task returned


def _single_threaded():
    for k, v in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(k, v)
    torch.set_num_threads(1)


def _trajectory(experiment: Experiment, engine: str):
    """The recorded run of this experiment, recorded on this process's first block only; (run, recorded now)."""
    key = (config_hash(experiment), engine)
    fresh = key not in _RUNS
    if fresh:
        _RUNS.clear()
        traj = record(experiment, engine=engine)
        if not traj.result.ok:
            step, epoch = traj.result.diverged_at
            raise Diverged(f"training diverged (NaN/Inf) at step {step}, epoch {epoch}")
        _RUNS[key] = traj
    return _RUNS[key], fresh


def block_task(path: str, i: int, payload: dict | None = None) -> dict:
    """Compute column block i of the store at `path` and write it there; returns metadata only. `payload`:
    the objects the config names but cannot hold (a user's module and arrays; tj.live)."""
    _single_threaded()
    live.install(payload)
    start = time.perf_counter()
    store = open_store(path)
    exp = store.experiment
    traj, fresh = _trajectory(exp, store.engine)
    recorded = time.perf_counter()
    c0, c1 = store.columns(i)
    cols = propagate(traj, basis_rows(store.n_params, c0, c1, exp.torch_dtype), first_slot=c0)[len(traj.steps)]
    block = np.ascontiguousarray(cols.T.numpy())
    if not np.isfinite(block).all():
        raise Diverged(f"block {i} has NaN/Inf entries: the tangents blew up; lower the learning rate")
    digest = store.write_block(i, block)
    return dict(block=i, columns=(c0, c1), seconds=time.perf_counter() - recorded, record_seconds=recorded - start, recorded=fresh,
                checksum=digest.hex(), pid=os.getpid(), torch_threads=torch.get_num_threads(),
                omp_threads=os.environ.get("OMP_NUM_THREADS"))


@contextmanager
def client_for(workers: int | None = None, scheduler: str | None = None):
    """A dask Client: on an existing scheduler, or on an embedded LocalCluster of single-threaded workers."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as err:
            raise ConnectionError(f"cannot reach the scheduler at {scheduler} ({err})") from None
        with client:
            yield client
        return
    workers = workers or len(os.sched_getaffinity(0))
    # silence_logs: a task's error reaches the caller through its future; what the workers log as they shut down
    # after Ctrl-C (heartbeats to a closed scheduler, with tracebacks) is noise on the user's terminal.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env=SINGLE_THREAD_ENV, silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        yield client


def compute(experiment: Experiment, path: str, *, block: int | None = None, workers: int | None = None,
            scheduler: str | None = None, engine: str | None = None, progress=None, client=None) -> RunReport:
    """Fill the store at `path` with J's missing (or corrupt) column blocks; `progress(done, total, cols_done,
    cols_total)` is called as blocks finish. Ctrl-C cancels the pending tasks and raises Interrupted."""
    start = time.perf_counter()
    engine = resolve_engine(experiment, engine)
    store = create_or_open(path, experiment, block, replay_width(experiment, engine), engine)
    todo, corrupt = store.missing()
    already = store.n_blocks - len(todo)
    if not todo:
        return RunReport(store.path, store.n_blocks, 0, 0, already, time.perf_counter() - start, 0, ())
    if client is None:
        with client_for(workers, scheduler) as c:
            return _run(store, todo, corrupt, already, c, progress, start)
    return _run(store, todo, corrupt, already, client, progress, start)


def _run(store: JStore, todo, corrupt, already, client, progress, start) -> RunReport:
    from distributed import as_completed

    n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
    cols_total = sum(c1 - c0 for c0, c1 in map(store.columns, todo))
    payload = live.export(store.experiment)
    if payload:
        [payload] = client.scatter([payload], broadcast=True)
    futures = [client.submit(block_task, store.path, i, payload, key=f"tj-block-{i}-{os.urandom(4).hex()}",
                             pure=False) for i in todo]
    done, cols_done, metas = 0, 0, []
    if progress is not None:
        progress(0, len(todo), 0, cols_total)
    try:
        for fut in as_completed(futures):
            meta = fut.result()
            metas.append(meta)
            done += 1
            cols_done += meta["columns"][1] - meta["columns"][0]
            if progress is not None:
                progress(done, len(todo), cols_done, cols_total)
    except KeyboardInterrupt:
        client.cancel(futures)
        finished = int(store.complete().sum())
        raise Interrupted(f"stopped: {finished} of {store.n_blocks} blocks are complete and kept in {store.path}; "
                          f"rerun the same command to compute the rest") from None
    except BaseException as err:
        client.cancel(futures)
        if "deserializ" in str(err) or isinstance(err, ModuleNotFoundError):
            raise RuntimeError("the scheduler or a worker cannot load tj's tasks: start `dask scheduler` and "
                               "`dask worker` with this repository on PYTHONPATH and the same requirements.txt "
                               f"({' '.join(str(err).split()[:8])} …)") from None
        raise
    return RunReport(store.path, store.n_blocks, len(todo), len(corrupt), already, time.perf_counter() - start,
                     n_workers, tuple(sorted(metas, key=lambda m: m["block"])))
