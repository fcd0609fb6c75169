"""Why there is a bulk: exactly untouched directions, the spectrum through training, and σ from curvature.

Exact invariants (J v = v and vᵀJ = vᵀ, so σ = 1 with u = v) can be predicted from the training inputs:

- a first-layer direction (W1[j, :], b1[j]) along (n, c) with X n + c·1 = 0 never changes a pre-activation
  on the data, and its gradient component g_zᵀ(X n + c·1) is always 0. A pixel that is zero in every
  training image ("dead pixel", n = e_p, c = 0) is the visible case; with fewer training images than live
  pixels + 1, the rest of the null space of [X, 1] gives width1 more directions per missing rank;
- softmax ignores a common shift of all logits, and the cross-entropy gradient w.r.t. the logits sums to 0:
  the last bias along (1,…,1) and each last-layer weight column W_L[:, j] along (1,…,1).

These hold for SGD with or without momentum (its update is linear in the gradients). With Adam only the
dead-pixel directions are exact (its elementwise scaling breaks the zero sums), and squared-error loss has
no softmax symmetry.

For a CNN the dead-pixel directions do not exist: a kernel weight is shared over every position, so it sees
many pixels, and a pixel that is black in every image freezes no weight. What carries over is the general
statement: first-layer kernel-and-bias changes (n, c) with P n + c·1 = 0, where P holds every k×k patch the
first convolution sees on the training images (padding included), leave every first-layer pre-activation
unchanged; with far more patches than k²·C_in + 1 there are usually none. The softmax shift applies as is
to the last dense layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import dead_pixels, load
from .jacobian import training_jacobian
from .block import FirstLayer
from .networks import first_layer, init_params, layout, symmetries
from .presets import Experiment
from .train import Metrics, batch_indices, learning_rates, train

MAX_HESSIAN_PARAMS = 2500


@dataclass(frozen=True, eq=False)
class Untouched:
    """The predicted untouched subspace: counts per cause and an orthonormal basis (total, P) in tj's layout."""

    dead_pixels: tuple[int, ...]
    n_dead_pixel_directions: int   # width1 × n_dead, in W1 (always 0 for a CNN)
    n_input_null_directions: int   # width1 × (live + 1 − rank [X_live, 1]): the rest of [X, 1]'s null space, in W1, b1;
    #                                for a CNN channels1 × nullity of [patches, 1], in conv1.W, conv1.b
    n_softmax_directions: int      # 1 + n_{L−1}, in W_L and b_L (0 for squared error or Adam)
    n_family_directions: int       # the family's own exact symmetries (tj.networks.symmetries), e.g. attention's
    total: int                     # the rank of the union (causes overlap when W1 is W_L)
    basis: np.ndarray              # (total, P) float64, orthonormal rows


def trained_inputs(experiment: Experiment) -> torch.Tensor:
    """The training images the run actually uses, in float64 (a partial last batch is dropped by training)."""
    data = load(experiment.data, torch.float64)
    used = batch_indices(experiment.train, len(data.y_train), experiment.seed).unique()
    return data.x_train[used]


def _null_rows(a: np.ndarray) -> np.ndarray:
    """Orthonormal rows n with [a, 1]·n = 0 to rounding (k, columns + 1)."""
    aa = np.hstack([a, np.ones((len(a), 1))])
    _, s, vh = np.linalg.svd(aa, full_matrices=aa.shape[0] < aa.shape[1])
    rank = int(np.sum(s > s[0] * max(aa.shape) * np.finfo(np.float64).eps)) if len(s) else 0
    return vh[rank:]


