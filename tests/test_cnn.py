import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
import tj
from tj import CNNSpec, Conv, DataSpec, Experiment, TrainSpec
from tj.cnn import validate_spec
from tj.data import raw_mnist
from tj.jacobian import finite_difference_check, training_jacobian
from tj.reference import jacobian_jacfwd

ROOT = Path(__file__).resolve().parents[1]
MNIST_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"


def tiny(pooling="avg", activation="tanh", optimizer="sgd", loss="cross_entropy") -> Experiment:
    """A CNN with both paddings, pooling and a hidden dense layer: P = 202, 8 steps, float64."""
    model = CNNSpec(convs=(Conv(2, 3, "SAME", 2), Conv(3, 3, "VALID", 1)), dense=(5,), pooling=pooling,
                    activation=activation)
    return Experiment(model=model, data=DataSpec(n_train=64),
                      train=TrainSpec(optimizer=optimizer, epochs=2, batch_size=16, loss=loss,
                                      lr=0.2 if optimizer == "sgd" else 0.01), dtype="float64")


def test_lenet5_layout_and_recipe():
    exp = tj.preset("lenet5")
    blocks = tj.layout(exp.model)
    assert exp.model.n_params == 61_706 and blocks[-1].stop == 61_706
    assert [(b.name, b.shape) for b in blocks] == [
        ("conv1.W", (6, 1, 5, 5)), ("conv1.b", (6,)), ("conv2.W", (16, 6, 5, 5)), ("conv2.b", (16,)),
        ("dense1.W", (120, 400)), ("dense1.b", (120,)), ("dense2.W", (84, 120)), ("dense2.b", (84,)),
        ("dense3.W", (10, 84)), ("dense3.b", (10,))]
    assert exp.model.maps == ((1, 28, 28), (6, 14, 14), (16, 5, 5))
    t = exp.train
    assert (t.optimizer, t.momentum, t.lr, t.schedule, t.batch_size, t.epochs, t.shuffle) == \
        ("sgd", 0.9, 0.05, "cosine", 200, 3, True)
    assert (exp.data.dataset, exp.data.n_train, exp.dtype) == ("mnist", 60_000, "float32")


def test_flax_init_lecun_truncated_normal_zero_biases():
    spec = tj.preset("lenet5").model
    theta = tj.init_params(spec, 0, torch.float64)
    for w, b in zip(tj.layout(spec)[0::2], tj.layout(spec)[1::2]):
        k = theta[w.start:w.stop]
        fan_in = int(np.prod(w.shape[1:]))
        assert k.abs().max() <= 2 * fan_in ** -0.5 / 0.8796256610342398 + 1e-12
        if len(k) > 2000:  # the std is √(1/fan_in) within sampling error
            assert abs(k.std().item() * fan_in ** 0.5 - 1) < 4 / len(k) ** 0.5 * 2
        assert torch.count_nonzero(theta[b.start:b.stop]) == 0
    assert torch.equal(theta, tj.init_params(spec, 0, torch.float64))
    assert not torch.equal(theta, tj.init_params(spec, 1, torch.float64))


def test_mnist_checksum_split_and_scaling():
    path = ROOT / "tj" / "mnist_uint8.npz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MNIST_SHA256
    xtr, ytr, xte, yte = raw_mnist()
    assert xtr.shape == (60_000, 784) and xte.shape == (10_000, 784) and xtr.dtype == np.uint8
    assert np.bincount(ytr).tolist()[:2] == [5923, 6742] and len(yte) == 10_000
    d = tj.load(DataSpec(dataset="mnist", n_train=1000))
    assert d.x_train.shape == (1000, 784) and d.x_test.shape == (10_000, 784)
    assert d.x_train.max() == 1 and d.x_train.min() == 0
    assert abs(tj.load(DataSpec(dataset="mnist", n_train=60_000)).x_train.double().mean().item() - 0.1307) < 1e-4
    ood = tj.out_of_distribution(d)
    assert torch.equal(ood["inverted"], 1 - d.x_test) and ood["noise"].shape == d.x_test.shape
    with pytest.raises(ValueError, match="n_train"):
        tj.load(DataSpec(dataset="mnist", n_train=60_001))
    with pytest.raises(ValueError, match="dataset"):
        tj.load(DataSpec(dataset="cifar"))


