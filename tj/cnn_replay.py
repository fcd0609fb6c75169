"""The CNN's fast tangent replay: θ_t recorded once, then K tangent columns pushed through every step by hand.

Per step the primal forward and backward are recomputed at θ_t (the run keeps only θ_t and its batch), then
the K tangents go through the same hand-derived forward-over-reverse rules as the MLP's replay, plus those of
the convolutions and the pooling. Every tangent map is laid out (B, K, C, H, W): a convolution of the tangent
maps with W is a convolution of B·K images, and one of the primal maps with the K weight tangents one with
K·C output channels, so both land in the same layout and no full-size tangent map is permuted. They run
over about 2 MB of images at a time (_runs): oneDNN is slower over thousands of small images at once.
Pooling and its transpose fold in the φ'(z) product, so no pre-pooling product map is written. The first
layer's input has no tangent, so its products are linear in the kernel tangent with per-step coefficients
(_first_layer): where smaller, it keeps no tangent maps at all. The optimizer's tangents are the general
engine's (general.replay). tj/jacobian.py drives it (tasks, threads, slots).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from . import general
from .activations import activation, curvature
from .block import unflatten
from .cnn import layout, n_activations
from .data import Dataset

if TYPE_CHECKING:
    from .presets import Experiment


def record(experiment: Experiment, theta0: torch.Tensor | None = None, device=None,
           data: Dataset | None = None) -> general.Trajectory:
    """Train once and keep θ_t and the batch of every step (the replay recomputes the rest)."""
    return dataclasses.replace(general.record(experiment, theta0, device, data), engine="fast")


def _pad(conv) -> int:
    return (conv.kernel - 1) // 2 if conv.padding == "SAME" else 0


def _wgrad(grad_out: torch.Tensor, inputs: torch.Tensor, shape, pad: int, bias: bool = False):
    """∂⟨grad_out, conv(inputs, W)⟩/∂W for a W of `shape`, summed over the batch (and ∂/∂b with `bias`)."""
    weight = grad_out.new_empty(()).expand(shape)
    _, gw, gb = torch.ops.aten.convolution_backward(grad_out, inputs, weight, [shape[0]] if bias else None, [1, 1],
                                                    [pad, pad], [1, 1], False, [0, 0], 1, [False, True, bias])
    return (gw, gb) if bias else gw


def _windows(a: torch.Tensor, s: int) -> torch.Tensor:
    """(…, H, W) → (…, h, s, w, s): the pooling windows, rows and columns past the last whole window dropped."""
    H, W = a.shape[-2:]
    h, w = H // s, W // s
    if (H, W) != (h * s, w * s):
        a = a[..., :h * s, :w * s]
    return a.unflatten(-1, (w, s)).unflatten(-3, (h, s))


def _avg_pool(a: torch.Tensor, s: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Average pooling of (…, H, W) (times `mask` first, broadcast) by window s, as strided additions: no
    product map is written (one thread: about 5× avg_pool2d's speed on LeNet-5's 28×28 maps)."""
    v = _windows(a, s)
    m = _windows(mask, s) if mask is not None else None
    rows = None
    for i in range(s):
        part = v[..., i, :, :]
        if m is None:
            rows = part.clone() if rows is None else rows.add_(part)
        else:
            rows = torch.mul(part, m[..., i, :, :]) if rows is None else rows.addcmul_(part, m[..., i, :, :])
    out = rows[..., 0].clone()
    for j in range(1, s):
        out += rows[..., j]
    return out.mul_(1.0 / (s * s))


