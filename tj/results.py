"""Every result a page, the CLI or precompute shows: one recipe per kind, and one lookup (memory, disk, compute).

A key is (kind, experiment, *args). `Results.get(kind, exp, *args)` returns the memory cache's value, else the
disk folder's (read once, whoever asks first), else computes it through RECIPES[kind] (once across threads),
with a progress report, after the limits check where the recipe needs one, and keeps it in memory and on disk."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import compare, perturb, why
from .cache import DiskCache, ResultCache
from .defaults import PERTURB
from .presets import PRESETS, Experiment
from .progress import Reporter, part_of, silent


class OverLimits(Exception):
    """An experiment too big or too slow for this server's limits; the message gives the reasons."""


@dataclass(frozen=True)
class Recipe:
    """How to compute one kind of result: compute(results, exp, *args, progress) -> value."""

    kind: str
    compute: Callable
    label: Callable[..., str] | str   # what the progress report says: label(exp, *args) or a fixed text
    unit: str = "steps"
    tier: int = 2          # eviction tier: 0 kept longest (tiny, every page needs it), 2 dropped first
    checked: bool = False  # the limits check and a time estimate come before computing it
    stored: bool = True    # kept in the disk folder too; False: cheap, put together from stored results
    valid: Callable | None = None  # valid(exp, value) -> bool, asked of a value read from disk
    needs: tuple[str, ...] = ()    # kinds of the same experiment got first, each with its own progress report

    def describe(self, exp: Experiment, *args) -> str:
        return self.label(exp, *args) if callable(self.label) else self.label


# --- how each kind is computed (r: the Results it may ask for what it needs) -------------------------------
def _trained(r, exp, progress):
    from .data import load
    from .networks import init_params
    from .train import train
    return train(exp.model, exp.train, load(exp.data, exp.torch_dtype),
                 init_params(exp.model, exp.seed, exp.torch_dtype), exp.seed)


def _jacobian(r, exp, progress):
    """A finished J store of this experiment in the folder (`python -m tj jacobian --store`), else the engine."""
    from .jacobian import training_jacobian
    if r.folder is not None and any(r.folder.glob("*.zarr")):  # zarr and dask load only when there is a store
        from .jstore import StoreError, as_result, find
        try:
            store = find(r.folder, exp)
        except (OSError, StoreError):
            store = None
        if store is not None:
            return as_result(store)
    return training_jacobian(exp, progress=progress)


def _same_run(exp, res) -> bool:
    """A stored J belongs to what this code trains from its config (else the file is stale): θ_T bit for bit."""
    return torch.equal(_trained(None, exp, None).theta_final, res.theta_final)


def _spectrum(r, exp, progress):
    from .spectrum import spectrum
    res = r.get("jacobian", exp)
    progress(0, 1)
    spec = spectrum(res.jacobian, res.theta0, res.theta_final)
    progress(1, 1)
    return spec


def _decomposed(exp, progress):
    """The spectrum of a J that is computed, decomposed and dropped, to save memory."""
    from .jacobian import training_jacobian
    from .spectrum import spectrum
    res = training_jacobian(exp, progress=progress)
    return spectrum(res.jacobian, res.theta0, res.theta_final)


def _bulk(r, exp, progress):
    """(σ, Vᵀ in float32) of a variant."""
    spec = r.have("spectrum", exp) or _decomposed(exp, progress)
    return spec.singular_values, spec.Vh.astype("float32")


def _comparison(r, exp, n_seeds, progress):
    """(σ, Vᵀ) of the experiment and of its variants (shuffled labels, noise inputs, other seeds), by name; one
    progress report over all the variants still to compute."""
    spec = r.get("spectrum", exp)
    runs = compare.variants(exp, n_seeds)
    todo = [name for name, v in runs.items() if r.have("bulk", v) is None]
    return {"main": (spec.singular_values, spec.Vh),
            **{name: r.get("bulk", v, reporter=part_of(progress, todo.index(name), len(todo)) if name in todo
                           else silent) for name, v in runs.items()}}


