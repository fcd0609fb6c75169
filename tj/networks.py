"""Network families behind one protocol, and their registry: engine, pages and validation ask here, never a family.

A family is one module (tj/mlp.py, tj/cnn.py, tj/attention.py, tj/module.py) with:

    NAME, TITLE                      'mlp', …: the spec's `family`; a title for the form's family picker
    SPEC, DEFAULT                    its frozen, hashable spec class (JSON-able with dataclasses.asdict); the
                                     spec the form starts from
    FORM                             True when the app may build it from its FIELDS (the module adapter: False)
    FIELDS, DATASETS                 its settings as tj.fields.Field rows (attribute names of SPEC); the datasets
                                     it reads
    layout(spec)                     the named blocks of the flat θ, in order (tj.block.Block)
    init_params(spec, seed, dtype)   a seeded θ_0 (P,)
    forward(spec, theta, x)          logits (…, B, C) for flat inputs x (B, n_inputs) and θ (P,) or a stack (…, P)
    n_inputs(spec), n_activations(spec)   values one image brings in / creates in a forward pass (memory)
    problems(spec, dataset, limits)  sentences for what is wrong with it, [] when it can be built and trained
    from_settings(values, dataset)   a spec from checked form values (validate)
    describe(spec)                   one line for the sidebar
    first_layer(spec)                how its first layer reads an image (tj.block.FirstLayer), or None
    variants(exp)                    architecture variants for Compare: {label: Experiment}
    symmetries(spec) (optional)      directions (P,) along which the loss is flat for every θ, beyond the softmax shift
and optionally a hand-written backward, `loss_and_grad(spec, θ, x, y, kind, keep)`, with the tangent replay that
uses it, or a tangent replay alone, `REPLAY` (a module with record, replay, width, memory and flops:
tj/mlp_replay.py, tj/cnn_replay.py); without them autograd and the general torch.func engine (tj/general.py)
run, their steps traced once per shape (tj.traced) unless the family sets `TRACED = False` (the module
adapter: a user's forward may build tensors make_fx cannot trace).
"""
from __future__ import annotations

import torch
from torch.func import grad_and_value

from .losses import loss_value
from .traced import traced

FAMILIES: dict = {}


def register(family) -> None:
    """Add a family module to the registry (by its NAME)."""
    FAMILIES[family.NAME] = family


def of(spec):
    """The family module of a spec."""
    try:
        return FAMILIES[spec.family]
    except (AttributeError, KeyError):
        raise ValueError(f"{type(spec).__name__} is not a network spec of a registered family "
                         f"({', '.join(FAMILIES)})") from None


def family(spec) -> str:
    """The family's name: 'mlp', 'cnn', …"""
    return of(spec).NAME


def buildable() -> tuple[str, ...]:
    """Families the app's form can build (user modules never run on a hosted app)."""
    return tuple(name for name, f in FAMILIES.items() if f.FORM)


def spec_from_dict(d: dict):
    """A spec from its JSON form (dataclasses.asdict): the family whose spec has exactly these fields."""
    import dataclasses

    for f in FAMILIES.values():
        names = {x.name for x in dataclasses.fields(f.SPEC)}
        if set(d) == names:
            return f.spec_from_dict(d)
    raise ValueError(f"no network family has the settings {sorted(d)}")


def layout(spec):
    """The named blocks of the flat θ, in order."""
    return of(spec).layout(spec)


def init_params(spec, seed: int, dtype=torch.float32) -> torch.Tensor:
    """A seeded θ_0 for the spec."""
    return of(spec).init_params(spec, seed, dtype)


def forward(spec, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits (…, B, C) for flat inputs x (B, n_inputs) and θ (P,) or a stack (…, P)."""
    return of(spec).forward(spec, theta, x)


def n_inputs(spec) -> int:
    """Input values per example the network reads."""
    return of(spec).n_inputs(spec)


def n_activations(spec) -> int:
    """Values one example creates in a forward pass (its memory per image and tangent)."""
    return of(spec).n_activations(spec)


def describe(spec) -> str:
    """One line for the sidebar."""
    return of(spec).describe(spec)


def first_layer(spec):
    """How the first layer reads an image (tj.block.FirstLayer), or None when it has no image-shaped weights."""
    return of(spec).first_layer(spec)


def symmetries(spec) -> list:
    """The family's own exact symmetries, directions (P,) along which the loss is flat for every θ (optional
    `symmetries(spec)` of the family; [] without): SGD carries them through training unchanged."""
    own = getattr(of(spec), "symmetries", None)
    return list(own(spec)) if own is not None else []


def replay(spec):
    """The family's hand-written tangent replay module, or None (the general torch.func engine runs)."""
    return getattr(of(spec), "REPLAY", None)


def has_fast_replay(spec) -> bool:
    """Whether the family has a hand-written tangent replay (else the general torch.func engine runs)."""
    return replay(spec) is not None


def is_traced(spec) -> bool:
    """Whether the family's gradient and Hessian-tangent steps run as traced graphs (tj.traced)."""
    return getattr(of(spec), "TRACED", True)


def loss(spec, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, kind: str = "cross_entropy") -> torch.Tensor:
    """The mean training loss as a plain differentiable function of θ (torch.func transforms it)."""
    return loss_value(forward(spec, theta, x), y, kind)


def loss_and_grad(spec, theta, x, y, kind: str = "cross_entropy", keep: dict | None = None):
    """Mean loss and its gradient (P,): a family's hand-written backward when it has one, else autograd."""
    by_hand = getattr(of(spec), "loss_and_grad", None)
    if by_hand is not None:
        return by_hand(spec, theta, x, y, kind, keep)
    step = traced(("grad", spec, kind), lambda: grad_and_value(lambda th, x, y: loss(spec, th, x, y, kind)),
                  (theta, x, y), enabled=is_traced(spec))
    g, value = step(theta, x, y)
    return value.detach(), g.detach()


from . import attention, cnn, mlp, module  # noqa: E402  (last: the families import this module)

for _family in (mlp, cnn, attention, module):
    register(_family)
