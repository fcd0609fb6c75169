"""Why a bulk? How it forms during training, the directions training cannot touch, and curvature."""
import numpy as np
import pandas as pd
import streamlit as st

import lab
import tj
from tj import charts
from tj.defaults import WHY
from tj.notes import evolution_notes
from tj.spectrum import threshold_counts
from tj.why import captured_fraction, input_second_moment, trained_inputs

st.title("Why is there a bulk?")
exp = lab.current()
n = exp.model.n_params
st.markdown("Three questions the paper leaves open: *when* does the bulk form, *which* directions are untouched "
            "exactly and why, and how much of the rest does the curvature of the loss explain?")

st.subheader("1 · Watch the bulk form")
st.markdown("Forward mode carries ∂θ_t/∂θ₀ through every step, so J after each epoch comes from the same run.")
if lab.have("evolution", exp, WHY.checkpoints(exp)) is None and \
        not st.button("Compute J through training", type="primary", key="compute_evolution"):
    est = lab.get("estimate", exp)
    st.info(f"One run of the Jacobian engine ({n:,} columns), keeping J at every checkpoint, then "
            f"{len(WHY.checkpoints(exp))} SVDs: about {est['jacobian'] + len(WHY.checkpoints(exp)) * est['svd']:.0f} s "
            "on this server (estimated from a timed probe).")
else:
    evo = lab.get("evolution", exp, WHY.checkpoints(exp))
    lab.hold_answers()
    tau = lab.tau()
    st.caption(f"Regions with the session's {lab.bulk_rule()} (set on Spectrum).")
    counts = pd.DataFrame(evo.counts(tau)).assign(epoch=evo.epochs)
    st.altair_chart(charts.series_chart({f"epoch {e:g}": np.abs(s - 1) for e, s in zip(evo.epochs, evo.sigma)},
                                        "|σ − 1|", True, "|σ − 1| by index after each checkpoint", "singular index i",
                                        ordered=True))
    st.altair_chart(charts.counts_chart(evo.epochs, {r: counts[r].to_numpy() for r in tj.REGIONS}))
    st.dataframe(counts[["epoch", *tj.REGIONS]], hide_index=True)
    st.download_button("counts per epoch (.csv)", counts.to_csv(index=False), "bulk_by_epoch.csv", "text/csv",
                       on_click="ignore")

st.subheader("2 · Directions training cannot move, predicted from the data alone")
x = trained_inputs(exp)
reads = tj.networks.first_layer(exp.model)  # how the first layer reads an image: its rule for untouched directions
kind = reads.kind if reads is not None else None
dead = tj.data.dead_pixels(x).tolist()
img = np.zeros(x.shape[1])
img[dead] = 1
c1, c2 = st.columns([1, 2])
c1.altair_chart(charts.digits_chart(img[None], [f"{len(dead)} pixel{'s' * (len(dead) != 1)} 0 in every image (black)"],
                                   columns=1, size=160))
if kind == "conv":
    k = reads.weight.shape[-1]
    c2.markdown(
        "- **Pixels black in every image freeze nothing here.** A kernel weight is shared over every position, so "
        "it sees many pixels. What carries over is the general rule: "
        f"a change of a first-layer {k}×{k} kernel and its bias that leaves every first-layer pre-activation on the "
        f"training images unchanged (the null space of the matrix of all {k}×{k} patches, with a ones column) is "
        "never moved: channels₁ × its dimension directions — usually none, as there are far more patches than "
        "kernel weights.\n"
        "- **Softmax shift:** applies as is: the last dense layer's bias along (1,…,1) and each of its input "
        "units' outgoing weights along (1,…,1) are never moved: 1 + width_last directions.")
elif kind is None:
    c2.markdown(
        "- **Pixels black in every image freeze nothing here.** This network's first layer does not multiply the "
        "pixels by weights of their own.\n"
        "- **Softmax shift:** applies to a dense output layer: its bias along (1,…,1) and each of its input "
        "units' outgoing weights along (1,…,1) are never moved: 1 + width_last directions.")
else:
    c2.markdown(
        "- **Dead pixels:** a pixel that is 0 in every training image gives its first-layer weights zero gradient "
        "forever — a nudge there passes through training untouched: width₁ × dead pixels directions.\n"
        "- **Softmax shift:** adding the same number to all ten logits changes no probability, so the output bias "
        "along (1,…,1) and each last hidden unit's outgoing weights along (1,…,1) are never moved: 1 + width_last "
        "directions.\n"
        "- **Rank of the inputs:** with fewer images than pixels, more first-layer directions see no data at all.")
if lab.have("exact", exp.replace(dtype="float64")) is None and \
        not st.button("Count them in a float64 J", key="compute_exact"):
    est = lab.get("estimate", exp.replace(dtype="float64"))
    st.info("The exact count needs J in float64 (float32 rounding blurs |σ − 1| below about 1e-6): about "
            f"{est['jacobian'] + est['svd']:.0f} s on this server (estimated from a timed probe).")
