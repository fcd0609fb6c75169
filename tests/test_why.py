"""tj.why: untouched directions predicted from the inputs, σ through training, σ from Hessian eigenvalues."""
import numpy as np
import pytest
import torch

from conftest import tiny
from tj import DataSpec, Experiment, MLPSpec, TrainSpec, layout, load, preset, spectrum, training_jacobian
from tj.why import (captured_fraction, epoch_checkpoints, gd_prediction, input_second_moment, measured_untouched,
                    spectra_through_training, subspace_alignment, trained_inputs, untouched_directions,
                    untouched_for)

# The first 100 images of the paper's split: 7 dead pixels, and the 57 live pixels plus the bias column
# have full rank, so dead pixels and the softmax shift are the only exact invariants.
DEAD_100 = (0, 7, 24, 32, 39, 48, 56)


def _measure(exp):
    res = training_jacobian(exp)
    spec = spectrum(res.jacobian, res.theta0, res.theta_final)
    return res.jacobian.numpy(), spec.singular_values, spec.Vh


def _check_exact(exp, u):
    """Predicted count = measured |σ−1| < 1e-9; the basis is inside the measured σ = 1 space; J v = v, vᵀJ = vᵀ."""
    jac, sigma, vh = _measure(exp)
    assert measured_untouched(sigma, 1e-9) == u.total
    rows = vh[np.abs(sigma - 1) < 1e-9]
    assert captured_fraction(u.basis, rows) > 1 - 1e-8
    assert subspace_alignment(u.basis, rows) > 1 - 1e-8
    assert np.abs(jac @ u.basis.T - u.basis.T).max() < 1e-12
    assert np.abs(u.basis @ jac - u.basis).max() < 1e-12


@pytest.mark.parametrize("widths,expected", [
    ((5,), 5 * 7 + 1 + 5),            # W1[:, dead] + (b2, W2[:, j]) along (1,…,1)
    ((4, 3), 4 * 7 + 1 + 3),          # deeper: W1 and W3 are disjoint blocks
    ((), 10 * 7 + (64 - 7) + 1),      # W1 is W_L: the causes overlap in W1[:, dead] along (1,…,1)
])
def test_predicted_untouched_equals_measured_with_dead_pixels(widths, expected):
    exp = tiny(widths, batch_size=20).replace(**{"data.n_train": 100})
    u = untouched_for(exp)
    assert u.dead_pixels == DEAD_100 and u.n_input_null_directions == 0
    assert u.n_dead_pixel_directions == exp.model.sizes[1] * 7
    assert u.n_softmax_directions == 1 + exp.model.sizes[-2]
    assert u.total == expected == len(u.basis)
    assert np.allclose(u.basis @ u.basis.T, np.eye(u.total), atol=1e-12)
    _check_exact(exp, u)


@pytest.mark.parametrize("widths", [(5,), (4, 3), ()])
def test_fewer_images_than_pixels_add_input_null_directions(widths):
    # tiny(): 40 images, but batches of 16 use only the first 32 (10 dead pixels). Dead pixels + softmax
    # alone undercount the measurement by width1 × 23 (measured first: 171 vs 56 for (5,)): with 32 images the
    # 54 live pixels plus the bias column [X, 1] have rank 32, so 55 − 32 = 23 directions (n, c) with
    # X n + c·1 = 0 leave every first-layer pre-activation, hence the whole run, unchanged. They are exact
    # invariants too, and untouched_directions counts them as a third cause.
    exp = tiny(widths)
    x = trained_inputs(exp)
    assert len(x) == 32
    u = untouched_directions(exp.model, x)
    width1 = exp.model.sizes[1]
    assert len(u.dead_pixels) == 10 and u.n_input_null_directions == width1 * 23
    _check_exact(exp, u)


