"""The attention family: layout, forward against torch's own modules, its J against jacfwd, specs and settings."""
import dataclasses
import math

import pytest
import torch

import tj
from tj import DataSpec, Experiment, TrainSpec, attention, networks, threads
from tj.attention import AttentionSpec
from tj.reference import jacobian_jacfwd


def tiny(optimizer="sgd") -> Experiment:
    """P = 238: width 4, 2 heads, MLP 4; 40 images in batches of 16 for 3 epochs (6 steps), float64."""
    return Experiment(model=AttentionSpec(embed=4, heads=2, hidden=4), data=DataSpec(n_train=40),
                      train=TrainSpec(optimizer=optimizer, lr=0.2 if optimizer == "sgd" else 0.01, epochs=3,
                                      batch_size=16), seed=1, dtype="float64")


@pytest.fixture(scope="module")
def tiny_jacobian():
    return tj.training_jacobian(tiny())


def test_layout_names_shapes_and_totals():
    spec = AttentionSpec()
    blocks = tj.layout(spec)
    assert [(b.name, b.shape) for b in blocks] == [
        ("embed.W", (16, 8)), ("embed.b", (16,)), ("pos", (8, 16)),
        ("attn.q.W", (16, 16)), ("attn.q.b", (16,)), ("attn.k.W", (16, 16)), ("attn.k.b", (16,)),
        ("attn.v.W", (16, 16)), ("attn.v.b", (16,)), ("attn.o.W", (16, 16)), ("attn.o.b", (16,)),
        ("mlp.in.W", (16, 16)), ("mlp.in.b", (16,)), ("mlp.out.W", (16, 16)), ("mlp.out.b", (16,)),
        ("head.W", (10, 16)), ("head.b", (10,))]
    assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:])) and blocks[0].start == 0
    assert spec.n_params == blocks[-1].stop == 2074
    assert AttentionSpec(hidden=32).n_params == 2602 and tiny().model.n_params == 238
    assert networks.n_inputs(spec) == 64 and networks.n_activations(spec) > 64


def test_init_is_seeded_lecun_with_zero_biases():
    spec = AttentionSpec()
    theta = tj.init_params(spec, 0, torch.float64)
    assert theta.shape == (2074,) and torch.equal(theta, tj.init_params(spec, 0, torch.float64))
    assert not torch.equal(theta, tj.init_params(spec, 1, torch.float64))
    for b in tj.layout(spec):
        part = theta[b.start:b.stop]
        if b.name.endswith(".b"):
            assert torch.count_nonzero(part) == 0, b.name
        elif b.name.endswith(".W"):
            bound = 2 * b.shape[1] ** -0.5 / 0.87962566103423978
            assert 0 < part.abs().max() <= bound + 1e-12, b.name
    pos = tj.layout(spec)[2]
    assert 0.5 < theta[pos.start:pos.stop].std() < 1.5
    torch_init = tj.init_params(dataclasses.replace(spec, init="torch"), 0, torch.float64)
    assert torch.count_nonzero(torch_init) == 2074


