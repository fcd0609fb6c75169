"""A convolutional network on a flat θ: spec, layout, Flax-default init and forward (autograd does the rest)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model import _VALUE, ACTIVATIONS, N_CLASSES, Block

PADDINGS = ("SAME", "VALID")
POOLINGS = ("avg", "max")
CNN_INITS = ("paper", "torch")  # "paper": what the authors ran, Flax's defaults


@dataclass(frozen=True)
class Conv:
    """One convolution: `channels` output maps, a square `kernel`, SAME or VALID padding, then pooling by `pool`."""

    channels: int
    kernel: int
    padding: str = "SAME"
    pool: int = 1  # window = stride of the pooling after the activation; 1 = no pooling


@dataclass(frozen=True)
class CNNSpec:
    """image (C, H, W) → [conv → activation → pool]… → flatten → dense widths… → 10."""

    convs: tuple[Conv, ...] = (Conv(4, 3, "SAME", 2),)
    dense: tuple[int, ...] = ()
    image: tuple[int, int, int] = (1, 8, 8)
    pooling: str = "avg"
    activation: str = "relu"
    init: str = "paper"

    @property
    def family(self) -> str:
        return "cnn"

    @property
    def maps(self) -> tuple[tuple[int, int, int], ...]:
        """The (channels, height, width) after each conv stage, the input first."""
        shapes = [tuple(self.image)]
        for c in self.convs:
            _, h, w = shapes[-1]
            if c.padding == "VALID":
                h, w = h - c.kernel + 1, w - c.kernel + 1
            h, w = h // c.pool, w // c.pool
            shapes.append((c.channels, h, w))
        return tuple(shapes)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The dense head's widths, starting at the flattened feature count."""
        return (math.prod(self.maps[-1]), *self.dense, N_CLASSES)

    @property
    def n_params(self) -> int:
        return layout(self)[-1].stop


def _problems(spec: CNNSpec) -> str | None:
    if spec.activation not in ACTIVATIONS:
        return f"unknown activation {spec.activation!r}; choose one of {ACTIVATIONS}"
    if spec.pooling not in POOLINGS:
        return f"unknown pooling {spec.pooling!r}; choose one of {POOLINGS}"
    if spec.init not in CNN_INITS:
        return f"unknown CNN init {spec.init!r}; choose one of {CNN_INITS}"
    shapes = [tuple(spec.image)]
    for i, c in enumerate(spec.convs):
        if c.padding not in PADDINGS:
            return f"conv {i + 1}: padding must be one of {PADDINGS}, got {c.padding!r}"
        if c.channels < 1 or c.kernel < 1 or c.pool < 1:
            return f"conv {i + 1}: channels, kernel and pool must be at least 1"
        _, h, w = shapes[-1]
        if c.padding == "SAME" and c.kernel % 2 == 0:
            return f"conv {i + 1}: SAME padding needs an odd kernel, got {c.kernel}"
        if c.padding == "VALID":
            h, w = h - c.kernel + 1, w - c.kernel + 1
        if min(h, w) < c.pool or min(h, w) < 1:
            return f"conv {i + 1}: a {shapes[-1][1]}×{shapes[-1][2]} map is too small for kernel {c.kernel}, pool {c.pool}"
        shapes.append((c.channels, h // c.pool, w // c.pool))
    return None


def validate_spec(spec: CNNSpec) -> CNNSpec:
    """The spec itself, or ValueError in one sentence."""
    problem = _problems(spec)
    if problem:
        raise ValueError(problem)
    return spec


def layout(spec: CNNSpec) -> tuple[Block, ...]:
    """conv1.W (out, in, k, k), conv1.b, …, dense1.W (out, in), dense1.b, … in torch's conventions."""
    shapes, maps = [], spec.maps
    for i, c in enumerate(spec.convs):
        shapes += [(f"conv{i + 1}.W", (c.channels, maps[i][0], c.kernel, c.kernel)), (f"conv{i + 1}.b", (c.channels,))]
    s = spec.sizes
    for i in range(len(s) - 1):
        shapes += [(f"dense{i + 1}.W", (s[i + 1], s[i])), (f"dense{i + 1}.b", (s[i + 1],))]
    blocks, start = [], 0
    for name, shape in shapes:
        blocks.append(Block(name, shape, start, start + math.prod(shape)))
        start += math.prod(shape)
    return tuple(blocks)


def init_params(spec: CNNSpec, seed: int, dtype=torch.float32) -> torch.Tensor:
    """A seeded θ_0: 'paper' = Flax's LeCun truncated normal kernels (std √(1/fan_in)), zero biases; 'torch' = its default."""
    validate_spec(spec)
    g = torch.Generator().manual_seed(int(seed))
    parts = []
    blocks = layout(spec)
    for w, b in zip(blocks[0::2], blocks[1::2]):
        fan_in = math.prod(w.shape[1:])
        if spec.init == "paper":
            kernel = torch.empty(w.shape, dtype=torch.float64)
            torch.nn.init.trunc_normal_(kernel, 0.0, 1.0, -2.0, 2.0, generator=g)
            kernel *= math.sqrt(1.0 / fan_in) / 0.87962566103423978
            bias = torch.zeros(b.shape, dtype=torch.float64)
        else:
            bound = fan_in ** -0.5
            kernel = (torch.rand(w.shape, generator=g, dtype=torch.float64) * 2 - 1) * bound
            bias = (torch.rand(b.shape, generator=g, dtype=torch.float64) * 2 - 1) * bound
        parts += [kernel.reshape(-1), bias]
    return torch.cat(parts).to(dtype)


def _logits(spec: CNNSpec, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits (B, 10) for one θ (P,) and flat images x (B, C·H·W)."""
    blocks = layout(spec)
    p = [part.reshape(b.shape) for part, b in zip(torch.split(theta, [b.stop - b.start for b in blocks]), blocks)]
    act, pool = _VALUE[spec.activation], (F.avg_pool2d if spec.pooling == "avg" else F.max_pool2d)
    a = x.reshape(x.shape[0], *spec.image)
    for i, c in enumerate(spec.convs):
        a = act(F.conv2d(a, p[2 * i], p[2 * i + 1], padding="same" if c.padding == "SAME" else "valid"))
        if c.pool > 1:
            a = pool(a, c.pool)
    a = a.flatten(1)
    n_conv = 2 * len(spec.convs)
    dense = p[n_conv:]
    for i in range(0, len(dense), 2):
        a = F.linear(a, dense[i], dense[i + 1])
        if i < len(dense) - 2:
            a = act(a)
    return a


def forward(spec: CNNSpec, theta: torch.Tensor, x: torch.Tensor, rows: int = 5000) -> torch.Tensor:
    """Logits (…, B, 10) for flat images x (B, C·H·W) and one θ (P,) or a stack (…, P); `rows` images at a time."""
    if theta.dim() > 1:
        lead = theta.shape[:-1]
        out = torch.stack([forward(spec, th, x, rows) for th in theta.reshape(-1, theta.shape[-1])])
        return out.reshape(*lead, *out.shape[1:])
    if x.shape[0] <= rows:
        return _logits(spec, theta, x)
    return torch.cat([_logits(spec, theta, x[i:i + rows]) for i in range(0, x.shape[0], rows)])
