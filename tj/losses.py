"""The training losses on logits, shared by every network family's autograd path."""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("cross_entropy", "mse")


def loss_value(z: torch.Tensor, y: torch.Tensor, kind: str = "cross_entropy") -> torch.Tensor:
    """Mean cross-entropy, or half the mean squared error to one-hot targets."""
    if kind == "cross_entropy":
        return F.cross_entropy(z, y)
    if kind == "mse":
        return 0.5 * ((z - F.one_hot(y, z.shape[-1]).to(z.dtype)) ** 2).sum() / len(y)
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
