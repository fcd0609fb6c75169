"""The training Jacobian J = ∂θ_T/∂θ_0 by forward mode: K tangents pushed through every step at once.

The primal run is recorded once; each task of columns then replays it, in pieces of a fixed width, with the
family's hand-written tangent rules (tj/mlp_replay.py, tj/cnn_replay.py) or the general torch.func engine
(tj/general.py), on worker threads that each run single-threaded kernels.
"""
from __future__ import annotations

import functools
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from . import general, heap, threads
from .data import Dataset, load
from .general import Cancelled
from .networks import family, has_fast_replay, init_params
from .networks import replay as replay_of
from .presets import Experiment
from .train import TrainResult, evaluate, train

ENGINES = ("fast", "general")


class Diverged(Exception):
    """Training (or its tangents) produced NaN/Inf."""


class TooBig(ValueError):
    """The dense J would not fit in this machine's memory."""


def physical_memory() -> int:
    """Bytes of memory this machine has."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits(experiment: Experiment, n_columns: int, memory: int | None = None) -> None:
    """TooBig, in one sentence with the GB needed, when J's columns (and the run) would not fit in memory."""
    n, item = experiment.model.n_params, experiment.torch_dtype.itemsize
    need = n * n_columns * item + memory_estimate(experiment)["trajectory"]
    have = memory or physical_memory()
    if need > 0.8 * have:
        raise TooBig(f"J's {n_columns:,} columns of P = {n:,} need {need / 1e9:.1f} GB, more than this machine's "
                     f"{have / 1e9:.1f} GB allow: compute column blocks (columns=(start, stop)) or a store on a "
                     "cluster (python -m tj jacobian --store J.zarr)")


def resolve_engine(experiment: Experiment, engine: str | None = None) -> str:
    """'fast' (the family's hand-written replay) when it has one and no engine is asked for, else 'general'."""
    if engine is None:
        return "fast" if has_fast_replay(experiment.model) else "general"
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    if engine == "fast" and not has_fast_replay(experiment.model):
        raise ValueError(f"a {family(experiment.model)} network has no hand-written replay; use engine='general'")
    return engine


def engine_module(experiment: Experiment, engine: str | None = None):
    """The tangent engine's module: the family's hand-written replay, or the general torch.func one."""
    return general if resolve_engine(experiment, engine) == "general" else replay_of(experiment.model)


def record(experiment: Experiment, theta0: torch.Tensor | None = None, device=None, engine: str | None = None,
           data: Dataset | None = None):
    """Train once (on `data`, else the experiment's) and keep, per step, what the chosen engine's replay needs."""
    return engine_module(experiment, engine).record(experiment, theta0, device, data)


def engine_of(traj) -> str:
    """The engine that recorded a trajectory: 'general' or 'fast'."""
    return traj.engine