def _sweeps(r, exp, n_seeds, ks, progress):
    spectra = r.get("comparison", exp, n_seeds)
    return {f"main vs {name}": compare.overlap_sweep(spectra["main"], spectra[name], ks)
            for name in spectra if name != "main"}


def _null_overlap(r, exp, which, ks, progress):
    fj, spec = r.get("fjac", exp, which), r.get("spectrum", exp)
    bulk = compare.bulk_basis(spec.singular_values, spec.Vh, spec.n)
    return [compare.leading_overlap(fj.vectors, bulk, k) for k in ks]


def _function_jacobian(r, exp, which, progress):
    from .networks import init_params
    return compare.function_jacobian(exp.model, init_params(exp.model, exp.seed), compare.inputs_for(exp, which))


def _spread(r, exp, tau, progress):
    """Linearity and test loss along bulk directions (|σ − 1| < τ) from the closest to 1 to |σ − 1| ≈ τ."""
    spec = r.get("spectrum", exp)
    shares = perturb.untouched_shares(spec.Vh, why.untouched_for(exp).basis)
    return perturb.spread(exp, spec, perturb.spread_indices(spec.singular_values, shares, PERTURB.n_spread, tau),
                          PERTURB.spread_eps, progress)


def _exact(r, exp64, progress):
    """(predicted Untouched, σ of the float64 J, the Vᵀ rows with |σ − 1| < 1e-9); the float64 J is dropped."""
    spec = _decomposed(exp64, progress)
    return why.untouched_for(exp64), spec.singular_values, spec.Vh[np.abs(spec.singular_values - 1) < 1e-9]


def _showcase(r, exp, tau, progress):
    from .data import dead_pixels
    from .spectrum import regions, showcase_direction
    spec = r.get("spectrum", exp)
    dead = dead_pixels(why.trained_inputs(exp)).numpy()
    return showcase_direction(exp.model, spec.singular_values, spec.Vh, dead,
                              regions(spec.singular_values, threshold=tau) == "bulk")


def _gd_seconds(r, exp, segments, progress):
    """Seconds for why.gd_prediction: J and its SVD, then `segments` Hessians and their eigenvalues."""
    est = r.get("estimate", exp)
    return est["jacobian"] + est["svd"] + segments * (why.hessian_seconds(exp) + est["svd"])


def _preset_tier(exp) -> int:
    return 1 if exp in PRESETS.values() else 2


