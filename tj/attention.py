"""The attention family: the 8×8 digits as 8 row tokens, one self-attention layer and an MLP block, on a flat θ."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from .activations import ACTIVATIONS, VALUE
from .block import Block, blocks, unflatten
from .fields import Field

NAME = "attention"
TITLE = "Attention (row tokens, one self-attention layer)"
FORM = True
DATASETS = ("digits",)
TOKENS, TOKEN_SIZE, N_CLASSES = 8, 8, 10  # an image's 8 rows of 8 pixels
INITS = ("paper", "torch")
PIXEL_MEAN, PIXEL_STD = 0.305, 0.376  # the training digits': tokens are standardised, as LeCun's init assumes
FIELDS = (
    Field("embed", "model", "emb", "Embedding width", "int", form="embedding width",
          help="the width d of every token; the heads share it, so it must be divisible by their number",
          bounds=(1, 512)),
    Field("heads", "model", "heads", "Attention heads", "int", form="attention heads", bounds=(1, 16)),
    Field("hidden", "model", "hid", "MLP width", "int", form="MLP block's hidden width", bounds=(1, 512)),
    Field("activation", "model", "act", "Activation", "choice", ACTIVATIONS, form="activation", advanced=True),
    Field("init", "model", "init", "Initialisation", "choice", INITS, form="initialisation", advanced=True),
)


@dataclass(frozen=True)
class AttentionSpec:
    """8 row tokens → embed + position → x + attention(x) → x + MLP(x) → mean over tokens → 10."""

    embed: int = 16
    heads: int = 2
    hidden: int = 16
    activation: str = "gelu_tanh"
    init: str = "paper"

    @property
    def family(self) -> str:
        return "attention"

    @property
    def n_params(self) -> int:
        return layout(self)[-1].stop


def layout(spec: AttentionSpec) -> tuple[Block, ...]:
    """embed.W, embed.b, pos, attn.{q,k,v,o}.{W,b}, mlp.{in,out}.{W,b}, head.W, head.b (nn.Linear shapes)."""
    d, h = spec.embed, spec.hidden
    shapes = [("embed.W", (d, TOKEN_SIZE)), ("embed.b", (d,)), ("pos", (TOKENS, d))]
    for name in "qkvo":
        shapes += [(f"attn.{name}.W", (d, d)), (f"attn.{name}.b", (d,))]
    shapes += [("mlp.in.W", (h, d)), ("mlp.in.b", (h,)), ("mlp.out.W", (d, h)), ("mlp.out.b", (d,)),
               ("head.W", (N_CLASSES, d)), ("head.b", (N_CLASSES,))]
    return blocks(shapes)


def init_params(spec: AttentionSpec, seed: int, dtype=torch.float32) -> torch.Tensor:
    """A seeded θ_0: 'paper' = LeCun truncated normal kernels and zero biases, 'torch' = nn.Linear's uniform
    ±fan_in^-1/2 weights and biases. Positions are N(0, 1) in both (nn.Embedding's; the tokens' own scale):
    mean pooling leaves the position embedding the only way to tell rows apart, and at ViT's N(0, 0.02²) the
    preset's 150 steps reach about 86 % instead of 92 %."""
    wrong = _spec_problems(spec)
    if wrong:
        raise ValueError(wrong[0])
    g = torch.Generator().manual_seed(int(seed))
    parts, fan_in = [], None
    for b in layout(spec):
        if b.name.endswith(".W"):
            fan_in = b.shape[1]  # also the bound of the bias that follows, under 'torch'
        if b.name == "pos":
            part = torch.randn(b.shape, generator=g, dtype=torch.float64)
        elif spec.init == "paper" and b.name.endswith(".W"):
            part = torch.empty(b.shape, dtype=torch.float64)
            torch.nn.init.trunc_normal_(part, 0.0, 1.0, -2.0, 2.0, generator=g)
            part *= math.sqrt(1.0 / fan_in) / 0.87962566103423978
        elif spec.init == "paper":
            part = torch.zeros(b.shape, dtype=torch.float64)
        else:
            part = (torch.rand(b.shape, generator=g, dtype=torch.float64) * 2 - 1) * fan_in ** -0.5
        parts.append(part)
    return torch.cat([p.reshape(-1) for p in parts]).to(dtype)