def test_forward_matches_torch_modules_and_stacks():
    """The flat-θ forward is nn.Linear, nn.MultiheadAttention and nn.Linear with the same weights."""
    spec = AttentionSpec()
    theta = tj.init_params(spec, 3, torch.float64) + 0.05 * torch.randn(spec.n_params, dtype=torch.float64)
    p = {b.name: theta[b.start:b.stop].reshape(b.shape) for b in tj.layout(spec)}
    x = tj.load(DataSpec(n_train=8), torch.float64).x_train
    tokens = (x.reshape(8, 8, 8) - attention.PIXEL_MEAN) / attention.PIXEL_STD
    a = torch.nn.functional.linear(tokens, p["embed.W"], p["embed.b"]) + p["pos"]
    mha = torch.nn.MultiheadAttention(16, 2, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([p["attn.q.W"], p["attn.k.W"], p["attn.v.W"]]))
        mha.in_proj_bias.copy_(torch.cat([p["attn.q.b"], p["attn.k.b"], p["attn.v.b"]]))
        mha.out_proj.weight.copy_(p["attn.o.W"])
        mha.out_proj.bias.copy_(p["attn.o.b"])
        a = a + mha(a, a, a, need_weights=False)[0]
    hidden = torch.nn.functional.gelu(torch.nn.functional.linear(a, p["mlp.in.W"], p["mlp.in.b"]), approximate="tanh")
    a = a + torch.nn.functional.linear(hidden, p["mlp.out.W"], p["mlp.out.b"])
    want = torch.nn.functional.linear(a.mean(1), p["head.W"], p["head.b"])
    got = tj.forward(spec, theta, x)
    assert got.shape == (8, 10) and torch.allclose(got, want, rtol=0, atol=1e-12)
    stack = torch.stack([theta, 0.5 * theta, -theta]).reshape(3, 1, -1)
    out = tj.forward(spec, stack, x)
    assert out.shape == (3, 1, 8, 10)
    for i, th in enumerate(stack[:, 0]):
        assert torch.allclose(out[i, 0], tj.forward(spec, th, x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_tiny_jacobian_matches_jacfwd(optimizer, tiny_jacobian):
    exp = tiny(optimizer)
    got = tiny_jacobian if optimizer == "sgd" else tj.training_jacobian(exp)
    assert got.engine == "general" and got.jacobian.shape == (238, 238)
    with threads.limit(1):  # tiny GEMMs: one thread is faster, and spins no idle OpenMP threads
        want = jacobian_jacfwd(exp)
    assert ((got.jacobian - want).abs().max() / want.abs().max()).item() < 1e-9
    assert (want - torch.eye(238, dtype=torch.float64)).abs().max() > 1e-2  # training moved θ: not trivial


def test_softmax_shift_is_untouched(tiny_jacobian):
    """The dense head's softmax shift (head.b and every column of head.W along (1,…,1)) is fixed by J."""
    from tj.why import untouched_for

    u = untouched_for(tiny())
    assert (u.n_dead_pixel_directions, u.n_input_null_directions, u.n_softmax_directions) == (0, 0, 5)
    basis = torch.from_numpy(u.basis)
    jac = tiny_jacobian.jacobian
    assert (jac @ basis.T - basis.T).abs().max() < 1e-12 and (basis @ jac - basis).abs().max() < 1e-12


def test_spec_json_round_trip_and_family_lookup():
    for model in (AttentionSpec(), AttentionSpec(embed=8, heads=4, hidden=12, activation="tanh", init="torch")):
        exp = Experiment(model=model, train=TrainSpec(lr=0.06, epochs=3, batch_size=32))
        back = Experiment.from_json(exp.to_json())
        assert back == exp and isinstance(back.model, AttentionSpec) and hash(back) == hash(exp)
    names = {f.name for f in dataclasses.fields(AttentionSpec)}
    for other in networks.FAMILIES.values():
        if other is not attention:
            assert {f.name for f in dataclasses.fields(other.SPEC)} != names
    assert networks.family(AttentionSpec()) == "attention" and networks.first_layer(AttentionSpec()) is None
    assert networks.describe(AttentionSpec()) == \
        "Attention: 8 row tokens → 1 layer, 2 heads, width 16 → MLP 16 → mean → 10, gelu_tanh"


def test_problems_are_sentences():
    assert attention.problems(AttentionSpec()) == []
    cases = {AttentionSpec(embed=10, heads=3): "divisible",
             AttentionSpec(embed=0): "at least 1",
             AttentionSpec(hidden=0, heads=0): "at least 1",
             AttentionSpec(activation="swish"): "activation",
             AttentionSpec(init="xavier"): "init"}
    for spec, words in cases.items():
        found = attention.problems(spec)
        assert len(found) == 1 and words in found[0], (spec, found)
    assert "digits" in attention.problems(AttentionSpec(), "mnist")[0]
    from tj.limits import Limits
    assert "at most 8" in attention.problems(AttentionSpec(), "digits", Limits(max_width=8))[0]
    for spec in (*cases, AttentionSpec()):
        for sentence in attention.problems(spec, "mnist"):
            assert sentence[0].isupper() and sentence.endswith("."), sentence
    with pytest.raises(ValueError, match="divisible"):
        tj.init_params(AttentionSpec(embed=10, heads=3), 0)


def test_fields_and_variants():
    shorts = {"w", "act", "init", "labels", "inputs", "n", "vseed", "opt", "lr", "mom", "sched", "ep", "bs",
              "shuf", "loss", "b1", "b2", "eps", "epsr", "seed", "dtype", "fam", "conv", "dense", "pool", "ds"}
    own = {f.name: f for f in attention.FIELDS}
    assert set(own) == {f.name for f in dataclasses.fields(AttentionSpec)}
    assert {own[n].short for n in ("embed", "heads", "hidden")}.isdisjoint(shorts)
    assert (own["activation"].short, own["init"].short) == ("act", "init")  # the same settings as the MLP's
    values = {name: getattr(AttentionSpec(embed=8, hidden=12), name) for name in own}
    assert attention.from_settings(values) == AttentionSpec(embed=8, hidden=12)
    exp = Experiment(model=AttentionSpec())
    found = attention.variants(exp)
    assert found["twice the width"].model == AttentionSpec(embed=32, hidden=32)
    assert found["4 heads"].model == AttentionSpec(heads=4)
    assert all(not attention.problems(v.model) for v in found.values())


def test_validate_and_url_round_trip():
    import tj.validate as validate

    assert attention.NAME in validate.FAMILY.choices
    v = validate.validate({"family": "attention", "embed": "8", "heads": "2", "hidden": "12", "epochs": 2,
                           "n_train": 320, "batch_size": 32, "lr": 0.06})
    assert v.ok, v.errors
    assert v.experiment.model == AttentionSpec(embed=8, heads=2, hidden=12)
    params = validate.query_params(v.experiment)
    assert (params["fam"], params["emb"], params["heads"], params["hid"]) == ("attention", "8", "2", "12")
    back = validate.from_query_params(params)
    assert back.ok and back.experiment == v.experiment
    assert validate.validate(Experiment(model=AttentionSpec())).ok
    bad = validate.validate({"family": "attention", "embed": 10, "heads": 3})
    assert not bad.ok and any("divisible" in e for e in bad.errors)
    assert not validate.validate({"family": "attention", "embed": math.nan}).ok


def test_the_predicted_untouched_directions_are_the_measured_ones():
    """Softmax shift (1 + d), key biases (d) and the embedding bias against the positions (d): 1 + 3d = 13."""
    from tj.why import measured_untouched, untouched_for

    exp = tiny()
    u = untouched_for(exp)
    assert (u.n_softmax_directions, u.n_family_directions, u.total) == (5, 8, 13)
    jac = tj.training_jacobian(exp).jacobian
    assert measured_untouched(torch.linalg.svdvals(jac).numpy(), 1e-9) == 13
    basis = torch.from_numpy(u.basis)
    assert (jac @ basis.T - basis.T).abs().max() < 1e-12 and (basis @ jac - basis).abs().max() < 1e-12
