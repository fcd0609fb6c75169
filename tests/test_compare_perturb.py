import numpy as np
import pytest
import torch
from torch.func import jacrev

from conftest import tiny
from tj import init_params, load, preset, regions, spectrum, train, training_jacobian
from tj.compare import (_log_softmax_outputs, bulk_basis, function_jacobian, leading_overlap, mean_principal_cosine,
                        overlap_sweep, random_overlap, variants)
from tj.perturb import linearity, max_kl, output_effect, subspace_rows, subspace_training


def _orthonormal(p, k, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(p, k)))
    return q.T


def test_overlap_with_itself_is_one_and_with_an_orthogonal_subspace_zero():
    q = _orthonormal(60, 60, 0)
    a, b = q[:10], q[10:20]
    assert mean_principal_cosine(a, a) == pytest.approx(1, abs=1e-12)
    assert mean_principal_cosine(a, b) == pytest.approx(0, abs=1e-12)
    big_a, big_b = q[:45], q[15:]  # k > P/2: through the complements; they share 30 dimensions
    direct = np.minimum(np.linalg.svd(big_a @ big_b.T, compute_uv=False), 1).mean()
    assert mean_principal_cosine(big_a, big_b) == pytest.approx(direct, abs=1e-10)
    assert mean_principal_cosine(big_a, big_a) == pytest.approx(1, abs=1e-12)


def test_leading_overlap_reads_the_complements_off_square_bases():
    va, vb = _orthonormal(60, 60, 1), _orthonormal(60, 60, 2)
    for k in (5, 30, 31, 45, 59):
        assert leading_overlap(va, vb, k) == pytest.approx(mean_principal_cosine(va[:k], vb[:k]), abs=1e-12), k


@pytest.mark.parametrize("p,k", [(300, 10), (300, 60), (300, 150), (300, 240)])
def test_random_baseline_agrees_with_sampled_subspaces(p, k):
    sampled = np.mean([mean_principal_cosine(_orthonormal(p, k, 2 * s), _orthonormal(p, k, 2 * s + 1))
                       for s in range(6)])
    assert abs(random_overlap(p, k) - sampled) < 0.02


def test_paper_sized_random_baseline():
    assert random_overlap(4810, 100) == pytest.approx(0.12, abs=0.01)
    assert random_overlap(4810, 3000) == pytest.approx(0.73, abs=0.01)


def test_variants_share_theta0_or_change_seed():
    exp = preset("lecture")
    v = variants(exp, 3)
    assert list(v) == ["shuffled labels", "noise inputs", "seed 1", "seed 2", "seed 3"]
    assert v["shuffled labels"].seed == exp.seed and v["shuffled labels"].data.labels == "shuffled"
    assert v["noise inputs"].data.inputs == "uniform" and v["seed 3"].seed == exp.seed + 3


def test_kl_is_zero_without_a_step_and_never_negative():
    exp = tiny((6,))
    theta = init_params(exp.model, 0, torch.float64)
    dirs = torch.randn(5, exp.model.n_params, dtype=torch.float64)
    x = load(exp.data).x_test
    # Batched and unbatched forward passes may round differently: zero up to float64 rounding, not bit-exact.
    assert np.all(np.abs(max_kl(exp, theta, dirs, x, alpha=0.0)) <= 100 * torch.finfo(torch.float64).eps)
    kl = max_kl(exp, theta, dirs, x, alpha=3.0)
    assert np.all(kl >= 0) and np.all(kl > 0)


def test_full_basis_restricted_training_is_ordinary_training():
    exp = tiny((5,), momentum=0.9)
    data = load(exp.data, torch.float64)
    theta0 = init_params(exp.model, exp.seed, torch.float64)
    q = torch.from_numpy(_orthonormal(exp.model.n_params, exp.model.n_params, 3))
    restricted = train(exp.model, exp.train, data, theta0, exp.seed, basis=q).theta_final
    ordinary = train(exp.model, exp.train, data, theta0, exp.seed).theta_final
    assert torch.allclose(restricted, ordinary, atol=1e-12)


@pytest.fixture(scope="module")
def lecture():
    exp = preset("lecture")
    res = training_jacobian(exp)
    return exp, res, spectrum(res.jacobian, res.theta0, res.theta_final)


