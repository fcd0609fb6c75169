"""Command line: `python -m tj layout|train|jacobian …` for precomputing and notebooks."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import progress
from .jacobian import ENGINES


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message}\n")


def _module_experiment(args):
    """--module package.file:factory [--module-kwargs JSON] --data D.npz: a user's module and data."""
    from .module import build, from_module
    from .train import TrainSpec

    if not getattr(args, "data", None):
        raise ValueError("--module needs --data FILE.npz holding x_train, y_train, x_test and y_test")
    try:
        with np.load(args.data, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"cannot read x_train, y_train, x_test and y_test from {args.data}: {err}") from None
    try:
        kwargs = json.loads(args.module_kwargs or "{}")
    except ValueError:
        raise ValueError(f"--module-kwargs must be a JSON object, such as '{{\"hidden\": 32}}'; "
                         f"got {args.module_kwargs!r}") from None
    seed = args.seed if getattr(args, "seed", None) is not None else 0
    module = build(args.module, kwargs, seed)
    return from_module(module, (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]),
                       TrainSpec(), seed, getattr(args, "dtype", None) or "float32", args.module, kwargs)


def _name(args) -> str:
    """What the command line was asked for: a module, a config file, a preset or a store."""
    return (getattr(args, "module", None) or getattr(args, "config", None) or getattr(args, "preset", None)
            or args.store)