def patch_matrix(first: FirstLayer, x_train: torch.Tensor) -> np.ndarray:
    """Every patch a first convolution sees on x (rows), in its kernel's (C_in, k, k) order, float64."""
    k = first.weight.shape[-1]
    x = torch.as_tensor(x_train).detach().cpu().double().reshape(-1, *first.image)
    cols = torch.nn.functional.unfold(x, k, padding=k // 2 if first.padding == "SAME" else 0)  # (N, C·k·k, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1]).numpy()


def _per_unit(first: FirstLayer, n_params: int, weights: np.ndarray, bias: np.ndarray | None) -> list[np.ndarray]:
    """One direction per first-layer unit: its weights along `weights`, its bias along `bias`."""
    w, b = first.weight, first.bias
    units, width = w.shape[0], (w.stop - w.start) // w.shape[0]
    rows = []
    for j in range(units):
        v = np.zeros(n_params)
        v[w.start + j * width: w.start + (j + 1) * width] = weights
        if bias is not None:
            v[b.start + j] = bias
        rows.append(v)
    return rows


def softmax_rows(blocks, n_params: int) -> list[np.ndarray]:
    """For a dense output layer (W_L (C, n), b_L (C,) last in θ): b_L along (1,…,1) and each column W_L[:, q]
    along (1,…,1); [] when the last two blocks are not such a layer."""
    wl, bl = blocks[-2], blocks[-1]
    if len(wl.shape) != 2 or bl.shape != (wl.shape[0],):
        return []
    c, n_in = wl.shape
    v = np.zeros(n_params)
    v[bl.start:bl.stop] = c ** -0.5
    rows = [v]
    for q in range(n_in):
        v = np.zeros(n_params)
        v[wl.start + q: wl.stop: n_in] = c ** -0.5
        rows.append(v)
    return rows


def _orthonormal(rows: list, n_params: int) -> np.ndarray:
    """The rows themselves when already orthonormal (readable), else an orthonormal basis of their span."""
    a = np.array(rows).reshape(len(rows), n_params)
    if len(a) and np.abs(a @ a.T - np.eye(len(a))).max() < 1e-12:
        return a
    if len(a):
        _, s, vh = np.linalg.svd(a, full_matrices=False)
        return vh[: int(np.sum(s > 1e-8 * s[0]))]
    return a


def untouched_directions(spec, x_train: torch.Tensor, *, loss: str = "cross_entropy",
                         optimizer: str = "sgd") -> Untouched:
    """The subspace training cannot move (J v = v, vᵀJ = vᵀ), predicted from the training inputs alone.

    What the first layer sees decides the first part (tj.networks.first_layer): dense weights on the pixels
    give dead-pixel and input-null-space directions, a convolution the null space of its patches, any other
    first layer none. The softmax shift needs a dense output layer, cross-entropy and SGD; so do the family's
    own symmetries (directions along which the loss is flat for every θ, which SGD then carries unchanged)."""
    blocks, n_params = layout(spec), spec.n_params
    first = first_layer(spec)
    x = torch.as_tensor(x_train).detach().cpu().double().numpy()
    rows, dead, n_dead = [], [], 0
    if first is not None and first.kind == "dense":
        n_in = first.weight.shape[1]
        dead = dead_pixels(torch.from_numpy(x)).tolist()
        for p in dead:                               # W1[:, p]: one direction per first-layer unit
            rows += _per_unit(first, n_params, np.eye(n_in)[p], None)
        n_dead = len(rows)
        if optimizer == "sgd":                       # (W1[j, :], b1[j]) along (n, c) with X n + c·1 = 0
            live = np.setdiff1d(np.arange(n_in), dead)
            for n in _null_rows(x[:, live]):
                weights = np.zeros(n_in)
                weights[live] = n[:-1]
                rows += _per_unit(first, n_params, weights, n[-1])
    elif first is not None and first.kind == "conv" and optimizer == "sgd":
        for n in _null_rows(patch_matrix(first, torch.from_numpy(x))):
            rows += _per_unit(first, n_params, n[:-1], n[-1])
    n_null = len(rows) - n_dead
    shift = softmax_rows(blocks, n_params) if loss == "cross_entropy" and optimizer == "sgd" else []
    own = symmetries(spec) if optimizer == "sgd" else []
    basis = _orthonormal(rows + shift + own, n_params)
    return Untouched(tuple(int(p) for p in dead), n_dead, n_null, len(shift), len(own), len(basis), basis)


def untouched_for(experiment: Experiment) -> Untouched:
    """untouched_directions for an experiment: its used training images, loss and optimizer."""
    ts = experiment.train
    return untouched_directions(experiment.model, trained_inputs(experiment), loss=ts.loss, optimizer=ts.optimizer)


def measured_untouched(sigma, tol: float = 1e-9) -> int:
    """How many singular values lie within tol of 1."""
    return int(np.sum(np.abs(np.asarray(sigma, dtype=np.float64) - 1) < tol))


def _overlap(basis, vh_rows) -> np.ndarray:
    """basis · rowsᵀ in float64."""
    b = np.asarray(basis, dtype=np.float64).reshape(len(basis), -1)
    r = np.asarray(vh_rows, dtype=np.float64).reshape(len(vh_rows), -1)
    return b @ r.T


def subspace_alignment(basis, vh_rows) -> float:
    """Mean cosine of the min(k, m) principal angles between span(basis) and span(vh_rows) (orthonormal rows)."""
    m = _overlap(basis, vh_rows)
    if min(m.shape) == 0:
        return 1.0 if m.shape == (0, 0) else 0.0
    return float(np.clip(np.linalg.svd(m, compute_uv=False), 0.0, 1.0).mean())


def captured_fraction(basis, vh_rows) -> float:
    """‖basis · rowsᵀ‖_F² / len(basis): the share of the predicted subspace inside span(vh_rows)."""
    m = _overlap(basis, vh_rows)
    return 1.0 if m.shape[0] == 0 else float(np.sum(m * m) / m.shape[0])


def input_second_moment(x) -> np.ndarray:
    """Eigenvalues (descending) of (1/N) XᵀX; rounding negatives are clipped to 0."""
    x = torch.as_tensor(x).detach().cpu().double().numpy()
    lam = np.linalg.eigvalsh(x.T @ x / len(x))[::-1]
    return np.clip(lam, 0.0, None)


def _n_steps(experiment: Experiment) -> tuple[int, int]:
    """(steps per epoch, total steps T)."""
    per_epoch = experiment.data.n_train // experiment.train.batch_size
    return per_epoch, per_epoch * experiment.train.epochs


def epoch_checkpoints(experiment: Experiment, n: int | None = None) -> tuple[int, ...]:
    """Steps at epoch boundaries: every epoch (0, s, 2s, …, T), or n+1 evenly spaced ones including 0 and T."""
    per_epoch, _ = _n_steps(experiment)
    epochs = experiment.train.epochs
    if per_epoch == 0:
        raise ValueError("the batch size is larger than the training set: there are no steps")
    if n is None:
        ends = range(epochs + 1)
    elif n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    else:
        ends = sorted({(2 * i * epochs + n) // (2 * n) for i in range(n + 1)})  # round half up
    return tuple(int(e) * per_epoch for e in ends)


@dataclass(frozen=True, eq=False)
class Evolution:
    """Singular values of ∂θ_t/∂θ_0 at chosen steps, with the run's per-epoch metrics."""

    experiment: Experiment
    steps: tuple[int, ...]
    epochs: np.ndarray   # (n,) step / steps_per_epoch
    sigma: np.ndarray    # (n, P) float64, each row descending
    metrics: Metrics

    def counts(self, threshold: float) -> list[dict[str, int]]:
        """Per checkpoint: chaotic (σ > 1), bulk (|σ−1| < threshold), stable (σ < 1) counts."""
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        out = []
        for s in self.sigma:
            bulk = np.abs(s - 1) < threshold
            out.append({"chaotic": int(np.sum(~bulk & (s > 1))), "bulk": int(np.sum(bulk)),
                        "stable": int(np.sum(~bulk & (s <= 1)))})
        return out


def spectra_through_training(experiment: Experiment, checkpoints, progress=None) -> Evolution:
    """σ of ∂θ_t/∂θ_0 (float64 svdvals) at each checkpoint step, one P×P matrix released at a time.

    Memory: training_jacobian holds one P×P matrix per interior checkpoint plus J. Step 0 is I by
    definition (σ = 1, no SVD); step T is the final J itself.
    """
    per_epoch, n_steps = _n_steps(experiment)
    steps = sorted({int(s) for s in checkpoints})
    if not steps:
        raise ValueError("give at least one checkpoint step")
    if steps[0] < 0 or steps[-1] > n_steps:
        raise ValueError(f"checkpoint steps must lie in [0, {n_steps}], got {steps[0]}…{steps[-1]}")
    inner = [s for s in steps if 0 < s < n_steps]
    res = training_jacobian(experiment, checkpoints=inner, progress=progress)
    n_params = experiment.model.n_params
    sigma = np.empty((len(steps), n_params))
    for i, s in enumerate(steps):
        if s == 0:
            sigma[i] = 1.0
            continue
        jt = res.jacobian if s == n_steps else res.checkpoints.pop(s)
        sigma[i] = torch.linalg.svdvals(jt.double()).numpy()
        del jt
    return Evolution(experiment, tuple(steps), np.array(steps, dtype=np.float64) / per_epoch, sigma,
                     res.train.metrics)


def loss_hessian(spec, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                 loss: str = "cross_entropy", chunk: int = 64, on_chunk=None) -> torch.Tensor:
    """The mean-loss Hessian (P, P) in float64, in column chunks of the general engine's batched Hessian-tangent
    products (`on_chunk(columns done)` after each)."""
    from .general import hessian_tangents

    theta, x = theta.detach().double(), x.double()
    columns = hessian_tangents(spec, loss)  # measured on the cnn preset's network and 400 images: 4.7 → 3.4 s per Hessian
    eye = torch.eye(len(theta), dtype=torch.float64)
    parts = []
    for i in range(0, len(theta), chunk):
        parts.append(columns(theta, eye[i:i + chunk], x, y))
        if on_chunk is not None:
            on_chunk(min(i + chunk, len(theta)))
    h = torch.cat(parts)
    return (h + h.T) / 2


def hessian_seconds(experiment: Experiment, chunk: int = 64) -> float:
    """Seconds for one full-training-set Hessian on this machine, from one timed chunk of its columns."""
    import time

    from .general import hessian_tangents

    spec = experiment.model
    x = trained_inputs(experiment)
    y = load(experiment.data, torch.float64).y_train[:len(x)]  # which labels does not change the cost
    theta = init_params(spec, experiment.seed, torch.float64)
    columns = hessian_tangents(spec, experiment.train.loss)
    eye = torch.eye(min(chunk, spec.n_params), spec.n_params, dtype=torch.float64)
    columns(theta, eye[:2], x, y)  # warm-up
    start = time.perf_counter()
    columns(theta, eye, x, y)
    return (time.perf_counter() - start) * -(-spec.n_params // len(eye))


@dataclass(frozen=True, eq=False)
class GDPrediction:
    """σ predicted from Hessian eigenvalues, σ_pred(i) = |∏_t (1 − η_t λ_i)|, against the measured σ."""

    predicted: np.ndarray               # (P,) descending
    measured: np.ndarray                # (P,) descending, svdvals of J in float64
    eigenvalues: np.ndarray             # (n_segments, P) Hessian eigenvalues, descending, per segment
    segment_starts: tuple[int, ...]     # first step of each segment; the last ends at T

    @property
    def max_abs_error(self) -> float:
        """max_i |σ_pred(i) − σ(i)|."""
        return float(np.abs(self.predicted - self.measured).max())


def gd_variant(experiment: Experiment) -> Experiment:
    """The same run as plain gradient descent (no momentum): what gd_prediction predicts."""
    return experiment.replace(**{"train.momentum": 0.0, "train.optimizer": "sgd"})


def gd_prediction(experiment: Experiment, n_segments: int = 4, progress=None) -> GDPrediction:
    """Predict J's σ for plain gradient descent from full-training-set Hessian eigenvalues.

    The T steps are cut into n_segments near-equal segments; H is taken at θ_t at each segment's start and
    held for the segment; eigenvalues are matched by rank across segments. Exact when H is constant and
    every step sees the whole training set (least squares, full batch: J = ∏(I − η_t H)); otherwise an
    approximation, which ignores how H's eigenvectors rotate and how mini-batches differ from the full set.
    Rank matching also pairs λ = 0 of one segment with λ ≠ 0 of another when the number of negative
    eigenvalues changes, so the exactly untouched directions need not come out at σ_pred = 1.
    `progress(done, total)` counts columns: P of J, then P per Hessian.
    """
    spec, ts = experiment.model, experiment.train
    if ts.optimizer != "sgd" or ts.momentum != 0:
        raise ValueError("gd_prediction needs plain gradient descent: optimizer 'sgd' with momentum 0, "
                         f"got {ts.optimizer!r} with momentum {ts.momentum}")
    if spec.n_params > MAX_HESSIAN_PARAMS:
        raise ValueError(f"the Hessian of a net with P = {spec.n_params:,} parameters is too large to form here "
                         f"(at most {MAX_HESSIAN_PARAMS:,}); use a smaller net")
    _, n_steps = _n_steps(experiment)
    if not 1 <= n_segments <= n_steps:
        raise ValueError(f"n_segments must be between 1 and the {n_steps} training steps, got {n_segments}")
    starts = [i * n_steps // n_segments for i in range(n_segments)]
    bounds = starts + [n_steps]

    total = spec.n_params * (1 + n_segments)
    report = progress or (lambda done, total: False)
    jac = training_jacobian(experiment, progress=lambda d, _: report(d, total)).jacobian  # raises Diverged first
    measured = torch.linalg.svdvals(jac.double()).numpy()
    del jac
    dtype = experiment.torch_dtype
    data = load(experiment.data, dtype)
    theta0 = init_params(spec, experiment.seed, dtype)
    at = {}

    def keep(t, before, *_):
        if t in starts:
            at[t] = before.clone()

    train(spec, ts, data, theta0, experiment.seed, record=keep)
    idx = batch_indices(ts, len(data.y_train), experiment.seed).unique()
    x = load(experiment.data, torch.float64).x_train[idx]
    y = data.y_train[idx]
    lrs = learning_rates(ts, n_steps)
    eig = np.empty((n_segments, spec.n_params))
    prod = np.ones(spec.n_params)
    for k in range(n_segments):
        h = loss_hessian(spec, at[bounds[k]], x, y, ts.loss,
                         on_chunk=lambda d, k=k: report((k + 1) * spec.n_params + d, total))
        eig[k] = torch.linalg.eigvalsh(h).numpy()[::-1]
        for t in range(bounds[k], bounds[k + 1]):
            prod *= 1 - lrs[t] * eig[k]
    return GDPrediction(np.sort(np.abs(prod))[::-1].copy(), measured, eig, tuple(starts))


__all__ = ["Untouched", "trained_inputs", "untouched_directions", "untouched_for", "measured_untouched",
           "subspace_alignment", "captured_fraction", "input_second_moment", "epoch_checkpoints", "Evolution",
           "spectra_through_training", "loss_hessian", "hessian_seconds", "GDPrediction", "gd_prediction", "MAX_HESSIAN_PARAMS"]