def propagate(traj, tangents: torch.Tensor, checkpoints=(), should_stop=None,
              first_slot: int = 0) -> dict[int, torch.Tensor]:
    """Push tangents (K, P) of θ_0 through training; returns {step t: (K, P) tangent of θ_t}, always with T.

    The tangents go through in pieces of the engine's fixed width (`replay_width`), tangent i in slot
    (first_slot + i) mod width and the free slots zero, so every GEMM has the same shape whoever asks. BLAS
    rounds by shape and by a column's slot (the last slots take its edge kernels), so J's column j, always in
    slot j mod width, has the same bits in any task, store block or worker. Run it under threads.limit(1) for
    the same bits whatever the thread count (training_jacobian's workers do)."""
    engine = engine_of(traj)
    width = replay_width(traj.experiment, engine, tangents.device)
    replay = engine_module(traj.experiment, engine).replay
    n, lead = tangents.shape[0], first_slot % width
    padded = torch.zeros(-(-(lead + n) // width) * width, tangents.shape[1], dtype=tangents.dtype,
                         device=tangents.device)
    padded[lead:lead + n] = tangents
    parts = [replay(traj, padded[c:c + width], checkpoints, should_stop) for c in range(0, len(padded), width)]
    return {t: torch.cat([p[t] for p in parts])[lead:lead + n] for t in parts[0]}


@dataclass(frozen=True, eq=False)
class JacobianResult:
    """J = ∂θ_T/∂θ_0 (P, P), or its columns `columns` (start, stop), with the run it belongs to.

    `checkpoints` maps step t → ∂θ_t/∂θ_0 (the same columns)."""

    experiment: Experiment
    jacobian: torch.Tensor
    train: TrainResult
    seconds: float
    checkpoints: dict = field(default_factory=dict)
    columns: tuple[int, int] | None = None
    engine: str = "fast"

    @property
    def theta0(self) -> torch.Tensor:
        return self.train.theta0

    @property
    def theta_final(self) -> torch.Tensor:
        return self.train.theta_final


def basis_rows(n: int, start: int, stop: int, dtype) -> torch.Tensor:
    """Rows start…stop−1 of the n×n identity, without forming it."""
    rows = torch.zeros(stop - start, n, dtype=dtype)
    rows[torch.arange(stop - start), torch.arange(start, stop)] = 1
    return rows


def replay_width(experiment: Experiment, engine: str | None = None, device=None) -> int:
    """Tangent columns per replay, fixed by the experiment, its engine and the device kind (never by threads or
    tasks): the engine module's `width`."""
    on_gpu = device is not None and torch.device(device).type == "cuda"
    return engine_module(experiment, engine).width(experiment, on_gpu)


def training_jacobian(experiment: Experiment, theta0: torch.Tensor | None = None, *, chunk: int | None = None,
                      workers: int | None = None, progress=None, checkpoints=(), device=None,
                      engine: str | None = None, columns: tuple[int, int] | None = None,
                      trajectory=None) -> JacobianResult:
    """J = ∂θ_T/∂θ_0 column task by column task; `progress(done, total)` returning True cancels.

    `engine`: 'fast' (the family's hand-written replay, the MLP's and CNN's default) or 'general' (torch.func,
    any network).
    `columns=(start, stop)` computes only those columns of J (a block for a cluster worker), and
    `trajectory` reuses a recorded run (`record(...)`) across blocks. On a CPU the tasks (`chunk` columns
    each, default the engine's replay width) go to `workers` threads (default: TJ_THREADS), each running
    single-threaded kernels: the bits do not depend on either, and measured here that is about twice as
    fast as one chunk on 2 MKL threads. On CUDA everything runs on the device (not run here).
    """
    start = time.perf_counter()
    device = device or ("cuda" if torch.cuda.is_available() else None)
    engine = resolve_engine(experiment, engine)
    traj = trajectory or record(experiment, theta0, device, engine)
    if not traj.result.ok:
        step, epoch = traj.result.diverged_at
        raise Diverged(f"training diverged (NaN/Inf) at step {step}, epoch {epoch}")
    n_params, dtype = experiment.model.n_params, experiment.torch_dtype
    c_start, c_stop = columns if columns is not None else (0, n_params)
    if not 0 <= c_start < c_stop <= n_params:
        raise ValueError(f"columns must satisfy 0 ≤ start < stop ≤ P = {n_params:,}; got {columns}")
    n_cols = c_stop - c_start
    check_fits(experiment, n_cols * (1 + len(set(checkpoints))))
    width = replay_width(experiment, engine, device)
    chunk = -(-(chunk or width) // width) * width  # tasks on whole pieces: column j stays in slot j mod width
    on_gpu = device is not None and torch.device(device).type == "cuda"
    workers = 1 if on_gpu else (workers or threads.THREADS)
    wanted = sorted(set(checkpoints))
    jac = torch.empty(n_params, n_cols, dtype=dtype)
    saved = {t: torch.empty(n_params, n_cols, dtype=dtype) for t in wanted}
    todo = queue.SimpleQueue()
    for edge in range(c_start - c_start % chunk, c_stop, chunk):
        todo.put((max(edge, c_start), min(edge + chunk, c_stop)))
    finished: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def work():
        try:
            with threads.limit(1), heap.kept():
                while not stop.is_set():
                    try:
                        c0, c1 = todo.get_nowait()
                    except queue.Empty:
                        return
                    cols = propagate(traj, basis_rows(n_params, c0, c1, dtype), wanted, stop.is_set, first_slot=c0)
                    jac[:, c0 - c_start:c1 - c_start] = cols[len(traj.steps)].T
                    for t in wanted:
                        saved[t][:, c0 - c_start:c1 - c_start] = cols[t].T
                    finished.put(c1 - c0)
        except Cancelled:
            pass
        except BaseException as err:  # handed to the caller's thread
            finished.put(err)

    pool = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    done = 0
    try:
        if progress is not None and progress(0, n_cols):
            raise Cancelled("stopped before the first column")
        for th in pool:
            th.start()
        while done < n_cols:
            item = finished.get()
            if isinstance(item, BaseException):
                raise item
            done += item
            if progress is not None and progress(done, n_cols):
                raise Cancelled(f"stopped after {done} of {n_cols} columns")
    finally:
        stop.set()
        for th in pool:
            if th.is_alive():
                th.join()
    if not torch.isfinite(jac).all():
        raise Diverged("the Jacobian has NaN/Inf entries: the tangents blew up; lower the learning rate")
    return JacobianResult(experiment, jac, traj.result, time.perf_counter() - start, saved,
                          columns if columns is not None else None, engine)


def jacobian_vector_product(experiment: Experiment, v, theta0: torch.Tensor | None = None,
                            trajectory=None, engine: str | None = None, workers: int | None = None) -> torch.Tensor:
    """J·v for a direction v (P,), or J·Vᵀ row by row for a stack (K, P), by tangents through training, without
    forming J. v may be a tensor or a numpy array. A stack's pieces of the replay width go to `workers` threads
    (default: TJ_THREADS); the bits depend on neither. J·e_j equals J's column j to rounding (bit for bit when j
    is a multiple of the replay width: the same slot, see propagate)."""
    traj = trajectory or record(experiment, theta0, engine=engine)
    vs = torch.as_tensor(v).to(experiment.torch_dtype)
    rows = vs.reshape(-1, vs.shape[-1])
    width = replay_width(traj.experiment, engine_of(traj), rows.device)

    def piece(c0: int) -> torch.Tensor:
        with threads.limit(1), heap.kept():
            return propagate(traj, rows[c0:c0 + width], first_slot=c0)[len(traj.steps)]
    starts = range(0, len(rows), width)
    with ThreadPoolExecutor(min(workers or threads.THREADS, len(starts))) as pool:
        out = torch.cat(list(pool.map(piece, starts)))
    return out.reshape(vs.shape)


def memory_estimate(experiment: Experiment, chunk: int | None = None, engine: str | None = None) -> dict[str, int]:
    """Bytes each part needs, known before computing: J, the recorded run, tangent buffers, the SVD."""
    n, item = experiment.model.n_params, experiment.torch_dtype.itemsize
    run = engine_module(experiment, engine).memory(experiment, chunk or replay_width(experiment, engine))
    return {"jacobian": n * n * item, **run, "svd": 5 * n * n * 8}  # SVD: float64 J, U, Vᵀ and LAPACK's workspace


def estimate_flops(experiment: Experiment) -> float:
    """Floating-point operations of the fast replay for J (its FLOP model: 2·m·n·k per GEMM or convolution)."""
    return replay_of(experiment.model).flops(experiment)


def block_norms(spec, jac: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """‖(J − I)[block_r, block_c]‖_F for every pair of parameter blocks: J's structure at a glance."""
    from .networks import layout as any_layout

    blocks = any_layout(spec)
    diff = jac.double() - torch.eye(len(jac), dtype=torch.float64)
    norms = torch.tensor([[diff[r.start:r.stop, c.start:c.stop].norm().item() for c in blocks] for r in blocks])
    return [b.name for b in blocks], norms


def identity_distance(jac: torch.Tensor, rows: int = 256) -> tuple[float, float]:
    """How far J is from the identity: ‖J − I‖_F / ‖I‖_F and the largest |J − I| entry (`rows` rows at a time,
    so a server answering many sessions never holds more than a slice of J − I in float64)."""
    n, squares, largest = len(jac), 0.0, 0.0
    for r in range(0, n, rows):
        diff = jac[r:r + rows].double()
        diff.diagonal(offset=r).sub_(1.0)
        squares += float((diff * diff).sum())
        largest = max(largest, float(diff.abs().max()))
    return squares ** 0.5 / n ** 0.5, largest


@dataclass(frozen=True)
class FiniteDifferenceCheck:
    """J·v read off J against central differences of retraining in float64."""

    jv: torch.Tensor
    fd: torch.Tensor
    eps: float
    relative_error: float


def finite_difference_check(experiment: Experiment, jac: torch.Tensor, theta0: torch.Tensor | None = None,
                            seed: int = 0, eps: float = 1e-4) -> FiniteDifferenceCheck:
    """For a random unit v: J·v against (θ_T(θ_0 + εv) − θ_T(θ_0 − εv)) / 2ε, retraining in float64."""
    spec = experiment.model
    data = load(experiment.data, torch.float64)
    theta0 = (init_params(spec, experiment.seed, experiment.torch_dtype) if theta0 is None else theta0).double()
    v = torch.randn(spec.n_params, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    v /= v.norm()
    ends = [train(spec, experiment.train, data, theta0 + sign * eps * v, experiment.seed).theta_final
            for sign in (1, -1)]
    fd = (ends[0] - ends[1]) / (2 * eps)
    jv = jac.double() @ v
    return FiniteDifferenceCheck(jv, fd, eps, ((jv - fd).norm() / fd.norm()).item())


def _cpu_seconds(fn, repeats: int = 2) -> float:
    """The least CPU time of the calling thread over `repeats` calls of fn: the work itself, not the waits.

    Wall time would count every wait for a core or for the GIL: with 8 Python threads busy beside it, a
    lecture probe's wall time grew 4,000× (in CI, one such probe refused a 2-second J as too slow)."""
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return min(times)


def estimate_seconds(experiment: Experiment, workers: int | None = None, engine: str | None = None,
                     fresh: bool = False) -> dict[str, float]:
    """Seconds for training, J and its SVD on this machine when it is free, from a short probe's CPU time.

    The probe (a few steps of the same computation) runs once per process and probe shape, unless `fresh`.
    Training is its steps plus the loss and accuracy on every training and test image before the first epoch
    and after each (tj.train), timed apart: on MNIST those passes are a third of LeNet-5's training."""
    spec, ts = experiment.model, experiment.train
    n, b = spec.n_params, ts.batch_size
    n_steps = ts.epochs * (experiment.data.n_train // b)
    probe_steps = max(1, min(2, experiment.data.n_train // b))
    probe = experiment.replace(**{"data.n_train": b * probe_steps, "train.epochs": 1, "train.shuffle": False})
    engine = resolve_engine(experiment, engine)
    p = (_probe.__wrapped__ if fresh else _probe)(probe, engine)
    workers = workers or threads.THREADS
    n_chunks = -(-n // replay_width(experiment, engine))
    parallel = min(workers, n_chunks) * 0.8 if workers > 1 else 1.0  # measured: 2 workers ≈ 1.3–1.9×
    evaluations = (ts.epochs + 1) * (experiment.data.n_train + p.n_test) * p.per_image
    return {"train": p.per_step_record * n_steps + evaluations,
            "jacobian": n_steps * (p.per_step_record + p.per_step_chunk * n_chunks / parallel) + evaluations,
            "svd": p.svd / threads.THREADS}


@dataclass(frozen=True)
class Probe:
    """CPU seconds on one thread: per image evaluated, per recorded step, per step of one replay chunk, and the
    SVD of a P × P matrix (from 300 × 300 by the cube law); and the test set's size."""

    per_image: float
    per_step_record: float
    per_step_chunk: float
    svd: float
    n_test: int


@functools.lru_cache(maxsize=256)
def _probe(probe: Experiment, engine: str) -> Probe:
    """The probe's measurements, once per process and probe shape (estimate_seconds)."""
    import numpy as np

    spec, b = probe.model, probe.train.batch_size
    n, probe_steps = spec.n_params, probe.data.n_train // b
    data = load(probe.data, probe.torch_dtype)
    steps_only = Dataset(data.x_train, data.y_train, data.x_test[:1], data.y_test[:1])  # the log on one test image
    theta0 = init_params(spec, probe.seed, probe.torch_dtype)
    with threads.limit(1):
        x, y = (data.x_test, data.y_test) if len(data.y_test) else (data.x_train, data.y_train)
        x, y = x[:256], y[:256]
        per_image = _cpu_seconds(lambda: evaluate(spec, theta0, x, y)) / len(y)
    probe_log = 2 * (len(data.y_train) + 1) * per_image
    per_step_record = max(_cpu_seconds(lambda: record(probe, engine=engine, data=steps_only)) - probe_log,
                          0.1 * probe_log) / probe_steps
    traj = record(probe, engine=engine, data=steps_only)
    replay = engine_module(probe, engine).replay
    with threads.limit(1), heap.kept():
        tangents = basis_rows(n, 0, min(replay_width(probe, engine), n), probe.torch_dtype)
        per_step_chunk = _cpu_seconds(lambda: replay(traj, tangents)) / probe_steps
    m = min(n, 300)
    a = torch.from_numpy(np.random.default_rng(0).normal(size=(m, m)))
    with threads.limit(1):  # one thread, so its CPU time is the SVD's whole work
        svd = _cpu_seconds(lambda: torch.linalg.svd(a)) * (n / m) ** 3
    return Probe(per_image, per_step_record, per_step_chunk, svd, len(data.y_test))
