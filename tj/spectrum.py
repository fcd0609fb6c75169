"""The SVD of J and what it says: singular values, alignment u_i·v_i, regions, movement."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from . import threads

REGIONS = ("chaotic", "bulk", "stable")


class SVDFailed(Exception):
    """Every SVD route failed to converge."""


@dataclass(frozen=True, eq=False)
class Spectrum:
    """J = U diag(σ) Vᵀ with σ descending, plus alignment u_i·v_i and movement |v_i·(θ_T − θ_0)|."""

    singular_values: np.ndarray  # (P,) float64
    U: np.ndarray                # (P, P): column i is u_i, where v_i ends up (J's dtype)
    Vh: np.ndarray               # (P, P): row i is v_i, a direction in initialisation space (J's dtype)
    alignment: np.ndarray        # (P,)
    movement: np.ndarray         # (P,)
    seconds: float
    route: str

    @property
    def n(self) -> int:
        return len(self.singular_values)


def _verified(jac: torch.Tensor, u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor, checks: int = 16) -> bool:
    """A decomposition that converged: finite, descending, and J v_i = σ_i u_i on a spread of indices."""
    if not (torch.isfinite(s).all() and torch.isfinite(u).all() and torch.isfinite(vh).all()):
        return False
    if (s[:-1] < s[1:]).any():
        return False
    idx = torch.linspace(0, len(s) - 1, min(checks, len(s))).round().long()
    resid = (jac.double() @ vh[idx].double().T - u[:, idx].double() * s[idx].double()).norm(dim=0)
    return bool((resid <= 1e-4 * s[0].double()).all())


def svd(jac: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """U, σ (float64), Vᵀ of J by the fastest route that provably worked.

    A float32 J goes first to LAPACK's float32 divide-and-conquer (MKL, through torch): half the time and
    memory of float64 and as accurate as a float32 J warrants, but numpy's, scipy's and JAX's builds of the
    same routine fail to converge on the paper's J, so the result is checked (finite, ordered, J v_i = σ_i u_i)
    and otherwise discarded. Then float64 gesdd: LAPACK wants column-major input, and the C-ordered float64
    copy of J is exactly Jᵀ in column-major order, so Jᵀ = V Σ Uᵀ is decomposed in place. Last, gesvd."""
    import scipy.linalg

    if jac.dtype == torch.float32:
        try:
            u, s, vh = torch.linalg.svd(jac, full_matrices=False)
            if _verified(jac, u, s, vh):
                return u.numpy(), s.double().numpy(), vh.numpy(), "float32 gesdd (verified)"
        except RuntimeError:  # torch.linalg.LinAlgError: did not converge
            pass

    def fresh():  # a float64 copy that LAPACK may destroy, never the caller's J
        return jac.detach().cpu().to(torch.float64, copy=True).numpy()

    for driver in ("gesdd", "gesvd"):
        a = fresh()
        try:
            vt_u, s, u_t = scipy.linalg.svd(a.T, full_matrices=False, overwrite_a=True, check_finite=False,
                                            lapack_driver=driver)
        except (np.linalg.LinAlgError, ValueError):
            continue
        if np.isfinite(s).all():
            return u_t.T, s, vt_u.T, f"float64 {driver}"
    raise SVDFailed("the SVD of J did not converge (LAPACK gesdd in float32 and float64, gesvd in float64)")


def spectrum(jac: torch.Tensor, theta0: torch.Tensor, theta_final: torch.Tensor) -> Spectrum:
    """The spectrum of J and the per-direction quantities the paper plots."""
    start = time.perf_counter()
    if not torch.isfinite(jac).all():
        raise SVDFailed("J has NaN/Inf entries; there is no spectrum to compute")
    with threads.limit(threads.THREADS):  # LAPACK's own threads; its bits follow their count (README)
        u, s, vh, route = svd(jac)
    alignment = np.einsum("ji,ij->i", u, vh, dtype=np.float64)
    moved = (theta_final - theta0).detach().cpu().double().numpy()
    movement = np.abs(vh @ moved)
    return Spectrum(s, u, vh, alignment, movement, time.perf_counter() - start, route)


def bulk_mask(sigma: np.ndarray, *, rank: int | None = None, threshold: float | None = None) -> np.ndarray:
    """Which indices form the bulk: the `rank` smallest |σ−1|, or all with |σ−1| < `threshold`."""
    dist = np.abs(np.asarray(sigma, dtype=np.float64) - 1)
    if (rank is None) == (threshold is None):
        raise ValueError("give exactly one of rank or threshold")
    mask = np.zeros(len(dist), dtype=bool)
    if rank is not None:
        if not 0 <= rank <= len(dist):
            raise ValueError(f"bulk rank must be between 0 and {len(dist)}, got {rank}")
        mask[np.argsort(dist, kind="stable")[:rank]] = True
    else:
        if not threshold > 0:
            raise ValueError(f"bulk threshold must be positive, got {threshold}")
        mask = dist < threshold
    return mask


def regions(sigma: np.ndarray, *, rank: int | None = None, threshold: float | None = None) -> np.ndarray:
    """A region name per index: bulk as chosen, else chaotic (σ > 1) or stable (σ < 1)."""
    bulk = bulk_mask(sigma, rank=rank, threshold=threshold)
    names = np.where(np.asarray(sigma) > 1, "chaotic", "stable").astype(object)
    names[bulk] = "bulk"
    return names


def region_counts(labels: np.ndarray) -> dict[str, int]:
    """How many indices fall in each region."""
    return {r: int(np.sum(labels == r)) for r in REGIONS}


def threshold_counts(sigma: np.ndarray, thresholds=(1e-3, 1e-2, 1e-1)) -> dict[float, int]:
    """How many σ lie within τ of 1, per τ."""
    dist = np.abs(np.asarray(sigma) - 1)
    return {t: int(np.sum(dist < t)) for t in thresholds}


@dataclass(frozen=True, eq=False)
class Direction:
    """A direction v by parameter block: each block's share of ‖v‖², and the block holding most of it, in its shape.

    `kind` says how to draw `values`: 'images' (units, H, W), a dense first layer on the pixels; 'kernels'
    (out, in, k, k), a convolution; 'matrix' (rows, columns); 'vector' (n,). `scale` is max |v| over the whole
    vector, the colour scale's limit, so a block that holds almost nothing is drawn near white."""

    names: list
    shares: np.ndarray
    block: str
    kind: str
    values: np.ndarray
    scale: float


