"""Everything the pages show by default for one experiment, computed once and kept in a cache folder.

`python -m tj precompute --preset paper --cache-dir DIR`, then a server with TJ_CACHE_DIR=DIR opens every page
from the folder. The keys and the recipes here are the ones the app's pages use (lab.py calls the recipes),
and the settings come from tj.defaults, so the two cannot drift apart."""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import compare, perturb, why
from .defaults import COMPARE, PERTURB, SPECTRUM, WHY
from .diskcache import DiskCache
from .presets import PRESETS, Experiment

FD_SEED = 0  # the Jacobian page's "random direction seed" default


# --- recipes: one definition, used by the pages (through lab.py) and by precompute -------------------------
def trained(exp: Experiment):
    from .data import load
    from .networks import init_params
    from .train import train
    return train(exp.model, exp.train, load(exp.data, exp.torch_dtype),
                 init_params(exp.model, exp.seed, exp.torch_dtype), exp.seed)


def main_result(exp: Experiment, progress=None):
    """(JacobianResult, Spectrum)."""
    from .jacobian import training_jacobian
    from .spectrum import spectrum
    res = training_jacobian(exp, progress=progress)
    return res, spectrum(res.jacobian, res.theta0, res.theta_final)


def bulk_of(exp: Experiment, progress=None):
    """(σ, Vᵀ in float32) of a variant; its J is dropped to save memory."""
    res, spec = main_result(exp, progress)
    return spec.singular_values, spec.Vh.astype("float32")


def exact_check(exp64: Experiment, progress=None):
    """(predicted Untouched, σ of the float64 J, the Vᵀ rows with |σ − 1| < 1e-9)."""
    res, spec = main_result(exp64, progress)
    exact = np.abs(spec.singular_values - 1) < 1e-9
    return why.untouched_for(exp64), spec.singular_values, spec.Vh[exact]


def sweeps(spectra: dict, ks: tuple) -> dict:
    return {f"main vs {name}": compare.overlap_sweep(spectra["main"], spectra[name], ks)
            for name in spectra if name != "main"}


def null_overlaps(fj, main: tuple, ks: tuple) -> list[float]:
    return [compare.mean_principal_cosine(fj.null_space(k), compare.bulk_basis(*main, k)) for k in ks]


def function_jacobian(exp: Experiment, which: str):
    from .networks import init_params
    return compare.function_jacobian(exp.model, init_params(exp.model, exp.seed), compare.inputs_for(exp, which))


def bulk_direction(exp: Experiment, spec) -> perturb.BulkDirection:
    return perturb.bulk_direction(spec.singular_values, spec.Vh, why.untouched_for(exp).basis)


def spread(exp: Experiment, spec, progress=None, tau: float = SPECTRUM.tau) -> perturb.Spread:
    """Linearity and test loss along bulk directions (|σ − 1| < τ) from the closest to 1 to |σ − 1| ≈ τ."""
    shares = perturb.untouched_shares(spec.Vh, why.untouched_for(exp).basis)
    return perturb.spread(exp, spec, perturb.spread_indices(spec.singular_values, shares, PERTURB.n_spread, tau),
                          PERTURB.spread_eps, progress)


def evolution_steps(exp: Experiment) -> tuple[int, ...]:
    return why.epoch_checkpoints(exp, WHY.checkpoint_count(exp.model.n_params))


def gd_variant(exp: Experiment) -> Experiment:
    return exp.replace(**{"train.momentum": 0.0, "train.optimizer": "sgd"})


# --- the plan ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    key: tuple | Callable  # or key(context), when it depends on an earlier job's result
    label: str
    compute: Callable      # compute(context, progress) -> value


class _Context:
    """Results later jobs need, loaded from the folder on first use and dropped when a page's jobs are done."""

    def __init__(self, exp: Experiment, folder: Path, store: DiskCache):
        self.exp, self.folder, self.store, self._main = exp, folder, store, None

    def main(self):
        if self._main is None:
            from .store import load_cached
            self._main = load_cached(self.folder, self.exp)
        return self._main

    def drop(self):
        self._main = None
        gc.collect()

    def spectra(self, n_seeds: int) -> dict:
        spec = self.main()[1]
        out = {"main": (spec.singular_values, spec.Vh)}
        for name, v in compare.variants(self.exp, n_seeds).items():
            out[name] = self.store.get(("bulk", v))
        return out


