"""The MLP: a spec, a flat parameter layout, seeded init, and its forward/backward by hand."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

N_INPUTS, N_CLASSES = 64, 10
ACTIVATIONS = ("gelu_tanh", "gelu_erf", "relu", "tanh")
INITS = ("paper", "torch")


@dataclass(frozen=True)
class MLPSpec:
    """64 → widths… → 10 with one activation between layers."""

    widths: tuple[int, ...] = (64,)
    activation: str = "gelu_tanh"
    init: str = "paper"

    @property
    def family(self) -> str:
        return "mlp"

    @property
    def sizes(self) -> tuple[int, ...]:
        return (N_INPUTS, *self.widths, N_CLASSES)

    @property
    def n_params(self) -> int:
        s = self.sizes
        return sum(s[i] * s[i + 1] + s[i + 1] for i in range(len(s) - 1))


@dataclass(frozen=True)
class Block:
    """One parameter tensor inside the flat vector θ (weights are (out, in), row-major)."""

    name: str
    shape: tuple[int, ...]
    start: int
    stop: int


def layout(spec: MLPSpec) -> tuple[Block, ...]:
    """The blocks of θ in order: W1, b1, W2, b2, … with torch nn.Linear shapes."""
    blocks, start, s = [], 0, spec.sizes
    for i in range(len(s) - 1):
        for name, shape in ((f"W{i + 1}", (s[i + 1], s[i])), (f"b{i + 1}", (s[i + 1],))):
            stop = start + math.prod(shape)
            blocks.append(Block(name, shape, start, stop))
            start = stop
    return tuple(blocks)


def unflatten(spec: MLPSpec, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """θ (…, P) → [(W, b)] views per layer; leading dims are kept."""
    blocks, lead = layout(spec), theta.shape[:-1]
    # split, not slicing: its backward is one cat instead of a zero-filled P-vector per block
    parts = torch.split(theta, [b.stop - b.start for b in blocks], dim=-1)
    views = [p.reshape(*lead, *b.shape) for p, b in zip(parts, blocks)]
    return list(zip(views[0::2], views[1::2]))


def init_params(spec: MLPSpec, seed: int, dtype=torch.float32) -> torch.Tensor:
    """A seeded θ_0: 'paper' = LeCun-normal truncated kernels, N(0, fan_in^-1/2) biases; 'torch' = nn.Linear default."""
    g = torch.Generator().manual_seed(int(seed))
    parts = []
    for fan_in, fan_out in zip(spec.sizes[:-1], spec.sizes[1:]):
        if spec.init == "paper":
            # Flax lecun_normal: truncated to ±2 std, rescaled so the variance is exactly 1/fan_in.
            w = torch.empty(fan_out, fan_in, dtype=torch.float64)
            torch.nn.init.trunc_normal_(w, 0.0, 1.0, -2.0, 2.0, generator=g)
            w *= math.sqrt(1.0 / fan_in) / 0.87962566103423978
            b = torch.randn(fan_out, generator=g, dtype=torch.float64) * fan_in ** -0.5
        elif spec.init == "torch":
            bound = fan_in ** -0.5
            w = (torch.rand(fan_out, fan_in, generator=g, dtype=torch.float64) * 2 - 1) * bound
            b = (torch.rand(fan_out, generator=g, dtype=torch.float64) * 2 - 1) * bound
        else:
            raise ValueError(f"unknown init {spec.init!r}; choose one of {INITS}")
        parts += [w.reshape(-1), b]
    return torch.cat(parts).to(dtype)


_C = math.sqrt(2.0 / math.pi)


def activation(name: str, z: torch.Tensor, derivatives: bool = True):
    """φ(z), φ'(z), φ''(z) for the named activation; just φ(z) when derivatives is False."""
    if not derivatives:
        return _VALUE[name](z)
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


_VALUE = {
    "gelu_tanh": lambda z: torch.nn.functional.gelu(z, approximate="tanh"),
    "gelu_erf": torch.nn.functional.gelu,
    "relu": torch.relu,
    "tanh": torch.tanh,
}


def forward(spec: MLPSpec, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits (…, B, 10) for inputs x (B, 64) and one θ (P,) or a stack of them (…, P)."""
    layers = unflatten(spec, theta)
    a = x
    for i, (w, b) in enumerate(layers):
        z = torch.matmul(a, w.mT) + b.unsqueeze(-2)
        a = activation(spec.activation, z, derivatives=False) if i < len(layers) - 1 else z
    return a


def loss_and_grad(spec: MLPSpec, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                  loss: str = "cross_entropy", keep: dict | None = None):
    """Mean loss and its gradient (P,) by a hand-written backward pass.

    `keep`, when given, receives what forward-mode needs later: per layer the input a, φ', and
    φ''·(∂L/∂a) for hidden layers, the output-layer ∂L/∂z and, for cross-entropy, the softmax p.
    """
    layers, n = unflatten(spec, theta), x.shape[0]
    acts, dphis, d2phis = [x], [], []
    for i, (w, b) in enumerate(layers):
        z = torch.addmm(b, acts[-1], w.T)
        if i < len(layers) - 1:
            a, d1, d2 = activation(spec.activation, z)
            acts.append(a)
            dphis.append(d1)
            d2phis.append(d2)
    if loss == "cross_entropy":
        logp = torch.log_softmax(z, dim=1)
        value = -logp.gather(1, y[:, None]).mean()
        p = logp.exp()
        g = p.clone()
        g[torch.arange(n), y] -= 1
        g /= n
    elif loss == "mse":
        diff = z - torch.nn.functional.one_hot(y, N_CLASSES).to(z.dtype)
        value = 0.5 * (diff * diff).sum() / n
        p, g = None, diff / n
    else:
        raise ValueError(f"unknown loss {loss!r}")
    grads, gs, curv = [], [g], []
    for i in range(len(layers) - 1, -1, -1):
        w = layers[i][0]
        grads = [(g.T @ acts[i]).reshape(-1), g.sum(0)] + grads
        if i > 0:
            h = g @ w                      # ∂L/∂a_i  (B, n_i)
            curv.insert(0, d2phis[i - 1] * h)
            g = h * dphis[i - 1]           # ∂L/∂z_i
            gs.insert(0, g)
    if keep is not None:
        keep.update(acts=acts, dphis=dphis, curv=curv, gs=gs, p=p)
    return value, torch.cat(grads)