def direction_by_block(spec, v: np.ndarray) -> Direction:
    """v's share of ‖v‖² per parameter block, and the largest block's weights in their shape."""
    from .networks import first_layer, layout

    blocks, first = layout(spec), first_layer(spec)
    v = np.asarray(v, dtype=np.float64)
    total = float(v @ v) or 1.0
    shares = np.array([float(v[b.start:b.stop] @ v[b.start:b.stop]) / total for b in blocks])
    top = blocks[int(np.argmax(shares))]
    values = v[top.start:top.stop].reshape(top.shape)
    if first is not None and first.kind == "dense" and top == first.weight:
        kind, values = "images", values.reshape(len(values), *first.image[1:])
    elif values.ndim == 4:
        kind = "kernels"
    elif values.ndim == 1:
        kind = "vector"
    else:
        kind, values = "matrix", values.reshape(len(values), -1)
    return Direction([b.name for b in blocks], shares, top.name, kind, values, float(np.abs(v).max()) or 1.0)


def showcase_direction(spec, sigma: np.ndarray, vh: np.ndarray, dead: np.ndarray, bulk: np.ndarray) -> int:
    """The bulk index to show first: among bulk directions whose first-layer part is spread over at least a
    quarter of the hidden units (one image per unit shows a pattern, not a lone pixel), the one that puts the
    largest share of its norm on pixels that are zero in every training image; the middle bulk index if there
    are no such pixels or the first layer is not dense weights on the pixels (tj.networks.first_layer)."""
    from .networks import first_layer

    candidates = np.flatnonzero(bulk)
    if not len(candidates):
        return 0
    first = first_layer(spec)
    if not len(dead) or first is None or first.kind != "dense":
        return int(candidates[len(candidates) // 2])
    w1 = first.weight
    share, spread = np.empty(len(candidates)), np.empty(len(candidates), dtype=bool)
    for c in range(0, len(candidates), 256):  # a slice at a time: the page may run for many sessions at once
        part = slice(c, c + 256)
        rows = np.asarray(vh[candidates[part]], dtype=np.float64)
        images = rows[:, w1.start:w1.stop].reshape(len(rows), *w1.shape)    # (candidates, units, pixels)
        per_unit = (images ** 2).sum(2)
        total = np.maximum(per_unit.sum(1, keepdims=True), 1e-300)
        spread[part] = (per_unit > 0.05 * total).sum(1) >= max(1, w1.shape[0] // 4)
        share[part] = (images[:, :, np.asarray(dead)] ** 2).sum((1, 2)) / np.maximum((rows ** 2).sum(1), 1e-300)
    score = np.where(spread, share, share - 2)  # a spread-out direction first, whatever its share
    return int(candidates[int(np.argmax(score))])
