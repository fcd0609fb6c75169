"""Benchmark: `python -m tj.bench [--quick] [--general] [--json FILE]`.

Side by side in one run: the Jacobian engine against the straightforward torch.func reference
(vmap(jvp(grad)) over the whole training loop; on a column subset, extrapolated to all P columns and
labelled so), for the lecture and paper presets in float32 and float64, with train + J + SVD end to end; J's
time against the FLOP model's floor at this run's GEMM peak, and where the rest of the paper J's time goes
(`fast_path_profile`); the paper J's spread over three more rounds, each between two GEMM peaks
(`paper_spread`); and, when JAX is installed
(`pip install -r requirements-bench.txt`), the paper's own method timed on the same run in its own process
(tj.jax_reference: jax.jacfwd of a jitted lax.scan loop), its J checked against tj's.

FLOP model (tj.jacobian.estimate_flops): per training step and tangent column, every GEMM of the tangent
replay counts 2·m·n·k — per layer the forward tangent [a, 1]·Ṗ and the parameter-gradient tangent
[a, 1]ᵀ·ġ (2·B·(n_in + 1)·n_out each), and for layers after the first ȧ·Wᵀ, ȧᵀ·g, ġ·W and g·Ẇ (B·n_in·n_out
each). Elementwise work is not counted. Peak memory is the process's high-water mark (VmHWM), reset
before each measured pipeline, so it includes the Python/torch baseline.

`--general` (alone, or after the rest) times the general torch.func engine: seconds per tangent column, in
units of one training run of the same preset, on a column subset extrapolated to all P columns (labelled
so), uncompiled and with TJ_COMPILE=1 (inductor): the paper MLP on both engines in alternation, three rounds
(the target: the median general/fast ratio ≤ 1.6×), the small CNN preset's whole J (target ≤ 10 s) and
LeNet-5 on one replay piece per thread (target ≤ 8 s per column; its dense J is out of reach here), both
CNNs also on their hand-written replay (tj/cnn_replay.py, their default engine). The first call's tracing
and compiling is timed apart.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from . import traced
from .data import load
from .jacobian import ENGINES, estimate_flops, record, replay_width, training_jacobian
from .mlp_replay import NARROW
from .networks import init_params
from .presets import preset
from .train import train
from .reference import reference_columns
from .spectrum import spectrum, svd



def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def matmul_peak(dtype=torch.float32, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n×n matmul with torch's default threads: this machine's practical peak."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def pipeline(name: str, dtype: str, reference_cols: int) -> tuple[dict, torch.Tensor]:
    """Train + J + SVD for one preset and dtype, and the reference path on a column subset; (figures, J)."""
    exp = preset(name).replace(dtype=dtype)
    n = exp.model.n_params
    _reset_peak()
    start = time.perf_counter()
    res = training_jacobian(exp)
    j_s = time.perf_counter() - start
    spec = spectrum(res.jacobian, res.theta0, res.theta_final)
    total = time.perf_counter() - start
    peak = _peak_mb()
    flops = estimate_flops(exp)
    cols = np.linspace(0, n - 1, reference_cols).round().astype(int)
    reference_columns(exp, cols[:1].tolist(), res.theta0, chunk=1)  # warm-up: torch.func's first-call costs
    t0 = time.perf_counter()
    ref = reference_columns(exp, cols.tolist(), res.theta0, chunk=reference_cols)
    ref_s = time.perf_counter() - t0
    err = ((res.jacobian[:, cols].double() - ref.double()).norm(dim=0) / ref.double().norm(dim=0)).max().item()
    return {
        "preset": name, "dtype": dtype, "P": n, "steps": len(res.train.metrics.train_loss) - 1,
        "jacobian_s": j_s, "svd_s": spec.seconds, "svd_route": spec.route, "end_to_end_s": total,
        "gflop": flops / 1e9, "gflops_per_s": flops / j_s / 1e9, "peak_memory_mb": peak,
        "reference_columns": int(reference_cols), "reference_subset_s": ref_s,
        "reference_extrapolated_s": ref_s * n / reference_cols,
        "speedup_vs_reference": ref_s * n / reference_cols / j_s,
        "max_relative_column_error": err,
        "test_loss": res.train.metrics.test_loss[-1], "sigma_1": float(spec.singular_values[0]),
    }, res.jacobian


GENERAL_RUNS = (("cnn", None), ("lenet5", 1))  # preset, replay pieces per thread (None: all of J, recording included)
GENERAL_MODES = (("general", False), ("general+inductor", True))  # engine label, TJ_COMPILE
PAPER_ROUNDS, PAPER_COLUMNS = 3, 512


@functools.lru_cache(maxsize=None)
def training_seconds(name: str) -> float:
    """One plain training run of a preset, the unit of the per-column cost."""
    exp = preset(name)
    theta0 = init_params(exp.model, exp.seed, exp.torch_dtype)
    data = load(exp.data, exp.torch_dtype)
    return _timed(lambda: train(exp.model, exp.train, data, theta0, exp.seed))


def engine_columns(name: str, engine: str, columns: int | None, trajectory=None, compile: bool = False) -> dict:
    """Seconds per tangent column of one engine and, for the general one, whether its step is compiled. The
    first call's tracing (and compiling) is timed apart; with `columns` None, all of J, its recording included."""
    traced.COMPILE = compile
    exp = preset(name)
    n = exp.model.n_params
    width = replay_width(exp, engine)
    cols = min(max(1, round(columns / width)) * width if columns else n, n)  # whole pieces: no padded columns
    built = lambda: sum(traced.BUILD_SECONDS.values())  # noqa: E731  (workers wait for a build at its lock)
    before, start = built(), time.perf_counter()
    traj = trajectory or record(exp, engine=engine)
    recorded = built()
    record_s = time.perf_counter() - start - (recorded - before) if columns is None else 0.0
    start = time.perf_counter()
    training_jacobian(exp, engine=engine, columns=(0, cols), trajectory=traj)
    j_s = time.perf_counter() - start - (built() - recorded)
    build_s = built() - before
    traced.COMPILE = False
    per_col = j_s / cols
    return {"preset": name, "engine": engine, "P": n, "columns": cols, "extrapolated": cols < n,
            "train_s": training_seconds(name), "build_s": build_s, "record_s": record_s, "subset_s": j_s,
            "per_column_s": per_col, "per_column_in_training_runs": per_col / training_seconds(name),
            "jacobian_s_extrapolated": per_col * n + record_s}


