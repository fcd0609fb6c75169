"""Every page's default settings, defined once: the pages and `python -m tj precompute` both read them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpectrumDefaults:
    """Spectrum page: the bulk threshold τ on |σ − 1| (the app-wide default) and its choices."""

    tau: float = 1e-1
    taus: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1)
    log_y: bool = True

    def rank(self, p: int) -> int:
        """Default bulk size k when the bulk is chosen by rank."""
        return max(1, p // 3)


@dataclass(frozen=True)
class CompareDefaults:
    """Compare page: how many other seeds, which switches, the overlap sweep and matrix."""

    n_seeds: int = 2
    n_switches: int = 2            # the first n of tj.compare.switches(exp)
    fjac_inputs: tuple[str, ...] = ("test", "noise")   # the radio's choices; the first is selected
    n_ks: int = 12

    def ks(self, p: int) -> tuple[int, ...]:
        """k values of the overlap sweeps: geometric from P/50 to 0.9·P."""
        return tuple(sorted({int(round(k)) for k in np.geomspace(max(2, p // 50), 0.9 * p, self.n_ks)}))

    def k_matrix(self, p: int) -> int:
        return min(p - 1, max(1, p // 3))


@dataclass(frozen=True)
class PerturbDefaults:
    """Perturb page: step size for the KL sets, ε grid of the linearity test, subspace sizes (τ: the session's)."""

    alpha: float = 1.0
    n_eps: int = 13
    n_ks: int = 8
    eps_range: tuple[float, float] = (1e-3, 1e3)
    flip_range: tuple[float, float, int] = (1e-1, 1e3, 17)  # "See it": step sizes of the class-change curves
    n_spread: int = 5                                  # bulk directions in the linearity spread table
    spread_eps: tuple[float, ...] = (1.0, 100.0, 1000.0)

    def flip_sizes(self) -> tuple[float, ...]:
        lo, hi, n = self.flip_range
        return tuple(float(s) for s in np.geomspace(lo, hi, n))

    def eps(self, n_eps: int | None = None) -> tuple[float, ...]:
        lo, hi = np.log10(self.eps_range)
        return tuple(float(e) for e in np.logspace(lo, hi, n_eps or self.n_eps))

    def subspace_ks(self, p: int, n_ks: int | None = None) -> tuple[int, ...]:
        return tuple(int(k) for k in np.linspace(min(100, p // 10), p, n_ks or self.n_ks).round())


@dataclass(frozen=True)
class WhyDefaults:
    """Why a bulk? page: checkpoints of the evolution, its τ, the Hessian prediction."""

    evo_tau: float = 1e-2
    evo_taus: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    every_epoch_up_to: int = 2_000   # P up to which J is kept after every epoch (P² bytes each)
    big_net_checkpoints: int = 4
    gd_segments: int = 4
    gd_max_params: int = 2_500

    def checkpoint_count(self, p: int) -> int | None:
        """None: every epoch; else this many evenly spaced checkpoints."""
        return None if p <= self.every_epoch_up_to else self.big_net_checkpoints

    def checkpoints(self, exp) -> tuple[int, ...]:
        """Steps of the evolution: every epoch, or a few for big nets (P² bytes each)."""
        from .why import epoch_checkpoints
        return epoch_checkpoints(exp, self.checkpoint_count(exp.model.n_params))


FD_SEED = 0  # the Jacobian page's "random direction seed"
SPECTRUM = SpectrumDefaults()
COMPARE = CompareDefaults()
PERTURB = PerturbDefaults()
WHY = WhyDefaults()


def page_results(exp, limits=None) -> dict[str, list]:
    """Every stored result each page asks for with its default settings, as keys (kind, exp, *args) of
    tj.results.RECIPES; a key that depends on an earlier result is a function of the Results. Precompute stores
    these, and with them what they are computed from."""
    from . import compare, why
    from .presets import PRESETS
    from .validate import validate

    p, n_seeds = exp.model.n_params, COMPARE.n_seeds
    ks, which = COMPARE.ks(p), COMPARE.fjac_inputs[0]
    variants = {**compare.variants(exp, n_seeds),
                **{name: v for name, v in list(compare.switches(exp).items())[:COMPARE.n_switches]
                   if validate(v, limits).ok}}

    def honest(r):
        return r.get("bulk direction", exp).index

    def flips(r):
        return ("flips", exp, honest(r), SPECTRUM.tau)
    pages = {
        "home": [("estimate", e) for e in dict.fromkeys((exp, *PRESETS.values()))],
        "build": [("train", exp)],
        "jacobian": [("jacobian", exp), ("identity distance", exp), ("blocks", exp), ("fd", exp, FD_SEED)],
        "spectrum": [("spectrum", exp), ("showcase", exp, SPECTRUM.tau)],
        "compare": [("sweeps", exp, n_seeds, ks),
                    ("overlap matrix", exp, n_seeds, COMPARE.k_matrix(p)),
                    *(("bulk", v) for v in variants.values()), ("fjac", exp, which), ("null overlap", exp, which, ks)],
        "perturb": [("bulk direction", exp), ("kl", exp, PERTURB.alpha),
                    flips, lambda r: ("see it", exp, honest(r), r.get(*flips(r)).see_size),
                    lambda r: ("linearity", exp, honest(r), PERTURB.eps()),
                    ("spread", exp, SPECTRUM.tau), ("subspace", exp, PERTURB.subspace_ks(p))],
        "why": [("evolution", exp, WHY.checkpoints(exp)),
                ("exact", exp.replace(dtype="float64"))],
    }
    if p <= WHY.gd_max_params:
        pages["why"].append(("gd", why.gd_variant(exp), WHY.gd_segments))
    return pages
