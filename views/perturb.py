"""Perturb: move θ_T along singular directions — in distribution, out of distribution, by retraining, and by restriction."""
import numpy as np
import pandas as pd
import streamlit as st

import lab
import tj
from tj import charts
from tj.defaults import PERTURB
from tj.notes import linear_up_to, perturb_notes
from tj.perturb import SUBSPACES, region_medians

st.title("Perturb along singular directions")
exp = lab.current()
n = exp.model.n_params
if lab.have("spectrum", exp) is None:
    st.warning("This page needs the spectrum of the current experiment's training Jacobian, not computed yet.")
    if not st.button(f"Compute J ({n:,} × {n:,}) and its spectrum", type="primary", key="compute_spectrum_perturb"):
        st.stop()
spec = lab.get("spectrum", exp)
lab.hold_answers()
sigma = spec.singular_values
labels = lab.regions(sigma)
bulk = np.flatnonzero(labels == "bulk")
exact = bulk[np.abs(sigma[bulk] - 1) < 1e-6]
honest = lab.get("bulk direction", exp)
typical_bulk = honest.index

st.subheader("1 · Does moving along v_i change what the network says?")
alpha = st.number_input("step size α (θ_T + α v_i, ‖v_i‖ = 1)", min_value=0.0, value=PERTURB.alpha, key="alpha")
kl = lab.get("kl", exp, float(alpha))
st.altair_chart(charts.kl_chart(kl, labels))
medians = region_medians(kl, labels)
summary = pd.DataFrame(medians)
st.dataframe(summary.style.format("{:.2e}"), width="content")
st.caption(f"Median over each region ({lab.bulk_rule()}, set on Spectrum) of the max over inputs of "
           "KL(p ‖ p perturbed), in nats.")
st.download_button("KL per direction (.csv)", pd.DataFrame({"index": np.arange(n), "region": labels, **kl})
                   .to_csv(index=False), "output_effect.csv", "text/csv", on_click="ignore")

st.subheader("2 · See it")
c1, c2 = st.columns(2)
index = int(c1.number_input("direction index i", 0, n - 1, typical_bulk, key="see_index"))
flips = lab.get("flips", exp, index, lab.tau())
st.altair_chart(charts.flips_chart(flips))
chaotic_note = (f" Dashed: the mean over the first {flips.n_chaotic} chaotic directions, stepped the same."
                if flips.n_chaotic else " This run has no chaotic direction to compare with.")
st.caption(f"v_{index} is {labels[index]}. Each point: the share of the test images, their inversions or the "
           f"noise images whose predicted class differs at θ_T + s·v_{index} from θ_T's.{chaotic_note} The grid "
           f"below opens at s = {flips.see_size:.3g}, the largest step at which the test predictions still hold "
           f"(at most {tj.perturb.HOLD:.0%} change).")
size = c2.number_input("size of the step s", min_value=0.0, value=flips.see_size, format="%.4g",
                       key=f"see_size_{index}")
step = lab.get("see it", exp, index, float(size))
lab.fitted_chart("see_it", lambda width: charts.digits_chart(step.images, list(step.titles), columns=5, size=64,
                                                             width=width))
st.caption(f"v_{index} is {labels[index]} (σ = {sigma[index]:.5g}). Titles: predicted class and its "
           "probability before → after the step. Noise images are clipped to [0, 1] for display.")

st.subheader("3 · Is J's prediction right far from θ_0? Retrain and see")
choices = {f"bulk, closest to σ = 1 outside the untouched subspace (i = {typical_bulk}, |σ−1| = {honest.distance:.1e})":
           typical_bulk, "top chaotic (i = 0)": 0}
if len(exact):
    choices[f"bulk, exactly untouched (i = {int(exact[0])})"] = int(exact[0])
pick = st.selectbox("direction", list(choices), key="lin_pick")
eps = PERTURB.eps(st.slider("ε values (logspace 1e-3 … 1e3)", 6, 30, PERTURB.n_eps, key="n_eps"))
lin = losses = None
if lab.have("linearity", exp, choices[pick], eps) is None and not st.button("Retrain", key="run_linearity"):
    st.info("Each ε is one full training run from θ₀ + ε v_k.")
else:
    lin = lab.get("linearity", exp, choices[pick], eps)
    for column, chart in zip(st.columns(2), charts.linearity_charts(lin, linear_up_to(lin))):
        column.altair_chart(chart)
    st.download_button("linearity (.csv)", pd.DataFrame(vars(lin) | {"index": lin.index}).to_csv(index=False),
                       "linearity.csv", "text/csv", on_click="ignore")
    st.caption(f"The {honest.n_untouched:,} exactly untouched directions (Why a bulk?, §2, names their causes on "
               "this network) are linear trivially — training never moves them. The default direction is the honest "
               f"test: σ closest to 1 among directions with under 1% of their weight in the {honest.n_untouched:,}-"
               f"dimensional untouched subspace (v_{typical_bulk} has {100 * honest.untouched_share:.2g}% there).")

st.subheader("3b · How much does 'bulk' promise? Linearity across |σ − 1|")
if lab.have("spread", exp, lab.tau()) is None and \
        not st.button("Retrain along several bulk directions", key="run_spread"):
    st.info(f"{PERTURB.n_spread} bulk directions outside the untouched subspace, from the closest to 1 to "
            f"|σ−1| ≈ τ = {lab.tau():g}, each retrained at ε = "
            f"{', '.join(f'{e:g}' for e in PERTURB.spread_eps)}.")
else:
    sp = lab.get("spread", exp, lab.tau())
    st.dataframe(pd.DataFrame(sp.rows()).style.format({"i": "{:d}", "|σ−1|": "{:.1e}"}, precision=3),
                 hide_index=True)
    st.caption(f"|δ·u|/(εσ) = 1 is J's linear prediction holding exactly after retraining from θ₀ + εv_i. "
               f"Test loss without the nudge: {sp.base_test_loss:.3f}. Read down the table: how long the "
               "prediction holds, and how much the test loss moves at large ε, as |σ−1| grows.")

st.subheader("4 · Train only inside a subspace")
n_ks = st.slider("number of k values", 4, 20, PERTURB.n_ks, key="n_ks")
ks = PERTURB.subspace_ks(n, n_ks)
if lab.have("subspace", exp, ks) is None and not st.button("Train in subspaces", key="run_subspace"):
    st.info(f"{len(ks) * len(SUBSPACES)} training runs, each restricted to θ = θ₀ + Bᵀc.")
else:
    losses = lab.get("subspace", exp, ks)
    st.altair_chart(charts.subspace_chart(ks, losses))
    st.download_button("subspace training (.csv)", pd.DataFrame({"k": ks, **losses}).to_csv(index=False),
                       "subspace_training.csv", "text/csv", on_click="ignore")
st.page_link("views/why.py", label="Next: why is there a bulk?", icon="➡️")
lab.notice(perturb_notes(medians, lin, f"v_{choices[pick]} ({labels[choices[pick]]})", losses, ks))
