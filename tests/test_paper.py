"""The paper preset end to end, on one float64 J (slow: about two minutes on 2 cores): the numbers the paper
reports, and its exactly untouched directions predicted from the data alone."""
import numpy as np
import pytest
import torch

from tj import preset, spectrum, training_jacobian
from tj.why import measured_untouched, untouched_for


@pytest.mark.slow
def test_paper_preset_reproduces_the_three_regions_and_its_untouched_directions():
    exp = preset("paper").replace(dtype="float64")
    res = training_jacobian(exp)
    assert abs(res.train.metrics.test_loss[-1] - 0.155) < 0.02
    s = spectrum(res.jacobian, res.theta0, res.theta_final)
    sigma, dist = s.singular_values, np.abs(s.singular_values - 1)
    assert sigma[0] > 5
    assert (dist < 1e-2).sum() >= 1500 and (dist < 1e-1).sum() >= 2500 and (sigma < 0.5).sum() >= 400
    bulk = dist < 1e-2
    assert np.median(s.alignment[bulk]) > 0.99       # bulk: u_i ≈ v_i
    assert np.median(np.abs(s.alignment[-500:])) < 0.3  # stable tail: u_i unrelated to v_i
    # measured once (2 cores): 257 at every tol from 1e-12 to 1e-8 (next |σ−1| ≈ 2.9e-8), 289 at 1e-6
    u = untouched_for(exp)
    assert u.total == 257 and u.n_dead_pixel_directions == 192 and u.n_softmax_directions == 65
    assert measured_untouched(sigma, 1e-9) >= 257
    jac, basis = res.jacobian, torch.from_numpy(u.basis)  # J v = v and vᵀJ = vᵀ: inside the σ = 1 space
    assert (jac @ basis.T - basis.T).abs().max() < 1e-12 and (basis @ jac - basis).abs().max() < 1e-12
