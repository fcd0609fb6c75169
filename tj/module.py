"""Your own torch.nn.Module as a network family: θ is its parameters, flat in named_parameters() order.

`from_module(module, train=(X, y), test=(X_test, y_test), …)` checks the module once, keeps a copy in this
process (tj.live) and returns an Experiment whose ModuleSpec names it by a hash of its code, shapes and initial
state. Training runs `torch.func.functional_call` on the copy with θ cut into its parameters, on the general
engine; the user's module is never touched. A module given by an import path (`package.file:factory`) can be
rebuilt anywhere (a Dask worker, another seed). The hosted app never runs user code: this family has no form.
"""
from __future__ import annotations

import copy
import importlib
import inspect
import json
import math
import threading
from dataclasses import dataclass

import torch
from torch.func import functional_call, grad

from . import live
from .block import Block, blocks
from .block import unflatten as split_blocks
from .data import from_arrays, load
from .losses import loss_value

NAME = "module"
TITLE = "your own torch.nn.Module"
FORM = False
TRACED = False  # a user's forward may build tensors (a module copy, constants) that make_fx cannot trace
DATASETS = ()
FIELDS = ()


@dataclass(frozen=True)
class ModuleSpec:
    """Which module, exactly: where it comes from, its parameters' names and shapes, and a hash of it all."""

    source: str                              # "package.file:factory" (rebuildable) or the class's qualified name
    kwargs: str = "{}"                       # the factory's keyword arguments, as JSON
    names: tuple[str, ...] = ()              # named_parameters() order
    shapes: tuple[tuple[int, ...], ...] = ()
    input_shape: tuple[int, ...] = ()        # one example's shape, as the module reads it
    n_classes: int = 10
    activations: int = 0                     # values one example creates in a forward pass (for memory estimates)
    seed: int = 0                            # the seed θ_0 belongs to
    state: str = ""                          # "module:" + SHA-256 of its code, shapes, θ_0 and buffers

    @property
    def family(self) -> str:
        return NAME

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.shapes)


SPEC, DEFAULT = ModuleSpec, None


def layout(spec: ModuleSpec) -> tuple[Block, ...]:
    """One block per parameter, named as named_parameters() names it."""
    return blocks(zip(spec.names, spec.shapes))


def build(source: str, kwargs: dict | None = None, seed: int = 0) -> torch.nn.Module:
    """The module from an import path 'package.file:factory', built under torch.manual_seed(seed)."""
    path, sep, attr = source.partition(":")
    if not sep or not path or not attr:
        raise ValueError(f"a module is named as package.file:factory; got {source!r}")
    try:
        factory = getattr(importlib.import_module(path), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import {source} ({err}); is its folder on PYTHONPATH?") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        module = factory(**(kwargs or {}))
    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"{source} returned a {type(module).__name__}, not a torch.nn.Module")
    return module


_THREAD = threading.local()  # functional_call swaps a module's parameters while it runs: one copy per thread


def _copy(spec: ModuleSpec) -> torch.nn.Module:
    """This thread's copy of the module (rebuilt from the import path when the process has none)."""
    copies = _THREAD.__dict__.setdefault("copies", {})
    key = spec.state
    if key not in copies:
        base = live.get(spec.state)
        if base is None:
            if ":" not in spec.source:
                raise ValueError(f"the module {spec.source} is not in this process: build the experiment with "
                                 "tj.from_module here, or name the module by an import path package.file:factory")
            base = build(spec.source, json.loads(spec.kwargs), spec.seed)
            if _state(spec.source, spec.kwargs, base) != spec.state:
                raise ValueError(f"{spec.source} does not rebuild the module this config names (its code, shapes "
                                 "or initial parameters changed)")
            live.put(spec.state, base)
        copies[key] = copy.deepcopy(base)
    return copies[key]


def _state(source: str, kwargs: str, module: torch.nn.Module) -> str:
    try:
        code = inspect.getsource(type(module))
    except (OSError, TypeError):  # defined in a notebook cell or the REPL: its repr stands in
        code = ""
    tensors = [t.detach().cpu().double().numpy() for t in (*module.parameters(), *module.buffers())]
    text = json.dumps([source, kwargs, repr(module), code]).encode()
    return "module:" + live.digest(torch.frombuffer(bytearray(text), dtype=torch.uint8).numpy(), *tensors)[:32]