def _recipes():
    from .jacobian import block_norms, estimate_seconds, finite_difference_check, identity_distance
    from .spectrum import direction_by_block

    def columns(exp, *args):
        return f"Training Jacobian ({exp.model.n_params:,} columns)"
    return (
        Recipe("train", _trained, "training", tier=0),
        Recipe("estimate", lambda r, exp, p: estimate_seconds(exp), "time estimate", tier=0),
        Recipe("jacobian", _jacobian, columns, "columns", tier=1, checked=True, valid=_same_run),
        Recipe("spectrum", _spectrum, "singular value decomposition of J in float64", "SVDs", tier=1, needs=("jacobian",)),
        Recipe("bulk", _bulk, lambda exp: f"J and its SVD ({exp.model.n_params:,} columns)", "columns",
               checked=True),
        Recipe("comparison", _comparison, "the variants' Jacobians and SVDs", "columns", stored=False,
               needs=("spectrum",)),
        Recipe("sweeps", _sweeps, "bulk overlap sweeps", "variants"),
        Recipe("overlap matrix", lambda r, exp, n_seeds, k, p:
               compare.overlap_matrix(r.get("comparison", exp, n_seeds), k), "bulk overlap matrix"),
        Recipe("fjac", _function_jacobian, lambda exp, which: f"parameter-function Jacobian on {which} inputs",
               "parts"),
        Recipe("null overlap", _null_overlap, "null space against the bulk", needs=("spectrum",)),
        Recipe("kl", lambda r, exp, alpha, p: perturb.output_effect(
            exp, r.get("jacobian", exp).theta_final, r.get("spectrum", exp).Vh, alpha, p),
            "output change along every v_i", "input sets", needs=("spectrum",)),
        Recipe("bulk direction", lambda r, exp, p: perturb.bulk_direction(
            r.get("spectrum", exp).singular_values, r.get("spectrum", exp).Vh, why.untouched_for(exp).basis),
            "the honest bulk direction", needs=("spectrum",)),
        Recipe("flips", lambda r, exp, index, tau, p: perturb.class_flips(
            exp, r.get("jacobian", exp).theta_final, r.get("spectrum", exp).singular_values,
            r.get("spectrum", exp).Vh, index, tau, PERTURB.flip_sizes()),
            lambda exp, index, tau: f"class changes along v_{index} and the chaotic directions", needs=("spectrum",)),
        Recipe("see it", lambda r, exp, index, size, p: perturb.see_it(
            exp, r.get("jacobian", exp).theta_final, r.get("spectrum", exp).Vh[index], size),
            "predictions before and after the step", "images", needs=("spectrum",)),
        Recipe("linearity", lambda r, exp, index, eps, p: perturb.linearity(
            exp, r.get("spectrum", exp), index, eps, progress=p),
            lambda exp, index, eps: f"retraining from θ_0 + ε v_{index}", "retrainings", needs=("spectrum",)),
        Recipe("spread", _spread, "retraining along several bulk directions", "retrainings", needs=("spectrum",)),
        Recipe("subspace", lambda r, exp, ks, p: perturb.subspace_training(exp, r.get("spectrum", exp), ks, progress=p),
               "restricted trainings", "runs", needs=("spectrum",)),
        Recipe("evolution", lambda r, exp, steps, p: why.spectra_through_training(exp, steps, p),
               "J at every checkpoint", "columns", checked=True),
        Recipe("exact", _exact, "float64 J for the exact count", "columns", checked=True),
        Recipe("gd", lambda r, exp, segments, p: why.gd_prediction(exp, segments, progress=p),
               lambda exp, segments: f"J, then {segments} Hessians along the run", "columns"),
        Recipe("gd seconds", _gd_seconds, "time estimate of the Hessians", tier=0),
        Recipe("fd", lambda r, exp, seed, p: finite_difference_check(exp, r.get("jacobian", exp).jacobian, seed=seed),
               "finite-difference check", needs=("jacobian",)),
        Recipe("identity distance", lambda r, exp, p: identity_distance(r.get("jacobian", exp).jacobian),
               "distance of J from the identity", needs=("jacobian",)),
        Recipe("blocks", lambda r, exp, p: block_norms(exp.model, r.get("jacobian", exp).jacobian),
               "block structure of J", needs=("jacobian",)),
        Recipe("showcase", _showcase, "the bulk direction to show first", needs=("spectrum",)),
        Recipe("direction", lambda r, exp, index, p: direction_by_block(exp.model, r.get("spectrum", exp).Vh[index]),
               "one singular direction by block", stored=False, needs=("spectrum",)),
    )


RECIPES: dict[str, Recipe] = {r.kind: r for r in _recipes()}


