"""The pages' "what to notice" sentences, generated from the numbers they describe, so they cannot contradict them."""
from __future__ import annotations

import numpy as np

from .spectrum import REGIONS

ALIGNED = 0.99        # median u·v over the bulk above which a nudge "comes out as it went in"
IN_DISTRIBUTION = 10  # out-of-distribution KL this many times the training inputs' reads as "invisible in distribution"
LINEAR = 1e-2         # |δ·u|/(εσ) within this of 1 reads as "J's linear prediction holds"


def dead_pixel_share(spec, v: np.ndarray, dead: np.ndarray) -> float | None:
    """Share of ‖v‖² on first-layer weights of pixels that are 0 in every training image (a dense first layer on
    the pixels; else None)."""
    from .networks import first_layer

    first = first_layer(spec)
    if first is None or first.kind != "dense" or not len(dead):
        return None
    w1 = first.weight
    rows = np.asarray(v, dtype=np.float64)
    return float((rows[w1.start:w1.stop].reshape(w1.shape)[:, dead] ** 2).sum() / max((rows ** 2).sum(), 1e-300))


def spectrum_notes(sigma: np.ndarray, labels: np.ndarray, alignment: np.ndarray, tau: float,
                   index: int | None = None, dead_share: float | None = None, n_dead: int = 0) -> str:
    """What the Spectrum page shows: region sizes, bulk alignment, and the direction on screen."""
    p = len(sigma)
    counts = {r: int((labels == r).sum()) for r in REGIONS}
    largest = max(counts, key=counts.get)
    bulk = labels == "bulk"
    out = [f"{counts['bulk']:,} of {p:,} σ ({100 * counts['bulk'] / p:.0f} %) lie within τ = {tau:g} of 1: the bulk"
           + (", the largest region." if largest == "bulk" else f"; the largest region here is {largest} "
                                                                 f"({counts[largest]:,}).")]
    if bulk.any():
        a = float(np.median(alignment[bulk]))
        out.append(f"Over the bulk the median alignment u_i·v_i is {a:.3f}"
                   + (": a nudge along v_i comes out of training as it went in." if a >= ALIGNED else
                      ", so a nudge along v_i comes out of training partly turned."))
    if counts["chaotic"]:
        out.append(f"The {counts['chaotic']:,} chaotic directions (σ up to {sigma[0]:.3g}) are where small changes at "
                   "the start decide where training ends.")
    if counts["stable"]:
        out.append(f"The {counts['stable']:,} stable ones (σ down to {sigma[-1]:.2g}) are forgotten.")
    if index is not None and dead_share is not None:
        out.append(f"v_{index} ({labels[index]}) puts {100 * dead_share:.0f} % of its weight on the first-layer "
                   f"weights of the {n_dead} pixels no training image lights up: "
                   + ("the gradient never reaches them, so training leaves that part untouched."
                      if dead_share >= 0.5 else "most of it lies elsewhere."))
    return " ".join(out)


def _listed(names) -> str:
    """'a, b and c', its first letter a capital."""
    names = list(names)
    text = (", ".join(names[:-1]) + " and " + names[-1]) if len(names) > 1 else "".join(names)
    return text[:1].upper() + text[1:]


def compare_notes(overlaps: dict[str, float], random: float, k: int, margin: float = 0.1) -> str:
    """What Compare's overlaps with the main run's bulk say, and only what follows from them: a variant keeps
    the bulk when its overlap is more than `margin` above two random subspaces'."""
    kept = [name for name, v in overlaps.items() if v > random + margin]
    lost = [name for name in overlaps if name not in kept]
    out = [f"Overlap with the main run's bulk at k = {k:,} (two random subspaces: {random:.3f}): "
           + ", ".join(f"{name} {v:.3f}" for name, v in overlaps.items()) + "."]
    if kept:
        out.append(f"{_listed(kept)} keep{'s' * (len(kept) == 1)} a bulk far above random.")
    if lost:
        out.append(f"{_listed(lost)} stay{'s' * (len(lost) == 1)} close to random.")
    labels, noise = "shuffled labels" in kept, "noise inputs" in kept
    if "shuffled labels" in overlaps and "noise inputs" in overlaps:
        if labels and not noise:
            out.append("Shuffled labels keep it and noise inputs do not: the bulk is set by the inputs, not by the "
                       "labels.")
        elif labels and noise:
            out.append(f"Even noise inputs keep it ({overlaps['noise inputs']:.3f}, against "
                       f"{overlaps['shuffled labels']:.3f} for shuffled labels): on this network the bulk does not "
                       "depend on the inputs being digits.")
        elif noise:
            out.append("Noise inputs keep it and shuffled labels do not: on this network the labels shape the bulk.")
    seeds = [name for name in overlaps if name.startswith("seed")]
    if seeds and all(name in kept for name in seeds):
        out.append("Every other seed keeps it: the bulk is not the luck of one draw.")
    return " ".join(out)


