import numpy as np
import pytest
import torch

import tj
from tj import bulk_mask, region_counts, regions, spectrum
from tj.spectrum import threshold_counts


def _known(sigma, seed=0):
    """J = U diag(σ) Vᵀ from random orthogonal U, V."""
    g = np.random.default_rng(seed)
    n = len(sigma)
    u, _ = np.linalg.qr(g.normal(size=(n, n)))
    v, _ = np.linalg.qr(g.normal(size=(n, n)))
    return torch.from_numpy(u @ np.diag(sigma) @ v.T), u, v


def test_svd_recovers_a_known_decomposition():
    sigma = np.array([30.0, 5.0, 1.0001, 1.0, 0.9999, 0.3, 1e-6])
    jac, u, v = _known(sigma)
    theta0, theta_final = torch.zeros(7, dtype=torch.float64), torch.from_numpy(v[:, 2] * 0.5)
    s = spectrum(jac, theta0, theta_final)
    assert np.allclose(s.singular_values, sigma, rtol=1e-12, atol=1e-13)  # σ_max·eps
    assert np.allclose(s.U @ np.diag(s.singular_values) @ s.Vh, jac.numpy(), atol=1e-12)
    assert np.allclose(s.movement, [0, 0, 0.5, 0, 0, 0, 0], atol=1e-9)  # vectors of σ 1e-4 apart: eps·σ₁/gap
    assert np.allclose(np.abs(s.alignment), np.abs(np.sum(u * v, 0)), atol=1e-10)


def test_alignment_is_one_for_symmetric_positive_and_minus_one_for_reflection():
    jac, u, _ = _known(np.array([3.0, 1.0, 0.5]))
    sym = torch.from_numpy(u @ np.diag([3.0, 1.0, 0.5]) @ u.T)
    z = torch.zeros(3, dtype=torch.float64)
    assert np.allclose(spectrum(sym, z, z).alignment, 1)
    assert np.allclose(spectrum(-sym, z, z).alignment, -1)
    assert np.allclose(spectrum(torch.eye(4, dtype=torch.float64), torch.zeros(4), torch.zeros(4)).alignment, 1)


def test_float32_input_is_promoted_and_regions_counted():
    sigma = np.array([20, 3, 1.05, 1.001, 0.999, 0.95, 0.2, 0.01])
    jac, _, _ = _known(sigma)
    s = spectrum(jac.float(), torch.zeros(8), torch.zeros(8))
    assert s.singular_values.dtype == np.float64 and s.route == "float32 gesdd (verified)"
    assert np.allclose(s.singular_values, sigma, rtol=1e-5, atol=1e-5)
    labels = regions(s.singular_values, threshold=0.1)
    assert region_counts(labels) == {"chaotic": 2, "bulk": 4, "stable": 2}
    assert region_counts(regions(s.singular_values, rank=2)) == {"chaotic": 3, "bulk": 2, "stable": 3}
    assert bulk_mask(sigma, rank=2).tolist() == [False, False, False, True, True, False, False, False]
    assert threshold_counts(sigma, (1e-4, 1e-2, 1e-1)) == {1e-4: 0, 1e-2: 2, 1e-1: 4}


@pytest.mark.parametrize("kwargs", [{}, {"rank": 2, "threshold": 0.1}, {"rank": -1}, {"rank": 9}, {"threshold": 0}])
def test_bulk_choice_is_validated(kwargs):
    with pytest.raises(ValueError):
        bulk_mask(np.ones(8), **kwargs)


def test_non_finite_jacobian_is_refused():
    from tj import SVDFailed
    jac = torch.eye(3)
    jac[0, 1] = float("nan")
    with pytest.raises(SVDFailed):
        spectrum(jac, torch.zeros(3), torch.zeros(3))


def test_a_float32_decomposition_that_fails_the_check_falls_back_to_float64(monkeypatch):
    sigma = np.array([20, 3, 1.05, 1.001, 0.999, 0.95, 0.2, 0.01])
    jac, _, _ = _known(sigma)
    real = torch.linalg.svd

    def broken(a, full_matrices=True):
        u, s, vh = real(a, full_matrices=full_matrices)
        return u, s.flip(0), vh  # not ordered, and J v_i ≠ σ_i u_i

    monkeypatch.setattr(torch.linalg, "svd", broken)
    s = spectrum(jac.float(), torch.zeros(8), torch.zeros(8))
    assert s.route == "float64 gesdd" and np.allclose(s.singular_values, sigma, atol=1e-6)
    monkeypatch.setattr(torch.linalg, "svd", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no convergence")))
    assert spectrum(jac.float(), torch.zeros(8), torch.zeros(8)).route == "float64 gesdd"


def test_showcase_direction_is_the_bulk_direction_most_on_dead_pixels():
    from tj import MLPSpec
    from tj.mlp import layout
    from tj.spectrum import showcase_direction

    spec = MLPSpec(widths=(8,))
    p, w1 = spec.n_params, layout(spec)[0]
    rng = np.random.default_rng(0)
    vh = np.linalg.qr(rng.normal(size=(p, p)))[0].T
    dead = np.array([0, 7])
    target = np.zeros(p)
    target[[w1.start + j * 64 + d for j in range(4) for d in dead]] = 1
    vh[5] = target / np.linalg.norm(target)  # entirely on dead pixels, over 4 of 8 units
    vh[6] = 0
    vh[6, w1.start + 7] = 1  # one dead pixel of one unit: all on dead pixels too, but a lone pixel to look at
    sigma = np.linspace(2, 0.1, p)
    bulk = np.zeros(p, dtype=bool)
    bulk[3:20] = True
    assert showcase_direction(spec, sigma, vh, dead, bulk) == 5
    bulk[5] = False  # not in the bulk: never chosen
    assert showcase_direction(spec, sigma, vh, dead, bulk) != 5 and bulk[showcase_direction(spec, sigma, vh, dead, bulk)]
    assert showcase_direction(spec, sigma, vh, np.array([], dtype=int), bulk) == int(np.flatnonzero(bulk)[8])


def test_showcase_direction_scores_only_dense_first_layers():
    """Regression: on a CNN, θ[0:640] used to be scored as an MLP's W1 although θ[0:40] is conv1."""
    from tj.spectrum import showcase_direction

    spec = tj.preset("cnn").model
    p = spec.n_params
    vh = np.eye(p)
    bulk = np.zeros(p, bool)
    bulk[100:300] = True
    vh[150] = 0
    vh[150, [j * 64 for j in range(10)]] = 10 ** -0.5  # what the MLP rule would have picked: "dead pixel 0" of 10 units
    assert showcase_direction(spec, np.ones(p), vh, np.array([0, 32, 39]), bulk) == 200  # the middle bulk index
