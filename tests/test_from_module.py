"""Your own torch.nn.Module through tj: J against jacfwd of a hand-written loop, θ_0, the module untouched,
refusals in one sentence, and the command line with a Dask store."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jacfwd

import tj
import user_modules

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, BATCH, LR, MOMENTUM = 2, 16, 0.2, 0.9


def digits(n_train=48, image=False):
    d = tj.load(tj.DataSpec(n_train=n_train), torch.float64)
    shape = (-1, 1, 8, 8) if image else (-1, 64)
    return (d.x_train.reshape(shape), d.y_train), (d.x_test.reshape(shape), d.y_test)


def hand_written_jacobian(module, x, y):
    """jacfwd of heavy-ball SGD with a cosine schedule over in-order batches, written here without tj."""
    names = [n for n, _ in module.named_parameters()]
    shapes = [p.shape for _, p in module.named_parameters()]
    sizes = [math.prod(s) for s in shapes]
    per_epoch = len(y) // BATCH
    n_steps = EPOCHS * per_epoch

    def loss(theta, xb, yb):
        params = {n: t.reshape(s) for n, t, s in zip(names, torch.split(theta, sizes), shapes)}
        return F.cross_entropy(functional_call(module, params, (xb,)), yb)

    def run(theta):
        m = torch.zeros_like(theta)
        for t in range(n_steps):
            b = t % per_epoch
            m = MOMENTUM * m + grad(loss)(theta, x[b * BATCH:(b + 1) * BATCH], y[b * BATCH:(b + 1) * BATCH])
            theta = theta - 0.5 * LR * (1 + math.cos(math.pi * t / n_steps)) * m
        return theta

    theta0 = torch.nn.utils.parameters_to_vector(module.parameters()).detach()
    return jacfwd(run)(theta0)


@pytest.mark.parametrize("make,image", [(user_modules.tanh_mlp, False), (user_modules.small_conv, True)])
def test_jacobian_of_a_users_module_equals_jacfwd_of_a_hand_written_loop(make, image):
    torch.manual_seed(0)
    module = make().double()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    train, test = digits(image=image)
    exp = tj.from_module(module, train=train, test=test, seed=0, dtype="float64",
                         train_spec=tj.TrainSpec(lr=LR, momentum=MOMENTUM, epochs=EPOCHS, batch_size=BATCH))
    res = tj.training_jacobian(exp)
    assert torch.equal(res.theta0, torch.nn.utils.parameters_to_vector(module.parameters()))
    ref = hand_written_jacobian(module, *train)
    assert ((res.jacobian - ref).norm() / ref.norm()).item() < 1e-9
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())  # the module is untouched
    assert [(b.name, b.shape) for b in tj.layout(exp.model)] == [(n, tuple(p.shape)) for n, p in
                                                                   module.named_parameters()]
    # the other entry points take the same experiment: columns, J·v (numpy in), the spectrum
    assert torch.equal(tj.training_jacobian(exp, columns=(3, 40)).jacobian, res.jacobian[:, 3:40])
    v = np.random.default_rng(0).normal(size=exp.model.n_params)
    assert torch.allclose(tj.jacobian_vector_product(exp, v), res.jacobian @ torch.from_numpy(v), atol=1e-12)
    assert tj.spectrum(res.jacobian, res.theta0, res.theta_final).singular_values[0] > 0
    assert tj.Experiment.from_json(exp.to_json()) == exp


def test_compare_and_perturb_run_on_a_users_module():
    from tj import compare, perturb

    torch.manual_seed(0)
    module = user_modules.tanh_mlp(4)
    exp = tj.from_module(module, *digits(64), train_spec=tj.TrainSpec(epochs=2, batch_size=16))
    res = tj.training_jacobian(exp)
    spec = tj.spectrum(res.jacobian, res.theta0, res.theta_final)
    shuffled = compare.variants(exp, n_seeds=0)["shuffled labels"]
    assert tj.training_jacobian(shuffled).jacobian.shape == res.jacobian.shape
    kl = perturb.output_effect(exp, res.theta_final, spec.Vh[:3])
    assert set(kl) == {"train", "test", "inverted", "noise"} and all(np.isfinite(v).all() for v in kl.values())
    lin = perturb.linearity(exp, spec, 0, eps=np.array([1e-3, 1e-1]))
    assert np.isfinite(lin.along).all()


def refusal(module, train=None, test=None):
    train, test = (train, test) if train is not None else digits()
    with pytest.raises(ValueError) as err:
        tj.from_module(module, train=train, test=test)
    text = str(err.value)
    assert "Traceback" not in text and "\n" not in text
    return text


def test_dropout_batch_norm_randomness_and_frozen_or_integer_parameters_are_refused():
    assert "dropout" in refusal(nn.Sequential(nn.Linear(64, 8), nn.Dropout(0.5), nn.Linear(8, 10)))
    assert "batch norm" in refusal(nn.Sequential(nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 10)))
    assert "random numbers" in refusal(user_modules.Noisy())
    frozen = user_modules.tanh_mlp()
    frozen[0].weight.requires_grad_(False)
    assert "requires_grad=False" in refusal(frozen)
    integer = user_modules.tanh_mlp()
    integer.register_parameter("count", nn.Parameter(torch.zeros(2, dtype=torch.int64), requires_grad=False))
    assert "not a float" in refusal(integer)


def test_a_forward_that_torch_func_cannot_differentiate_is_refused():
    assert "cannot differentiate" in refusal(user_modules.ThroughNumpy())


def test_data_the_module_rejects_and_outputs_that_are_not_logits_are_refused():
    (x, y), (xt, yt) = digits()
    text = refusal(user_modules.tanh_mlp(), (x[:, :63], y), (xt[:, :63], yt))
    assert "rejected inputs of shape (2, 63)" in text and "takes 64 features" in text
    assert "logits of shape (2, C)" in refusal(nn.Sequential(nn.Linear(64, 3)))
    assert "class indices" in refusal(user_modules.tanh_mlp(), (x, y.double()), (xt, yt))


def test_a_dense_j_too_big_for_memory_is_refused_with_the_gb_it_needs(monkeypatch):
    from tj import jacobian

    exp = tj.from_module(user_modules.tanh_mlp(), *digits(128))
    monkeypatch.setattr(jacobian, "physical_memory", lambda: 100_000)
    with pytest.raises(jacobian.TooBig, match=r"need 0\.0 GB.*--store"):
        tj.training_jacobian(exp)


def cli(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.run([sys.executable, "-m", "tj", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow
def test_a_module_by_import_path_through_the_cli_and_a_dask_store_equals_the_in_process_j(tmp_path):
    (x, y), (xt, yt) = digits(64)
    np.savez(tmp_path / "D.npz", x_train=x.numpy(), y_train=y.numpy(), x_test=xt.numpy(), y_test=yt.numpy())
    common = ["--module", "user_modules:tanh_mlp", "--module-kwargs", '{"hidden": 5}', "--data", "D.npz",
              "--seed", "3", "--set", "train.epochs=2", "--set", "train.batch_size=16"]
    cli(tmp_path, "jacobian", *common, "--out", "J.npz")
    cli(tmp_path, "jacobian", *common, "--store", "J.zarr", "--workers", "2", "--out", "S.npz")
    module = tj.module.build("user_modules:tanh_mlp", {"hidden": 5}, 3)
    exp = tj.from_module(module, (x.numpy(), y.numpy()), (xt.numpy(), yt.numpy()), tj.TrainSpec(epochs=2, batch_size=16),
                         seed=3, source="user_modules:tanh_mlp", kwargs={"hidden": 5})
    mine = tj.training_jacobian(exp).jacobian.numpy()
    with np.load(tmp_path / "J.npz") as a, np.load(tmp_path / "S.npz") as b:
        assert np.array_equal(a["jacobian"], mine) and np.array_equal(b["jacobian"], mine)
        assert tj.Experiment.from_json(str(a["config"])) == exp