def paper_engines(rounds: int = PAPER_ROUNDS, columns: int = PAPER_COLUMNS) -> tuple[list, dict]:
    """The paper MLP's engines timed in alternation, `rounds` times each (one quiet-machine hiccup then skews
    one round, not the ratio): their rows and each general mode's per-round ratio to the fast engine."""
    exp = preset("paper")
    trajectories = {engine: record(exp, engine=engine) for engine in ENGINES}
    rows, ratios = [], {label: [] for label, _ in GENERAL_MODES}
    for _ in range(rounds):
        fast = engine_columns("paper", "fast", columns, trajectories["fast"])
        rows.append(fast)
        for label, compile in GENERAL_MODES:
            rows.append(engine_columns("paper", "general", columns, trajectories["general"], compile))
            rows[-1]["engine"] = label
            ratios[label].append(rows[-1]["per_column_s"] / fast["per_column_s"])
    return rows, ratios


def general_engine() -> dict:
    """The general engine's figures, uncompiled and compiled: per-column costs, the paper MLP's general/fast
    ratios, the cnn preset's whole J and LeNet-5's column."""
    peak = matmul_peak(torch.float32)
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")
    print(f"{date}  {torch.get_num_threads()} threads; 2048² float32 matmul peak {peak:.0f} GFLOP/s")
    print(f"{'preset':8} {'engine':17} {'P':>7} {'columns':>12} {'train s':>8} {'build s':>8} {'s/column':>9} "
          f"{'(train runs)':>12} {'J s':>12}")

    def show(r):
        label = f"{r['columns']:,} (subset)" if r["extrapolated"] else f"{r['columns']:,} (all)"
        j = f"{r['jacobian_s_extrapolated']:.1f}" + (" (extrap.)" if r["extrapolated"] else "")
        print(f"{r['preset']:8} {r['engine']:17} {r['P']:>7,} {label:>12} {r['train_s']:8.1f} {r['build_s']:8.1f} "
              f"{r['per_column_s']:9.4f} {r['per_column_in_training_runs']:12.3f} {j:>12}", flush=True)

    rows, ratios = paper_engines()
    for r in rows:
        show(r)
    medians = {label: float(np.median(r)) for label, r in ratios.items()}
    for label, r in ratios.items():
        print(f"paper MLP: {label} / fast per column = {medians[label]:.2f}× (median of {len(r)} alternating rounds: "
              f"{', '.join(f'{x:.2f}' for x in r)}; target ≤ 1.6×)", flush=True)
    for name, pieces in GENERAL_RUNS:
        modes = [("fast", "fast", False)] + [(label, "general", compile) for label, compile in GENERAL_MODES]
        for label, engine, compile in modes:
            cols = pieces and pieces * torch.get_num_threads() * replay_width(preset(name), engine)
            rows.append(engine_columns(name, engine, cols, compile=compile))
            rows[-1]["engine"] = label
            show(rows[-1])
        fast = next(r for r in rows if r["preset"] == name and r["engine"] == "fast")
        fast["gflops_per_s"] = estimate_flops(preset(name)) / fast["P"] / fast["per_column_s"] / 1e9
        print(f"{name} fast: {fast['gflops_per_s']:.0f} GFLOP/s by its replay's FLOP model, "
              f"{fast['gflops_per_s'] / peak:.0%} of the GEMM peak", flush=True)
    print("J s of the cnn preset includes its recording; build s, the first call's tracing and compiling, is "
          "apart (a process pays it once per shape; inductor's disk cache shortens it later)")
    projections = [lenet_projection(r) for r in rows if r["preset"] == "lenet5"]
    for p in projections:
        print(f"lenet5 {p['engine']}: the whole J is {p['core_days']:.1f} core-days; on "
              + ", ".join(f"{w} single-core workers {_duration(s)}" for w, s in p["wall_s"].items()), flush=True)
    return {"date": date, "matmul_peak_gflops_f32": peak, "rows": rows, "paper_general_over_fast": medians,
            "paper_general_over_fast_rounds": ratios, "lenet5_projections": projections}