def test_retraining_along_bulk_is_linear_and_along_the_top_is_not(lecture):
    exp, _, spec = lecture
    labels = regions(spec.singular_values, threshold=0.1)
    bulk = np.flatnonzero(labels == "bulk")
    k = int(bulk[len(bulk) // 2])
    eps = np.logspace(-3, 2, 11)
    lin = linearity(exp, spec, k, eps)
    small = eps <= 1
    assert np.all(np.abs(lin.along[small] - lin.predicted[small]) <= 0.01 * lin.predicted[small])
    top = linearity(exp, spec, 0, eps)
    assert abs(top.along[-1] - top.predicted[-1]) > 0.5 * top.predicted[-1]  # ε = 100: far off the prediction


def test_output_effect_is_smallest_in_the_bulk_on_training_inputs(lecture):
    exp, res, spec = lecture
    kl = output_effect(exp, res.theta_final, spec.Vh)
    labels = regions(spec.singular_values, threshold=0.1)
    assert set(kl) == {"train", "test", "inverted", "noise"}
    bulk = labels == "bulk"
    assert np.median(kl["train"][bulk]) * 10 < np.median(kl["noise"][bulk])
    assert np.median(kl["train"][bulk]) * 10 < np.median(kl["train"][labels == "chaotic"])


def test_subspace_training_bulk_is_worse_than_its_complement(lecture):
    exp, _, spec = lecture
    n = exp.model.n_params
    losses = subspace_training(exp, spec, [200, n])
    assert losses["bulk"][0] > 2 * losses["complement of bulk"][0]
    full = {k: v[-1] for k, v in losses.items()}
    assert max(full.values()) - min(full.values()) < 1e-3  # k = P: every basis spans everything
    assert sorted(subspace_rows(spec.singular_values, "bulk", 5)) == sorted(
        np.argsort(np.abs(spec.singular_values - 1), kind="stable")[:5])


def test_bulk_overlap_sweep_against_itself_is_one(lecture):
    _, _, spec = lecture
    s = (spec.singular_values, spec.Vh)
    assert np.allclose(overlap_sweep(s, s, [10, 300, 900]), 1)
    assert bulk_basis(*s, 7).shape == (7, spec.n)


def test_function_jacobian_matches_a_direct_svd():
    exp = tiny((4,))
    theta = init_params(exp.model, 0, torch.float64)
    x = load(exp.data).x_test[:30]
    fj = function_jacobian(exp.model, theta, x, batch=7)
    direct = jacrev(_log_softmax_outputs(exp.model, x.double()))(theta)
    sv = np.sort(np.linalg.svd(direct.numpy(), compute_uv=False))
    n = exp.model.n_params
    assert np.allclose(fj.singular_values[-len(sv):], sv, atol=1e-6)
    assert np.allclose(fj.vectors @ fj.vectors.T, np.eye(n), atol=1e-10)
    # the null space really is one: those directions leave every output unchanged to first order
    assert np.abs(direct.numpy() @ fj.null_space(n - len(sv)).T).max() < 1e-6


def test_overlap_matrix_is_symmetric_with_ones_on_the_diagonal(lecture):
    from tj.compare import overlap_matrix
    _, _, spec = lecture
    s = (spec.singular_values, spec.Vh)
    other = (spec.singular_values, np.roll(spec.Vh, 1, axis=1))  # the same σ, vectors on shifted coordinates
    m = overlap_matrix({"a": s, "b": other, "c": s}, 200)
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1) and m[0, 2] == pytest.approx(1, abs=1e-5)
    assert m[0, 1] < 0.99


def test_class_changes_follow_the_softmax_shift_and_a_pushed_output_bias():
    import tj
    from tj.perturb import ClassFlips, class_flips, flip_shares
    exp = tiny()
    theta = init_params(exp.model, exp.seed, torch.float64)
    bias = tj.layout(exp.model)[-1]                      # the output layer's bias, one entry per class
    shift, push = torch.zeros(2, len(theta), dtype=torch.float64), 3
    shift[0, bias.start:bias.stop] = 10 ** -0.5          # the same number added to every logit
    shift[1, bias.start + push] = 1.0                    # only class 3's logit
    x = load(exp.data).x_test
    shares = flip_shares(exp, theta, shift, [0.0, 1.0, 1e6], x)
    assert (shares[0] == 0).all()                        # the softmax shift never changes a prediction
    before = tj.forward(exp.model, theta, x.double()).argmax(-1)
    assert shares[1, 0] == 0 and shares[1, 2] == pytest.approx(float((before != push).double().mean()))
    sizes = np.array([0.1, 1.0, 10.0, 100.0])
    held = ClassFlips(0, sizes, {"test": np.array([0, 0, 0.005, 0.2])}, {}, 0)
    assert held.see_size == 10.0                         # the largest step with at most 1 % changed
    assert ClassFlips(0, sizes, {"test": np.full(4, 0.5)}, {}, 0).see_size == 0.1
    res = training_jacobian(exp)
    spec = spectrum(res.jacobian, res.theta0, res.theta_final)
    flips = class_flips(exp, res.theta_final, spec.singular_values, spec.Vh, 5, 0.1, sizes)
    assert set(flips.along) == {"test", "inverted", "noise"} and flips.n_chaotic == min(20, int((spec.singular_values > 1.1).sum()))


def test_the_variants_report_one_progress_over_the_whole_job():
    from contextlib import contextmanager

    from tj.results import Results
    reports = []

    @contextmanager
    def reporter(label, unit):
        def progress(done, total):
            reports.append((label, unit, done, total))
            return False
        yield progress
    exp, results = tiny(), Results()
    results.get("spectrum", exp)
    results.get("bulk", variants(exp, 2)["seed 2"])  # one variant already computed: three to go
    spectra = results.get("comparison", exp, 2, reporter=reporter)
    assert set(spectra) == {"main", "shuffled labels", "noise inputs", "seed 2", "seed 3"}
    n = exp.model.n_params
    assert {(label, unit) for label, unit, _, _ in reports} == {("the variants' Jacobians and SVDs", "columns")}
    assert {total for *_, total in reports} == {3 * n}
    done = [d for _, _, d, _ in reports]
    assert done == sorted(done) and done[-1] == 3 * n
