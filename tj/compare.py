"""Comparing bulks: variants of an experiment, principal angles, the random baseline, the parameter-function Jacobian."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import jacrev

from . import networks
from .data import load
from .presets import PRESETS, Experiment


def variants(exp: Experiment, n_seeds: int = 2) -> dict[str, Experiment]:
    """The paper's comparisons: shuffled labels and uniform-noise inputs from the same θ_0, and other seeds."""
    out = {"shuffled labels": exp.replace(**{"data.labels": "shuffled"}),
           "noise inputs": exp.replace(**{"data.inputs": "uniform"})}
    for i in range(1, n_seeds + 1):
        out[f"seed {exp.seed + i}"] = exp.replace(seed=exp.seed + i)
    return out


def switches(exp: Experiment) -> dict[str, Experiment]:
    """Optimizer and architecture variants of an experiment (same seed): does the bulk survive them?

    Last come the other families on the same data, each as its smallest preset's network."""
    common = {
        "momentum 0": exp.replace(**{"train.momentum": 0.0}),
        "Adam (lr 3e-3)": exp.replace(**{"train.optimizer": "adam", "train.lr": 3e-3}),
    }
    others = {}
    for name, p in sorted(PRESETS.items(), key=lambda item: item[1].model.n_params):
        fam = networks.family(p.model)
        if fam != networks.family(exp.model) and p.data.dataset == exp.data.dataset and fam not in others:
            others[fam] = (f"{networks.describe(p.model)} ({name} preset), same data", exp.replace(model=p.model))
    return {**common, **networks.of(exp.model).variants(exp),
            "half the training set": exp.replace(**{"data.n_train": exp.data.n_train // 2}), **dict(others.values())}


def bulk_basis(sigma: np.ndarray, vh: np.ndarray, k: int) -> np.ndarray:
    """The k right singular vectors with the smallest |σ − 1| as rows (k, P)."""
    return vh[np.argsort(np.abs(np.asarray(sigma) - 1), kind="stable")[:k]]


def _complement(a: np.ndarray) -> np.ndarray:
    """An orthonormal basis (P − k, P) of the orthogonal complement of the rows of a."""
    q, _ = np.linalg.qr(a.T, mode="complete")
    return q[:, a.shape[0]:].T


def mean_principal_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine of the principal angles between row spaces of orthonormal a (k, P) and b (k, P).

    For k > P/2 the complements are compared instead: their nontrivial angles are the same and the
    other 2k − P cosines are 1, which keeps every SVD at most (P/2) × (P/2)."""
    k, p = a.shape
    if k == 0:
        return float("nan")
    if 2 * k > p and k < p:
        return _through_complements(_complement(a), _complement(b), k)
    c = np.linalg.svd(a @ b.T, compute_uv=False)
    return float(np.minimum(c, 1).mean())


def _through_complements(ca: np.ndarray, cb: np.ndarray, k: int) -> float:
    """Mean principal cosine of two k-dimensional subspaces from their complements ca, cb (P − k, P)."""
    c = np.linalg.svd(ca @ cb.T, compute_uv=False)
    return float(((k - len(ca)) + np.minimum(c, 1).sum()) / k)


def random_overlap(p: int, k: int) -> float:
    """Expected mean principal cosine of two uniformly random k-dimensional subspaces of ℝ^p (Wachter law)."""
    from scipy.integrate import quad

    if k >= p:
        return 1.0
    if 2 * k > p:  # complements: 2k − p cosines are 1, the rest those of two random (p − k)-subspaces
        m = p - k
        return ((2 * k - p) + m * random_overlap(p, m)) / k
    r = k / p
    top = 4 * r * (1 - r)  # squared cosines fill [0, 4r(1 − r)] with density √(λ(top − λ)) / (2πrλ(1 − λ))
    density = lambda lam: math.sqrt(max(lam * (top - lam), 0.0)) / (2 * math.pi * r * lam * (1 - lam))  # noqa: E731
    mean, _ = quad(lambda lam: math.sqrt(lam) * density(lam), 0, top, limit=200)
    return mean


def leading_overlap(va: np.ndarray, vb: np.ndarray, k: int) -> float:
    """mean_principal_cosine of the first k rows of two orthogonal (P, P) bases; past P/2 their other rows are
    the complements, so no QR is needed."""
    p = va.shape[0]
    if 2 * k > p and k < p:
        return _through_complements(va[k:], vb[k:], k)
    return mean_principal_cosine(va[:k], vb[:k])


def overlap_sweep(sa: tuple, sb: tuple, ks) -> np.ndarray:
    """Mean principal cosine between the rank-k bulks of two spectra (σ, Vᵀ), for each k."""
    va, vb = bulk_basis(*sa, len(sa[0])), bulk_basis(*sb, len(sb[0]))
    return np.array([leading_overlap(va, vb, k) for k in ks])


def overlap_matrix(spectra: dict, k: int) -> np.ndarray:
    """Mean principal cosine between the rank-k bulks of every pair of spectra (σ, Vᵀ); symmetric, ones on the diagonal."""
    bases = [bulk_basis(s, vh, len(s)) for s, vh in spectra.values()]
    out = np.eye(len(bases))
    for i in range(len(bases)):
        for j in range(i + 1, len(bases)):
            out[i, j] = out[j, i] = leading_overlap(bases[i], bases[j], k)
    return out


def bulk_table(sigmas: dict, tau: float = 1e-2) -> list[dict]:
    """Per run: P, the bulk size at τ (and its share of P), at 1e-2 and 1e-1, and σ₁."""
    rows = []
    for name, s in sigmas.items():
        d = np.abs(np.asarray(s) - 1)
        row = {"run": name, "P": len(d), f"bulk (|σ−1| < τ = {tau:g})": int((d < tau).sum()),
               "share of P": round(float((d < tau).mean()), 3)}
        row |= {f"|σ−1| < {t:g}": int((d < t).sum()) for t in (1e-2, 1e-1) if t != tau}
        rows.append(row | {"σ₁": round(float(s[0]), 2)})
    return rows


def default_ks(p: int, n: int = 12) -> list[int]:
    """k values to sweep: geometric from P/50 to 0.9·P."""
    return sorted({int(round(k)) for k in np.geomspace(max(2, p // 50), 0.9 * p, n)})


def _log_softmax_outputs(spec, x: torch.Tensor):
    return lambda theta: torch.log_softmax(networks.forward(spec, theta, x), dim=1).reshape(-1)


@dataclass(frozen=True, eq=False)
class FunctionJacobian:
    """Singular values and right singular vectors (ascending σ) of ∂ log-softmax(f(θ, X)) / ∂θ."""

    singular_values: np.ndarray  # (P,) ascending
    vectors: np.ndarray          # (P, P): row i belongs to singular_values[i]
    n_outputs: int

    def null_space(self, k: int) -> np.ndarray:
        """The k directions that change the outputs least, as rows."""
        return self.vectors[:k]


def function_jacobian(spec, theta: torch.Tensor, x: torch.Tensor, batch: int = 64) -> FunctionJacobian:
    """The parameter-function Jacobian on inputs x, through its Gram matrix JᵀJ accumulated in batches (float64)."""
    theta = theta.double()
    gram = torch.zeros(len(theta), len(theta), dtype=torch.float64)
    for i in range(0, len(x), batch):
        jac = jacrev(_log_softmax_outputs(spec, x[i:i + batch].double()))(theta)  # (b·10, P)
        gram += jac.T @ jac
    lam, vec = torch.linalg.eigh(gram)
    return FunctionJacobian(lam.clamp(min=0).sqrt().numpy(), vec.T.contiguous().numpy(), 10 * len(x))


def inputs_for(exp: Experiment, which: str) -> torch.Tensor:
    """Input sets for the parameter-function Jacobian: 'test' digits, 'train' digits, or Gaussian 'noise'."""
    data = load(exp.data)
    if which == "test":
        return data.x_test
    if which == "train":
        return data.x_train
    if which == "noise":
        return torch.randn(data.x_test.shape, generator=torch.Generator().manual_seed(0))
    raise ValueError(f"unknown input set {which!r}")