def test_forward_matches_torch_modules():
    """The flat-θ forward is nn.Conv2d/AvgPool/Linear with the same weights."""
    spec = tj.preset("lenet5").model
    theta = tj.init_params(spec, 3, torch.float64) + 0.01 * torch.randn(spec.n_params, dtype=torch.float64)
    p = {b.name: theta[b.start:b.stop].reshape(b.shape) for b in tj.layout(spec)}
    x = tj.load(DataSpec(dataset="mnist", n_train=8), torch.float64).x_train
    a = torch.relu(torch.nn.functional.conv2d(x.reshape(8, 1, 28, 28), p["conv1.W"], p["conv1.b"], padding=2))
    a = torch.nn.functional.avg_pool2d(a, 2)
    a = torch.nn.functional.avg_pool2d(torch.relu(torch.nn.functional.conv2d(a, p["conv2.W"], p["conv2.b"])), 2)
    a = torch.relu(a.flatten(1) @ p["dense1.W"].T + p["dense1.b"])
    a = torch.relu(a @ p["dense2.W"].T + p["dense2.b"])
    want = a @ p["dense3.W"].T + p["dense3.b"]
    assert torch.allclose(tj.forward(spec, theta, x), want, rtol=0, atol=1e-12)
    stack = tj.forward(spec, torch.stack([theta, 2 * theta]), x)
    # a batch of two θ runs other GEMM shapes than one θ: equal to float64 rounding, not bit for bit
    assert stack.shape == (2, 8, 10) and torch.allclose(stack[0], tj.forward(spec, theta, x), rtol=0, atol=1e-12)


def test_a_cnn_first_differentiated_inside_a_transform_leaves_no_wrapped_constant_behind():
    """The Why page's Hessian timing can be a fresh server's first float64 CNN forward, inside jvp of grad: the
    cached pooling matrix it builds must be a plain tensor, or every later forward fails ('escaped?')."""
    from tj.cnn import _pool_matrix
    from tj.why import hessian_seconds

    exp = tj.preset("cnn").replace(**{"data.n_train": 64})
    _pool_matrix.cache_clear()
    assert hessian_seconds(exp, chunk=2) > 0
    assert not torch._C._functorch.is_functorch_wrapped_tensor(_pool_matrix(8, 8, 2, torch.float64))
    theta = tj.init_params(exp.model, 0, torch.float64)
    assert tj.forward(exp.model, theta, torch.zeros(1, 64, dtype=torch.float64)).shape == (1, 10)