def _experiment(args):
    from .presets import Experiment, preset

    if getattr(args, "module", None):
        exp = _module_experiment(args)
    elif getattr(args, "config", None):
        try:
            exp = Experiment.from_json(Path(args.config).read_text())
        except OSError as err:
            raise ValueError(f"cannot read {args.config}: {err.strerror}") from None
        except Exception as err:
            raise ValueError(f"{args.config} is not an experiment config JSON ({type(err).__name__}: {err})") from None
    else:
        exp = preset(args.preset)
    changes = {k: getattr(args, k, None) for k in ("seed", "dtype")}
    changes = {k: v for k, v in changes.items() if v is not None}
    for item in getattr(args, "set", None) or ():
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set wants KEY=VALUE, such as train.epochs=2; got {item!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        changes[key] = tuple(value) if isinstance(value, list) else value  # configs hold tuples: hashable
    try:
        return exp.replace(**changes)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot apply {changes}: {err}") from None


def _theta0(args, exp):
    if not args.init_from:
        return None
    try:
        theta0 = np.load(args.init_from, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {args.init_from}: {err}") from None
    if theta0.shape != (exp.model.n_params,):
        raise ValueError(f"{args.init_from} has shape {theta0.shape}; the {_name(args)} network needs "
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
    print(f"{_name(args)}  P = {exp.model.n_params:,}  dtype {exp.dtype}  seed {exp.seed}")
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

    with progress.stderr("Jacobian", "columns") as report:
        res = training_jacobian(exp, theta0, progress=report, engine=args.engine,
                                columns=_columns(args.columns, exp.model.n_params))
    np.savez(out, columns=np.array(res.columns), block=res.jacobian.numpy(), theta0=res.theta0.numpy(),
             theta_final=res.theta_final.numpy(), config=np.array(exp.to_json()))
    print(f"{_name(args)}  P = {exp.model.n_params:,}  columns {res.columns[0]}:{res.columns[1]}  "
          f"engine {res.engine}  wall time {res.seconds:.1f} s")
    print(f"saved {out} (block: J[:, START:STOP])")


def _check_fits(exp, args, advice="compute it in column blocks instead (--store J.zarr on a cluster, "
                                      "or --columns START:STOP)"):
    from .jacobian import memory_estimate

    need = memory_estimate(exp)
    total = need["jacobian"] + need["svd"]
    available = args.memory_gb * 1e9 if args.memory_gb else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if total > available:
        raise ValueError(f"a dense J of P = {exp.model.n_params:,} needs {total / 1e9:.1f} GB with its SVD, more than "
                         f"this machine's {available / 1e9:.1f} GB; {advice}")


def _summary(args, exp, res, spec, out, cached, total, what="Jacobian"):
    from .spectrum import region_counts, regions

    s = spec.singular_values
    dist = np.abs(s - 1)
    counts = region_counts(regions(s, threshold=args.tau))
    m = res.train.metrics
    print(f"{_name(args)}  P = {exp.model.n_params:,}  dtype {exp.dtype}  seed {exp.seed}")
    print(f"test loss {m.test_loss[-1]:.4f} nats  test accuracy {100 * m.test_acc[-1]:.1f} %")
    print(f"sigma_1 {s[0]:.3f}  sigma_min {s[-1]:.2e}  |sigma-1|<1e-2: {(dist < 1e-2).sum()}  "
          f"|sigma-1|<1e-1: {(dist < 1e-1).sum()}  sigma<0.5: {(s < 0.5).sum()}")
    print(f"regions (bulk: |sigma-1| < {args.tau:g}): " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"wall time: {what} {res.seconds:.1f} s  SVD {spec.seconds:.1f} s ({spec.route})  total {total:.1f} s")
    print(f"saved {out}" + (f" and {cached} (the app's disk cache)" if cached else ""))


def _writable(out):
    out = Path(out)
    if not out.parent.exists():
        raise ValueError(f"the folder {out.parent} does not exist")
    return out


def cmd_jacobian(args):
    from .jacobian import resolve_engine, training_jacobian
    from .results import Results
    from .spectrum import spectrum
    from .store import save

    if args.store:
        return _jacobian_on_cluster(args)
    if args.workers or args.scheduler or args.block:
        raise ValueError("--workers, --scheduler and --block need --store J.zarr (the cluster path)")
    if not args.out:
        raise ValueError("give --out FILE.npz, or --store J.zarr to compute J in blocks on a cluster")
    exp = _experiment(args)
    theta0 = _theta0(args, exp)
    out = _writable(args.out)
    if args.columns:
        return cmd_columns(args, exp, theta0, out)
    _check_fits(exp, args)
    start = time.perf_counter()
    if theta0 is None and args.engine in (None, resolve_engine(exp)):  # the config's own J: the shared recipes
        results = Results(folder=args.cache_dir)
        res = results.get("jacobian", exp, reporter=progress.stderr)
        spec = results.get("spectrum", exp, reporter=progress.stderr)
    else:  # another θ_0 or engine: not the config's J, so not cached
        with progress.stderr("Jacobian", "columns") as report:
            res = training_jacobian(exp, theta0, progress=report, engine=args.engine)
        spec = spectrum(res.jacobian, res.theta0, res.theta_final)
        args.cache_dir = None
    save(out, res, spec)
    _summary(args, exp, res, spec, out, args.cache_dir, time.perf_counter() - start)


def _jacobian_on_cluster(args):
    from .cluster import compute

    if args.init_from or args.columns:
        raise ValueError("--init-from and --columns do not go with --store: θ_0 comes from the config's seed, "
                         "and the store is filled block by block")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1; got {args.workers}")
    exp = _experiment(args)
    if args.out:
        _writable(args.out)
    with progress.stderr("Jacobian in column blocks", "columns") as report:
        rep = compute(exp, args.store, block=args.block, workers=args.workers, scheduler=args.scheduler,
                      engine=args.engine, progress=lambda blocks, n_blocks, done, total: report(done, total))
    where = args.scheduler or f"a local cluster of {rep.workers} single-threaded workers"
    print(f"store {rep.path}: {rep.n_blocks} blocks; computed {rep.computed} missing blocks "
          f"({rep.corrupt} of them corrupt), {rep.already} were already complete")
    if rep.computed:
        print(f"wall time {rep.seconds:.1f} s on {where}")
    if args.out:
        _spectrum_from_store(args, args.store, args.out)


def _spectrum_from_store(args, path, out):
    from .jstore import as_result, open_store
    from .results import Results
    from .spectrum import spectrum
    from .store import save

    store = open_store(path)
    exp = store.experiment
    out = _writable(out)
    _check_fits(exp, args, f"run `python -m tj spectrum --store {path} --out {out.name}` on a node with more "
                           f"memory, or read it lazily for top-k work (tj.jstore.open_store(path).operator())")
    start = time.perf_counter()
    res = as_result(store)
    spec = spectrum(res.jacobian, res.theta0, res.theta_final)
    save(out, res, spec)
    if args.cache_dir:
        results = Results(folder=args.cache_dir)
        results.put("jacobian", exp, value=res)
        results.put("spectrum", exp, value=spec)
    _summary(args, exp, res, spec, out, args.cache_dir, time.perf_counter() - start, "reading J and training")


def cmd_spectrum(args):
    _spectrum_from_store(args, args.store, args.out)


def cmd_precompute(args):
    from .limits import Limits
    from .precompute import precompute

    if not args.cache_dir:
        raise ValueError("give --cache-dir DIR (or set TJ_CACHE_DIR): the folder the app will read")
    exp = _experiment(args)
    print(f"precomputing every page of the {args.preset} preset (P = {exp.model.n_params:,}) into {args.cache_dir}",
          flush=True)
    report = precompute(exp, args.cache_dir, Limits.from_env(), say=lambda s: print(s, flush=True),
                        reporter=progress.stderr)
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
    for p in (lay, trn, jac):
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="change one config field, dotted for a part: --set train.epochs=2 (repeatable)")
        p.add_argument("--module", metavar="PACKAGE.FILE:FACTORY",
                       help="your own torch.nn.Module, built by this factory (under torch.manual_seed(--seed)) "
                            "instead of --preset; needs --data")
        p.add_argument("--module-kwargs", metavar="JSON", help="keyword arguments for the factory, as a JSON object")
        p.add_argument("--data", metavar="FILE.npz", help="x_train, y_train, x_test, y_test for --module")
    jac.add_argument("--engine", choices=ENGINES,
                     help="tangent engine (default: the family's hand-written replay, the MLP's or the CNN's; torch.func's "
                          "general one otherwise)")
    jac.add_argument("--columns", help="START:STOP: compute only these columns of J and save them (no SVD)")
    jac.add_argument("--init-from", help="a .npy file holding a flat θ_0 in tj's layout")
    jac.add_argument("--tau", type=float, default=0.1, help="bulk threshold on |σ−1| for the summary")
    jac.add_argument("--config", help="an experiment config JSON file (as saved in every .npz and store) "
                                      "instead of --preset")
    jac.add_argument("--out", help="the .npz file to write (J, its SVD, θ_0, θ_T, config)")
    jac.add_argument("--store", help="a zarr store (J.zarr): compute J's column blocks on a Dask cluster, "
                                     "resumable; only missing or corrupt blocks are computed")
    where = jac.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="single-threaded workers of the embedded local cluster "
                                                   "(default: one per core)")
    where.add_argument("--scheduler", help="an existing Dask scheduler, tcp://HOST:PORT")
    jac.add_argument("--block", type=int, help="columns per block and task (a multiple of 64; default 256)")
    spe = sub.add_parser("spectrum", help="the SVD of a finished store's J, saved as the usual .npz")
    spe.add_argument("--store", required=True, help="a finished store written by `jacobian --store`")
    spe.add_argument("--out", required=True, help="the .npz file to write")
    spe.add_argument("--tau", type=float, default=0.1, help="bulk threshold on |σ−1| for the summary")
    for p in (jac, spe):
        p.add_argument("--cache-dir", default=os.environ.get("TJ_CACHE_DIR"),
                       help="also store the result where the app looks for it (default: $TJ_CACHE_DIR)")
        p.add_argument("--memory-gb", type=float, help="memory this machine may use for J and its SVD "
                                                       "(default: its physical memory)")
    args = parser.parse_args(argv)
    from .cluster import Interrupted

    try:
        {"layout": cmd_layout, "train": cmd_train, "jacobian": cmd_jacobian,
         "spectrum": cmd_spectrum, "precompute": cmd_precompute}[args.command](args)
    except Interrupted as err:
        print(err, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one clear line instead of a traceback
        print("error: " + " ".join(str(err).split()), file=sys.stderr)  # one line, whatever the library says
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