class Results:
    """The one lookup: memory, then the disk folder, then the recipe. `folder` and `limits` may be callables
    (read on every use, as the app's are); with no limits (a notebook, the CLI) nothing is refused."""

    def __init__(self, memory: ResultCache | None = None, folder=None, limits=None):
        self.memory = memory or ResultCache(max_entries=96, max_bytes=1_500_000_000, tier=self.tier)
        self._folder, self._limits = folder, limits

    @property
    def folder(self) -> Path | None:
        folder = self._folder() if callable(self._folder) else self._folder
        return Path(folder) if folder else None

    @property
    def limits(self):
        return self._limits() if callable(self._limits) else self._limits

    @staticmethod
    def tier(key: tuple) -> int:
        """Eviction tier of a key: its recipe's, with J and the spectrum of a non-preset experiment demoted."""
        recipe = RECIPES.get(key[0])
        if recipe is None:
            return 2
        return _preset_tier(key[1]) if recipe.tier == 1 else recipe.tier

    def _disk(self) -> DiskCache | None:
        folder = self.folder
        return DiskCache(folder) if folder else None

    def have(self, kind: str, exp: Experiment, *args):
        """The result from memory or the disk folder, or None; never computes."""
        key = (kind, exp, *args)
        found = self.memory.peek(key)
        if found is not None:
            return found
        disk, recipe = self._disk(), RECIPES[kind]
        if disk is None or not recipe.stored or not disk.has(key):
            return None

        def read():
            value = disk.get(key)
            if value is None or (recipe.valid is not None and not recipe.valid(exp, value)):
                raise _NotStored
            return value
        try:
            return self.memory.get_or_compute(key, read)
        except _NotStored:
            return None

    def get(self, kind: str, exp: Experiment, *args, reporter: Reporter = silent):
        """The result, computed through its recipe when neither memory nor disk has it."""
        found = self.have(kind, exp, *args)
        if found is not None:
            return found
        recipe, key = RECIPES[kind], (kind, exp, *args)

        def compute():
            if recipe.checked and self.limits is not None:
                self.refuse_if_over_limits(exp)
            nested = _Nested(self, reporter)
            for kind_needed in recipe.needs:
                nested.get(kind_needed, exp)
            with reporter(recipe.describe(exp, *args), recipe.unit) as progress:
                value = recipe.compute(nested, exp, *args, progress)
            self._store(key, value)
            return value
        return self.memory.get_or_compute(key, compute)

    def put(self, kind: str, exp: Experiment, *args, value) -> None:
        """A result from elsewhere (an uploaded file, a cluster's store) into memory and the disk folder."""
        key = (kind, exp, *args)
        self.memory.put(key, value)
        self._store(key, value)

    def _store(self, key: tuple, value) -> None:
        disk = self._disk()
        if disk is not None and RECIPES[key[0]].stored:
            try:
                disk.put(key, value)
            except (OSError, TypeError):  # a read-only or full disk must not cost the user the result
                pass

    def is_computing(self, kind: str, exp: Experiment, *args) -> bool:
        return self.memory.is_computing((kind, exp, *args))

    def check(self, exp: Experiment):
        """Is this experiment within the limits: memory first, then the estimated time for J (a Validation)?"""
        from .jacobian import estimate_seconds
        from .validate import validate
        result = validate(exp, self.limits)
        if not result.ok:
            return result
        seconds = self.get("estimate", exp)
        result = validate(exp, self.limits, seconds=seconds)
        if result.ok:
            return result
        # Refuse only if a fresh probe agrees: one taken in a busy moment must not refuse it for every session.
        fresh = estimate_seconds(exp, fresh=True)
        seconds = {k: min(seconds[k], fresh[k]) for k in fresh}
        self.put("estimate", exp, value=seconds)
        return validate(exp, self.limits, seconds=seconds)

    def refuse_if_over_limits(self, exp: Experiment) -> None:
        result = self.check(exp)
        if not result.ok:
            raise OverLimits(result.message)

    def clear(self) -> None:
        self.memory.clear()


class _Nested:
    """What a recipe sees of the Results: the same lookup, drawing its own reports on the caller's reporter."""

    def __init__(self, results: Results, reporter: Reporter):
        self._results, self._reporter = results, reporter
        self.folder = results.folder

    def have(self, kind, exp, *args):
        return self._results.have(kind, exp, *args)

    def get(self, kind, exp, *args, reporter: Reporter | None = None):
        return self._results.get(kind, exp, *args, reporter=reporter or self._reporter)


class _NotStored(Exception):
    pass
