"""The general tangent engine: any network family, by batched Hessian-tangent products from torch.func.

Per step t the K tangents of θ_t are pushed through the update with H_t V̇ computed at the recorded θ_t as
vmap over tangents of the vjp of grad L_t (H_t is symmetric, so this is H_t V̇; the gradient's graph is built
once per step and the K products are batched), traced once per shape (tj.traced: the same bits without
torch.func's dispatch; per 128-tangent step on one thread, medians of 12, 2026-12-07: paper MLP 18.3 → 11.3
ms, cnn preset 45.1 → 29.5 ms; with TJ_COMPILE=1, compiled: 7.7 and 25.2 ms).
The optimizer state's tangents follow the same rules as the MLP's hand-written replay in jacobian.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import grad, jvp, vjp, vmap

from typing import TYPE_CHECKING

from .data import Dataset, load
from .networks import init_params, is_traced, loss, n_activations
from .traced import traced
from .train import TrainResult, train

if TYPE_CHECKING:
    from .presets import Experiment


class Cancelled(Exception):
    """The progress callback asked to stop."""


@dataclass(frozen=True, eq=False)
class Step:
    """θ_t before the update, its batch, η_t and, for Adam, (g, c1, c2) flat."""

    lr: float
    theta: torch.Tensor
    idx: torch.Tensor
    adam: tuple | None = None


@dataclass(frozen=True, eq=False)
class Trajectory:
    """The recorded primal run (θ_t per step) and the data its batches index, for `engine`'s replay."""

    experiment: Experiment
    steps: list
    result: TrainResult
    data: Dataset
    engine: str = "general"

    @property
    def nbytes(self) -> int:
        per = [s.theta.numel() * s.theta.element_size() + sum(a.numel() * a.element_size() for a in s.adam or ())
               for s in self.steps]
        return sum(per)


