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
    n_spread: int = 5                                  # bulk directions in the linearity spread table
    spread_eps: tuple[float, ...] = (1.0, 100.0, 1000.0)

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


SPECTRUM = SpectrumDefaults()
COMPARE = CompareDefaults()
PERTURB = PerturbDefaults()
WHY = WhyDefaults()
