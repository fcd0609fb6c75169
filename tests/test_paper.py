"""The paper preset end to end, on its float32 J as the paper computed it (slow: about a minute on 2 cores): the
numbers the paper reports, and its exactly untouched directions predicted from the data alone, checked in float64."""
import numpy as np
import pytest
import torch

from tj import jacobian_vector_product, preset, spectrum, training_jacobian
from tj.why import untouched_for


@pytest.mark.slow
def test_paper_preset_reproduces_the_three_regions_and_its_untouched_directions():
    exp = preset("paper")
    res = training_jacobian(exp)
    assert abs(res.train.metrics.test_loss[-1] - 0.155) < 0.02
    s = spectrum(res.jacobian, res.theta0, res.theta_final)
    sigma, dist = s.singular_values, np.abs(s.singular_values - 1)
    assert sigma[0] > 5
    assert (dist < 1e-2).sum() >= 1500 and (dist < 1e-1).sum() >= 2500 and (sigma < 0.5).sum() >= 400
    bulk = dist < 1e-2
    assert np.median(s.alignment[bulk]) > 0.99       # bulk: u_i ≈ v_i
    assert np.median(np.abs(s.alignment[-500:])) < 0.3  # stable tail: u_i unrelated to v_i

    u = untouched_for(exp)
    assert u.total == 257 and u.n_dead_pixel_directions == 192 and u.n_softmax_directions == 65
    basis = torch.from_numpy(u.basis)
    # Exact: in float64, J u = u to rounding for every predicted direction, each one tangent through training
    # (a whole float64 J would cost about twice this float32 one).
    moved = jacobian_vector_product(exp.replace(dtype="float64"), basis)
    assert (moved - basis).abs().max() < 1e-12
    # In the float32 J: J u = u and uᵀJ = uᵀ to float32 rounding, and |σ − 1| < 1e-5 at least that many times.
    jac = res.jacobian.double()
    assert (jac @ basis.T - basis.T).abs().max() < 1e-5 and (basis @ jac - basis).abs().max() < 1e-5
    assert (dist < 1e-5).sum() >= u.total
