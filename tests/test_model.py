import pytest
import torch
from torch.func import grad

from tj import MLPSpec, init_params, layout
from tj.activations import ACTIVATIONS, VALUE, activation
from tj.mlp import forward, loss_and_grad
from tj.reference import loss


def test_paper_layout_is_torch_linear_row_major():
    blocks = layout(MLPSpec())
    assert [(b.name, b.shape, b.start, b.stop) for b in blocks] == [
        ("W1", (64, 64), 0, 4096), ("b1", (64,), 4096, 4160), ("W2", (10, 64), 4160, 4800), ("b2", (10,), 4800, 4810)]
    assert MLPSpec().n_params == 4810
    assert MLPSpec((32, 16)).n_params == layout(MLPSpec((32, 16)))[-1].stop == 64 * 32 + 32 + 32 * 16 + 16 + 170


def test_forward_matches_nn_linear():
    spec = MLPSpec((7,), "tanh")
    theta = init_params(spec, 3, torch.float64)
    lin1, lin2 = torch.nn.Linear(64, 7).double(), torch.nn.Linear(7, 10).double()
    with torch.no_grad():
        for lin, blocks in ((lin1, layout(spec)[:2]), (lin2, layout(spec)[2:])):
            lin.weight.copy_(theta[blocks[0].start:blocks[0].stop].reshape(blocks[0].shape))
            lin.bias.copy_(theta[blocks[1].start:blocks[1].stop])
    x = torch.rand(5, 64, dtype=torch.float64)
    assert torch.allclose(forward(spec, theta, x), lin2(torch.tanh(lin1(x))), atol=1e-14)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivatives_match_autograd(name):
    z = torch.linspace(-4, 4, 100, dtype=torch.float64)  # no point at ReLU's kink
    phi, d1, d2 = activation(name, z)
    ref = VALUE[name]
    assert torch.allclose(phi, ref(z), atol=1e-13)
    first = torch.func.vmap(torch.func.grad(ref))(z)
    second = torch.func.vmap(torch.func.grad(torch.func.grad(ref)))(z)
    assert torch.allclose(d1, first, atol=1e-12)
    assert torch.allclose(d2, second, atol=1e-12)


@pytest.mark.parametrize("widths", [(), (6,), (5, 4, 3)])
@pytest.mark.parametrize("kind", ["cross_entropy", "mse"])
def test_hand_backward_matches_autograd(widths, kind):
    spec = MLPSpec(widths, "gelu_tanh")
    theta = init_params(spec, 0, torch.float64)
    x, y = torch.rand(9, 64, dtype=torch.float64), torch.randint(0, 10, (9,))
    value, g = loss_and_grad(spec, theta, x, y, kind)
    assert torch.allclose(value, loss(spec, theta, x, y, kind), atol=1e-14)
    assert torch.allclose(g, grad(lambda t: loss(spec, t, x, y, kind))(theta), atol=1e-13)


def test_paper_init_statistics_and_seeding():
    spec = MLPSpec((256,))
    a, b = init_params(spec, 0), init_params(spec, 0)
    assert torch.equal(a, b) and not torch.equal(a, init_params(spec, 1))
    w1 = a[:64 * 256]
    assert w1.abs().max() <= 2 / 64**0.5 / 0.87962566103423978 + 1e-6  # truncated at ±2 std
    assert abs(w1.var().item() - 1 / 64) < 0.1 / 64
    b1 = a[64 * 256:64 * 256 + 256]
    assert abs(b1.std().item() - 64**-0.5) < 0.02
    t = init_params(MLPSpec((256,), init="torch"), 0)
    assert t[:64 * 256].abs().max() <= 64**-0.5