def adam_coefficients(tspec, opt, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(c1, c2) of Adam's update linearised after a step: θ̇ −= c1 ⊙ ṁ − c2 ⊙ v̇ (bias corrections included)."""
    bc1, bc2 = 1 - tspec.beta1**opt.t, 1 - tspec.beta2**opt.t
    s = (opt.v / bc2 + tspec.eps_root).sqrt()
    return lr / (bc1 * (s + tspec.eps)), lr * (opt.m / bc1) / (2 * s * bc2 * (s + tspec.eps) ** 2)


def record(experiment: Experiment, theta0: torch.Tensor | None = None, device=None,
           data: Dataset | None = None) -> Trajectory:
    """Train once and keep θ_t, the batch and the optimizer coefficients of every step."""
    spec, tspec, dtype = experiment.model, experiment.train, experiment.torch_dtype
    data = load(experiment.data, dtype) if data is None else data
    theta0 = init_params(spec, experiment.seed, dtype) if theta0 is None else theta0.to(dtype)
    dev = (lambda x: x.to(device)) if device is not None else (lambda x: x)
    steps = []

    def keep_step(t, before, g, lr, opt, keep, idx):
        adam = None
        if tspec.optimizer == "adam":
            adam = (dev(g.clone()), *map(dev, adam_coefficients(tspec, opt, lr)))
        steps.append(Step(lr, dev(before), dev(idx), adam))

    result = train(spec, tspec, data, theta0, experiment.seed, record=keep_step)
    on_device = Dataset(dev(data.x_train), dev(data.y_train), data.x_test, data.y_test)
    return Trajectory(experiment, steps, result, on_device)


def memory(experiment: Experiment, k: int, maps: int = 8) -> dict[str, int]:
    """Bytes of the recorded run and of one replay's tangent buffers for k columns, with `maps` activation-sized
    buffers per tangent and image (the vmapped vjp of grad: about 8, the input included)."""
    spec, tspec = experiment.model, experiment.train
    n, item, b = spec.n_params, experiment.torch_dtype.itemsize, tspec.batch_size
    n_steps = tspec.epochs * (experiment.data.n_train // max(b, 1))
    per_step = n + (3 * n if tspec.optimizer == "adam" else 0) + b  # θ_t, Adam's (g, c1, c2), the batch rows
    states = 4 if tspec.optimizer == "adam" else 3
    return {"trajectory": n_steps * per_step * item,
            "tangents": k * (states * n + maps * b * n_activations(spec)) * item}


def width(experiment: Experiment, on_gpu: bool, per_tangent: int | None = None, budget: int | None = None) -> int:
    """Tangent columns per replay: 128 on a CPU (measured: fewer pay torch.func's per-call overhead more often),
    4,096 on a GPU, fewer when `per_tangent` bytes each (default: the vmapped activations, about 8 per image)
    would pass `budget` (default 1 GB, 8 GB on a GPU); then narrowed to split P into pieces of equal width, so
    the last piece is not mostly padding (P = 690: 6 × 115, not 6 × 128)."""
    spec = experiment.model
    if per_tangent is None:
        per_tangent = 8 * experiment.train.batch_size * n_activations(spec) * 8
    if budget is None:
        budget = (8 << 30) if on_gpu else (1 << 30)
    most = max(1, min(4096 if on_gpu else 128, spec.n_params, budget // per_tangent))
    return -(-spec.n_params // -(-spec.n_params // most))  # as few pieces, of equal width


def hessian_tangents(spec, kind: str, mode: str = "vjp"):
    """(θ, V (K, P), x, y) ↦ H(θ) V (K, P) for the batch loss.

    'vjp': vmap over V of the vjp of grad L (H is symmetric), the gradient's graph built once per step;
    'jvp': vmap over V of jvp(grad L). Forward-mode levels are process-global in torch, so 'jvp' is not
    safe in more than one thread at a time; the engine uses 'vjp'."""
    g = grad(lambda th, x, y: loss(spec, th, x, y, kind))

    def hvp_vjp(theta, tangents, x, y):
        _, pullback = vjp(lambda th: g(th, x, y), theta)
        return vmap(pullback)(tangents)[0]

    def hvp_jvp(theta, tangents, x, y):
        return vmap(lambda v: jvp(lambda th: g(th, x, y), (theta,), (v,))[1])(tangents)

    return hvp_vjp if mode == "vjp" else hvp_jvp


def replay(traj: Trajectory, tangents: torch.Tensor, checkpoints=(), should_stop=None,
           products=None) -> dict[int, torch.Tensor]:
    """One chunk of tangents (K, P) through every recorded step; {t: tangent of θ_t (K, P)}, always with T.
    `products(θ, V, x, y)` gives H(θ)·V for the batch (default: the traced torch.func step)."""
    exp = traj.experiment
    tspec = exp.train
    if products is None:
        def products(*args):
            return traced(("hvp", exp.model, tspec.loss), lambda: hessian_tangents(exp.model, tspec.loss), args,
                          True, is_traced(exp.model))(*args)
    dev = traj.steps[0].theta.device if traj.steps else tangents.device
    P = tangents.to(device=dev, dtype=exp.torch_dtype).clone()
    M = torch.zeros_like(P)
    V = torch.zeros_like(P) if tspec.optimizer == "adam" else None
    wanted = set(checkpoints)
    out = {0: P.cpu().clone()} if 0 in wanted else {}
    for t, s in enumerate(traj.steps):
        G = products(s.theta, P, traj.data.x_train[s.idx], traj.data.y_train[s.idx])
        if V is None:
            M.mul_(tspec.momentum).add_(G)
            P.add_(M, alpha=-s.lr)
        else:
            g, c1, c2 = s.adam
            M.mul_(tspec.beta1).add_(G, alpha=1 - tspec.beta1)
            V.mul_(tspec.beta2).addcmul_(g, G, value=2 * (1 - tspec.beta2))
            P.addcmul_(c1, M, value=-1).addcmul_(c2, V)
        if t + 1 in wanted:
            out[t + 1] = P.cpu().clone()
        if should_stop is not None and should_stop():
            raise Cancelled(f"stopped at step {t + 1} of {len(traj.steps)}")
    out[len(traj.steps)] = P.cpu()
    return out
