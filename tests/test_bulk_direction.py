"""Perturb's honest bulk direction: σ closest to 1 outside the subspace training cannot touch, and the spread."""
import numpy as np
import pytest

import tj
from tj.perturb import bulk_direction, spread, spread_indices, untouched_shares
from tj.why import untouched_for


def test_a_direction_inside_the_untouched_subspace_is_passed_over():
    rng = np.random.default_rng(0)
    vh = np.linalg.qr(rng.normal(size=(6, 6)))[0].T          # orthonormal rows v_0 … v_5
    sigma = np.array([3.0, 1.0 + 1e-9, 1.0 + 2e-6, 1.0 - 5e-4, 0.9, 0.2])
    basis = vh[[1]]                                          # v_1 (σ closest to 1) is the untouched one
    got = bulk_direction(sigma, vh, basis)
    assert (got.index, got.n_untouched) == (2, 1) and got.distance == pytest.approx(2e-6)
    assert got.untouched_share < 1e-20
    mixed = np.vstack([vh[0], (vh[1] + vh[2]) / np.sqrt(2), *vh[3:]])   # half inside: not clean either
    assert untouched_shares(mixed, basis)[1] == pytest.approx(0.5)
    assert bulk_direction(sigma[[0, 2, 3, 4, 5]], mixed[[0, 1, 2, 3, 4]], basis).index == 2
    with pytest.raises(ValueError, match="untouched subspace"):
        bulk_direction(sigma[:1], vh[:1], vh[:1])


def test_on_the_lecture_preset_the_default_is_outside_and_linear_for_small_steps():
    exp = tj.preset("lecture").replace(**{"train.epochs": 4})
    res = tj.training_jacobian(exp)
    spec = tj.spectrum(res.jacobian, res.theta0, res.theta_final)
    basis = untouched_for(exp).basis
    got = bulk_direction(spec.singular_values, spec.Vh, basis)
    shares = untouched_shares(spec.Vh, basis)
    dist = np.abs(spec.singular_values - 1)
    assert shares[got.index] < 0.01
    assert np.all(shares[dist < got.distance] >= 0.01)      # everything closer to 1 lies (partly) in the subspace
    idx = spread_indices(spec.singular_values, shares, n=3)
    assert idx[0] == got.index and len(idx) == 3 and np.all(np.diff(dist[list(idx)]) > 0)
    assert np.all(dist[list(idx)] < 0.1) and np.all(shares[list(idx)] < 0.01)
    sp = spread(exp, spec, idx[:1], eps=(1e-2,))
    # J's prediction, checked by retraining in float64: float32 J rounding (~1e-6 relative) sets the tolerance
    assert sp.ratio[0, 0] == pytest.approx(1.0, abs=1e-3)
    assert sp.rows()[0]["i"] == got.index and np.isfinite(sp.base_test_loss)
