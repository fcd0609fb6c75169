"""The training Jacobian J = ∂θ_T/∂θ_0 by forward mode: K tangents pushed through every step at once.

The primal run is recorded once; each chunk of K tangent columns then replays it with hand-derived
tangent rules (forward-over-reverse for the gradient, plus the optimizer state's tangents). Layouts:
hidden tangents are (B, K, n) and a layer's parameter tangent is (n_in + 1, K, n_out) with the bias as
the last row, so the big products are single GEMMs with the batch or the input as the short side.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import torch

from . import general, threads
from .data import load
from .general import Cancelled
from .model import MLPSpec, layout
from .networks import family, has_fast_replay, init_params, n_activations
from .presets import Experiment
from .train import TrainResult, train

ENGINES = ("fast", "general")


class Diverged(Exception):
    """Training (or its tangents) produced NaN/Inf."""


@dataclass(frozen=True, eq=False)
class Step:
    """What the tangents of one step need from the primal run."""

    lr: float
    weights: list    # W_i (n_out, n_in)
    inputs: list     # [a_i, 1] (B, n_in + 1): each layer's input with a ones column
    inputs_t: list   # the same transposed and contiguous (n_in + 1, B), so the GEMMs see no transposes
    dphis: list      # φ'(z_i) (B, n) for hidden layers
    curv: list       # φ''(z_i) · ∂L/∂a_{i+1} (B, n) for hidden layers
    grads: list      # ∂L/∂z_i (B, n) for every layer
    grads_t: list    # the same transposed and contiguous (n, B)
    p_over_b: torch.Tensor | None  # softmax / B (B, 10), cross-entropy only
    adam: tuple | None = None      # (g, c1, c2) in parameter-tangent layout, Adam only


@dataclass(frozen=True, eq=False)
class Trajectory:
    """The recorded primal run and its training result."""

    experiment: Experiment
    steps: list
    result: TrainResult

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for s in self.steps for t in _tensors(s))


def _tensors(s: Step):
    yield from s.weights + s.inputs + s.inputs_t + s.dphis + s.curv + s.grads + s.grads_t
    if s.p_over_b is not None:
        yield s.p_over_b
    if s.adam is not None:
        for part in s.adam:
            yield from part


def to_blocks(spec: MLPSpec, flat: torch.Tensor) -> list[torch.Tensor]:
    """(K, P) flat tangents → per layer (n_in + 1, K, n_out) with the bias as the last row."""
    out, s, blocks = [], spec.sizes, layout(spec)
    for i in range(len(s) - 1):
        w, b = blocks[2 * i], blocks[2 * i + 1]
        k = flat.shape[0]
        wt = flat[:, w.start:w.stop].reshape(k, s[i + 1], s[i]).permute(2, 0, 1)
        out.append(torch.cat([wt, flat[None, :, b.start:b.stop]]).contiguous())
    return out


def from_blocks(blocks: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of to_blocks: per-layer (n_in + 1, K, n_out) → (K, P)."""
    parts = []
    for blk in blocks:
        parts += [blk[:-1].permute(1, 2, 0).reshape(blk.shape[1], -1), blk[-1]]
    return torch.cat(parts, dim=1)


def resolve_engine(experiment: Experiment, engine: str | None = None) -> str:
    """'fast' (the MLP's hand-written replay) when the family has one and no engine is asked for, else 'general'."""
    if engine is None:
        return "fast" if has_fast_replay(experiment.model) else "general"
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    if engine == "fast" and not has_fast_replay(experiment.model):
        raise ValueError(f"the fast engine is the MLP's; a {family(experiment.model).upper()} needs engine='general'")
    return engine


def record(experiment: Experiment, theta0: torch.Tensor | None = None, device=None, engine: str | None = None):
    """Train once and keep, per step, what the tangent replay of the chosen engine needs."""
    if resolve_engine(experiment, engine) == "general":
        return general.record(experiment, theta0, device)
    spec, tspec, dtype = experiment.model, experiment.train, experiment.torch_dtype
    data = load(experiment.data, dtype)
    theta0 = init_params(spec, experiment.seed, dtype) if theta0 is None else theta0.to(dtype)
    steps = []
    ones = None

    def keep_step(t, before, grad, lr, opt, keep, idx):
        nonlocal ones
        dev = lambda x: x.to(device) if device is not None else x  # noqa: E731
        ones = ones if ones is not None else torch.ones(len(idx), 1, dtype=dtype)
        weights = [before[b.start:b.stop].reshape(b.shape) for b in layout(spec)[0::2]]
        adam = None
        if tspec.optimizer == "adam":
            c1, c2 = general.adam_coefficients(tspec, opt, lr)
            adam = tuple([dev(x) for x in to_blocks(spec, v[None])] for v in (grad, c1, c2))
        inputs = [torch.cat([a, ones], 1) for a in keep["acts"]]
        steps.append(Step(
            lr=lr,
            weights=[dev(w.clone()) for w in weights],
            inputs=[dev(a) for a in inputs],
            inputs_t=[dev(a.T.contiguous()) for a in inputs],
            dphis=[dev(d) for d in keep["dphis"]],
            curv=[dev(c) for c in keep["curv"]],
            grads=[dev(g) for g in keep["gs"]],
            grads_t=[dev(g.T.contiguous()) for g in keep["gs"]],
            p_over_b=dev(keep["p"] / len(idx)) if keep["p"] is not None else None,
            adam=adam,
        ))

    result = train(spec, tspec, data, theta0, experiment.seed, record=keep_step)
    return Trajectory(experiment, steps, result)


