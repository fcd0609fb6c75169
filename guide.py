"""The guided lecture: docs/lecture.md's parts as steps inside the app, and the glossary (no computation)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One step of the lecture: where to go, what to press, what to ask before revealing, where to look after."""

    page: str             # views/<page>.py
    title: str            # the page's title in the sidebar navigation
    press: tuple[str, ...]  # exact button labels, in order (empty: nothing to press)
    ask: str              # the question to put to the class before pressing
    look: str             # where to look once revealed (family-neutral; the page's own numbers say what they show)


STEPS: tuple[Step, ...] = (
    Step("build", "Build a network", ("Train",),
         "If I press Train again with the same seed, will I get the same θ_T, to the last bit? "
         "J will be P × P: how many numbers is that?",
         "Read **parameters P** and **J will be**: J has P² entries. The curves and the final test loss show "
         "whether the network learned."),
    Step("jacobian", "Training Jacobian", ("Compute J",),
         "Training moved every weight a lot. Will J be close to the identity matrix, or far from it?",
         "Read **‖J − I‖_F / ‖I‖_F** and **computed in**: every column is one initial weight nudged and pushed "
         "through every training step. The heatmap shows which blocks of J − I carry the weight."),
    Step("spectrum", "Spectrum", (),
         "Out of the P directions of the initialisation, how many does training leave (nearly) alone: a handful, "
         "a tenth, half?",
         "Read the **chaotic / bulk / stable** counts (they sum to P) and move τ: the bulk has no sharp edge. "
         "Click a chaotic point in the first chart and compare its direction with the bulk one the page opens on."),
    Step("compare", "Compare", ("Compute the variants", "Compute it"),
         "Predict: will shuffled labels change the bulk? Will uniform-noise inputs? Will another seed?",
         "The overlap chart and matrix: which variants keep a bulk above the random baseline, and which do not?"),
    Step("perturb", "Perturb", ("Retrain", "Train in subspaces"),
         "Push θ_T one unit along a bulk direction. Will the predictions on the training digits change? On noise "
         "images? And how far can we push before J's linear prediction breaks?",
         "The table of medians by region and input set, then the retraining along a bulk direction against J's "
         "linear prediction, and the training restricted to the bulk."),
    Step("why", "Why a bulk?", ("Compute J through training", "Count them in a float64 J"),
         "From the training images alone, without training anything, can you predict how many directions "
         "training cannot move at all?",
         "The region counts by checkpoint, then **predicted in total** against **measured |σ−1| < 1e-9**."),
)

GLOSSARY = {
    "J": "The training Jacobian ∂θ_T/∂θ_0: how the trained parameters θ_T change when the initial ones θ_0 are "
         "nudged. A P × P matrix.",
    "P": "The number of parameters (weights and biases) of the network.",
    "σ (sigma)": "A singular value of J: how much training stretches a nudge along v. σ_1 is the largest.",
    "v": "A right singular vector: a direction in which to nudge the initial parameters θ_0.",
    "u": "A left singular vector: where that nudge ends up in the trained parameters (J v = σ u).",
    "τ (tau)": "The bulk threshold: a direction is bulk when |σ − 1| < τ. Set on the Spectrum page; every page "
               "uses it.",
    "bulk": "Directions with σ ≈ 1 (and u ≈ v): training passes the nudge through unchanged.",
    "chaotic": "Directions with σ > 1 outside the bulk: training amplifies small changes at the start.",
    "stable": "Directions with σ < 1 outside the bulk: training forgets the nudge.",
}


def step_index(raw) -> int | None:
    """A 1-based step number from the URL, or None when it is not one."""
    try:
        i = int(str(raw))
    except (TypeError, ValueError):
        return None
    return i if 1 <= i <= len(STEPS) else None
