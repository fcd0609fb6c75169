"""Straightforward torch.func paths, independent of the hand-written engine, for tests and the benchmark."""
from __future__ import annotations

import torch
from torch.func import grad, jacfwd, jacrev, jvp, vmap

from .data import load
from .losses import loss_value
from .networks import forward, init_params
from .presets import Experiment
from .train import batch_indices, learning_rates

def loss(spec, theta, x, y, kind: str = "cross_entropy"):
    """The mean training loss through the family's plain forward and autograd (no hand-written backward)."""
    return loss_value(forward(spec, theta, x), y, kind)


def training_function(experiment: Experiment):
    """θ_0 ↦ θ_T as one differentiable function (optimizer state included)."""
    spec, ts = experiment.model, experiment.train
    data = load(experiment.data, experiment.torch_dtype)
    steps = batch_indices(ts, len(data.y_train), experiment.seed)
    lrs = learning_rates(ts, len(steps))
    g = grad(lambda th, x, y: loss(spec, th, x, y, ts.loss))

    def run(theta):
        m = torch.zeros_like(theta)
        v = torch.zeros_like(theta)
        for t, idx in enumerate(steps):
            gr = g(theta, data.x_train[idx], data.y_train[idx])
            if ts.optimizer == "sgd":
                m = ts.momentum * m + gr
                theta = theta - lrs[t] * m
            else:
                m = ts.beta1 * m + (1 - ts.beta1) * gr
                v = ts.beta2 * v + (1 - ts.beta2) * gr * gr
                m_hat = m / (1 - ts.beta1 ** (t + 1))
                v_hat = v / (1 - ts.beta2 ** (t + 1))
                theta = theta - lrs[t] * m_hat / ((v_hat + ts.eps_root).sqrt() + ts.eps)
        return theta

    return run


def reference_columns(experiment: Experiment, columns, theta0=None, chunk: int = 256) -> torch.Tensor:
    """J[:, columns] by vmap(jvp) of the whole training function, in chunks of tangents."""
    theta0 = init_params(experiment.model, experiment.seed, experiment.torch_dtype) if theta0 is None else theta0
    run = training_function(experiment)
    eye = torch.eye(len(theta0), dtype=theta0.dtype)
    push = vmap(lambda v: jvp(run, (theta0,), (v,))[1])
    columns = list(columns)
    parts = [push(eye[columns[i:i + chunk]]) for i in range(0, len(columns), chunk)]
    return torch.cat(parts).T


def jacobian_jacfwd(experiment: Experiment, theta0=None) -> torch.Tensor:
    """The full J by torch.func.jacfwd (small nets only)."""
    theta0 = init_params(experiment.model, experiment.seed, experiment.torch_dtype) if theta0 is None else theta0
    return jacfwd(training_function(experiment))(theta0)


def jacobian_jacrev(experiment: Experiment, theta0=None) -> torch.Tensor:
    """The full J by reverse mode through the whole run (small nets only)."""
    theta0 = init_params(experiment.model, experiment.seed, experiment.torch_dtype) if theta0 is None else theta0
    return jacrev(training_function(experiment))(theta0)