def propagate(traj, tangents: torch.Tensor, checkpoints=(), should_stop=None,
              first_slot: int = 0) -> dict[int, torch.Tensor]:
    """Push tangents (K, P) of θ_0 through training; returns {step t: (K, P) tangent of θ_t}, always with T.

    The tangents go through in pieces of the engine's fixed width (`replay_width`), tangent i in slot
    (first_slot + i) mod width and the free slots zero, so every GEMM has the same shape whoever asks. BLAS
    rounds by shape and by a column's slot (the last slots take its edge kernels), so J's column j, always in
    slot j mod width, has the same bits in any task, store block or worker. Run it under threads.limit(1) for
    the same bits whatever the thread count (training_jacobian's workers do)."""
    engine = "general" if isinstance(traj, general.Trajectory) else "fast"
    width = replay_width(traj.experiment, engine, tangents.device)
    n, lead = tangents.shape[0], first_slot % width
    padded = torch.zeros(-(-(lead + n) // width) * width, tangents.shape[1], dtype=tangents.dtype,
                         device=tangents.device)
    padded[lead:lead + n] = tangents
    replay = general.replay if isinstance(traj, general.Trajectory) else _replay
    parts = [replay(traj, padded[c:c + width], checkpoints, should_stop) for c in range(0, len(padded), width)]
    return {t: torch.cat([p[t] for p in parts])[lead:lead + n] for t in parts[0]}


def _replay(traj: Trajectory, tangents: torch.Tensor, checkpoints=(), should_stop=None) -> dict[int, torch.Tensor]:
    """One chunk of tangents through every recorded step."""
    exp = traj.experiment
    spec, tspec = exp.model, exp.train
    sizes, n_layers = spec.sizes, len(spec.sizes) - 1
    k = tangents.shape[0]
    dev = traj.steps[0].weights[0].device if traj.steps else tangents.device
    dtype = exp.torch_dtype
    P = [b.to(dev) for b in to_blocks(spec, tangents.to(dtype))]
    M = [torch.zeros_like(b) for b in P]
    V = [torch.zeros_like(b) for b in P] if tspec.optimizer == "adam" else None
    G = [torch.empty_like(b) for b in P] if tspec.optimizer == "adam" else M
    nb = traj.steps[0].inputs[0].shape[0] if traj.steps else 1
    zd = [torch.empty(nb, k, n, dtype=dtype, device=dev) for n in sizes[1:]]
    ad = [None] + [torch.empty(nb, k, n, dtype=dtype, device=dev) for n in sizes[1:-1]]
    gd = [torch.empty(nb, k, n, dtype=dtype, device=dev) for n in sizes[1:]]
    # g_i-times-tangent terms, computed in (n_out, K, n_in) order so their GEMMs need no transposes
    tmp_f = [torch.empty(sizes[i + 1], k, sizes[i], dtype=dtype, device=dev) for i in range(n_layers)]
    tmp_d = [torch.empty(sizes[i + 1], k, sizes[i], dtype=dtype, device=dev) for i in range(n_layers)]
    hd = [torch.empty(nb, k, sizes[i], dtype=dtype, device=dev) for i in range(n_layers)]
    mu = tspec.momentum if tspec.optimizer == "sgd" else 0.0
    wanted = set(checkpoints)
    out = {0: tangents.to(dtype).clone()} if 0 in wanted else {}

    for t, s in enumerate(traj.steps):
        # forward: ż_i = [a_i, 1] Ṗ_i + ȧ_i W_iᵀ,  ȧ_{i+1} = φ'(z_i) ⊙ ż_i
        for i in range(n_layers):
            n_in, n_out = sizes[i], sizes[i + 1]
            torch.mm(s.inputs[i], P[i].view(n_in + 1, k * n_out), out=zd[i].view(nb, k * n_out))
            if i > 0:
                zd[i].view(nb * k, n_out).addmm_(ad[i].view(nb * k, n_in), s.weights[i].T)
            if i < n_layers - 1:
                torch.mul(zd[i], s.dphis[i][:, None, :], out=ad[i + 1])
        # the loss: ġ_out = (p ⊙ (ż − ⟨p, ż⟩)) / B for cross-entropy, ż / B for squared error
        last = n_layers - 1
        if s.p_over_b is not None:
            p = s.p_over_b[:, None, :]
            dot = (zd[last] * p).sum(-1, keepdim=True) * nb
            torch.sub(zd[last], dot, out=gd[last]).mul_(p)
        else:
            torch.mul(zd[last], 1.0 / nb, out=gd[last])
        # backward: Ġ_i = [a_i, 1]ᵀ ġ_i + ȧ_iᵀ g_i,  ġ_{i-1} = (ġ_i W_i + g_i Ẇ_i) ⊙ φ' + φ''·h ⊙ ż_{i-1}
        for i in range(last, -1, -1):
            n_in, n_out = sizes[i], sizes[i + 1]
            G[i].view(n_in + 1, k * n_out).addmm_(s.inputs_t[i], gd[i].view(nb, k * n_out),
                                                   beta=mu if G is M else 0.0)
            if i > 0:
                torch.mm(s.grads_t[i], ad[i].view(nb, k * n_in), out=tmp_f[i].view(n_out, k * n_in))
                G[i][:n_in].add_(tmp_f[i].permute(2, 1, 0))
                torch.mm(gd[i].view(nb * k, n_out), s.weights[i], out=hd[i].view(nb * k, n_in))
                tmp_d[i].copy_(P[i][:n_in].permute(2, 1, 0))
                hd[i].view(nb, k * n_in).addmm_(s.grads[i], tmp_d[i].view(n_out, k * n_in))
                torch.mul(hd[i], s.dphis[i - 1][:, None, :], out=gd[i - 1])
                gd[i - 1].addcmul_(zd[i - 1], s.curv[i - 1][:, None, :])
            if V is None:
                P[i].add_(M[i], alpha=-s.lr)
            else:
                g, c1, c2 = (part[i] for part in s.adam)
                M[i].mul_(tspec.beta1).add_(G[i], alpha=1 - tspec.beta1)
                V[i].mul_(tspec.beta2).addcmul_(g, G[i], value=2 * (1 - tspec.beta2))
                P[i].addcmul_(c1, M[i], value=-1).addcmul_(c2, V[i])
        if t + 1 in wanted:
            out[t + 1] = from_blocks(P).cpu()
        if should_stop is not None and should_stop():
            raise Cancelled(f"stopped at step {t + 1} of {len(traj.steps)}")
    out[len(traj.steps)] = from_blocks(P).cpu()
    return out


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
    """Tangent columns per replay, fixed by the experiment and the device kind (never by threads or tasks).

    Fast engine: all of them on a GPU, on a CPU 64 (few enough to stay in cache). General engine: 128 on a CPU
    (measured: fewer pay torch.func's per-call overhead more often), 4,096 on a GPU, fewer when the vmapped
    activations of that many tangents would pass 1 GB (8 GB on a GPU)."""
    spec = experiment.model
    on_gpu = device is not None and torch.device(device).type == "cuda"
    if resolve_engine(experiment, engine) == "general":
        per_tangent = 8 * experiment.train.batch_size * n_activations(spec) * 8
        budget = (8 << 30) if on_gpu else (1 << 30)
        return max(1, min(4096 if on_gpu else 128, spec.n_params, budget // per_tangent))
    return spec.n_params if on_gpu else max(8, min(64, spec.n_params))


def training_jacobian(experiment: Experiment, theta0: torch.Tensor | None = None, *, chunk: int | None = None,
                      workers: int | None = None, progress=None, checkpoints=(), device=None,
                      engine: str | None = None, columns: tuple[int, int] | None = None,
                      trajectory=None) -> JacobianResult:
    """J = ∂θ_T/∂θ_0 column task by column task; `progress(done, total)` returning True cancels.

    `engine`: 'fast' (the MLP's hand-written replay, its default) or 'general' (torch.func, any network).
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
            with threads.limit(1):
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
                            trajectory=None, engine: str | None = None) -> torch.Tensor:
    """J·v for a direction v (P,), or J·Vᵀ row by row for a stack (K, P), by tangents through training, without
    forming J. v may be a tensor or a numpy array. Its bits do not depend on threads; J·e_j equals J's column j
    to rounding (bit for bit when j is a multiple of the replay width: the same slot, see propagate)."""
    traj = trajectory or record(experiment, theta0, engine=engine)
    vs = torch.as_tensor(v).to(experiment.torch_dtype)
    with threads.limit(1):
        out = propagate(traj, vs.reshape(-1, vs.shape[-1]))[len(traj.steps)]
    return out.reshape(vs.shape)


def memory_estimate(experiment: Experiment, chunk: int | None = None, engine: str | None = None) -> dict[str, int]:
    """Bytes each part needs, known before computing: J, the recorded run, tangent buffers, the SVD."""
    spec, tspec = experiment.model, experiment.train
    n, item = spec.n_params, experiment.torch_dtype.itemsize
    k = chunk or replay_width(experiment, engine)
    b = tspec.batch_size
    n_steps = tspec.epochs * (experiment.data.n_train // max(b, 1))
    if resolve_engine(experiment, engine) == "general":
        per_step = n + (3 * n if tspec.optimizer == "adam" else 0) + b  # θ_t, Adam's (g, c1, c2), the batch rows
        states = 4 if tspec.optimizer == "adam" else 3
        # vmapped vjp of grad: about 8 activation-sized buffers per tangent and image, the input included
        tangent = k * (states * n + 8 * b * n_activations(spec)) * item
        return {"jacobian": n * n * item, "trajectory": n_steps * per_step * item, "tangents": tangent,
                "svd": 5 * n * n * 8}
    hidden = sum(spec.widths)
    per_step = n + b * (sum(spec.sizes[:-1]) + len(spec.sizes) - 1 + 3 * hidden + 2 * hidden + 2 * 10)
    if tspec.optimizer == "adam":
        per_step += 3 * n
    states = 4 if tspec.optimizer == "adam" else 2
    tangent = k * (states * n + b * (6 * hidden + 3 * 10) + n) * item
    return {
        "jacobian": n * n * item,
        "trajectory": n_steps * per_step * item,
        "tangents": tangent,
        "svd": 5 * n * n * 8,  # float64 copy of J, U, Vᵀ and LAPACK's workspace
    }


def estimate_flops(experiment: Experiment) -> float:
    """Floating-point operations for J: 2·m·n·k per GEMM of the tangent replay, summed over steps and columns."""
    spec, tspec = experiment.model, experiment.train
    s, b = spec.sizes, tspec.batch_size
    n_steps = tspec.epochs * (experiment.data.n_train // b)
    per = 0
    for i in range(len(s) - 1):
        per += 2 * b * (s[i] + 1) * s[i + 1] * 2  # forward ż and the parameter-gradient tangent
        if i > 0:
            per += 2 * b * s[i] * s[i + 1] * 4    # ȧW, ȧᵀg, ġW, gẆ
    return float(per) * n_steps * spec.n_params


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


def estimate_seconds(experiment: Experiment, workers: int | None = None, engine: str | None = None) -> dict[str, float]:
    """Seconds for training, J and its SVD on this machine, extrapolated from a short timed probe."""
    import numpy as np

    spec, ts = experiment.model, experiment.train
    n, b = spec.n_params, ts.batch_size
    n_steps = ts.epochs * (experiment.data.n_train // b)
    probe_steps = max(1, min(4, experiment.data.n_train // b))
    probe = experiment.replace(**{"data.n_train": b * probe_steps, "train.epochs": 1, "train.shuffle": False})
    engine = resolve_engine(experiment, engine)
    record(probe, engine=engine)  # warm-up
    start = time.perf_counter()
    traj = record(probe, engine=engine)
    per_step_record = (time.perf_counter() - start) / probe_steps
    chunk = replay_width(experiment, engine)
    replay = general.replay if engine == "general" else _replay
    with threads.limit(1):
        tangents = basis_rows(n, 0, min(chunk, n), probe.torch_dtype)
        replay(traj, tangents)  # warm-up
        start = time.perf_counter()
        replay(traj, tangents)
        per_step_chunk = (time.perf_counter() - start) / probe_steps
    workers = workers or threads.THREADS
    n_chunks = -(-n // chunk)
    parallel = min(workers, n_chunks) * 0.8 if workers > 1 else 1.0  # measured: 2 workers ≈ 1.3–1.9×
    m = min(n, 300)
    a = np.random.default_rng(0).normal(size=(m, m))
    torch.linalg.svd(torch.from_numpy(a))  # warm-up
    start = time.perf_counter()
    torch.linalg.svd(torch.from_numpy(a))
    svd = (time.perf_counter() - start) * (n / m) ** 3
    return {"train": per_step_record * n_steps,
            "jacobian": n_steps * (per_step_record + per_step_chunk * n_chunks / parallel),
            "svd": svd}
