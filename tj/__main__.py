"""Command line: `python -m tj layout|train|jacobian …` for precomputing and notebooks."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message}\n")


def _progress(start):
    def show(done, total):
        elapsed = time.perf_counter() - start
        left = elapsed / done * (total - done) if done else float("nan")
        sys.stderr.write(f"\rJacobian {done:>6,}/{total:,} columns  {elapsed:6.1f} s elapsed  ~{left:5.0f} s left ")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _experiment(args):
    from .presets import preset

    exp = preset(args.preset)
    changes = {k: getattr(args, k, None) for k in ("seed", "dtype")}
    changes = {k: v for k, v in changes.items() if v is not None}
    return exp.replace(**changes)


def _theta0(args, exp):
    if not args.init_from:
        return None
    try:
        theta0 = np.load(args.init_from, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {args.init_from}: {err}") from None
    if theta0.shape != (exp.model.n_params,):
        raise ValueError(f"{args.init_from} has shape {theta0.shape}; the {args.preset} network needs "
                         f"({exp.model.n_params},) in tj's layout (see `python -m tj layout`)")
    return torch.from_numpy(theta0.astype(np.float64)).to(exp.torch_dtype)


def cmd_layout(args):
    from .networks import layout

    for b in layout(_experiment(args).model):
        print(b.name, "x".join(map(str, b.shape)), b.start, b.stop)


def cmd_train(args):
    from .data import load
    from .networks import init_params
    from .train import train

    exp = _experiment(args)
    start = time.perf_counter()
    data = load(exp.data, exp.torch_dtype)
    res = train(exp.model, exp.train, data, init_params(exp.model, exp.seed, exp.torch_dtype), exp.seed)
    wall = time.perf_counter() - start
    if not res.ok:
        raise ValueError(f"training diverged (NaN/Inf) at step {res.diverged_at[0]}; lower the learning rate")
    m = res.metrics
    print(f"preset {args.preset}  P = {exp.model.n_params:,}  dtype {exp.dtype}  seed {exp.seed}")
    print(f"test loss {m.test_loss[-1]:.4f}  test accuracy {m.test_acc[-1]:.4f}  "
          f"(train loss {m.train_loss[-1]:.4f}, accuracy {m.train_acc[-1]:.4f})")
    print(f"wall time {wall:.1f} s")


def _columns(text, n_params):
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"--columns must be START:STOP (whole numbers), got {text!r}") from None
    if not 0 <= a < b <= n_params:
        raise ValueError(f"--columns must satisfy 0 <= START < STOP <= P = {n_params}, got {text}")
    return a, b


def cmd_columns(args, exp, theta0, out):
    from .jacobian import training_jacobian

    start = time.perf_counter()
    res = training_jacobian(exp, theta0, progress=_progress(start), engine=args.engine,
                            columns=_columns(args.columns, exp.model.n_params))
    np.savez(out, columns=np.array(res.columns), block=res.jacobian.numpy(), theta0=res.theta0.numpy(),
             theta_final=res.theta_final.numpy(), config=np.array(exp.to_json()))
    print(f"preset {args.preset}  P = {exp.model.n_params:,}  columns {res.columns[0]}:{res.columns[1]}  "
          f"engine {res.engine}  wall time {res.seconds:.1f} s")
    print(f"saved {out} (block: J[:, START:STOP])")


def _check_fits(exp, args):
    from .jacobian import memory_estimate

    need = memory_estimate(exp)
    total = need["jacobian"] + need["svd"]
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if total > available:
        raise ValueError(f"a dense J of P = {exp.model.n_params:,} needs {total / 1e9:.1f} GB with its SVD, more than "
                         f"this machine's {available / 1e9:.1f} GB; compute column blocks instead "
                         f"(--columns START:STOP, one per cluster worker)")


def cmd_jacobian(args):
    from .jacobian import training_jacobian
    from .spectrum import region_counts, regions, spectrum
    from .store import save, save_cached

    exp = _experiment(args)
    theta0 = _theta0(args, exp)
    out = Path(args.out)
    if not out.parent.exists():
        raise ValueError(f"the folder {out.parent} does not exist")
    if args.columns:
        return cmd_columns(args, exp, theta0, out)
    _check_fits(exp, args)
    start = time.perf_counter()
    res = training_jacobian(exp, theta0, progress=_progress(start), engine=args.engine)
    spec = spectrum(res.jacobian, res.theta0, res.theta_final)
    save(out, res, spec)
    cached = save_cached(args.cache_dir, res, spec)
    total = time.perf_counter() - start
    s = spec.singular_values
    dist = np.abs(s - 1)
    counts = region_counts(regions(s, threshold=args.tau))
    m = res.train.metrics
    print(f"preset {args.preset}  P = {exp.model.n_params:,}  dtype {exp.dtype}  seed {exp.seed}")
    print(f"test loss {m.test_loss[-1]:.4f} nats  test accuracy {100 * m.test_acc[-1]:.1f} %")
    print(f"sigma_1 {s[0]:.3f}  sigma_min {s[-1]:.2e}  |sigma-1|<1e-2: {(dist < 1e-2).sum()}  "
          f"|sigma-1|<1e-1: {(dist < 1e-1).sum()}  sigma<0.5: {(s < 0.5).sum()}")
    print(f"regions (bulk: |sigma-1| < {args.tau:g}): " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"wall time: Jacobian {res.seconds:.1f} s  SVD {spec.seconds:.1f} s ({spec.route})  total {total:.1f} s")
    print(f"saved {out}" + (f" and {cached} (the app's disk cache)" if cached else ""))


def _bar(label):
    start = time.perf_counter()

    def show(done, total):
        elapsed = time.perf_counter() - start
        left = f"~{elapsed / done * (total - done):.0f} s left" if done else ""
        filled = int(30 * done / max(total, 1))
        sys.stderr.write(f"\r  {'#' * filled}{'.' * (30 - filled)} {done:,}/{total:,}  {elapsed:6.1f} s  {left}   ")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
        return False
    return show


def cmd_precompute(args):
    from .limits import Limits
    from .precompute import precompute

    if not args.cache_dir:
        raise ValueError("give --cache-dir DIR (or set TJ_CACHE_DIR): the folder the app will read")
    exp = _experiment(args)
    print(f"precomputing every page of the {args.preset} preset (P = {exp.model.n_params:,}) into {args.cache_dir}",
          flush=True)
    report = precompute(exp, args.cache_dir, Limits.from_env(), say=lambda s: print(s, flush=True), bar=_bar)
    for label, what in report.items():
        print(f"  {label}: {what}")
    size = sum(f.stat().st_size for f in Path(args.cache_dir).glob("tj-*.npz"))
    print(f"store: {size / 1e6:,.0f} MB in {args.cache_dir}")


def main(argv=None) -> int:
    parser = _Parser(prog="python -m tj", description="Training Jacobian Lab: compute and inspect J = dθ_T/dθ_0.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    lay = sub.add_parser("layout", help="print the flat parameter layout: name shape start stop")
    trn = sub.add_parser("train", help="train a preset; print the final test loss, accuracy and wall time")
    jac = sub.add_parser("jacobian", help="train, compute J and its SVD, save them as .npz")
    pre = sub.add_parser("precompute", help="compute and store everything the pages show by default (TJ_CACHE_DIR)")
    for p in (lay, trn, jac):
        p.add_argument("--preset", default="paper")
    pre.add_argument("--preset", default="paper")
    pre.add_argument("--cache-dir", default=os.environ.get("TJ_CACHE_DIR"),
                     help="the folder the app reads with TJ_CACHE_DIR (default: $TJ_CACHE_DIR)")
    for p in (trn, jac, pre):
        p.add_argument("--seed", type=int)
        p.add_argument("--dtype", choices=("float32", "float64"))
    jac.add_argument("--engine", choices=("fast", "general"),
                     help="tangent engine (default: the MLP's fast replay, torch.func's general one otherwise)")
    jac.add_argument("--columns", help="START:STOP: compute only these columns of J and save them (no SVD)")
    jac.add_argument("--init-from", help="a .npy file holding a flat θ_0 in tj's layout")
    jac.add_argument("--tau", type=float, default=0.1, help="bulk threshold on |σ−1| for the summary")
    jac.add_argument("--out", required=True, help="the .npz file to write")
    jac.add_argument("--cache-dir", default=os.environ.get("TJ_CACHE_DIR"),
                     help="also store the result where the app looks for it (default: $TJ_CACHE_DIR)")
    args = parser.parse_args(argv)
    try:
        {"layout": cmd_layout, "train": cmd_train, "jacobian": cmd_jacobian,
         "precompute": cmd_precompute}[args.command](args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one clear line instead of a traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
