"""Figures for J on a Dask cluster (issue 11), as JSON on stdout (and in --out).

paper: the paper preset's J on an embedded LocalCluster of 2 single-threaded workers against the threaded
       engine (training_jacobian, 2 threads) in this process: wall times, their ratio, and bit-equality.
lenet: LeNet-5 with the authors' recipe on one core: the whole run recorded (timed), one chunk of 64 tangent
       columns replayed over its first few steps (timed) and extrapolated to the 900 steps, and the full J's
       projected wall time on 2, 64 and 512 single-core workers.

    python scripts/measure_cluster.py --part all --out docs/cluster.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import tj  # noqa: E402
from tj.cluster import compute  # noqa: E402
from tj.jacobian import basis_rows, engine_of, propagate, record  # noqa: E402
from tj.jstore import open_store  # noqa: E402


def paper(workers: int = 2) -> dict:
    exp = tj.preset("paper")
    start = time.perf_counter()
    res = tj.training_jacobian(exp)
    threaded = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        rep = compute(exp, f"{tmp}/J.zarr", workers=workers)
        cluster = time.perf_counter() - start
        same = bool(np.array_equal(open_store(f"{tmp}/J.zarr").read(), res.jacobian.numpy()))
    return dict(preset="paper", P=exp.model.n_params, threads=torch.get_num_threads(), workers=workers,
                blocks=rep.n_blocks, block_columns=int(rep.blocks[0]["columns"][1]),
                threaded_seconds=round(threaded, 1), cluster_seconds=round(cluster, 1),
                cluster_seconds_note="LocalCluster start, every worker's own recording of the run, all blocks written "
                                     "to the zarr store, and shutdown",
                ratio=round(cluster / threaded, 2), bit_identical=same)


def lenet(steps: int = 4, chunk: int = 64, workers=(2, 64, 512), block: int = 64) -> dict:
    exp = tj.preset("lenet5")
    torch.set_num_threads(1)  # as on a cluster worker
    start = time.perf_counter()
    traj = record(exp)  # the authors' whole 900-step run, as every worker records it once (its default engine)
    record_seconds = time.perf_counter() - start
    n, n_steps = exp.model.n_params, len(traj.steps)
    first = dataclasses.replace(traj, steps=traj.steps[:steps])  # the run's first steps: same cost per step
    tangents = basis_rows(n, 0, chunk, exp.torch_dtype)
    propagate(first, tangents)  # warm-up
    start = time.perf_counter()
    propagate(first, tangents)
    per_column_step = (time.perf_counter() - start) / (chunk * steps)
    per_column = per_column_step * n_steps
    n_blocks = math.ceil(n / block)
    projected = {str(w): round(record_seconds + math.ceil(n_blocks / w) * block * per_column) for w in workers}
    return dict(preset="lenet5", P=n, steps_in_recipe=n_steps, measured_steps=steps, measured_columns=chunk,
                engine=engine_of(traj), threads=1, record_seconds=round(record_seconds, 1),
                seconds_per_column=round(per_column, 2), seconds_per_column_step=round(per_column_step, 5),
                core_days=round(n * per_column / 86400, 1), projected_block_columns=block,
                projected_wall_seconds=projected,
                projected_wall_days={k: round(v / 86400, 2) for k, v in projected.items()},
                note=f"replay measured on {chunk} columns over the run's first {steps} steps on one core and "
                     f"extrapolated to {n_steps} steps and {n:,} columns; the recording (timed in full) is paid "
                     f"once per worker; blocks of {block} columns ({n_blocks} tasks)",
                gpu="not run: no GPU on this machine")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("paper", "lenet", "all"), default="all")
    parser.add_argument("--lenet-steps", type=int, default=4)
    parser.add_argument("--out", help="also write the JSON here (e.g. docs/cluster.json)")
    args = parser.parse_args(argv)
    found = {}
    if args.part in ("paper", "all"):
        found["paper"] = paper()
    if args.part in ("lenet", "all"):
        found["lenet5"] = lenet(args.lenet_steps)
    text = json.dumps(found, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
