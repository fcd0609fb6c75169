"""The MLP family: 64 pixels → dense layers → 10, its layout, seeded init, forward and backward by hand."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .activations import ACTIVATIONS, VALUE, activation
from .block import Block, FirstLayer, blocks
from .block import unflatten as split_blocks
from .fields import Field

NAME = "mlp"
TITLE = "MLP (dense layers)"
FORM = True
DATASETS = ("digits",)
N_INPUTS, N_CLASSES = 64, 10
INITS = ("paper", "torch")
FIELDS = (
    Field("widths", "model", "w", "Hidden widths", "widths", form="hidden widths (comma-separated)",
          help="64 is the paper's; '32, 16' makes two hidden layers"),
    Field("activation", "model", "act", "Activation", "choice", ACTIVATIONS, form="activation", advanced=True),
    Field("init", "model", "init", "Initialisation", "choice", INITS, form="initialisation", advanced=True),
)


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


def layout(spec: MLPSpec) -> tuple[Block, ...]:
    """The blocks of θ in order: W1, b1, W2, b2, … with torch nn.Linear shapes."""
    s = spec.sizes
    return blocks(part for i in range(len(s) - 1)
                  for part in ((f"W{i + 1}", (s[i + 1], s[i])), (f"b{i + 1}", (s[i + 1],))))


def unflatten(spec: MLPSpec, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """θ (…, P) → [(W, b)] views per layer; leading dims are kept."""
    views = split_blocks(layout(spec), theta)
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


def forward(spec: MLPSpec, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits (…, B, 10) for inputs x (B, 64) and one θ (P,) or a stack of them (…, P)."""
    layers = unflatten(spec, theta)
    a = x
    for i, (w, b) in enumerate(layers):
        z = torch.matmul(a, w.mT) + b.unsqueeze(-2)
        a = VALUE[spec.activation](z) if i < len(layers) - 1 else z
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


SPEC, DEFAULT = MLPSpec, MLPSpec()


def n_inputs(spec: MLPSpec) -> int:
    return N_INPUTS


def n_activations(spec: MLPSpec) -> int:
    """The input and every layer's pre- and post-activation."""
    return spec.sizes[0] + 2 * sum(spec.sizes[1:])


def problems(spec: MLPSpec, dataset: str = "digits", limits=None) -> list[str]:
    """What keeps this MLP from being built and trained on `dataset`."""
    out = []
    if spec.activation not in ACTIVATIONS:
        out.append(f"Unknown activation {spec.activation!r}; choose one of {', '.join(ACTIVATIONS)}.")
    if spec.init not in INITS:
        out.append(f"Unknown init {spec.init!r}; choose one of {', '.join(INITS)}.")
    if dataset != "digits":
        out.append("The MLP reads the 8×8 digits; choose the digits dataset, or a CNN for MNIST.")
    return out


def from_settings(values: dict, dataset: str = "digits") -> MLPSpec:
    return MLPSpec(tuple(values["widths"]), values["activation"], values["init"])


def spec_from_dict(d: dict) -> MLPSpec:
    return MLPSpec(**{**d, "widths": tuple(d["widths"])})


def describe(spec: MLPSpec) -> str:
    return f"MLP {' → '.join(map(str, spec.sizes))}, {spec.activation}"


def first_layer(spec: MLPSpec) -> FirstLayer:
    w, b = layout(spec)[:2]
    return FirstLayer("dense", w, b, (1, 8, 8))


def variants(exp) -> dict:
    """Twice the first width, and one more hidden layer."""
    width = exp.model.widths[0] if exp.model.widths else 16
    return {f"width {2 * width}": exp.replace(**{"model.widths": (2 * width, *exp.model.widths[1:])}),
            "one more hidden layer": exp.replace(**{"model.widths": (*exp.model.widths, width)})}


from . import mlp_replay as REPLAY  # noqa: E402,N812  (last: the replay imports this module)
