"""The paper preset end to end: the numbers the issue asks us to reproduce (slow: ~1.5 min on 2 cores)."""
import numpy as np
import pytest

from tj import preset, spectrum, training_jacobian


@pytest.mark.slow
def test_paper_preset_reproduces_the_three_regions():
    res = training_jacobian(preset("paper"))
    assert abs(res.train.metrics.test_loss[-1] - 0.155) < 0.02
    s = spectrum(res.jacobian, res.theta0, res.theta_final)
    sigma, dist = s.singular_values, np.abs(s.singular_values - 1)
    assert sigma[0] > 5
    assert (dist < 1e-2).sum() >= 1500 and (dist < 1e-1).sum() >= 2500 and (sigma < 0.5).sum() >= 400
    bulk = dist < 1e-2
    assert np.median(s.alignment[bulk]) > 0.99       # bulk: u_i ≈ v_i
    assert np.median(np.abs(s.alignment[-500:])) < 0.3  # stable tail: u_i unrelated to v_i