def test_a_cnn_first_traced_caches_a_plain_pooling_matrix():
    """A float32 CNN's first forward can be inside make_fx's fake-tensor trace (tj.traced): the pooling matrix
    it caches must be a real tensor, or the traced step's first-call check fails and it runs untraced."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from tj.cnn import _pool_matrix

    exp = tj.preset("cnn")
    theta = tj.init_params(exp.model, 0)
    x, y = torch.rand(4, 64), torch.arange(4)
    _pool_matrix.cache_clear()
    make_fx(lambda th: tj.networks.loss(exp.model, th, x, y), tracing_mode="fake", _allow_non_fake_inputs=True)(theta)
    assert type(_pool_matrix(8, 8, 2, torch.float32)) is torch.Tensor


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_general_engine_equals_fast_mlp_engine(optimizer):
    exp = tj.preset("lecture").replace(dtype="float64", **{"data.n_train": 256, "train.epochs": 2,
                                                           "train.optimizer": optimizer})
    if optimizer == "adam":
        exp = exp.replace(**{"train.lr": 0.01})
    fast = training_jacobian(exp, engine="fast")
    general = training_jacobian(exp, engine="general", checkpoints=(3,))
    assert general.engine == "general" and fast.engine == "fast"
    assert (fast.jacobian - general.jacobian).abs().max() < 1e-10
    assert (fast.jacobian - torch.eye(len(fast.jacobian), dtype=torch.float64)).abs().max() > 1e-2  # not trivial


@pytest.mark.parametrize("engine", ["fast", "general"])
@pytest.mark.parametrize("pooling,activation,optimizer,loss", [
    ("avg", "tanh", "sgd", "cross_entropy"), ("max", "gelu_tanh", "adam", "cross_entropy"),
    ("avg", "relu", "sgd", "mse")])
def test_tiny_cnn_jacobian_matches_jacfwd(pooling, activation, optimizer, loss, engine):
    exp = tiny(pooling, activation, optimizer, loss)
    got = training_jacobian(exp, engine=engine).jacobian
    want = jacobian_jacfwd(exp)
    assert got.shape == (202, 202)
    assert (got - want).abs().max() < 1e-10
    assert (want - torch.eye(202, dtype=torch.float64)).abs().max() > 1e-2


@pytest.mark.parametrize("pooling", ["avg", "max"])
@pytest.mark.parametrize("activation,loss", [("relu", "cross_entropy"), ("gelu_tanh", "mse"), ("tanh", "cross_entropy")])
@pytest.mark.parametrize("convs,dense", [
    ((Conv(3, 3, "SAME", 2),), ()),
    ((Conv(2, 3, "SAME", 2), Conv(3, 3, "VALID", 1)), (5,)),
    ((Conv(2, 3, "VALID", 3), Conv(2, 1, "SAME", 1)), (4, 3)),  # 6×6 maps pooled by 3, a 1×1 kernel
    ((Conv(2, 5, "SAME", 3),), (5,)),  # 8×8 pooled by 3: the last two rows and columns in no window
    ((Conv(2, 3, "SAME", 1), Conv(3, 3, "VALID", 2)), ()),  # first layer unpooled: its tangent maps, not patches
    ((Conv(1, 1, "SAME", 1), Conv(2, 3, "VALID", 2)), ()),  # one unpooled 1×1 channel: on patches again
    ((), (5,))])  # no convolution at all
def test_cnn_replay_hessian_products_equal_the_general_engines(pooling, activation, loss, convs, dense, monkeypatch):
    """One step's H·V by the hand-written replay, its convolutions in runs of one to three images, against the
    general engine's vmapped vjp of grad."""
    from tj import cnn_replay
    from tj.general import hessian_tangents

    monkeypatch.setattr(cnn_replay, "RUN_BYTES", 1500)

    spec = CNNSpec(convs=convs, dense=dense, pooling=pooling, activation=activation)
    g = torch.Generator().manual_seed(0)
    theta = tj.init_params(spec, 1, torch.float64) + 0.1 * torch.randn(spec.n_params, generator=g, dtype=torch.float64)
    x, y = torch.rand(6, 64, generator=g, dtype=torch.float64), torch.randint(0, 10, (6,), generator=g)
    tangents = torch.randn(3, spec.n_params, generator=g, dtype=torch.float64)
    want = hessian_tangents(spec, loss)(theta, tangents, x, y)
    got = cnn_replay.hessian_products(spec, loss, theta, tangents, x, y)
    assert (got - want).abs().max() < 1e-12 * want.abs().max()


def test_tiny_cnn_jacobian_matches_finite_differences():
    exp = tiny()
    res = training_jacobian(exp)
    check = finite_difference_check(exp, res.jacobian, eps=1e-5)
    assert check.relative_error < 1e-6