def _linear(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rows a (…, N, in) through weights (…, out, in) and bias (…, out) → (…, N, out), one GEMM for all rows."""
    return a @ w.mT + b.unsqueeze(-2)


def forward(spec: AttentionSpec, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits (…, B, 10) for flat images x (B, 64) and one θ (P,) or a stack (…, P)."""
    (we, be, pos, wq, bq, wk, bk, wv, bv, wo, bo, w1, b1, w2, b2, wh, bh) = unflatten(layout(spec), theta)
    n, heads, width = x.shape[0], spec.heads, spec.embed // spec.heads
    rows = (x.reshape(n * TOKENS, TOKEN_SIZE) - PIXEL_MEAN) / PIXEL_STD  # (B·8, 8): one token per image row
    a = (_linear(rows, we, be).unflatten(-2, (n, TOKENS)) + pos.unsqueeze(-3)).flatten(-3, -2)  # (…, B·8, d)

    def split(z):                                                  # (…, B·8, d) → (…, B, heads, 8, d/heads)
        return z.unflatten(-2, (n, TOKENS)).unflatten(-1, (heads, width)).transpose(-2, -3)

    q, k, v = split(_linear(a, wq, bq)), split(_linear(a, wk, bk)), split(_linear(a, wv, bv))
    weights = torch.softmax(q @ k.mT / math.sqrt(width), dim=-1)   # (…, B, heads, 8 queries, 8 keys)
    mixed = (weights @ v).transpose(-2, -3).flatten(-2).flatten(-3, -2)  # (…, B·8, d)
    a = a + _linear(mixed, wo, bo)
    a = a + _linear(VALUE[spec.activation](_linear(a, w1, b1)), w2, b2)  # (…, B·8, d)
    pooled = a.unflatten(-2, (n, TOKENS)).mean(-2)                 # (…, B, d)
    return _linear(pooled, wh, bh)                                 # (…, B, 10)


SPEC, DEFAULT = AttentionSpec, AttentionSpec()


def n_inputs(spec: AttentionSpec) -> int:
    return TOKENS * TOKEN_SIZE


def n_activations(spec: AttentionSpec) -> int:
    """The input and its standardised tokens; per token the embedding and its sum with the position, q, k, v,
    the mixed values, the projection and its residual sum, the MLP's pre- and post-activation, its output and
    residual sum; per head the scores and their softmax; the pooled vector and the logits."""
    d, t = spec.embed, TOKENS
    return 2 * t * TOKEN_SIZE + t * (9 * d + 2 * spec.hidden) + 2 * spec.heads * t * t + d + N_CLASSES


def _spec_problems(spec: AttentionSpec) -> list[str]:
    out = []
    sizes = {"embedding width": spec.embed, "number of heads": spec.heads, "MLP width": spec.hidden}
    small = [name for name, n in sizes.items() if not (isinstance(n, int) and n >= 1)]
    if small:
        out.append(f"The {' and the '.join(small)} must be whole numbers of at least 1.")
    elif spec.embed % spec.heads:
        out.append(f"The embedding width {spec.embed} must be divisible by the number of heads, {spec.heads}.")
    if spec.activation not in ACTIVATIONS:
        out.append(f"Unknown activation {spec.activation!r}; choose one of {', '.join(ACTIVATIONS)}.")
    if spec.init not in INITS:
        out.append(f"Unknown init {spec.init!r}; choose one of {', '.join(INITS)}.")
    return out


def problems(spec: AttentionSpec, dataset: str = "digits", limits=None) -> list[str]:
    """What keeps this attention network from being built and trained on `dataset`."""
    out = _spec_problems(spec)
    if limits is not None and not out and max(spec.embed, spec.hidden) > limits.max_width:
        out.append(f"Every width must be at most {limits.max_width:,}; got {max(spec.embed, spec.hidden):,}.")
    if dataset not in DATASETS:
        out.append("The attention network reads the 8×8 digits as 8 rows of 8 pixels; choose the digits dataset.")
    return out


def from_settings(values: dict, dataset: str = "digits") -> AttentionSpec:
    return AttentionSpec(values["embed"], values["heads"], values["hidden"], values["activation"], values["init"])


def spec_from_dict(d: dict) -> AttentionSpec:
    return AttentionSpec(**d)


def describe(spec: AttentionSpec) -> str:
    return (f"Attention: {TOKENS} row tokens → 1 layer, {spec.heads} head{'s' if spec.heads != 1 else ''}, "
            f"width {spec.embed} → MLP {spec.hidden} → mean → {N_CLASSES}, {spec.activation}")


def first_layer(spec: AttentionSpec) -> None:
    """None: the token embedding reads rows of 8 pixels, never a whole image."""
    return None


def variants(exp) -> dict:
    """Twice the width (the tokens' and the MLP's), and twice the heads (one head when d does not split)."""
    m = exp.model
    heads = 2 * m.heads if m.embed % (2 * m.heads) == 0 else 1
    return {"twice the width": exp.replace(model=dataclasses.replace(m, embed=2 * m.embed, hidden=2 * m.hidden)),
            f"{heads} head{'s' if heads != 1 else ''}": exp.replace(model=dataclasses.replace(m, heads=heads))}


def symmetries(spec: AttentionSpec) -> list:
    """Directions along which the loss is flat for every θ: each key bias (a query's scores all move by q·b_k,
    which its softmax over keys ignores), and the embedding bias traded against the position embedding
    (embed.b + c, pos_t − c for every row t leave every token as it was)."""
    shapes = {b.name: b for b in layout(spec)}
    rows = []
    for i in range(spec.embed):
        v = np.zeros(spec.n_params)
        v[shapes["attn.k.b"].start + i] = 1.0
        rows.append(v)
        v = np.zeros(spec.n_params)
        v[shapes["embed.b"].start + i] = 1.0
        v[shapes["pos"].start + i: shapes["pos"].stop: spec.embed] = -1.0
        rows.append(v / np.sqrt(1 + TOKENS))
    return rows
