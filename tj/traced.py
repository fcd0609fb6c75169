"""torch.func's transforms traced once per shape into a graph of plain aten ops, optionally compiled.

make_fx records the kernels a transformed function calls; running the graph calls the very same kernels on the
same shapes, so its bits are the eager function's (checked on the first call), without torch.func's per-op
dispatch. Nodes whose values nothing uses are dropped: a vjp of grad traces the gradient itself and the
convolutions' input gradients, then returns neither (measured on one thread: the cnn preset's 115-tangent
step 17.3 → 15.0 ms, LeNet-5's 5-tangent step 143 → 113 ms, the paper MLP's unchanged). With TJ_COMPILE=1 a
graph marked compilable is compiled by inductor instead: faster again, the same results to rounding, and the
same bits in every process that compiles it (always single-threaded, see jacobian.py); its wrapper is C++ too,
so two workers do not queue for Python's GIL between kernels (measured on the paper MLP, per column-step on 2
workers: 43 µs·core with a Python wrapper, 30 with C++). With no C++ compiler it says so once and runs
uncompiled.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
import warnings
from collections import OrderedDict

import torch

COMPILE = os.environ.get("TJ_COMPILE", "0") == "1"
KEPT = 64  # graphs kept per process, least recently used first out
BUILD_SECONDS: dict = {}  # key → seconds its first call spent tracing (and compiling)
_GRAPHS: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
_SAID: set = set()


def traced(key: tuple, make, args: tuple, compilable: bool = False, enabled: bool = True):
    """`make()`'s function, traced for these arguments' shapes (once per process, shared by threads).

    Not `enabled`, inside a torch.func transform, or on tensors that require grad, it is `make()` itself,
    untraced; so is a function make_fx cannot trace without data-dependent control flow, or whose graph differs from it in any
    bit on its first call."""
    if not enabled or torch._C._functorch.peek_interpreter_stack() is not None or any(a.requires_grad for a in args):
        return make()
    compile = compilable and compiling()
    key = (*key, compile, *((a.dtype, a.device, tuple(a.shape)) for a in args))
    with _LOCK:
        graph = _GRAPHS.get(key)
        if graph is None:
            start = time.perf_counter()
            graph = _build(make(), args, compile)
            BUILD_SECONDS[key] = time.perf_counter() - start
            _GRAPHS[key] = graph
            while len(_GRAPHS) > KEPT:
                _GRAPHS.popitem(last=False)
        _GRAPHS.move_to_end(key)
    return graph


def _build(eager, args, compile: bool):
    from torch.fx.experimental.proxy_tensor import make_fx
    try:
        graph = make_fx(eager, tracing_mode="fake", _allow_non_fake_inputs=True)(*args)
        graph.graph.eliminate_dead_code()
        graph.recompile()
        if not _same_bits(graph(*args), eager(*args)):
            return eager
    except Exception:  # data-dependent control flow, or an op without a traceable form: the eager function
        return eager
    if not compile:
        return graph
    try:
        fast = torch.compile(graph, dynamic=False, fullgraph=True, options={"cpp_wrapper": True})
        torch.testing.assert_close(fast(*args), graph(*args))
        return fast
    except Exception as err:
        say(f"TJ_COMPILE=1, but inductor could not compile the general engine's step ({type(err).__name__}); it "
            f"runs uncompiled, with the same results to rounding")
        return graph


def _same_bits(a, b) -> bool:
    a, b = (x if isinstance(x, (tuple, list)) else (x,) for x in (a, b))
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def compiling() -> bool:
    """Whether compilable graphs are compiled: TJ_COMPILE=1 and a C++ compiler for inductor's CPU kernels."""
    if not COMPILE:
        return False
    if not any(shutil.which(cc) for cc in (os.environ.get("CXX", "g++"), "g++", "clang++")):
        say("TJ_COMPILE=1, but no C++ compiler (g++ or clang++) was found; the general engine runs uncompiled, "
            "with the same results to rounding")
        return False
    return True


def say(message: str) -> None:
    """Warn once per process."""
    if message not in _SAID:
        _SAID.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
