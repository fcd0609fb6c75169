import numpy as np
import pytest
import torch

from conftest import tiny
from tj import (Cancelled, DataSpec, Diverged, Experiment, MLPSpec, TrainSpec, init_params,
                jacobian_vector_product, load, preset, train, training_jacobian)
from tj import threads
from tj.jacobian import estimate_flops, memory_estimate, record
from tj.reference import jacobian_jacfwd, jacobian_jacrev, reference_columns, training_function
from tj.train import batch_indices, learning_rates


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("widths,activation", [((5,), "gelu_tanh"), ((4, 3), "gelu_erf"), ((6,), "relu"),
                                               ((3, 4), "tanh"), ((3, 16), "gelu_tanh")])  # 16: the wide ȧ·Wᵀ
def test_engine_matches_torch_func_jacfwd(optimizer, widths, activation):
    exp = tiny(widths, activation, optimizer)
    assert rel(training_jacobian(exp).jacobian, jacobian_jacfwd(exp)) < 1e-10


def test_engine_matches_reverse_mode_with_momentum_and_shuffle():
    exp = tiny((4,), shuffle=True, momentum=0.5, schedule="constant", lr=0.2)
    assert rel(training_jacobian(exp).jacobian, jacobian_jacrev(exp)) < 1e-10


def test_engine_matches_central_finite_differences():
    exp = tiny((4,), epochs=2)
    jac = training_jacobian(exp).jacobian
    run = training_function(exp)
    theta0 = init_params(exp.model, exp.seed, torch.float64)
    eps = 1e-6
    cols = torch.arange(0, exp.model.n_params, 7)
    fd = torch.stack([(run(theta0 + eps * e) - run(theta0 - eps * e)) / (2 * eps)
                      for e in torch.eye(exp.model.n_params, dtype=torch.float64)[cols]], 1)
    assert rel(jac[:, cols], fd) < 1e-6


def _least_squares(lr=0.05, schedule="cosine", epochs=6, n=100):
    return Experiment(MLPSpec(()), DataSpec(n_train=n),
                      TrainSpec(lr=lr, momentum=0.0, schedule=schedule, epochs=epochs, batch_size=n, loss="mse"),
                      seed=2, dtype="float64")


def _least_squares_hessian(exp):
    """H of ½·mean‖Wx + b − y‖² in tj's layout, built by hand: I_10 ⊗ the input second moment."""
    x = load(exp.data, torch.float64).x_train.numpy()
    xa = np.hstack([x, np.ones((len(x), 1))])
    c = xa.T @ xa / len(x)                    # (65, 65)
    n_out, n_in = 10, 64
    h = np.zeros((650, 650))
    idx = lambda o: list(range(o * n_in, (o + 1) * n_in)) + [n_out * n_in + o]  # noqa: E731  W_o· then b_o
    for o in range(n_out):
        h[np.ix_(idx(o), idx(o))] = c
    return h


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_closed_form_for_gradient_descent_on_least_squares(schedule):
    exp = _least_squares(schedule=schedule)
    h = _least_squares_hessian(exp)
    expected = np.eye(650)
    for lr in learning_rates(exp.train, exp.train.epochs):
        expected = (np.eye(650) - lr * h) @ expected
    jac = training_jacobian(exp).jacobian.numpy()
    assert np.abs(jac - expected).max() < 1e-12
    # the same J from eigenvalues: σ = ∏(1 − η_t λ) along H's eigenvectors
    lam = np.linalg.eigvalsh(h)
    pred = np.prod([1 - lr * lam for lr in learning_rates(exp.train, exp.train.epochs)], axis=0)
    assert np.allclose(np.sort(np.abs(pred)), np.sort(np.linalg.svd(jac, compute_uv=False)), atol=1e-12)


