"""The CNN family on a flat θ: spec, layout, Flax-default init and forward (autograd trains it; its tangents
have a hand-written replay, tj/cnn_replay.py)."""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .activations import ACTIVATIONS, VALUE
from .block import Block, FirstLayer, blocks
from .data import DATASETS, IMAGE
from .fields import Field

NAME = "cnn"
TITLE = "CNN (convolutions, then dense layers)"
FORM = True
DATASETS = DATASETS
N_CLASSES = 10
PADDINGS = ("SAME", "VALID")
POOLINGS = ("avg", "max")
CNN_INITS = ("paper", "torch")  # "paper": what the authors ran, Flax's defaults
FIELDS = (
    Field("convs", "model", "conv", "Convolution layers", "convs", form="convolution layers",
          help="channels × kernel, SAME or VALID padding, pooling window; LeNet-5's are '6x5 same pool2, 16x5 valid pool2'"),
    Field("dense", "model", "dense", "Dense widths", "widths", form="dense widths before the 10 outputs",
          help="'none' puts the 10 outputs right after the convolutions"),
    Field("pooling", "model", "pool", "Pooling", "choice", POOLINGS, form="pooling"),
    Field("activation", "model", "act", "Activation", "choice", ACTIVATIONS, form="activation", advanced=True),
    Field("init", "model", "init", "Initialisation", "choice", CNN_INITS, form="initialisation", advanced=True),
)


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
        pooled = ((ch, h // c.pool, w // c.pool) for c, (ch, h, w) in zip(self.convs, self.unpooled))
        return (tuple(self.image), *pooled)

    @property
    def unpooled(self) -> tuple[tuple[int, int, int], ...]:
        """Each convolution's output (channels, height, width), before its pooling."""
        shapes, (_, h, w) = [], self.image
        for c in self.convs:
            if c.padding == "VALID":
                h, w = h - c.kernel + 1, w - c.kernel + 1
            shapes.append((c.channels, h, w))
            h, w = h // c.pool, w // c.pool
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
    return blocks(shapes)


def init_params(spec: CNNSpec, seed: int, dtype=torch.float32) -> torch.Tensor:
    """A seeded θ_0: 'paper' = Flax's LeCun truncated normal kernels (std √(1/fan_in)), zero biases; 'torch' = its default."""
    validate_spec(spec)
    g = torch.Generator().manual_seed(int(seed))
    parts = []
    parts_of = layout(spec)
    for w, b in zip(parts_of[0::2], parts_of[1::2]):
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


@functools.lru_cache(maxsize=64)
def _pool_matrix(h: int, w: int, k: int, dtype: torch.dtype) -> torch.Tensor:
    """(h·w, (h//k)·(w//k)): average pooling by window k as a product. A plain constant even when first asked
    for inside a torch.func transform or a make_fx trace (which would wrap it, or make it a fake tensor, and the
    cache would hand that on)."""
    rows = np.arange(h)[:, None] // k == np.arange(h // k)[None, :]
    cols = np.arange(w)[:, None] // k == np.arange(w // k)[None, :]
    with torch._C._DisableFuncTorch(), torch.utils._python_dispatch._disable_current_modes():
        return torch.from_numpy(np.kron(rows, cols) / (k * k)).to(dtype)


def _avg_pool(a: torch.Tensor, k: int) -> torch.Tensor:
    """Average pooling; on small maps one GEMM, whose batched derivatives are GEMMs too (measured on the cnn
    preset's 8×8 maps: 31 → 21 ms per 128-tangent step), on large ones avg_pool2d, which costs fewer FLOPs."""
    h, w = a.shape[-2:]
    if h * w > POOL_GEMM_MAX:
        return F.avg_pool2d(a, k)
    return (a.flatten(-2) @ _pool_matrix(h, w, k, a.dtype)).unflatten(-1, (h // k, w // k))


POOL_GEMM_MAX = 256


def _logits(spec: CNNSpec, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits (B, 10) for one θ (P,) and flat images x (B, C·H·W)."""
    shapes = layout(spec)
    p = [part.reshape(b.shape) for part, b in zip(torch.split(theta, [b.stop - b.start for b in shapes]), shapes)]
    act, pool = VALUE[spec.activation], (_avg_pool if spec.pooling == "avg" else F.max_pool2d)
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


SPEC, DEFAULT = CNNSpec, CNNSpec(activation="gelu_tanh")  # DEFAULT: the class preset's network, the form's start


def conv_text(convs) -> str:
    """Conv layers as the form and the URL write them: '4x3 same pool2, 8x3 valid'."""
    return ", ".join(f"{c.channels}x{c.kernel} {c.padding.lower()} pool{c.pool}" for c in convs)


_CONV = re.compile(r"^(\d{1,4})\s*[x×@]\s*(\d{1,3})(?:\s+(same|valid))?(?:\s+pool\s*(\d{1,2}))?$", re.I)


def parse_convs(value):
    """Conv layers from conv_text's form (or Conv objects); None when it does not read as one."""
    if isinstance(value, (list, tuple)) and all(isinstance(c, Conv) for c in value):
        return tuple(value)
    if not isinstance(value, str) or len(value) > 400:
        return None
    out = []
    for part in [p.strip() for p in value.split(",") if p.strip()]:
        m = _CONV.match(part)
        if m is None:
            return None
        out.append(Conv(int(m[1]), int(m[2]), (m[3] or "same").upper(), int(m[4] or 1)))
    return tuple(out)


def n_inputs(spec: CNNSpec) -> int:
    return math.prod(spec.image)


def n_activations(spec: CNNSpec) -> int:
    """The input, every conv stage's pre- and post-activation and pooled maps, the dense head's layers."""
    total, maps = n_inputs(spec), spec.maps
    for c, (ch, h, w) in zip(spec.convs, maps[1:]):
        total += 2 * ch * h * w * c.pool * c.pool + ch * h * w
    return total + 2 * sum(spec.sizes[1:])


def problems(spec: CNNSpec, dataset: str = "digits", limits=None) -> list[str]:
    """What keeps this CNN from being built and trained: its shapes, and the depth of its dense head."""
    out = []
    problem = _problems(spec)
    if problem:
        out.append(problem[0].upper() + problem[1:] + ".")
    if limits is not None and len(spec.dense) > limits.max_depth:
        out.append(f"At most {limits.max_depth} dense layers are allowed; got {len(spec.dense)}.")
    return out


def from_settings(values: dict, dataset: str = "digits") -> CNNSpec:
    return CNNSpec(convs=values["convs"], dense=tuple(values["dense"]), image=IMAGE.get(dataset, (1, 8, 8)),
                   pooling=values["pooling"], activation=values["activation"], init=values["init"])


def spec_from_dict(d: dict) -> CNNSpec:
    return CNNSpec(convs=tuple(Conv(**c) for c in d["convs"]), dense=tuple(d["dense"]), image=tuple(d["image"]),
                   pooling=d["pooling"], activation=d["activation"], init=d["init"])


def describe(spec: CNNSpec) -> str:
    convs = ", ".join(f"{c.channels}@{c.kernel}×{c.kernel}" + (f" pool {c.pool}" if c.pool > 1 else "")
                      for c in spec.convs)
    head = " → ".join(map(str, spec.sizes[1:]))
    return f"CNN conv {convs} → {spec.sizes[0]} features → {head}, {spec.activation}"


def first_layer(spec: CNNSpec) -> FirstLayer:
    w, b = layout(spec)[:2]
    return FirstLayer("conv", w, b, tuple(spec.image), spec.convs[0].padding)


def variants(exp) -> dict:
    """Twice the channels, and one more dense layer."""
    m = exp.model
    return {"twice the channels": exp.replace(model=dataclasses.replace(
                m, convs=tuple(dataclasses.replace(c, channels=2 * c.channels) for c in m.convs))),
            "one more dense layer": exp.replace(model=dataclasses.replace(m, dense=(*m.dense, 16)))}


from . import cnn_replay as REPLAY  # noqa: E402,N812  (last: the replay imports this module)
