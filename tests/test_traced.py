"""The traced step: the eager function's bits, eager where tracing cannot hold, compiled to rounding."""
import shutil
import warnings

import pytest
import torch
from torch.func import jacfwd

from test_cnn import tiny
from tj import general, networks, traced
from tj.jacobian import record, replay_width, training_jacobian


def step_args(exp, k=7):
    traj = record(exp, engine="general")
    s = traj.steps[3]
    tangents = torch.randn(k, exp.model.n_params, dtype=exp.torch_dtype, generator=torch.Generator().manual_seed(0))
    return s.theta, tangents, traj.data.x_train[s.idx], traj.data.y_train[s.idx]


def products(exp, args, compilable=False):
    spec, kind = exp.model, exp.train.loss
    return traced.traced(("hvp", spec, kind), lambda: general.hessian_tangents(spec, kind), args, compilable)


@pytest.mark.parametrize("activation,pooling", [("relu", "avg"), ("gelu_tanh", "max")])
def test_traced_product_is_a_graph_with_the_eager_bits(activation, pooling):
    exp = tiny(pooling, activation)
    args = step_args(exp)
    graph = products(exp, args)
    assert isinstance(graph, torch.fx.GraphModule)
    eager = general.hessian_tangents(exp.model, exp.train.loss)(*args)
    assert torch.equal(graph(*args), eager)
    # and H·V is H·V: against the Hessian of the batch loss, built densely by jacfwd of grad
    theta, tangents, x, y = args
    hessian = jacfwd(torch.func.grad(lambda th: networks.loss(exp.model, th, x, y, exp.train.loss)))(theta)
    assert (eager - tangents @ hessian).abs().max() < 1e-12


def test_traced_product_computes_nothing_it_drops():
    from torch.fx.experimental.proxy_tensor import make_fx
    exp = tiny("avg", "gelu_tanh")
    args = step_args(exp)
    graph = products(exp, args)
    raw = make_fx(general.hessian_tangents(exp.model, exp.train.loss), tracing_mode="fake",
                  _allow_non_fake_inputs=True)(*args)
    backward = torch.ops.aten.convolution_backward.default
    count = lambda g: sum(n.target == backward for n in g.graph.nodes)  # noqa: E731
    # a vjp of grad traces the gradient itself, and the input gradients of the convolutions, then drops them
    assert count(graph) < count(raw) and len(graph.graph.nodes) < len(raw.graph.nodes)
    assert not graph.graph.eliminate_dead_code()


def test_data_dependent_control_flow_keeps_the_eager_function():
    def branchy(theta, tangents, x, y):
        return tangents * (2.0 if theta.sum() > 0 else -1.0)

    theta = torch.ones(4, dtype=torch.float64)
    args = (theta, torch.ones(2, 4, dtype=torch.float64), torch.zeros(1), torch.zeros(1, dtype=torch.long))
    step = traced.traced(("branchy",), lambda: branchy, args)
    assert step is branchy  # a traced graph would have frozen the branch taken for this θ
    assert torch.equal(step(-theta, *args[1:]), -args[1])


def test_inside_a_transform_it_is_the_eager_function():
    exp = tiny()
    args = step_args(exp)
    eager = general.hessian_tangents(exp.model, exp.train.loss)
    seen = []
    torch.func.vmap(lambda th: seen.append(products(exp, (th, *args[1:]))) or th)(args[0][None])
    assert not isinstance(seen[0], torch.fx.GraphModule)
    assert torch.equal(seen[0](*args), eager(*args))


def test_without_a_compiler_it_says_so_once_and_runs_uncompiled(monkeypatch):
    monkeypatch.setattr(traced, "COMPILE", True)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(traced, "_SAID", set())
    exp = tiny()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = training_jacobian(exp, engine="general").jacobian
        training_jacobian(exp, engine="general")
    monkeypatch.setattr(traced, "COMPILE", False)
    want = training_jacobian(exp, engine="general").jacobian
    said = [w for w in caught if "no C++ compiler" in str(w.message)]
    assert len(said) == 1 and torch.equal(got, want)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="inductor's CPU kernels need a C++ compiler")
def test_compiled_step_equals_the_traced_one_to_rounding(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    exp = tiny("avg", "gelu_tanh")
    plain = training_jacobian(exp, engine="general").jacobian
    monkeypatch.setattr(traced, "COMPILE", True)
    args = step_args(exp, k=replay_width(exp, "general"))  # the engine's own shape: compiled once for both uses
    step = products(exp, args, compilable=True)
    assert not isinstance(step, torch.fx.GraphModule)  # inductor's, not the plain graph
    assert (step(*args) - general.hessian_tangents(exp.model, exp.train.loss)(*args)).abs().max() < 1e-12
    compiled = training_jacobian(exp, engine="general").jacobian
    assert (compiled - plain).abs().max() < 1e-10 and not torch.equal(compiled, torch.eye(len(plain)))
