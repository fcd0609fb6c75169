"""What one-thread-per-kernel determinism costs: the paper and `cnn` Jacobians with the primal run on every thread
(before: its GEMMs then round by the thread count) and on one (now), alternating, three rounds each.

    python scripts/determinism_cost.py [--rounds 3]

The tangent replays already ran single-threaded on parallel workers before; only the recorded run changed."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import statistics
import time
import types

import tj

train_module = importlib.import_module("tj.train")  # the module: tj.train is the function


def timed(name: str, threaded_primal: bool) -> float:
    saved = train_module.threads
    if threaded_primal:  # the primal run on tj's thread count, as before; the replays' workers untouched
        train_module.threads = types.SimpleNamespace(limit=lambda n: contextlib.nullcontext())
    try:
        start = time.perf_counter()
        tj.training_jacobian(tj.preset(name))
        return time.perf_counter() - start
    finally:
        train_module.threads = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for name in ("cnn", "paper"):
        before, after = [], []
        for _ in range(args.rounds):
            before.append(timed(name, True))
            after.append(timed(name, False))
        b, a = statistics.median(before), statistics.median(after)
        print(f"{name}: J with the primal run threaded {', '.join(f'{x:.1f}' for x in before)} s; on one thread "
              f"{', '.join(f'{x:.1f}' for x in after)} s; medians {b:.1f} → {a:.1f} s ({100 * (a / b - 1):+.1f} %)",
              flush=True)


if __name__ == "__main__":
    main()