else:
    pred, sigma64, exact_rows = lab.get("exact", exp.replace(dtype="float64"))
    lab.hold_answers()
    a, b, c, d = st.columns(4)
    if kind == "dense":
        a.metric("dead-pixel directions", f"{pred.n_dead_pixel_directions:,}")
    else:
        a.metric("patch null-space directions" if kind == "conv" else "first-layer directions",
                 f"{pred.n_input_null_directions:,}")
    b.metric("softmax-shift directions", f"{pred.n_softmax_directions:,}")
    if pred.n_family_directions:
        b.metric("the network's own symmetries", f"{pred.n_family_directions:,}",
                 help=tj.networks.of(exp.model).symmetries.__doc__)
    c.metric("predicted in total", f"{pred.total:,}")
    d.metric("measured |σ−1| < 1e-9", f"{len(exact_rows):,}")
    if len(exact_rows):
        st.markdown(f"Share of the predicted subspace inside the measured σ = 1 subspace: "
                    f"**{captured_fraction(pred.basis, exact_rows):.6f}**.")
    tau_grid = np.logspace(-12, 0, 25)
    st.altair_chart(charts.series_chart({"float64 J": list(threshold_counts(sigma64, tau_grid).values())},
                                        "indices with |σ−1| < τ", True, "Bulk size against the threshold τ",
                                        "threshold τ (log scale)", x=tau_grid, log_x=True, floor=0.5))

found = lab.have("exact", exp.replace(dtype="float64"))
if found is None:
    untouched_sentence = ("Some directions are untouched *exactly*, for reasons you can read off the data and the "
                          "network (press **Count them** above).")
else:
    u = found[0]
    causes = [f"{u.n_dead_pixel_directions:,} from {len(dead)} dead pixels" if kind == "dense" else "",
              f"{u.n_input_null_directions:,} from the first layer's input null space" if u.n_input_null_directions
              else "",
              f"{u.n_softmax_directions:,} from the softmax's indifference to a common shift",
              f"{u.n_family_directions:,} from the network's own symmetries" if u.n_family_directions else ""]
    untouched_sentence = (f"{u.total:,} of the {n:,} directions are predicted untouched *exactly* "
                          f"({', '.join(c for c in causes if c)}); the float64 J has {len(found[2]):,} with "
                          "|σ − 1| < 1e-9.")

st.subheader("3 · The approximate bulk: inputs and curvature")
moments = input_second_moment(x)
st.altair_chart(charts.series_chart({"eigenvalues of XᵀX / N": moments}, "eigenvalue", True,
                                    f"Input second-moment spectrum ({x.shape[1]} pixel directions)", "index",
                                    floor=1e-12))
if kind == "dense":
    st.caption("Pixel directions of tiny variance barely feed the first layer: their weights are nearly untouched, "
               "which is where most of the approximate bulk comes from.")
gd = tj.why.gd_variant(exp)
st.markdown("For plain gradient descent, J = ∏(I − η_t H_t). If the Hessian were constant, σ_i would be "
            "∏(1 − η_t λ_i): positive curvature contracts, zero keeps, negative expands. Here the prediction uses "
            "the Hessian at a few checkpoints, run **without momentum**.")
if n > WHY.gd_max_params:
    st.info(f"Hessians of P = {n:,} parameters are too big for this panel; use the lecture preset.")
elif lab.have("gd", gd, WHY.gd_segments) is None and not st.button("Compare with the Hessian prediction", key="compute_gd"):
    st.caption(f"J of the run without momentum, then {WHY.gd_segments} Hessians of {n:,} × {n:,} and their "
               f"eigenvalues: about {lab.get('gd seconds', gd, WHY.gd_segments):.0f} s on this server (estimated from a "
               "timed probe).")
else:
    pred_gd = lab.get("gd", gd, WHY.gd_segments)
    predicted_name = f"predicted ∏(1 − η_t λ_i), {WHY.gd_segments} Hessians"
    st.altair_chart(charts.series_chart({"measured σ (momentum 0)": pred_gd.measured,
                                         predicted_name: pred_gd.predicted},
                                        "σ", True, "Curvature predicts the regions", "index i",
                                        dashed=(predicted_name,)))
evo = lab.have("evolution", exp, WHY.checkpoints(exp))
lab.notice((evolution_notes(evo.epochs, evo.counts(lab.tau())) + " " if evo is not None else "")
           + untouched_sentence + " The much larger approximate bulk lives where "
           + ("the inputs have little variance and " if kind == "dense" else "") + "the loss has almost no curvature.")
st.page_link("views/home.py", label="Back to the start: the lecture path and the guided lecture", icon="🏠")