def init_params(spec: ModuleSpec, seed: int, dtype=torch.float32) -> torch.Tensor:
    """θ_0: the module's own parameters; for another seed, the factory's module built under that seed."""
    if int(seed) == spec.seed:
        module = _copy(spec)
    elif ":" in spec.source:
        module = build(spec.source, json.loads(spec.kwargs), seed)
    else:
        raise ValueError(f"θ_0 for seed {seed} needs a factory to build the module again; this one was given as an "
                         f"object ({spec.source}): pass an import path package.file:factory")
    return torch.nn.utils.parameters_to_vector(module.parameters()).detach().to(dtype)


def forward(spec: ModuleSpec, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits (…, B, C) for flat inputs x (B, n_inputs) and θ (P,) or a stack (…, P)."""
    if theta.dim() > 1:
        out = torch.stack([forward(spec, th, x) for th in theta.reshape(-1, theta.shape[-1])])
        return out.reshape(*theta.shape[:-1], *out.shape[1:])
    module = _copy(spec)
    tensors = dict(zip(spec.names, split_blocks(layout(spec), theta)))
    tensors |= {name: b.to(theta.dtype) if b.is_floating_point() else b for name, b in module.named_buffers()}
    return functional_call(module, tensors, (x.to(theta.dtype).reshape(len(x), *spec.input_shape),))


def n_inputs(spec: ModuleSpec) -> int:
    return math.prod(spec.input_shape)


def n_activations(spec: ModuleSpec) -> int:
    return spec.activations


def problems(spec: ModuleSpec, dataset: str = "", limits=None) -> list[str]:
    return []  # checked once, by from_module


def from_settings(values: dict, dataset: str = ""):
    raise ValueError("a user's module is built in Python (tj.from_module) or the command line, not in a form")


def spec_from_dict(d: dict) -> ModuleSpec:
    return ModuleSpec(**{**d, "names": tuple(d["names"]), "shapes": tuple(tuple(s) for s in d["shapes"]),
                         "input_shape": tuple(d["input_shape"])})


def describe(spec: ModuleSpec) -> str:
    return f"your module {spec.source}: {len(spec.names)} parameter tensors"


def first_layer(spec: ModuleSpec):
    return None


def variants(exp) -> dict:
    return {}


# ------------------------------------------------------------------------------------------ from_module

def _refusals(module: torch.nn.Module) -> list[str]:
    """What makes training this module not a pure, differentiable function of θ_0, found by looking at it."""
    out = []
    for name, sub in module.named_modules():
        where = f"{name or 'the module'} ({type(sub).__name__})"
        if isinstance(sub, torch.nn.modules.dropout._DropoutNd) and sub.p > 0:
            out.append(f"{where} is dropout: training with dropout draws random masks, so θ_T is not a function "
                       "of θ_0 alone; remove it or set p=0")
        if isinstance(sub, torch.nn.modules.batchnorm._NormBase) and (sub.track_running_stats or sub.training):
            out.append(f"{where} is batch norm: its batch statistics and running averages make training depend "
                       "on more than θ_0 and the batch; use LayerNorm or GroupNorm, or none")
    for name, p in module.named_parameters():
        if not p.is_floating_point():
            out.append(f"parameter {name} is {p.dtype}, not a float: it has no derivative")
        elif not p.requires_grad:
            out.append(f"parameter {name} has requires_grad=False, but tj trains every parameter; set it to True "
                       "or make it a buffer")
    return out


def _expects(module: torch.nn.Module) -> str:
    """What the first layer with a declared input size wants, in words."""
    for sub in module.modules():
        if isinstance(sub, torch.nn.Linear):
            return f"its first Linear layer takes {sub.in_features} features"
        if isinstance(sub, torch.nn.modules.conv._ConvNd):
            return f"its first convolution takes {sub.in_channels} channels"
    return "see the module's forward"


def _count_values(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Values every submodule outputs for one example."""
    total = [x.numel()]
    hooks = [m.register_forward_hook(lambda m, i, o: total.append(o.numel() if isinstance(o, torch.Tensor) else 0))
             for m in module.modules() if m is not module]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in hooks:
            h.remove()
    return int(sum(total))


def from_module(module: torch.nn.Module, train, test, train_spec=None, seed: int = 0, dtype: str = "float32",
                source: str | None = None, kwargs: dict | None = None):
    """An Experiment of your own module, its data and a TrainSpec, that every tj function accepts.

    θ_0 is `parameters_to_vector(module.parameters())`; train and test are (X, y) with X (N, …) as the module
    reads it and y (N,) class indices. `source` ('package.file:factory', with `kwargs`) lets other processes
    rebuild it. Refused in one sentence, before anything runs: dropout, batch norm, a forward that draws random
    numbers or changes buffers, non-float or frozen parameters, inputs the module rejects, outputs that are not
    logits, and a forward torch.func cannot differentiate."""
    from .general import hessian_tangents
    from .presets import DTYPES, Experiment
    from .train import TrainSpec

    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"from_module wants a torch.nn.Module; got a {type(module).__name__}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    problems_found = _refusals(module)
    if problems_found:
        raise ValueError("This module cannot be trained as a pure function of θ_0: " + "; ".join(problems_found) + ".")
    if not list(module.parameters()):
        raise ValueError("this module has no parameters: there is nothing to train")
    data_spec = from_arrays(train, test)
    data = load(data_spec, torch.float64)
    x_shape = tuple(train[0].shape[1:])
    kwargs_json = json.dumps(kwargs or {}, sort_keys=True)
    mine = copy.deepcopy(module).double()
    x2 = data.x_train[:2].reshape(-1, *x_shape)
    rng = torch.random.get_rng_state()
    buffers = [b.clone() for b in mine.buffers()]
    try:
        with torch.no_grad():
            out = mine(x2)
    except Exception as err:
        raise ValueError(f"the module rejected inputs of shape {tuple(x2.shape)} ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]}); {_expects(module)}") from None
    if not torch.equal(rng, torch.random.get_rng_state()):
        raise ValueError("the module's forward pass draws random numbers (dropout or noise): θ_T would not be a "
                         "function of θ_0 alone")
    if any(not torch.equal(a, b) for a, b in zip(buffers, mine.buffers())):
        raise ValueError("the module's forward pass changes its buffers (running statistics?): training would "
                         "depend on more than θ_0")
    n_classes = int(max(data.y_train.max(), data.y_test.max())) + 1
    if not isinstance(out, torch.Tensor) or out.shape != (2, out.shape[-1]) or out.shape[-1] < n_classes:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the module's output for 2 examples is {shape}; tj needs logits of shape (2, C) with "
                         f"C ≥ {n_classes}, the number of classes in the labels")
    name = source or f"{type(module).__module__}.{type(module).__qualname__}"
    names = tuple(n for n, _ in module.named_parameters())
    spec = ModuleSpec(name, kwargs_json, names, tuple(tuple(p.shape) for _, p in module.named_parameters()),
                      x_shape, int(out.shape[-1]), _count_values(mine, x2[:1]), int(seed),
                      _state(name, kwargs_json, module))
    live.put(spec.state, copy.deepcopy(module))
    exp = Experiment(spec, data_spec, train_spec or TrainSpec(), int(seed), dtype)
    theta = init_params(spec, seed, torch.float64)
    x, y = data.x_train[:2], data.y_train[:2]
    try:
        grad(lambda th: loss_value(forward(spec, th, x), y, exp.train.loss))(theta)
        hessian_tangents(spec, exp.train.loss)(theta, torch.zeros(2, len(theta), dtype=theta.dtype), x, y)
    except Exception as err:
        raise ValueError(f"training cannot differentiate this module with torch.func (grad, vjp and vmap of its "
                         f"forward): {type(err).__name__}: {' '.join(str(err).split())[:200]}") from None
    return exp