def jobs(exp: Experiment, limits=None) -> list[Job]:
    """Every result the pages compute for `exp` with their default settings, in an order that keeps memory low."""
    from .jacobian import block_norms, estimate_seconds, finite_difference_check
    from .validate import validate

    p = exp.model.n_params
    n_seeds, ks, k = COMPARE.n_seeds, COMPARE.ks(p), COMPARE.k_matrix(p)
    which = COMPARE.fjac_inputs[0]
    out = [
        Job(("train", exp), "training", lambda c, pr: trained(exp)),
        Job(("estimate", exp), "time estimates", lambda c, pr: estimate_seconds(exp)),
        *(Job(("estimate", other), f"time estimate of the {name} preset (home page)",
              lambda c, pr, other=other: estimate_seconds(other))
          for name, other in PRESETS.items() if other != exp),
        Job(("blocks", exp), "block structure of J", lambda c, pr: block_norms(exp.model, c.main()[0].jacobian)),
        Job(("fd", exp, FD_SEED), "finite-difference check",
            lambda c, pr: finite_difference_check(exp, c.main()[0].jacobian, seed=FD_SEED)),
        Job(("kl", exp, PERTURB.alpha), "Perturb: output change along every v_i",
            lambda c, pr: perturb.output_effect(exp, c.main()[0].theta_final, c.main()[1].Vh, PERTURB.alpha, pr)),
        Job(("bulk direction", exp), "Perturb: the honest bulk direction", lambda c, pr: bulk_direction(exp, c.main()[1])),
        Job(lambda c: ("linearity", exp, c.store.get(("bulk direction", exp)).index, PERTURB.eps()),
            "Perturb: retraining along the bulk direction",
            lambda c, pr: perturb.linearity(exp, c.main()[1], c.store.get(("bulk direction", exp)).index,
                                            PERTURB.eps(), progress=pr)),
        Job(("spread", exp, SPECTRUM.tau), "Perturb: linearity across bulk directions",
            lambda c, pr: spread(exp, c.main()[1], pr)),
        Job(("subspace", exp, PERTURB.subspace_ks(p)), "Perturb: training inside subspaces",
            lambda c, pr: perturb.subspace_training(exp, c.main()[1], PERTURB.subspace_ks(p), progress=pr)),
        Job(("fjac", exp, which), f"Compare: parameter-function Jacobian ({which})",
            lambda c, pr: function_jacobian(exp, which)),
        Job(("null overlap", exp, which, ks), "Compare: null space vs bulk",
            lambda c, pr: null_overlaps(c.store.get(("fjac", exp, which)),
                                        (c.main()[1].singular_values, c.main()[1].Vh), ks)),
        Job(("drop",), "", None),
    ]
    for name, v in compare.variants(exp, n_seeds).items():
        out.append(Job(("bulk", v), f"Compare: {name}", lambda c, pr, v=v: bulk_of(v, pr)))
    out += [Job(("sweeps", exp, n_seeds, ks), "Compare: bulk overlap sweeps",
                lambda c, pr: sweeps(c.spectra(n_seeds), ks)),
            Job(("overlap matrix", exp, n_seeds, k), "Compare: overlap matrix",
                lambda c, pr: compare.overlap_matrix(c.spectra(n_seeds), k)),
            Job(("drop",), "", None)]
    for name, v in list(compare.switches(exp).items())[:COMPARE.n_switches]:
        if validate(v, limits).ok:
            out.append(Job(("bulk", v), f"Compare: {name}", lambda c, pr, v=v: bulk_of(v, pr)))
    steps, exp64 = evolution_steps(exp), exp.replace(dtype="float64")
    out += [Job(("evolution", exp, steps), "Why a bulk?: J at every checkpoint",
                lambda c, pr: why.spectra_through_training(exp, steps, pr)),
            Job(("exact", exp64), "Why a bulk?: float64 J for the exact count", lambda c, pr: exact_check(exp64, pr))]
    if p <= WHY.gd_max_params:
        gd = gd_variant(exp)
        out.append(Job(("gd", gd, WHY.gd_segments), "Why a bulk?: Hessians along the run",
                       lambda c, pr: why.gd_prediction(gd, WHY.gd_segments)))
    return out


def refusal(exp: Experiment, limits=None) -> str | None:
    """Why this experiment cannot be precomputed (a dense J over the limits), or None."""
    from .validate import validate
    check = validate(exp, limits)
    if check.ok:
        return None
    return f"precompute needs a dense J and its SVD, and this experiment is over the limits: {check.message}"


def precompute(exp: Experiment, folder: str | Path, limits=None, say=print, bar=None) -> dict:
    """Compute and store every job not stored yet; returns {label: 'stored' | 'computed in N s' | 'skipped: …'}."""
    from .store import load_cached, save_cached

    reason = refusal(exp, limits)
    if reason:
        raise ValueError(reason)
    folder = Path(folder)
    store = DiskCache(folder)
    ctx = _Context(exp, folder, store)
    report = {}
    start = time.perf_counter()
    if load_cached(folder, exp) is None:
        say("J and its SVD: computing")
        t = time.perf_counter()
        res, spec = main_result(exp, bar("J and its SVD") if bar else None)
        save_cached(folder, res, spec)
        del res, spec
        report["J and its SVD"] = f"computed in {time.perf_counter() - t:.1f} s"
    else:
        report["J and its SVD"] = "stored"
    plan = jobs(exp, limits)
    total = sum(j.compute is not None for j in plan)
    done = 0
    for job in plan:
        if job.compute is None:
            ctx.drop()
            continue
        done += 1
        key = job.key(ctx) if callable(job.key) else job.key
        if store.has(key) and store.get(key) is not None:
            report[job.label] = "stored"
            continue
        say(f"[{done}/{total}] {job.label}")
        t = time.perf_counter()
        try:
            value = job.compute(ctx, bar(job.label) if bar else None)
        except (ValueError, NotImplementedError) as err:  # a page that does not apply to this network family
            report[job.label] = f"skipped: {err}"
            continue
        store.put(key, value)
        del value
        gc.collect()
        report[job.label] = f"computed in {time.perf_counter() - t:.1f} s"
    ctx.drop()
    report["total"] = f"{time.perf_counter() - start:.1f} s"
    return report