def lenet_projection(row: dict, workers=(2, 64, 512)) -> dict:
    """LeNet-5's whole J from one measured column: core-days, and wall time on single-core workers (each also
    recording the run once, one training run's time)."""
    core_s = row["per_column_s"] * torch.get_num_threads() * row["P"]
    return {"engine": row["engine"], "core_days": core_s / 86400,
            "wall_s": {w: core_s / w + row["train_s"] for w in workers}}


def _duration(seconds: float) -> str:
    return f"{seconds / 86400:.1f} days" if seconds >= 2 * 86400 else f"{seconds / 3600:.1f} h"


def jax_anchor(name: str, jac: torch.Tensor) -> dict | None:
    """The paper's method on the same run (tj.jax_reference, jax.jacfwd of a jitted lax.scan loop) in its own
    process, timed now, with its J compared to tj's; None when JAX is not installed."""
    if importlib.util.find_spec("jax") is None:
        return None
    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "J.npz"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run([sys.executable, "-m", "tj.jax_reference", "--preset", name, "--out", str(out)],
                              env=env, capture_output=True, text=True)
        if proc.returncode:
            return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
        report = json.loads(proc.stdout.splitlines()[-1])
        with np.load(out) as f:
            theirs = torch.from_numpy(f["jacobian"]).double()
    mine = jac.double()
    report["max_relative_column_error"] = float(((mine - theirs).norm(dim=0) / mine.norm(dim=0)).max())
    return report


