"""The training run: a pure loop over the flat θ with SGD (+ heavy-ball momentum) or Adam."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import threads
from .data import Dataset
from .networks import forward, loss_and_grad

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainSpec:
    """Optimizer, schedule and batching. Momentum is SGD's heavy ball (m ← g + μm; θ ← θ − ηm)."""

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    schedule: str = "cosine"
    epochs: int = 25
    batch_size: int = 64
    shuffle: bool = False
    loss: str = "cross_entropy"
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    eps_root: float = 1e-8


def learning_rates(spec: TrainSpec, n_steps: int) -> list[float]:
    """η_t for t = 0…T−1: constant, or cosine decay to 0 over T steps (optax's cosine_decay_schedule)."""
    if spec.schedule == "constant":
        return [spec.lr] * n_steps
    if spec.schedule == "cosine":
        return [0.5 * spec.lr * (1 + math.cos(math.pi * t / n_steps)) for t in range(n_steps)]
    raise ValueError(f"unknown schedule {spec.schedule!r}; choose one of {SCHEDULES}")


def batch_indices(spec: TrainSpec, n_train: int, seed: int) -> torch.Tensor:
    """(T, B) row indices of every step, drawn before training; a partial last batch is dropped."""
    per_epoch = n_train // spec.batch_size
    if per_epoch == 0:
        raise ValueError(f"batch size {spec.batch_size} is larger than the {n_train} training images")
    g = torch.Generator().manual_seed(int(seed) + 1_000_003)
    orders = [torch.randperm(n_train, generator=g) if spec.shuffle else torch.arange(n_train)
              for _ in range(spec.epochs)]
    used = per_epoch * spec.batch_size
    return torch.stack([o[:used].reshape(per_epoch, spec.batch_size) for o in orders]).reshape(-1, spec.batch_size)


@dataclass(frozen=True, eq=False)
class Metrics:
    """Loss and accuracy per epoch (index 0 is before training)."""

    train_loss: tuple[float, ...]
    test_loss: tuple[float, ...]
    train_acc: tuple[float, ...]
    test_acc: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class TrainResult:
    """θ_T, the per-epoch metrics, and where training diverged (None when it did not)."""

    theta0: torch.Tensor
    theta_final: torch.Tensor
    metrics: Metrics
    diverged_at: tuple[int, int] | None = None  # (step, epoch), both 0-based

    @property
    def ok(self) -> bool:
        return self.diverged_at is None


def evaluate(model, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of θ on (x, y)."""
    logits = forward(model, theta, x)
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    return loss, (logits.argmax(1) == y).double().mean().item()


class Optimizer:
    """The optimizer's state and update; `step` changes θ in place and returns nothing."""

    def __init__(self, spec: TrainSpec, theta: torch.Tensor):
        self.spec, self.t = spec, 0
        self.m = torch.zeros_like(theta)
        self.v = torch.zeros_like(theta) if spec.optimizer == "adam" else None
        if spec.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {spec.optimizer!r}; choose one of {OPTIMIZERS}")

    def step(self, theta: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        s, self.t = self.spec, self.t + 1
        if s.optimizer == "sgd":
            self.m.mul_(s.momentum).add_(grad)
            theta.sub_(self.m, alpha=lr)
        else:
            self.m.mul_(s.beta1).add_(grad, alpha=1 - s.beta1)
            self.v.mul_(s.beta2).addcmul_(grad, grad, value=1 - s.beta2)
            m_hat = self.m / (1 - s.beta1**self.t)
            v_hat = self.v / (1 - s.beta2**self.t)
            theta.sub_(lr * m_hat / ((v_hat + s.eps_root).sqrt() + s.eps))


def train(model, spec: TrainSpec, data: Dataset, theta0: torch.Tensor, seed: int = 0,
          record=None, basis: torch.Tensor | None = None) -> TrainResult:
    """Train from θ_0; `record(step, θ_t, grad, lr, optimizer, keep, idx)` sees every step after its update.

    With `basis` B (k, P) training is restricted to θ = θ_0 + Bᵀc: the optimizer moves c, starting at 0.
    Every kernel runs on one thread, so θ_T has the same bits whatever the thread count (threads.limit)."""
    with threads.limit(1):
        return _train(model, spec, data, theta0, seed, record, basis)


def _train(model, spec, data, theta0, seed, record, basis) -> TrainResult:
    steps = batch_indices(spec, len(data.y_train), seed)
    lrs = learning_rates(spec, len(steps))
    per_epoch = len(steps) // spec.epochs
    theta = theta0.clone()
    params = theta if basis is None else torch.zeros(len(basis), dtype=theta0.dtype)
    opt = Optimizer(spec, params)
    history = [[], [], [], []]

    def log(th):
        values = evaluate(model, th, data.x_train, data.y_train) + evaluate(model, th, data.x_test, data.y_test)
        for h, v in zip(history, values):
            h.append(v)

    log(theta)
    diverged = None
    for t, idx in enumerate(steps):
        keep = {} if record is not None else None
        loss, grad = loss_and_grad(model, theta, data.x_train[idx], data.y_train[idx], spec.loss, keep)
        before = theta.clone() if record is not None else None
        if basis is None:
            opt.step(theta, grad, lrs[t])
        else:
            opt.step(params, basis @ grad, lrs[t])
            theta = torch.addmv(theta0, basis.T, params)
        if record is not None:
            record(t, before, grad, lrs[t], opt, keep, idx)
        if not (math.isfinite(loss.item()) and torch.isfinite(theta).all()):
            diverged = (t, t // per_epoch)
            break
        if (t + 1) % per_epoch == 0:
            log(theta)
    train_loss, train_acc, test_loss, test_acc = map(tuple, history)
    metrics = Metrics(train_loss, test_loss, train_acc, test_acc)
    return TrainResult(theta0, theta, metrics, diverged)
