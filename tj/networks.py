"""Network families behind one interface: engine, pages and validation ask here, never a family directly."""
from __future__ import annotations

import torch
from torch.func import grad_and_value

from . import cnn, model
from .cnn import CNNSpec
from .losses import loss_value

FAMILIES = ("mlp", "cnn")


def family(spec) -> str:
    """'mlp' or 'cnn'."""
    return "cnn" if isinstance(spec, CNNSpec) else "mlp"


def _module(spec):
    return cnn if isinstance(spec, CNNSpec) else model


def layout(spec):
    """The named blocks of the flat θ, in order."""
    return _module(spec).layout(spec)


def init_params(spec, seed: int, dtype=torch.float32) -> torch.Tensor:
    """A seeded θ_0 for the spec."""
    return _module(spec).init_params(spec, seed, dtype)


def forward(spec, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits (…, B, 10) for flat inputs x (B, n_inputs) and θ (P,) or a stack (…, P)."""
    return _module(spec).forward(spec, theta, x)


def n_inputs(spec) -> int:
    """Input pixels per image the network reads."""
    return spec.sizes[0] if family(spec) == "mlp" else spec.maps[0][0] * spec.maps[0][1] * spec.maps[0][2]


def n_activations(spec) -> int:
    """Values one image creates in a forward pass (input, every layer's pre- and post-activation, pooled maps)."""
    if family(spec) == "mlp":
        return spec.sizes[0] + 2 * sum(spec.sizes[1:])
    total, maps = n_inputs(spec), spec.maps
    for c, (ch, h, w) in zip(spec.convs, maps[1:]):
        total += 2 * ch * h * w * c.pool * c.pool + ch * h * w
    return total + 2 * sum(spec.sizes[1:])


def loss(spec, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, kind: str = "cross_entropy") -> torch.Tensor:
    """The mean training loss as a plain differentiable function of θ (torch.func transforms it)."""
    return loss_value(forward(spec, theta, x), y, kind)


def loss_and_grad(spec, theta, x, y, kind: str = "cross_entropy", keep: dict | None = None):
    """Mean loss and its gradient (P,): the MLP's hand-written backward, autograd for other families."""
    if family(spec) == "mlp":
        return model.loss_and_grad(spec, theta, x, y, kind, keep)
    g, value = grad_and_value(lambda th: loss(spec, th, x, y, kind))(theta)
    return value.detach(), g.detach()


def has_fast_replay(spec) -> bool:
    """Whether the family has a hand-written tangent replay (else the general torch.func engine runs)."""
    return family(spec) == "mlp"
