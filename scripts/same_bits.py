"""The same bits from `python -m tj jacobian` with TJ_THREADS=1 and 2 and from a two-worker Dask store, per preset.

    python scripts/same_bits.py [--preset lecture cnn paper]

Each run is its own process; prints the wall time of each and whether `jacobian` and `theta_final` are identical."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def run(preset: str, folder: Path, threads: int, store: bool) -> tuple[dict, float]:
    out = folder / f"{preset}-{threads}-{'store' if store else 'threads'}.npz"
    args = [sys.executable, "-m", "tj", "jacobian", "--preset", preset, "--out", str(out)]
    if store:
        args += ["--store", str(folder / f"{preset}.zarr"), "--workers", "2"]
    start = time.perf_counter()
    subprocess.run(args, check=True, env={**os.environ, "TJ_THREADS": str(threads)}, capture_output=True)
    with np.load(out) as f:
        return {k: f[k] for k in ("jacobian", "theta_final")}, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", nargs="+", default=["lecture", "cnn", "paper"])
    args = parser.parse_args()
    for name in args.preset:
        with tempfile.TemporaryDirectory() as tmp:
            runs = {label: run(name, Path(tmp), t, store) for label, t, store in
                    (("TJ_THREADS=1", 1, False), ("TJ_THREADS=2", 2, False), ("store, 2 workers", 2, True))}
        first = next(iter(runs.values()))[0]
        same = all(np.array_equal(r[k], first[k]) for r, _ in runs.values() for k in first)
        times = ", ".join(f"{label} {s:.1f} s" for label, (_, s) in runs.items())
        print(f"{name}: jacobian and theta_final {'bit-identical' if same else 'DIFFER'} ({times})", flush=True)


if __name__ == "__main__":
    main()