def test_column_blocks_and_determinism():
    exp = tiny()
    full = training_jacobian(exp)
    again = training_jacobian(exp)
    assert torch.equal(full.jacobian, again.jacobian) and torch.equal(full.theta_final, again.theta_final)
    block = training_jacobian(exp, columns=(10, 50), workers=1)
    assert block.columns == (10, 50) and block.jacobian.shape == (202, 40)
    assert torch.equal(block.jacobian, full.jacobian[:, 10:50])  # column j in slot j mod width, any block
    other = training_jacobian(exp.replace(seed=1))
    assert not torch.equal(other.jacobian, full.jacobian)
    with pytest.raises(ValueError, match="columns"):
        training_jacobian(exp, columns=(5, 3))
    assert full.engine == "fast" and training_jacobian(exp, engine="general").engine == "general"
    with pytest.raises(ValueError, match="no hand-written replay"):
        training_jacobian(tj.preset("attention"), engine="fast")


def test_cnn_spec_validation_and_json_round_trip():
    exp = tj.preset("lenet5")
    assert Experiment.from_json(exp.to_json()) == exp
    assert Experiment.from_json(tj.preset("cnn").to_json()) == tj.preset("cnn")
    assert "dataset" not in tj.preset("paper").to_json()  # the MLP presets keep their config text and hashes
    for bad, words in ((CNNSpec(convs=(Conv(2, 4, "SAME"),)), "odd kernel"),
                       (CNNSpec(convs=(Conv(2, 9, "VALID"),)), "too small"),
                       (CNNSpec(pooling="median"), "pooling")):
        with pytest.raises(ValueError, match=words):
            validate_spec(bad)


@pytest.mark.slow
def test_cli_train_layout_and_refusals(tmp_path, tj_cli):
    r = run_cli("train", "--preset", "cnn")
    assert r.returncode == 0, r.stderr
    acc = float(r.stdout.split("test accuracy ")[1].split()[0])
    assert acc > 0.9 and "wall time" in r.stdout
    code, out, _ = tj_cli("layout", "--preset", "lenet5")
    lay = out.splitlines()
    assert code == 0 and lay[0] == "conv1.W 6x1x5x5 0 150" and lay[-1] == "dense3.b 10 61696 61706"
    for bad in (["train", "--preset", "nope"], ["train", "--preset", "cnn", "--seed", "x"],
                ["jacobian", "--preset", "cnn", "--out", str(tmp_path / "b.npz"), "--columns", "9:3"],
                ["jacobian", "--preset", "attention", "--out", str(tmp_path / "b.npz"), "--engine", "fast"]):
        code, _, err = tj_cli(*bad)
        assert code != 0 and len(err.strip().splitlines()) == 1, bad
    r = run_cli("jacobian", "--preset", "cnn", "--out", str(tmp_path / "b.npz"), "--columns", "0:8")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "b.npz") as f:
        assert f["block"].shape == (690, 8) and f["columns"].tolist() == [0, 8]


@pytest.mark.parametrize("convs,dense,null", [
    ((Conv(3, 8, "VALID", 1),), (5,), 30),                        # one patch per image = [X, 1]: 3 channels × 10
    ((Conv(2, 3, "SAME", 2), Conv(3, 3, "VALID", 1)), (5,), 0)])  # many patches: full rank, softmax shift only
def test_untouched_prediction_matches_float64_cnn_jacobian(convs, dense, null):
    from tj.why import measured_untouched, untouched_for

    exp = Experiment(model=CNNSpec(convs=convs, dense=dense, activation="tanh"), data=DataSpec(n_train=64),
                     train=TrainSpec(epochs=4, batch_size=16, lr=0.2), dtype="float64")
    u = untouched_for(exp)
    assert (u.n_dead_pixel_directions, u.n_input_null_directions, u.n_softmax_directions) == (0, null, 1 + dense[-1])
    jac = training_jacobian(exp).jacobian.numpy()
    assert measured_untouched(np.linalg.svd(jac, compute_uv=False)) == u.total
    assert np.abs(jac @ u.basis.T - u.basis.T).max() < 1e-12 and np.abs(u.basis @ jac - u.basis).max() < 1e-12
