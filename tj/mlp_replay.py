"""The MLP's fast tangent replay: the primal run recorded once, then K tangent columns pushed through every step.

Each chunk of K columns replays the run with hand-derived tangent rules (forward-over-reverse for the
gradient, plus the optimizer state's tangents). Layouts: hidden tangents are (B, K, n) and a layer's parameter
tangent is (n_in + 1, K, n_out) with the bias as the last row, so the big products are single GEMMs with the
batch or the input as the short side. tj/jacobian.py drives it (tasks, threads, slots).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from . import general
from .data import Dataset, load
from .mlp import MLPSpec, init_params, layout
from .train import TrainResult, train

if TYPE_CHECKING:
    from .presets import Experiment


# ȧ_i W_iᵀ for a layer narrower than this is computed as (n_out, B·K) and added transposed: one thread's MKL runs
# that GEMM 10 rows tall about twice as fast as 10 columns wide (B·K = 4,096, n_in = 64: 225 → 121 µs with the
# add; 16 wide and more, slower)
NARROW = 16


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

    engine = "fast"

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


def record(experiment: Experiment, theta0: torch.Tensor | None = None, device=None,
           data: Dataset | None = None) -> Trajectory:
    """Train once and keep, per step, what the tangent replay needs."""
    spec, tspec, dtype = experiment.model, experiment.train, experiment.torch_dtype
    data = load(experiment.data, dtype) if data is None else data
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


def replay(traj: Trajectory, tangents: torch.Tensor, checkpoints=(), should_stop=None) -> dict[int, torch.Tensor]:
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
    narrow = [i > 0 and sizes[i + 1] < NARROW for i in range(n_layers)]
    zt = [torch.empty(sizes[i + 1], nb * k, dtype=dtype, device=dev) if narrow[i] else None for i in range(n_layers)]
    mu = tspec.momentum if tspec.optimizer == "sgd" else 0.0
    wanted = set(checkpoints)
    out = {0: tangents.to(dtype).clone()} if 0 in wanted else {}

    for t, s in enumerate(traj.steps):
        # forward: ż_i = [a_i, 1] Ṗ_i + ȧ_i W_iᵀ,  ȧ_{i+1} = φ'(z_i) ⊙ ż_i
        for i in range(n_layers):
            n_in, n_out = sizes[i], sizes[i + 1]
            torch.mm(s.inputs[i], P[i].view(n_in + 1, k * n_out), out=zd[i].view(nb, k * n_out))
            if narrow[i]:
                torch.mm(s.weights[i], ad[i].view(nb * k, n_in).T, out=zt[i])
                zd[i].view(nb * k, n_out).add_(zt[i].T)
            elif i > 0:
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
            raise general.Cancelled(f"stopped at step {t + 1} of {len(traj.steps)}")
    out[len(traj.steps)] = from_blocks(P).cpu()
    return out


def width(experiment: Experiment, on_gpu: bool) -> int:
    """Tangent columns per replay: all of them on a GPU, on a CPU 64 (few enough to stay in cache)."""
    n = experiment.model.n_params
    return n if on_gpu else max(8, min(64, n))


def memory(experiment: Experiment, k: int) -> dict[str, int]:
    """Bytes of the recorded run and of one replay's tangent buffers for k columns."""
    spec, tspec = experiment.model, experiment.train
    n, item, b = spec.n_params, experiment.torch_dtype.itemsize, tspec.batch_size
    n_steps = tspec.epochs * (experiment.data.n_train // max(b, 1))
    hidden = sum(spec.widths)
    per_step = n + b * (sum(spec.sizes[:-1]) + len(spec.sizes) - 1 + 3 * hidden + 2 * hidden + 2 * 10)
    if tspec.optimizer == "adam":
        per_step += 3 * n
    states = 4 if tspec.optimizer == "adam" else 2
    narrow = sum(w for w in spec.sizes[2:] if w < NARROW)  # replay's transposed ȧ·Wᵀ buffers
    return {"trajectory": n_steps * per_step * item,
            "tangents": k * (states * n + b * (6 * hidden + 3 * 10 + narrow) + n) * item}


def flops(experiment: Experiment) -> float:
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