def test_basis_layout_and_overlap_without_hidden_layer():
    spec = MLPSpec(())
    x = load(DataSpec(n_train=1600)).x_train
    u = untouched_directions(spec, x)
    assert u.dead_pixels == (0, 32, 39) and u.n_input_null_directions == 0
    assert (u.n_dead_pixel_directions, u.n_softmax_directions) == (30, 65)
    assert u.total == 10 * 3 + (64 - 3) + 1 == np.linalg.matrix_rank(u.basis)
    deep = untouched_directions(MLPSpec((4, 3)), x)
    blocks = {b.name: b for b in layout(MLPSpec((4, 3)))}
    support = np.abs(deep.basis).sum(0) > 0
    w1 = np.zeros(MLPSpec((4, 3)).n_params, bool)
    w1[blocks["W1"].start:blocks["W1"].stop] = True
    last = np.zeros_like(w1)
    last[blocks["W3"].start:blocks["b3"].stop] = True
    assert support[w1].sum() == 4 * 3 and support[last].all() and not support[~(w1 | last)].any()
    # W1[:, 39] for unit 2 sits at row-major (out, in) index 2·64 + 39
    assert any(row[2 * 64 + 39] == 1 for row in deep.basis)


def test_uniform_noise_has_no_dead_pixels_only_softmax_directions():
    x40 = load(DataSpec(inputs="uniform", n_train=40)).x_train
    u = untouched_directions(MLPSpec((5,)), x40)
    assert u.dead_pixels == () and u.n_dead_pixel_directions == 0 and u.n_softmax_directions == 6
    assert u.n_input_null_directions == 5 * (65 - 40)  # 40 images cannot span 64 pixels + bias
    exp = tiny((5,), batch_size=20).replace(data=DataSpec(inputs="uniform", n_train=100))
    u = untouched_for(exp)
    assert u.total == u.n_softmax_directions == 6
    _check_exact(exp, u)


def test_optimizer_and_loss_decide_which_causes_apply():
    x = load(DataSpec(n_train=100)).x_train
    assert untouched_directions(MLPSpec((5,)), x, loss="mse").total == 35
    assert untouched_directions(MLPSpec((5,)), x, optimizer="adam").total == 35
    exp = tiny((5,), optimizer="adam", batch_size=20).replace(**{"data.n_train": 100})
    _, sigma, _ = _measure(exp)
    assert untouched_for(exp).total == 35 <= measured_untouched(sigma, 1e-9)


def test_alignment_and_captured_fraction():
    e = np.eye(4)
    assert measured_untouched(np.array([1.0, 1 + 1e-12, 0.5, 1 - 1e-6])) == 2
    assert captured_fraction(e[:2], e[[0, 2]]) == 0.5 and subspace_alignment(e[:2], e[[0, 2]]) == 0.5
    assert captured_fraction(e[:2], e[:3]) == 1.0 and subspace_alignment(e[:2], e[:3]) == 1.0
    assert captured_fraction(e[:3], e[:2]) == pytest.approx(2 / 3) and subspace_alignment(e[:3], e[:2]) == 1.0
    rot = np.array([[1, 1, 0, 0], [1, -1, 0, 0]]) / np.sqrt(2)
    assert subspace_alignment(e[:2], rot) == pytest.approx(1.0) and captured_fraction(e[:2], rot) == pytest.approx(1.0)


def test_input_second_moment():
    x = load(DataSpec()).x_train
    lam = input_second_moment(x)
    assert lam.shape == (64,) and np.all(np.diff(lam) <= 0) and lam[-1] >= 0
    assert lam.sum() == pytest.approx((x.double() ** 2).sum(1).mean().item())
    assert np.sum(lam < 1e-12) == 3 and lam[-4] > 1e-6  # the three dead pixels; the next is ≈ 1.8e-6


def test_epoch_checkpoints():
    paper = preset("paper")
    assert epoch_checkpoints(paper) == tuple(range(0, 626, 25))
    assert epoch_checkpoints(paper, 4) == (0, 150, 325, 475, 625)
    assert epoch_checkpoints(paper, 1) == (0, 625) and epoch_checkpoints(paper, 100) == tuple(range(0, 626, 25))
    with pytest.raises(ValueError):
        epoch_checkpoints(paper, 0)


