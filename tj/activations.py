"""The activations every family shares: φ by name, and for the MLP's hand-written replay φ' and φ''."""
from __future__ import annotations

import math

import torch

ACTIVATIONS = ("gelu_tanh", "gelu_erf", "relu", "tanh")

_C = math.sqrt(2.0 / math.pi)


def activation(name: str, z: torch.Tensor, derivatives: bool = True):
    """φ(z), φ'(z), φ''(z) for the named activation; just φ(z) when derivatives is False."""
    if not derivatives:
        return VALUE[name](z)
    if name == "gelu_tanh":
        u = _C * (z + 0.044715 * z**3)
        du, d2u = _C * (1 + 3 * 0.044715 * z**2), _C * 6 * 0.044715 * z
        t = torch.tanh(u)
        s = 1 - t * t
        return (0.5 * z * (1 + t), 0.5 * (1 + t) + 0.5 * z * s * du,
                s * du + 0.5 * z * s * (d2u - 2 * t * du * du))
    if name == "gelu_erf":
        cdf = 0.5 * (1 + torch.erf(z * 2**-0.5))
        pdf = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return z * cdf, cdf + z * pdf, pdf * (2 - z * z)
    if name == "relu":
        step = (z > 0).to(z.dtype)
        return z * step, step, torch.zeros_like(z)
    if name == "tanh":
        t = torch.tanh(z)
        s = 1 - t * t
        return t, s, -2 * t * s
    raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")


VALUE = {
    "gelu_tanh": lambda z: torch.nn.functional.gelu(z, approximate="tanh"),
    "gelu_erf": torch.nn.functional.gelu,
    "relu": torch.relu,
    "tanh": torch.tanh,
}


