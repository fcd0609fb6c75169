"""One named parameter tensor inside the flat θ, and a layout built from (name, shape) pairs."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Block:
    """One parameter tensor inside the flat vector θ: θ[start:stop] reshaped to `shape` (row-major)."""

    name: str
    shape: tuple[int, ...]
    start: int
    stop: int


def blocks(shapes) -> tuple[Block, ...]:
    """Consecutive blocks from [(name, shape), …], in order."""
    out, start = [], 0
    for name, shape in shapes:
        stop = start + math.prod(shape)
        out.append(Block(name, tuple(shape), start, stop))
        start = stop
    return tuple(out)


def unflatten(layout: tuple[Block, ...], theta: torch.Tensor) -> list[torch.Tensor]:
    """θ (…, P) → one view (…, *shape) per block; leading dims are kept."""
    lead = theta.shape[:-1]
    # split, not slicing: its backward is one cat instead of a zero-filled P-vector per block
    parts = torch.split(theta, [b.stop - b.start for b in layout], dim=-1)
    return [p.reshape(*lead, *b.shape) for p, b in zip(parts, layout)]


@dataclass(frozen=True)
class FirstLayer:
    """How a network's first layer reads an image of `image` (C, H, W) pixels, for drawing and for the
    directions training cannot move.

    'dense': `weight` (units, C·H·W) multiplies the flat image (one image per unit); 'conv': `weight`
    (out, C, k, k) slides over it with `padding` 'SAME' or 'VALID' (one kernel per channel)."""

    kind: str
    weight: Block
    bias: Block
    image: tuple[int, int, int]
    padding: str = "VALID"