def test_spectra_through_training_start_at_one_and_end_at_final_j():
    exp = tiny((5,))                                   # 3 epochs × 2 steps
    ev = spectra_through_training(exp, epoch_checkpoints(exp))
    assert ev.steps == (0, 2, 4, 6) and np.array_equal(ev.epochs, [0.0, 1.0, 2.0, 3.0])
    assert ev.sigma.shape == (4, exp.model.n_params) and np.all(np.diff(ev.sigma, axis=1) <= 0)
    assert np.all(ev.sigma[0] == 1.0)
    res = training_jacobian(exp, checkpoints=(4,))     # bit-identical run (same config and seed)
    assert np.array_equal(ev.sigma[-1], torch.linalg.svdvals(res.jacobian.double()).numpy())
    assert np.array_equal(ev.sigma[2], torch.linalg.svdvals(res.checkpoints[4].double()).numpy())
    assert ev.metrics.train_loss == res.train.metrics.train_loss
    counts = ev.counts(1e-3)
    assert counts[0] == {"chaotic": 0, "bulk": exp.model.n_params, "stable": 0}
    assert all(sum(c.values()) == exp.model.n_params for c in counts)
    assert counts[-1]["chaotic"] > 0 and counts[-1]["stable"] > 0
    with pytest.raises(ValueError):
        spectra_through_training(exp, (0, 7))


def _least_squares():
    return Experiment(MLPSpec(()), DataSpec(n_train=100),
                      TrainSpec(lr=0.05, momentum=0.0, schedule="cosine", epochs=6, batch_size=100, loss="mse"),
                      seed=2, dtype="float64")


@pytest.mark.parametrize("n_segments", [1, 4, 6])
def test_gd_prediction_is_exact_for_full_batch_least_squares(n_segments):
    pred = gd_prediction(_least_squares(), n_segments)
    assert len(pred.segment_starts) == n_segments and pred.predicted.shape == (650,)
    assert pred.max_abs_error < 1e-10
    assert np.abs(pred.eigenvalues - pred.eigenvalues[0]).max() < 1e-12  # H is constant


def test_gd_prediction_approximates_cross_entropy_and_refuses_what_it_cannot_do():
    exp = tiny((5,), momentum=0.0, batch_size=40, epochs=10)
    pred = gd_prediction(exp, 10)
    assert np.all(np.diff(pred.predicted) <= 0) and pred.eigenvalues.shape == (10, exp.model.n_params)
    # H annihilates the untouched directions at every segment start. (Their σ_pred need not be 1: matching
    # by rank pairs λ = 0 of one segment with λ ≠ 0 of another when the count of negative λ changes.)
    total = untouched_for(exp).total
    assert all(np.sum(np.abs(lam) < 1e-10) == total for lam in pred.eigenvalues)
    assert np.abs(pred.predicted - pred.measured).max() < 0.5  # an approximation, not an identity
    with pytest.raises(ValueError, match="momentum 0"):
        gd_prediction(tiny((5,)))
    with pytest.raises(ValueError, match="4,810"):
        gd_prediction(preset("paper").replace(**{"train.momentum": 0.0}))
    with pytest.raises(ValueError, match="n_segments"):
        gd_prediction(exp, 11)


def test_loss_hessian_equals_torch_func_hessian_of_torch_own_layers():
    """The engine's batched Hessian-tangent products against torch.func.hessian of the same CNN written with
    torch's own conv, GELU, pooling and cross-entropy, in float64."""
    import torch.nn.functional as F
    from torch.func import hessian

    from tj import CNNSpec, Conv, init_params
    from tj.why import loss_hessian

    spec = CNNSpec(convs=(Conv(2, 3, "SAME", 2),), dense=(4,), activation="gelu_tanh")
    data = load(DataSpec(n_train=32), torch.float64)

    def by_torch(theta):
        w1, b1, w2, b2, w3, b3 = (theta[b.start:b.stop].reshape(b.shape) for b in layout(spec))
        a = F.avg_pool2d(F.gelu(F.conv2d(data.x_train.reshape(-1, 1, 8, 8), w1, b1, padding=1), approximate="tanh"), 2)
        a = F.gelu(F.linear(a.flatten(1), w2, b2), approximate="tanh")
        return F.cross_entropy(F.linear(a, w3, b3), data.y_train)

    theta = init_params(spec, 1, torch.float64) + 0.1
    want = hessian(by_torch)(theta)
    got = loss_hessian(spec, theta, data.x_train, data.y_train, chunk=50)
    assert got.shape == (spec.n_params, spec.n_params)
    assert (got - want).abs().max() < 1e-12 * want.abs().max()