def _avg_unpool(g: torch.Tensor, s: int, size, mask: torch.Tensor) -> torch.Tensor:
    """The average pooling's transpose of (…, h, w), times `mask` (…, H, W) (broadcast): (…, H, W)."""
    *lead, h, w = g.shape
    cols = torch.mul(g[..., None].expand(*lead, h, w, s), 1.0 / (s * s)).view(*lead, h, w * s)
    shape = (*torch.broadcast_shapes(tuple(lead), mask.shape[:-2]), *size)
    out = g.new_zeros(shape) if tuple(size) != (h * s, w * s) else g.new_empty(shape)
    v, m = _windows(out, s).flatten(-2), _windows(mask, s).flatten(-2)
    for i in range(s):
        torch.mul(cols, m[..., i, :], out=v[..., i, :])
    return out


def _pool(spec, c, m: dict, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """One stage's pooling of maps h (…, C, H, W), times `mask` first (broadcast); max through the primal's argmax."""
    if c.pool == 1:
        return h if mask is None else h * mask
    if spec.pooling == "avg":
        return _avg_pool(h, c.pool, mask)
    hh, ww = h.shape[-2:]
    out = h.flatten(-2).gather(-1, _argmax(m, h))
    if mask is not None:
        out.mul_(mask.flatten(-2).gather(-1, _argmax(m, mask)))
    return out.unflatten(-1, (hh // c.pool, ww // c.pool))


def _unpool(spec, c, m: dict, g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The transpose of _pool: g (…, C, h, w) → (…, C, H, W), times `mask` (broadcast)."""
    size = m["z"].shape[-2:]
    if c.pool == 1:
        return g * mask
    if spec.pooling == "avg":
        return _avg_unpool(g, c.pool, size, mask)
    picked = g.flatten(-2) * mask.flatten(-2).gather(-1, _argmax(m, mask))
    return g.new_zeros(*picked.shape[:-1], size[0] * size[1]).scatter_(-1, _argmax(m, g), picked).unflatten(-1, size)


def _argmax(m: dict, like: torch.Tensor) -> torch.Tensor:
    """The primal's max-pooling argmax (B, C, h·w), broadcast to maps like `like` (B, [K,] C, …)."""
    index = m["index"]
    index = index.view(index.shape[0], *[1] * (like.dim() - 4), *index.shape[1:])
    return index.expand(*like.shape[:-3], *index.shape[-2:])


RUN_BYTES = 2 << 20  # a CPU's images per convolution call; LeNet-5's step against 2 MB, one thread: 1 MB 306 vs
# 295 ms (medians of 12), 4 MB 273 vs 286 (medians) but 262 vs 261 (best)


def _runs(nb: int, per_image: int, device) -> list[slice]:
    """The batch in runs of RUN_BYTES of images (`per_image` bytes each), one run on a GPU. On a CPU oneDNN's
    convolutions over thousands of small images at once are slower (LeNet-5's 16-tangent step, one thread:
    conv_T(ġ, W) over 3,200 images 77 ms at once, 50 in runs of 100 or 200; the whole step 364 → 325 ms)."""
    n = nb if device.type == "cuda" else max(1, RUN_BYTES // per_image)
    return [slice(i, min(i + n, nb)) for i in range(0, nb, n)]


def _cat(parts: list) -> torch.Tensor:
    """The runs' results in one tensor (no copy for a single run)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _conv_forward(a, ad, w, wd, bd, pad: int, k: int) -> torch.Tensor:
    """ż = conv(a, Ẇ) + ḃ + conv(ȧ, W) (B, K, C, H, W), from the primal maps a (B, C_in, H', W'), their tangents
    ȧ (B, K, C_in, H', W') or None, and the K kernel tangents as wd (K·C, C_in, k, k), bd (K·C)."""
    def run(r: slice) -> torch.Tensor:
        zd = F.conv2d(a[r], wd, bd, padding=pad)
        zd = zd.view(zd.shape[0], k, -1, *zd.shape[-2:])
        if ad is not None:
            zd += F.conv2d(ad[r].flatten(0, 1), w, padding=pad).view(zd.shape)
        return zd

    per_image = ((1 + k * (ad is not None)) * a[0].numel() + wd.shape[0] * a[0, 0].numel()) * a.element_size()
    return _cat([run(r) for r in _runs(a.shape[0], per_image, a.device)])


def _conv_wgrad(gzd, a, g, ad, shape, pad: int):
    """The kernel and bias tangents' gradients, Σ ġ ⋆ a + g ⋆ ȧ (K, C, C_in, k, k) and Σ ġ (K, C), from ġ
    (B, K, C, h, w), the primal maps a and gradients g, and ȧ (B, K, C_in, H, W) or None."""
    k, co, ci, kk = shape[:4]
    gw = gb = None
    per_image = (gzd[0].numel() + (ad[0].numel() if ad is not None else a[0].numel())) * gzd.element_size()
    for r in _runs(gzd.shape[0], per_image, gzd.device):
        w_, b_ = _wgrad(gzd[r].flatten(1, 2), a[r], (k * co, ci, kk, kk), pad, bias=True)
        w_ = w_.view(shape)
        if ad is not None:
            w_ += _wgrad(g[r], ad[r].flatten(1, 2), (co, k * ci, kk, kk), pad).view(co, k, ci, kk, kk).transpose(0, 1)
        gw, gb = (w_, b_) if gw is None else (gw.add_(w_), gb.add_(b_))
    return gw, gb.view(k, co)


def _input_grad(gzd: torch.Tensor, g: torch.Tensor, w: torch.Tensor, wt: torch.Tensor, pad: int) -> torch.Tensor:
    """The tangent maps' input gradient conv_T(ġ, W) + conv_T(g, Ẇ) (B, K, C_in, H, W), from ġ (B, K, C, h, w),
    g (B, C, h, w) and Ẇ as wt (C, K·C_in, k, k)."""
    nb, k = gzd.shape[:2]

    def run(r: slice) -> torch.Tensor:
        out = F.conv_transpose2d(gzd[r].flatten(0, 1), w, padding=pad)
        out = out.view(-1, k, *out.shape[1:])
        return out.add_(F.conv_transpose2d(g[r], wt, padding=pad).view(out.shape))

    size = [n + w.shape[-1] - 1 - 2 * pad for n in g.shape[-2:]]
    per_image = (gzd[0].numel() + k * w.shape[1] * size[0] * size[1]) * gzd.element_size()
    return _cat([run(r) for r in _runs(nb, per_image, gzd.device)])


def _primal(spec, kind: str, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    """Every map and gradient of one step's forward and backward at θ_t that the tangents need."""
    params = unflatten(layout(spec), theta)
    nb = x.shape[0]
    curved = curvature(spec.activation)
    a = x.view(nb, *spec.image)
    convs, dense = [], []
    for i, c in enumerate(spec.convs):
        z = F.conv2d(a, params[2 * i], params[2 * i + 1], padding=_pad(c))
        h, d1, d2 = activation(spec.activation, z)
        m = {"a": a, "z": z, "d1": d1, "d2": d2 if curved else None, "index": None}
        if c.pool > 1 and spec.pooling == "max":
            a, index = F.max_pool2d(h, c.pool, return_indices=True)
            m["index"] = index.flatten(2)
        else:
            a = _pool(spec, c, m, h)
        convs.append(m)
    a = a.flatten(1)
    heads = params[2 * len(spec.convs):]
    n_dense = len(heads) // 2
    for i in range(n_dense):
        z = F.linear(a, heads[2 * i], heads[2 * i + 1])
        dense.append({"a": a, "z": z})
        if i < n_dense - 1:
            a, d1, d2 = activation(spec.activation, z)
            dense[-1].update(d1=d1, d2=d2)
    logits = dense[-1]["z"]
    onehot = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
    p = torch.softmax(logits, -1) if kind == "cross_entropy" else None
    g = ((p if p is not None else logits) - onehot) / nb
    for i in range(n_dense - 1, -1, -1):
        dense[i]["g"] = g
        da = g @ heads[2 * i]
        if i > 0:
            dense[i - 1]["curv"] = dense[i - 1]["d2"] * da
            g = da * dense[i - 1]["d1"]
    da = da.view(nb, *spec.maps[-1])
    for i in range(len(spec.convs) - 1, -1, -1):
        c, m = spec.convs[i], convs[i]
        m["g"] = _unpool(spec, c, m, da, m["d1"])
        if curved:
            m["curv"] = _unpool(spec, c, m, da, m["d2"])  # φ''(z) ⊙ ∂L/∂h
        if i > 0:
            da = torch.nn.grad.conv2d_input(m["a"].shape, params[2 * i], m["g"], padding=_pad(c))
    return params, convs, dense, p


def _patch_size(spec) -> int:
    """O: the first layer's patch length, with the bias's 1."""
    return spec.image[0] * spec.convs[0].kernel ** 2 + 1


def _patches_pay(spec, k: int) -> bool:
    """Whether the first layer's per-step coefficients (O per pooled pixel) are no bigger than K tangent maps."""
    _, hh, ww = spec.unpooled[0]
    return _patch_size(spec) * spec.maps[1][1] * spec.maps[1][2] <= k * hh * ww


def _window_weights(spec, c, m: dict) -> torch.Tensor:
    """Each pooled pixel's weights on its window's pixels, φ'(z) folded in (B, s², C, h·w): avg 1/s², max the
    primal's argmax."""
    d1, s = m["d1"], c.pool
    nb, co, hh, ww = d1.shape
    h, w = hh // s, ww // s
    win = _windows(d1, s)  # (B, C, h, s, w, s)
    if spec.pooling == "max" and s > 1:
        pixels = _windows(torch.arange(hh * ww, device=d1.device).view(hh, ww), s)
        win = win * (pixels == m["index"].view(nb, co, h, 1, w, 1))
    out = d1.new_empty(nb, s, s, co, h, w)
    torch.mul(win.permute(0, 3, 5, 1, 2, 4), 1.0 if spec.pooling == "max" else 1.0 / (s * s), out=out)
    return out.view(nb, s * s, co, h * w)


def _patch_windows(spec, c, a: torch.Tensor) -> torch.Tensor:
    """The first layer's [patch, 1] at every pixel of every pooling window (B, s², O, h·w)."""
    nb, s, kk, pad = a.shape[0], c.pool, c.kernel, _pad(c)
    _, h, w = spec.maps[1]
    u = F.pad(a, (pad,) * 4).unfold(2, kk, 1).unfold(3, kk, 1)[:, :, :h * s, :w * s]  # (B, C_in, H, W, k, k)
    u = u.unflatten(3, (w, s)).unflatten(2, (h, s)).permute(0, 3, 5, 1, 6, 7, 2, 4)  # (B, s, s, C_in, k, k, h, w)
    out = a.new_empty(nb, s, s, _patch_size(spec), h, w)
    out[:, :, :, :-1].view(u.shape).copy_(u)
    out[:, :, :, -1] = 1
    return out.view(nb, s * s, -1, h * w)


def _first_layer(spec, c, m: dict, k: int) -> dict | None:
    """The first layer's tangents without its tangent maps, when that is smaller. Its input has no tangent, so
    ż = Ẇ·[patch, 1] is linear in the kernel tangent with coefficients fixed per step: the pooled tangent is
    Ẇ times pool(φ'(z) ⊙ [patch, 1]) ("coef", (B, C, O, h·w), O = C_in·k² + 1), and so is Ġ's main part;
    the φ'' part needs only Q = Σ φ''·∂L/∂h · [patch, 1][patch, 1]ᵀ ("q", (C, O, O)). None when those
    outweigh the K tangents' maps (they are about 4× smaller on LeNet-5 at 16 tangents)."""
    if not _patches_pay(spec, k):
        return None
    weights, patches = _window_weights(spec, c, m), _patch_windows(spec, c, m["a"])
    coef = weights[:, 0, :, None] * patches[:, 0, None]
    for j in range(1, weights.shape[1]):
        coef.addcmul_(weights[:, j, :, None], patches[:, j, None])
    first = {"coef": coef}
    if curvature(spec.activation):
        curv = _windows(m["curv"], c.pool).permute(0, 3, 5, 1, 2, 4).reshape(weights.shape)
        first["q"] = torch.einsum("bscp,bsop,bsqp->coq", curv, patches, patches)
    return first


def hessian_products(spec, kind: str, theta, tangents, x, y) -> torch.Tensor:
    """H(θ) V (K, P) for the batch loss at θ, by hand: the forward-over-reverse of one step."""
    params, convs, dense, p = _primal(spec, kind, theta, x, y)
    nb, k = x.shape[0], tangents.shape[0]
    dots = unflatten(layout(spec), tangents)  # per block (K, *shape)
    curved = curvature(spec.activation)
    out = torch.empty_like(tangents)
    grads = unflatten(layout(spec), out)
    n_conv = len(spec.convs)
    # forward: ż = conv(ȧ, W) + conv(a, Ẇ) + ḃ, ȧ' = pool(φ'(z) ⊙ ż), every map (B, K, C, H, W)
    ad, zds, ads = None, [], []
    first = _first_layer(spec, spec.convs[0], convs[0], k) if spec.convs else None
    for i, c in enumerate(spec.convs):
        m, wd, bd = convs[i], dots[2 * i], dots[2 * i + 1]
        co, ci, kk = wd.shape[1:4]
        if i == 0 and first is not None:
            first["w"] = torch.cat([wd.reshape(k, co, -1), bd[..., None]], -1).transpose(0, 1)  # (C, K, O)
            ad = torch.matmul(first["w"], first["coef"]).transpose(1, 2).reshape(nb, k, *spec.maps[1])
            ads.append(None)
            zds.append(None)
            continue
        zd = _conv_forward(m["a"], ad, params[2 * i], wd.reshape(k * co, ci, kk, kk), bd.reshape(k * co), _pad(c), k)
        ads.append(ad)
        zds.append(zd)
        ad = _pool(spec, c, m, zd, m["d1"][:, None])
    heads, hdots, hgrads = params[2 * n_conv:], dots[2 * n_conv:], grads[2 * n_conv:]
    n_dense = len(heads) // 2
    ad = ad.reshape(nb, k, -1) if ad is not None else None  # None: no conv layers, the input has no tangent
    dzs, dads = [], []
    for i in range(n_dense):
        w, wd, bd = heads[2 * i], hdots[2 * i], hdots[2 * i + 1]
        zd = torch.einsum("bj,koj->bko", dense[i]["a"], wd) + bd
        if ad is not None:
            zd += ad @ w.T
        dads.append(ad)
        dzs.append(zd)
        if i < n_dense - 1:
            ad = zd * dense[i]["d1"][:, None]
    zd = dzs[-1]
    if p is not None:
        gd = (zd - (zd * p[:, None]).sum(-1, keepdim=True)) * p[:, None] / nb
    else:
        gd = zd / nb
    # backward: Ġ = ġᵀa + gᵀȧ, ġ_prev = (ġW + gẆ) ⊙ φ' + φ''·(∂L/∂a) ⊙ ż
    for i in range(n_dense - 1, -1, -1):
        w, wd = heads[2 * i], hdots[2 * i]
        g, a = dense[i]["g"], dense[i]["a"]
        hgrads[2 * i].copy_(torch.einsum("bko,bj->koj", gd, a))
        if dads[i] is not None:
            hgrads[2 * i].add_(torch.einsum("bo,bkj->koj", g, dads[i]))
        hgrads[2 * i + 1].copy_(gd.sum(0))
        dad = gd @ w + torch.einsum("bo,koj->bkj", g, wd)
        if i > 0:
            gd = dad * dense[i - 1]["d1"][:, None]
            if curved:
                gd.addcmul_(dense[i - 1]["curv"][:, None], dzs[i - 1])
    dad = dad.view(nb, k, *spec.maps[-1])
    for i in range(n_conv - 1, -1, -1):
        c, m, wd = spec.convs[i], convs[i], dots[2 * i]
        co, ci, kk = wd.shape[1:4]
        if i == 0 and first is not None:
            by_channel = dad.flatten(-2).transpose(1, 2)  # (B, C, K, h·w)
            gw = torch.matmul(by_channel, first["coef"].transpose(-1, -2)).sum(0)  # (C, K, O)
            if curved:
                gw.baddbmm_(first["w"], first["q"])
            grads[0].copy_(gw[..., :-1].transpose(0, 1).reshape(k, co, ci, kk, kk))
            grads[1].copy_(gw[..., -1].T)
            continue
        gzd = _unpool(spec, c, m, dad, m["d1"][:, None])
        if curved:
            gzd.addcmul_(m["curv"][:, None], zds[i])
        gw, gb = _conv_wgrad(gzd, m["a"], m["g"], ads[i], wd.shape, _pad(c))
        grads[2 * i].copy_(gw)
        grads[2 * i + 1].copy_(gb)
        if i > 0:
            dad = _input_grad(gzd, m["g"], params[2 * i], wd.transpose(0, 1).reshape(co, k * ci, kk, kk), _pad(c))
    return out


def replay(traj, tangents: torch.Tensor, checkpoints=(), should_stop=None) -> dict[int, torch.Tensor]:
    """One chunk of tangents (K, P) through every recorded step; {t: tangent of θ_t (K, P)}, always with T."""
    exp = traj.experiment
    return general.replay(traj, tangents, checkpoints, should_stop,
                          functools.partial(hessian_products, exp.model, exp.train.loss))


def width(experiment: Experiment, on_gpu: bool) -> int:
    """Tangent columns per replay: as many as keep two activation-sized maps per tangent under 384 MB (8 GB on
    a GPU), at most 128 (4,096), in pieces of equal width: LeNet-5 16, the cnn preset 115. Measured on LeNet-5,
    two workers side by side, wall ms per column-step (medians of 5): 16 tangents 9.2, 24 9.6, 32 10.4; in a
    run before the convolutions ran in runs of images, 16 10.4, 32 10.6, 48 10.0, 64 11.9."""
    per_tangent = 2 * experiment.train.batch_size * n_activations(experiment.model) * experiment.torch_dtype.itemsize
    return general.width(experiment, on_gpu, per_tangent, budget=(8 << 30) if on_gpu else (384 << 20))


def memory(experiment: Experiment, k: int) -> dict[str, int]:
    """Bytes of the recorded run and of one replay's tangent buffers for k columns (two maps per tangent)."""
    return general.memory(experiment, k, maps=2)


def flops(experiment: Experiment) -> float:
    """Floating-point operations for J, 2 per multiply-add of the convolutions and GEMMs whose work grows with
    the columns: per step and column, twice the first layer's forward (ż from Ẇ, and Ġ), or with its
    coefficients two products with them, and six times every later layer's forward."""
    spec, tspec = experiment.model, experiment.train
    b = tspec.batch_size
    layers = [2 * b * co * h * w * ci * c.kernel ** 2
              for c, (ci, _, _), (co, h, w) in zip(spec.convs, spec.maps, spec.unpooled)]
    s = spec.sizes
    layers += [2 * b * s[i] * s[i + 1] for i in range(len(s) - 1)]
    first = 2 * layers[0]
    if spec.convs and _patches_pay(spec, width(experiment, False)):
        first = 2 * 2 * b * math.prod(spec.maps[1]) * _patch_size(spec)
    per = first + 6 * sum(layers[1:])
    return float(per) * tspec.epochs * (experiment.data.n_train // b) * spec.n_params