def test_jvp_equals_jacobian_times_vector():
    exp = tiny((5,), optimizer="adam")
    jac = training_jacobian(exp).jacobian
    v = torch.randn(exp.model.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert rel(jacobian_vector_product(exp, v), jac @ v) < 1e-12


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tasks_workers_and_column_by_column_are_bit_identical(dtype):
    exp = preset("lecture").replace(**{"train.epochs": 1, "dtype": dtype})
    jac = training_jacobian(exp, workers=2).jacobian
    assert torch.equal(training_jacobian(exp, workers=1).jacobian, jac)
    eye = torch.eye(exp.model.n_params, dtype=exp.torch_dtype)
    # J's column j always sits in slot j mod 64 of a 64-wide replay: any task size, any block of columns
    for chunk in (7, 100):
        assert torch.equal(training_jacobian(exp, chunk=chunk).jacobian, jac)
    assert torch.equal(training_jacobian(exp, columns=(517, 700)).jacobian, jac[:, 517:700])
    # one column alone, or a stack (numpy too), goes through the same replay in slot 0: the same bits for
    # j ≡ 0 (mod 64), rounding elsewhere (BLAS takes its edge kernels for the last slots)
    assert torch.equal(jacobian_vector_product(exp, eye[640]), jac[:, 640])
    tol = 1e-6 if dtype == "float32" else 1e-14
    for j in (517, 1209):
        assert rel(jacobian_vector_product(exp, eye[j]), jac[:, j]) < tol
    assert rel(jacobian_vector_product(exp, eye[[3, 700]].numpy()), jac[:, [3, 700]].T) < tol
    # a stack's pieces of 64 rows on any number of threads: J's columns themselves
    assert torch.equal(jacobian_vector_product(exp, eye[:200], workers=2), jac[:, :200].T)
    assert torch.equal(jacobian_vector_product(exp, eye[:200], workers=1), jac[:, :200].T)
    with threads.limit(1):  # the caller's thread count does not reach the bits either
        assert torch.equal(training_jacobian(exp, workers=3).jacobian, jac)


def test_same_config_and_seed_are_bit_identical():
    exp = preset("lecture").replace(**{"train.epochs": 2})
    a, b = training_jacobian(exp), training_jacobian(exp)
    assert torch.equal(a.theta_final, b.theta_final) and torch.equal(a.jacobian, b.jacobian)
    assert torch.equal(a.theta_final, train(exp.model, exp.train, load(exp.data), a.theta0, exp.seed).theta_final)
    c = training_jacobian(exp.replace(seed=1))
    assert not torch.equal(a.jacobian, c.jacobian)


def test_float32_engine_matches_reference_columns_on_lecture_preset():
    exp = preset("lecture")
    cols = [0, 100, 700, 1150, 1209]
    jac = training_jacobian(exp).jacobian
    ref = reference_columns(exp, cols)
    err = ((jac[:, cols] - ref).norm(dim=0) / ref.norm(dim=0)).max().item()
    assert err < 1e-5


def test_checkpoints_start_at_identity_and_end_at_j():
    exp = tiny((5,), optimizer="adam")
    res = training_jacobian(exp, checkpoints=(0, 3, 6))
    assert torch.equal(res.checkpoints[0], torch.eye(exp.model.n_params, dtype=torch.float64))
    assert torch.equal(res.checkpoints[6], res.jacobian)  # 3 epochs × 2 batches = 6 steps
    short = tiny((5,), optimizer="adam", epochs=1)
    # J after 3 steps is not the final J
    assert not torch.allclose(res.checkpoints[3], res.jacobian)
    assert short.train.epochs == 1


def test_progress_can_cancel_and_counts_columns():
    exp = tiny((5,))
    seen = []
    training_jacobian(exp, chunk=50, progress=lambda d, n: seen.append((d, n)))
    assert seen[0] == (0, exp.model.n_params) and seen[-1] == (exp.model.n_params,) * 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(Cancelled):
        training_jacobian(exp, chunk=50, progress=lambda d, n: d >= 100)


def test_divergence_is_a_result_not_a_crash():
    exp = tiny((5,), lr=1e10, dtype="float32")
    res = train(exp.model, exp.train, load(exp.data), init_params(exp.model, 0), 0)
    assert not res.ok and res.diverged_at[0] >= 0 and res.diverged_at[1] == res.diverged_at[0] // 2
    with pytest.raises(Diverged, match="step"):
        training_jacobian(exp)


def test_batches_fixed_or_shuffled_before_training():
    spec = TrainSpec(epochs=2, batch_size=64)
    fixed = batch_indices(spec, 1600, 0)
    assert fixed.shape == (50, 64) and torch.equal(fixed[0], torch.arange(64)) and torch.equal(fixed[:25], fixed[25:])
    shuffled = batch_indices(TrainSpec(epochs=2, shuffle=True), 1600, 0)
    assert not torch.equal(shuffled[:25], shuffled[25:])
    assert torch.equal(torch.sort(shuffled[:25].flatten()).values, torch.arange(1600))
    lrs = learning_rates(TrainSpec(lr=0.1), 625)
    assert lrs[0] == 0.1 and abs(lrs[312] - 0.05 * (1 + np.cos(np.pi * 312 / 625))) < 1e-15


def test_memory_and_flop_estimates_scale_with_the_network():
    small, big = memory_estimate(preset("lecture")), memory_estimate(preset("paper"))
    assert big["jacobian"] == 4810**2 * 4 and small["jacobian"] == 1210**2 * 4
    traj = record(preset("paper"))
    assert abs(traj.nbytes - big["trajectory"]) / traj.nbytes < 0.25
    assert abs(estimate_flops(preset("paper")) / (4810 * 625) - 1.54e6) / 1.54e6 < 0.05
