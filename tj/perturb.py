"""Perturbing along singular directions: the output effect in and out of distribution, linearity, subspace training."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import load, out_of_distribution
from .networks import forward, init_params
from .presets import Experiment
from .spectrum import REGIONS
from .train import evaluate, train


def max_kl(exp: Experiment, theta: torch.Tensor, directions: torch.Tensor, x: torch.Tensor, alpha: float = 1.0,
           chunk: int = 64) -> np.ndarray:
    """For each direction v_i (rows, unit norm): max over inputs of KL(p(θ) ‖ p(θ + αv_i)), in nats."""
    dtype = torch.float64
    theta, x = theta.to(dtype), x.to(dtype)
    logp = torch.log_softmax(forward(exp.model, theta, x), -1)  # (N, 10)
    p = logp.exp()
    out = []
    for i in range(0, len(directions), chunk):
        thetas = theta + alpha * directions[i:i + chunk].to(dtype)        # (c, P)
        logq = torch.log_softmax(forward(exp.model, thetas, x), -1)      # (c, N, 10)
        kl = (p * (logp - logq)).sum(-1).clamp(min=0)                    # (c, N)
        out.append(kl.max(-1).values)
    return torch.cat(out).numpy()


def output_effect(exp: Experiment, theta_final: torch.Tensor, vh: np.ndarray, alpha: float = 1.0,
                  progress=None) -> dict[str, np.ndarray]:
    """Max-KL per direction on train, test, inverted test and Gaussian-noise inputs (the paper's figure 4)."""
    sets = out_of_distribution(load(exp.data))
    dirs = torch.from_numpy(np.ascontiguousarray(vh))
    out = {}
    for j, (name, x) in enumerate(sets.items()):
        out[name] = max_kl(exp, theta_final, dirs, x, alpha)
        if progress is not None:
            progress(j + 1, len(sets))
    return out


def region_medians(values: dict, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Per input set, the median over each region's directions (NaN for an empty region)."""
    return {name: {r: float(np.median(v[labels == r])) if (labels == r).any() else float("nan")
                   for r in REGIONS} for name, v in values.items()}


def probabilities(exp: Experiment, theta: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Class probabilities (N, 10)."""
    return torch.softmax(forward(exp.model, theta.double(), x.double()), -1).numpy()


def prediction_titles(exp: Experiment, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """'pred 3 (97%) · true 3' for each input."""
    probs = probabilities(exp, theta, x)
    return [f"pred {int(p)} ({100 * probs[i, p]:.0f}%) · true {int(t)}" for i, (p, t) in enumerate(zip(probs.argmax(1), y))]


HOLD = 0.01  # a share of test predictions changed up to which they "still hold"


@dataclass(frozen=True, eq=False)
class ClassFlips:
    """Share of predictions whose class changes under θ_T + s·v, per input set and step size s: along v_index, and
    the mean over the first `n_chaotic` chaotic directions."""

    index: int
    sizes: np.ndarray
    along: dict      # input set → (len(sizes),)
    chaotic: dict    # input set → (len(sizes),); empty when there is no chaotic direction
    n_chaotic: int

    @property
    def see_size(self) -> float:
        """The largest step at which the test predictions still hold (at most HOLD of them change), else the
        smallest step tried."""
        held = np.flatnonzero(np.asarray(self.along["test"]) > HOLD)
        last = held[0] if len(held) else len(self.sizes)
        return float(self.sizes[max(last - 1, 0)])


def flip_shares(exp: Experiment, theta: torch.Tensor, directions: torch.Tensor, sizes, x: torch.Tensor) -> np.ndarray:
    """(directions, sizes): the share of inputs x whose predicted class differs at θ + s·v from θ's."""
    theta, x, dirs = theta.double(), x.double(), directions.double()
    before = forward(exp.model, theta, x).argmax(-1)                               # (N,)
    return np.stack([(forward(exp.model, theta + float(s) * dirs, x).argmax(-1) != before).double().mean(-1).numpy()
                     for s in sizes], axis=1)                                      # (m, len(sizes))


def class_flips(exp: Experiment, theta_final: torch.Tensor, sigma: np.ndarray, vh: np.ndarray, index: int,
                tau: float, sizes, n_chaotic: int = 20, sets=("test", "inverted", "noise")) -> ClassFlips:
    """How often predictions change class along v_index and along the first chaotic directions (σ > 1 + τ)."""
    inputs = out_of_distribution(load(exp.data))
    chaotic = np.flatnonzero(np.asarray(sigma) > 1 + tau)[:n_chaotic]
    rows = torch.from_numpy(np.ascontiguousarray(vh[[index, *chaotic]]))
    along, mean = {}, {}
    for name in sets:
        shares = flip_shares(exp, theta_final, rows, sizes, inputs[name])
        along[name] = shares[0]
        if len(chaotic):
            mean[name] = shares[1:].mean(0)
    return ClassFlips(int(index), np.asarray(sizes, dtype=np.float64), along, mean, len(chaotic))


@dataclass(frozen=True, eq=False)
class StepEffect:
    """A few images of each input set and the predicted class, with its probability, before → after θ_T + s·v."""

    images: np.ndarray   # (n, pixels), clipped to [0, 1] for display
    titles: tuple


def see_it(exp: Experiment, theta_final: torch.Tensor, v: np.ndarray, size: float, per_set: int = 5,
           sets=("test", "inverted", "noise")) -> StepEffect:
    """Predictions on `per_set` images of each input set before and after a step of `size` along v."""
    inputs = out_of_distribution(load(exp.data))
    after_theta = theta_final.double() + float(size) * torch.from_numpy(np.ascontiguousarray(v)).double()
    images, titles = [], []
    for name in sets:
        x = inputs[name][:per_set]
        before, after = probabilities(exp, theta_final, x), probabilities(exp, after_theta, x)
        for j in range(len(x)):
            b, a = before[j].argmax(), after[j].argmax()
            images.append(np.clip(x[j].numpy(), 0, 1))
            titles.append(f"{name} {j}: {b} {100 * before[j, b]:.0f}% → {a} {100 * after[j, a]:.0f}%")
    return StepEffect(np.array(images), tuple(titles))


@dataclass(frozen=True, eq=False)
class Linearity:
    """Retraining from θ_0 + εv_k: the response along u_k, the rest, the test loss, and the prediction εσ_k."""

    index: int
    eps: np.ndarray
    along: np.ndarray       # |δ·u_k|
    across: np.ndarray      # ‖δ − (δ·u_k)u_k‖
    test_loss: np.ndarray
    predicted: np.ndarray   # ε σ_k
    theta0_norm: float = float("nan")  # ‖θ_0‖, the scale ε is measured against


def linearity(exp: Experiment, spectrum, index: int, eps=None, theta0=None, progress=None) -> Linearity:
    """Retrain from θ_0 + εv_k for each ε and measure δ = θ_T(θ_0 + εv_k) − θ_T(θ_0)."""
    eps = np.logspace(-3, 3, 30) if eps is None else np.asarray(eps, dtype=np.float64)
    dtype = torch.float64
    data = load(exp.data, dtype)
    theta0 = (init_params(exp.model, exp.seed, dtype) if theta0 is None else theta0).to(dtype)
    base = train(exp.model, exp.train, data, theta0, exp.seed).theta_final
    v = torch.from_numpy(np.ascontiguousarray(spectrum.Vh[index])).to(dtype)
    u = torch.from_numpy(np.ascontiguousarray(spectrum.U[:, index])).to(dtype)
    along, across, losses = [], [], []
    for j, e in enumerate(eps):
        res = train(exp.model, exp.train, data, theta0 + float(e) * v, exp.seed)
        delta = res.theta_final - base
        a = delta @ u
        along.append(abs(a.item()))
        across.append((delta - a * u).norm().item())
        losses.append(res.metrics.test_loss[-1] if res.ok else float("nan"))
        if progress is not None:
            progress(j + 1, len(eps))
    s = spectrum.singular_values[index]
    return Linearity(index, eps, np.array(along), np.array(across), np.array(losses), eps * s, theta0.norm().item())


SUBSPACES = ("bulk", "complement of bulk", "top-k (chaotic)", "bottom-k (stable)")


def subspace_rows(sigma: np.ndarray, kind: str, k: int) -> np.ndarray:
    """Which right singular vectors span each kind of k-dimensional subspace."""
    dist = np.abs(np.asarray(sigma) - 1)
    order = {"bulk": np.argsort(dist, kind="stable"), "complement of bulk": np.argsort(-dist, kind="stable"),
             "top-k (chaotic)": np.arange(len(sigma)), "bottom-k (stable)": np.arange(len(sigma))[::-1]}[kind]
    return order[:k]


def subspace_training(exp: Experiment, spectrum, ks, kinds=SUBSPACES, theta0=None, progress=None) -> dict:
    """Final test loss when training only c in θ = θ_0 + Bᵀc, B = k chosen right singular vectors."""
    dtype = exp.torch_dtype
    data = load(exp.data, dtype)
    theta0 = (init_params(exp.model, exp.seed, dtype) if theta0 is None else theta0).to(dtype)
    vh = torch.from_numpy(np.ascontiguousarray(spectrum.Vh)).to(dtype)
    out, done, total = {kind: [] for kind in kinds}, 0, len(kinds) * len(ks)
    for kind in kinds:
        for k in ks:
            basis = vh[torch.from_numpy(subspace_rows(spectrum.singular_values, kind, int(k)).copy())]
            res = train(exp.model, exp.train, data, theta0, exp.seed, basis=basis)
            out[kind].append(evaluate(exp.model, res.theta_final, data.x_test, data.y_test)[0] if res.ok
                             else float("nan"))
            done += 1
            if progress is not None:
                progress(done, total)
    return {kind: np.array(v) for kind, v in out.items()}


@dataclass(frozen=True, eq=False)
class BulkDirection:
    """The bulk direction to test honestly: σ closest to 1 among directions outside the exactly untouched subspace."""

    index: int
    distance: float          # |σ − 1|
    untouched_share: float   # ‖P_untouched v‖², the part of v inside the subspace training cannot touch
    n_untouched: int         # dimension of that subspace


def untouched_shares(vh: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """‖B v_i‖² for every row v_i of Vᵀ, B an orthonormal basis (rows) of the untouched subspace."""
    if len(basis) == 0:
        return np.zeros(len(vh))
    return ((np.asarray(vh, dtype=np.float64) @ np.asarray(basis, dtype=np.float64).T) ** 2).sum(1)


def bulk_direction(sigma: np.ndarray, vh: np.ndarray, basis: np.ndarray, max_share: float = 0.01) -> BulkDirection:
    """The v_i with σ_i closest to 1 whose share inside the untouched subspace is below max_share."""
    shares = untouched_shares(vh, basis)
    dist = np.abs(np.asarray(sigma, dtype=np.float64) - 1)
    outside = np.flatnonzero(shares < max_share)
    if not len(outside):
        raise ValueError("every singular direction lies in the untouched subspace; there is no approximate bulk")
    i = int(outside[np.argmin(dist[outside])])
    return BulkDirection(i, float(dist[i]), float(shares[i]), len(basis))


def spread_indices(sigma: np.ndarray, shares: np.ndarray, n: int = 5, tau: float = 0.1,
                   max_share: float = 0.01) -> tuple[int, ...]:
    """n bulk directions outside the untouched subspace, from the closest to 1 to |σ−1| ≈ τ, evenly in log |σ−1|."""
    dist = np.abs(np.asarray(sigma, dtype=np.float64) - 1)
    cand = np.flatnonzero((shares < max_share) & (dist < tau) & (dist > 0))
    if not len(cand):
        return ()
    logs = np.log10(dist[cand])
    targets = np.linspace(logs.min(), logs.max(), min(n, len(cand)))
    return tuple(sorted({int(cand[np.argmin(np.abs(logs - t))]) for t in targets}, key=lambda i: dist[i]))


@dataclass(frozen=True, eq=False)
class Spread:
    """Linearity |δ·u|/(εσ) and test loss after retraining from θ_0 + εv_i, for bulk directions at several |σ−1|."""

    indices: tuple[int, ...]
    distance: np.ndarray     # (n,) |σ_i − 1|
    eps: np.ndarray          # (m,)
    ratio: np.ndarray        # (n, m) |δ·u_i| / (ε σ_i): 1 where J's prediction holds
    test_loss: np.ndarray    # (n, m)
    base_test_loss: float    # without the nudge

    def rows(self) -> list[dict]:
        """One row per direction, for a table."""
        out = []
        for j, i in enumerate(self.indices):
            row = {"i": i, "|σ−1|": float(self.distance[j])}
            row |= {f"|δ·u|/(εσ) at ε={e:g}": float(r) for e, r in zip(self.eps, self.ratio[j])}
            row |= {f"test loss at ε={e:g}": float(t) for e, t in zip(self.eps, self.test_loss[j])}
            out.append(row)
        return out


def spread(exp: Experiment, spectrum, indices, eps=(1.0, 100.0, 1000.0), progress=None) -> Spread:
    """Retrain along each direction at each ε (len(indices) × len(eps) runs)."""
    eps = np.asarray(eps, dtype=np.float64)
    ratio, loss = [], []
    for j, i in enumerate(indices):
        step = None if progress is None else (lambda d, t, j=j: progress(j * len(eps) + d, len(indices) * len(eps)))
        lin = linearity(exp, spectrum, int(i), eps, progress=step)
        ratio.append(lin.along / lin.predicted)
        loss.append(lin.test_loss)
    data = load(exp.data, torch.float64)
    base = train(exp.model, exp.train, data, init_params(exp.model, exp.seed, torch.float64), exp.seed)
    sigma = np.asarray(spectrum.singular_values)
    return Spread(tuple(int(i) for i in indices), np.abs(sigma[list(indices)] - 1), eps,
                  np.array(ratio).reshape(len(indices), len(eps)), np.array(loss).reshape(len(indices), len(eps)),
                  float(base.metrics.test_loss[-1]))