def linearity_break(lin, up_to: float | None) -> str:
    """Where J's linear prediction stops holding along the retrained direction, and what the numbers say of why."""
    if up_to is None or up_to >= lin.eps[-1]:
        return ""
    first = float(lin.eps[np.flatnonzero(lin.eps > up_to)[0]])
    scale = first / lin.theta0_norm if np.isfinite(lin.theta0_norm) and lin.theta0_norm > 0 else float("nan")
    loss = np.asarray(lin.test_loss)
    said = f"From ε = {first:g} on it does not: "
    if scale >= 0.5:
        said += (f"that nudge is {scale:.2g}× the norm of θ_0 itself, so training starts from a different network, "
                 "far outside the region where a first-order expansion can hold")
    else:
        said += (f"the nudge is only {scale:.2g}× the norm of θ_0, so it is not its size alone; these numbers do not "
                 "say why" if np.isfinite(scale) else "these numbers do not say why")
    if np.isfinite(loss).all() and loss[-1] > 1.5 * loss[0]:
        said += f", and the test loss after retraining rises from {loss[0]:.2f} to {loss[-1]:.2f} nats"
    return said + "."


def linear_up_to(lin) -> float | None:
    """The largest ε up to which every retraining followed εσ to within LINEAR; None if not even the smallest."""
    ok = np.abs(np.asarray(lin.along) / np.maximum(np.asarray(lin.predicted), 1e-300) - 1) < LINEAR
    bad = np.flatnonzero(~ok)
    last = bad[0] if len(bad) else len(ok)
    return float(lin.eps[last - 1]) if last else None


def perturb_notes(medians: dict, lin=None, lin_label: str = "", subspace: dict | None = None,
                  ks=None) -> str:
    """What the Perturb page shows: KL in and out of distribution along the bulk, linearity, subspace training."""
    out = []
    train = medians.get("train", {}).get("bulk", float("nan"))
    far = {name: medians[name]["bulk"] for name in ("inverted", "noise") if name in medians}
    if np.isfinite(train) and far and all(np.isfinite(list(far.values()))):
        ratios = {name: v / max(train, 1e-300) for name, v in far.items()}
        said = " and ".join(f"{name} images {r:.0f}× as much" for name, r in ratios.items())
        if min(ratios.values()) >= IN_DISTRIBUTION:
            out.append(f"Along the bulk the outputs on training inputs barely move (median max-KL {train:.1e} "
                       f"nats), {said}: the bulk is invisible only in distribution.")
        else:
            out.append(f"Along the bulk the outputs on training inputs move by a median max-KL of {train:.1e} nats, "
                       f"{said}: this run does not show the bulk as invisible only in distribution.")
    if lin is not None:
        up_to = linear_up_to(lin)
        out.append(f"Retraining along {lin_label} followed J's linear prediction to within {LINEAR:.0%} "
                   + (f"up to ε = {up_to:g}" if up_to is not None else "at no ε tried")
                   + f" (ε from {lin.eps[0]:g} to {lin.eps[-1]:g}).")
        out.append(linearity_break(lin, up_to))
    if subspace and ks is not None and "bulk" in subspace and "complement of bulk" in subspace:
        k = len(ks) // 2
        b, c = subspace["bulk"][k], subspace["complement of bulk"][k]
        out.append(f"Trained only along the {ks[k]:,} directions closest to σ = 1 the test loss ends at {b:.3f}, "
                   f"against {c:.3f} along the {ks[k]:,} farthest from it"
                   + (": the bulk holds directions training does not use." if b > c else "."))
    return " ".join(out)


def evolution_notes(epochs, counts: list[dict[str, int]], frozen: float = 0.02) -> str:
    """What Why a bulk?'s first chart shows: the bulk at the start, after the first checkpoint, and at the end."""
    p = sum(counts[0].values())
    first = counts[0]
    out = [f"At epoch {epochs[0]:g}, all {p:,} directions are bulk (J = I)." if first["bulk"] == p else
           f"At epoch {epochs[0]:g}, {first['bulk']:,} of {p:,} directions are bulk."]
    if len(counts) > 1:
        nxt = counts[1]
        out.append(f"By epoch {epochs[1]:g} training has moved {p - nxt['bulk']:,} of them out of the bulk, "
                   f"{nxt['chaotic']:,} to chaotic and {nxt['stable']:,} to stable.")
    if len(counts) > 2:
        a, b = counts[-2], counts[-1]
        moved = sum(abs(a[r] - b[r]) for r in a) // 2
        shift = "do not change" if moved == 0 else f"shift by only {moved:,}"
        out.append(f"From epoch {epochs[-2]:g} to {epochs[-1]:g} the region counts {shift}: they have frozen as the "
                   "learning rate decayed, and the bulk is what training never moved."
                   if moved <= frozen * p else
                   f"From epoch {epochs[-2]:g} to {epochs[-1]:g} the region counts still shift by {moved:,}: training "
                   "had not settled when it stopped.")
    return " ".join(out)