def _replay_gemms(sizes, nb: int, k: int, steps: int, dtype=torch.float32) -> dict[str, tuple[float, int]]:
    """Each GEMM of the fast replay of k tangents at its own shapes, run `steps` times alone: {what it computes,
    (m×k×n): (seconds, FLOPs per call)}."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    gemms = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        L = f"layer {i + 1}"
        x, xt, z = r(nb, n_in + 1), r(n_in + 1, nb), r(nb, k * n_out)
        P, G = r(n_in + 1, k * n_out), r(n_in + 1, k * n_out)
        gemms += [(f"{L} ż = [a, 1]·Ṗ", lambda x=x, P=P, z=z: torch.mm(x, P, out=z), (nb, n_in + 1, k * n_out)),
                  (f"{L} Ġ = [a, 1]ᵀ·ġ", lambda G=G, xt=xt, z=z: G.addmm_(xt, z), (n_in + 1, nb, k * n_out))]
        if i > 0:
            a, W, gr, gt = r(nb * k, n_in), r(n_out, n_in), r(nb, n_out), r(n_out, nb)
            f, h, zt = r(n_out, k * n_in), r(nb * k, n_in), r(n_out, nb * k)
            if n_out < NARROW:
                gemms.append((f"{L} ȧ·Wᵀ, as (n_out, B·K)", lambda zt=zt, a=a, W=W: torch.mm(W, a.T, out=zt),
                              (n_out, n_in, nb * k)))
            else:
                gemms.append((f"{L} ż += ȧ·Wᵀ", lambda z=z, a=a, W=W: z.view(nb * k, -1).addmm_(a, W.T),
                              (nb * k, n_in, n_out)))
            gemms += [(f"{L} ȧᵀ·g", lambda gt=gt, a=a, f=f: torch.mm(gt, a.view(nb, -1), out=f), (n_out, nb, k * n_in)),
                      (f"{L} ġ·W", lambda z=z, W=W, h=h: torch.mm(z.view(nb * k, -1), W, out=h), (nb * k, n_out, n_in)),
                      (f"{L} g·Ẇ", lambda h=h, gr=gr, f=f: h.view(nb, -1).addmm_(gr, f), (nb, n_out, k * n_in))]
    out = {}
    for label, run, (m, kk, n) in gemms:
        run()
        start = time.perf_counter()
        for _ in range(steps):
            run()
        out[f"{label} ({m}×{kk}×{n})"] = (time.perf_counter() - start, 2 * m * kk * n)
    return out


def fast_path_profile(name: str = "paper", steps: int = 120) -> dict:
    """Where the fast replay's time goes against the FLOP model's floor: its GEMMs at their own shapes on one
    thread (as each worker runs them; each shape's rate too) against one thread's 2048² peak, the rest of a
    step (elementwise passes, copies), two workers side by side against one alone, and the 2048² peak's own
    gain from two threads. The product of the four is the replay's fraction of the two-thread peak."""
    from .jacobian import basis_rows, propagate
    from .threads import limit
    exp = preset(name)
    traj = record(exp, engine="fast")
    traj = type(traj)(traj.experiment, traj.steps[:steps], traj.result)
    k, n = replay_width(exp, "fast"), exp.model.n_params
    n_steps = exp.train.epochs * (exp.data.n_train // exp.train.batch_size)
    flop_piece = estimate_flops(exp) / n_steps / n * k * steps
    tangents = basis_rows(n, 0, k, exp.torch_dtype)
    with limit(1):
        peak1 = matmul_peak(torch.float32)
        rounds = [_replay_gemms(exp.model.sizes, exp.train.batch_size, k, steps) for _ in range(3)]
        gemms = {label: (min(r[label][0] for r in rounds), flop) for label, (_, flop) in rounds[0].items()}
        gemm_s = sum(seconds for seconds, _ in gemms.values())
        propagate(traj, tangents)
        one_s = min(_timed(lambda: propagate(traj, tangents)) for _ in range(3))

    def worker():
        with limit(1):
            propagate(traj, tangents)
    two_s = min(_timed(lambda: _side_by_side(worker, 2)) for _ in range(3))
    peak2 = matmul_peak(torch.float32)
    parts = {"gemm_rate_of_one_thread_peak": flop_piece / gemm_s / 1e9 / peak1,
             "gemm_share_of_step": gemm_s / one_s,
             "one_worker_over_two_side_by_side": one_s / two_s,
             "twice_one_thread_peak_over_two_threads": 2 * peak1 / peak2}
    return {"preset": name, "replay_width": k, "steps_timed": steps, "peak_1_thread_gflops": peak1,
            "peak_gflops": peak2, "gemm_gflops_1_thread": flop_piece / gemm_s / 1e9,
            "piece_1_thread_s": one_s, "gemm_only_1_thread_s": gemm_s, "two_pieces_side_by_side_s": two_s,
            "gemms_1_thread_gflops": {label: flop * steps / s / 1e9 for label, (s, flop) in gemms.items()},
            "gemms_share_of_step": {label: seconds / one_s for label, (seconds, _) in gemms.items()},
            **parts, "fraction_of_peak": float(np.prod(list(parts.values())))}


def paper_spread(rounds: int = 3) -> dict:
    """The paper's float32 J (its recording included) `rounds` times, each between two 2048² GEMM peaks, with
    its CPU time: whether its wall time swings by itself, or with the machine (then the peaks move too)."""
    exp = preset("paper")
    out = []
    for _ in range(rounds):
        before = matmul_peak(torch.float32)
        wall, cpu = time.perf_counter(), time.process_time()
        training_jacobian(exp)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out.append({"jacobian_s": wall, "cpu_s": cpu, "peak_before": before, "peak_after": matmul_peak(torch.float32)})
    walls = [r["jacobian_s"] for r in out]
    return {"rounds": out, "spread": max(walls) / min(walls) - 1}


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _side_by_side(work, n: int) -> None:
    import threading
    pool = [threading.Thread(target=work) for _ in range(n)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def svd_routes(name: str = "paper") -> dict:
    """The SVD routes we tried on the float32 J: time, peak memory, and σ accuracy against float64 gesdd."""
    jac = training_jacobian(preset(name)).jacobian
    routes = {
        "float32 gesdd, verified (used for float32 J)": lambda: svd(jac)[1],
        "float64 gesdd, in place on Jᵀ (used for float64 J)": lambda: svd(jac.double())[1],
        "float64 eigh of JᵀJ": lambda: torch.linalg.eigvalsh(jac.double().T @ jac.double()).clamp(min=0)
                                            .sqrt().flip(0).numpy(),
    }
    out, ref = {}, None
    for label, run in routes.items():
        _reset_peak()
        start = time.perf_counter()
        s = run()
        out[label] = {"s": time.perf_counter() - start, "peak_memory_mb": _peak_mb()}
        ref = s if ref is None and "float64 gesdd" in label else ref
        out[label]["sigma"] = s
    for entry in out.values():
        s = entry.pop("sigma")
        if ref is not None:
            small = ref < 1e-3
            entry["max_abs_err"] = float(np.abs(s - ref).max())
            entry["max_rel_err_sigma_below_1e-3"] = float((np.abs(s - ref) / ref)[small].max())
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tj.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="lecture preset only")
    parser.add_argument("--no-svd-routes", action="store_true", help="skip the SVD route comparison")
    parser.add_argument("--general", action="store_true", help="only the general engine's figures (see above)")
    parser.add_argument("--json", default="docs/bench.json", help="where to write the figures (default docs/bench.json)")
    args = parser.parse_args(argv)
    if args.general:
        path = Path(args.json)
        report = json.loads(path.read_text()) if path.exists() else {}
        report["general_engine"] = general_engine()
        path.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
        return
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
              "machine": {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                          "torch": torch.__version__,
                          "matmul_peak_gflops_f32": matmul_peak(torch.float32),
                          "matmul_peak_gflops_f64": matmul_peak(torch.float64)},
              "runs": []}
    m = report["machine"]
    print(f"{report['date']}  machine: {m['threads']} threads, torch {m['torch']}; 2048² matmul peak "
          f"{m['matmul_peak_gflops_f32']:.0f} GFLOP/s float32, {m['matmul_peak_gflops_f64']:.0f} float64")
    header = (f"{'preset':8} {'dtype':8} {'P':>6} {'J s':>7} {'floor s':>7} {'GFLOP/s':>8} {'%peak':>6} {'SVD s':>6} {'total s':>8} "
              f"{'peak MB':>8} {'ref s (extrap.)':>16} {'speedup':>8} {'max col err':>11}")
    print(header)
    jacobians = {}
    for name, cols in (("lecture", 64), ("paper", 32))[: 1 if args.quick else 2]:
        for dtype in ("float32", "float64"):
            r, jacobians[name, dtype] = pipeline(name, dtype, cols)
            peak = m["matmul_peak_gflops_f32" if dtype == "float32" else "matmul_peak_gflops_f64"]
            r["fraction_of_peak"] = r["gflops_per_s"] / peak
            r["floor_s"] = r["gflop"] / peak  # the FLOP model at this run's GEMM peak: J's time cannot go below it
            report["runs"].append(r)
            print(f"{name:8} {dtype:8} {r['P']:>6,} {r['jacobian_s']:7.1f} {r['floor_s']:7.1f} {r['gflops_per_s']:8.1f} "
                  f"{100 * r['fraction_of_peak']:5.0f}% {r['svd_s']:6.1f} {r['end_to_end_s']:8.1f} "
                  f"{r['peak_memory_mb']:8.0f} {r['reference_extrapolated_s']:10.0f} ({cols:>3}) "
                  f"{r['speedup_vs_reference']:7.1f}× {r['max_relative_column_error']:11.1e}", flush=True)
    runs = {(r["preset"], r["dtype"]): r for r in report["runs"]}
    if ("paper", "float32") in runs:
        p32, p64 = runs[("paper", "float32")], runs[("paper", "float64")]
        report["paper_f64_over_f32"] = p64["jacobian_s"] / p32["jacobian_s"]
        print(f"paper float32 J: {p32['jacobian_s']:.1f} s, {100 * p32['fraction_of_peak']:.0f} % of the FLOP-model "
              f"floor ({p32['floor_s']:.1f} s at this run's peak); float64/float32 = {report['paper_f64_over_f32']:.2f}")
        prof = report["fast_path_profile"] = fast_path_profile("paper")
        print(f"where the rest goes (paper float32, one {prof['replay_width']}-column piece, {prof['steps_timed']} "
              f"steps): its GEMMs alone run at {prof['gemm_gflops_1_thread']:.0f} GFLOP/s on one thread "
              f"({100 * prof['gemm_rate_of_one_thread_peak']:.0f} % of one thread's 2048² peak, "
              f"{prof['peak_1_thread_gflops']:.0f}) × GEMMs {100 * prof['gemm_share_of_step']:.0f} % of a step × "
              f"two workers side by side at {100 * prof['one_worker_over_two_side_by_side']:.0f} % of one alone × "
              f"two threads' 2048² peak only {prof['peak_gflops'] / prof['peak_1_thread_gflops']:.2f}× one's "
              f"= {100 * prof['fraction_of_peak']:.0f} % of peak", flush=True)
        for label, rate in prof["gemms_1_thread_gflops"].items():
            print(f"  {label}: {rate:.0f} GFLOP/s on one thread, {100 * prof['gemms_share_of_step'][label]:.0f} % "
                  "of a step", flush=True)
        spread = report["paper_spread"] = paper_spread()
        walls, peaks = ([r[k] for r in spread["rounds"]] for k in ("jacobian_s", "peak_before"))
        peaks += [r["peak_after"] for r in spread["rounds"]]
        ratio = [r["cpu_s"] / r["jacobian_s"] for r in spread["rounds"]]
        print(f"paper float32 J, {len(walls)} more rounds: {', '.join(f'{w:.1f}' for w in walls)} s, spread "
              f"{100 * spread['spread']:.1f} % (target ≤ 10 %); CPU/wall {min(ratio):.2f}–{max(ratio):.2f}; "
              f"GEMM peak before and after each {min(peaks):.0f}–{max(peaks):.0f} GFLOP/s", flush=True)
    name = "paper" if ("paper", "float32") in runs else "lecture"
    tj_s = runs[(name, "float32")]["jacobian_s"]
    anchor = jax_anchor(name, jacobians[name, "float32"])
    report["jax"] = anchor
    if anchor is None:
        print("JAX is not installed (pip install -r requirements-bench.txt): no JAX ratio")
    elif "error" in anchor:
        print(f"JAX reference failed: {anchor['error']}")
    else:
        report["jax_over_tj"] = anchor["jacobian_s"] / tj_s
        print(f"{name} float32 J: JAX jacfwd {anchor['jacobian_s']:.1f} s (jax {anchor['jax']}, compile "
              f"{anchor['compile_s']:.1f} s apart), tj {tj_s:.1f} s: tj is {report['jax_over_tj']:.2f}× faster; "
              f"J agrees to {anchor['max_relative_column_error']:.1e} relative", flush=True)
    if ("paper", "float32") in runs:
        if not args.no_svd_routes:
            report["svd_routes"] = svd_routes("paper")
            for k, v in report["svd_routes"].items():
                print(f"SVD route {k}: " + ", ".join(f"{a} {b:.3g}" if isinstance(b, float) else f"{a} {b}"
                                                     for a, b in v.items()))
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
