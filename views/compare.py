"""Compare: do bulks agree across seeds, shuffled labels and noise inputs? And with the parameter-function Jacobian?"""
import numpy as np
import pandas as pd
import streamlit as st

import lab
from tj import charts
from tj.compare import bulk_table, random_overlap, switches, variants
from tj.defaults import COMPARE
from tj.notes import compare_notes

st.title("Compare bulks")
exp = lab.current()
n = exp.model.n_params
st.markdown("Same network, same θ₀ and training recipe, but **shuffled labels** or **uniform-noise inputs**; "
            "and the same recipe from **other seeds**. Is the bulk a property of the data, the labels, or the seed?")

n_seeds = st.slider("other seeds", 2, 8, COMPARE.n_seeds, key="n_seeds")
runs = {"main": exp, **variants(exp, n_seeds)}
missing = [name for name, e in runs.items() if lab.have("bulk", e) is None and lab.have("spectrum", e) is None]
if missing:
    est = lab.get("estimate", exp)
    st.warning(f"Not computed yet: {', '.join(missing)} — {len(missing)} Jacobians and SVDs of "
               f"{n:,} × {n:,}, about {len(missing) * (est['jacobian'] + est['svd']):.0f} s on this server.")
    if not st.button("Compute the variants", type="primary", key="compute_variants"):
        st.stop()
    lab.get("comparison", exp, n_seeds)
    st.rerun()  # redraw without the 'not computed yet' panel
lab.hold_answers()
spectra = lab.get("comparison", exp, n_seeds)

st.subheader("Spectra side by side")
log_y = st.toggle("log axis for σ", value=True, key="compare_log")
st.altair_chart(charts.series_chart({k: np.abs(s - 1) for k, (s, _) in spectra.items()}, "|σ − 1|", True,
                                    "Distance from one, by index", "singular index i"))
st.altair_chart(charts.series_chart({k: s for k, (s, _) in spectra.items()}, "σ", log_y,
                                    "Singular values, by index", "singular index i"))
st.dataframe(pd.DataFrame(bulk_table({k: s for k, (s, _) in spectra.items()}, lab.tau())), hide_index=True)
st.caption(f"Bulk sizes with the session's {lab.bulk_rule()} (set on Spectrum), and at two fixed thresholds.")

st.subheader("Bulk overlap")
st.latex(r"\mathrm{overlap}_k(A, B) = \frac1k \sum_{i=1}^{k} \cos\phi_i \quad"
         r"\text{(principal angles between the two rank-}k\text{ bulks)}")
ks = COMPARE.ks(n)
baseline = [random_overlap(n, k) for k in ks]
sweeps = lab.get("sweeps", exp, n_seeds, ks)
st.altair_chart(charts.overlap_chart(ks, sweeps, baseline))
k = st.number_input("k for the matrix", min_value=1, max_value=n - 1, value=COMPARE.k_matrix(n), key="k_matrix")
names = list(spectra)
matrix = lab.get("overlap matrix", exp, n_seeds, int(k))
st.altair_chart(charts.matrix_heatmap(names, matrix, f"Bulk overlap at k = {int(k):,} (random: "
                                      f"{random_overlap(n, int(k)):.3f})", "", "", "overlap"))
table = pd.DataFrame({"k": ks, "random": baseline, **sweeps})
st.download_button("overlap sweep (.csv)", table.to_csv(index=False), "bulk_overlap.csv", "text/csv", on_click="ignore")
base_k = random_overlap(n, int(k))
with_main = {name: float(matrix[0][j]) for j, name in enumerate(names) if name != "main"}
lab.notice(compare_notes(with_main, base_k, int(k)))

st.subheader("Optimizer and architecture")
st.markdown("Does the bulk survive plain gradient descent without momentum, Adam, a wider or deeper network, "
            "or less data? Networks of different width have different P, so the index is shown as a fraction of P.")
options = switches(exp)
chosen = st.multiselect("variants", list(options), default=list(options)[:COMPARE.n_switches], key="switches")
todo = [name for name in chosen if lab.have("bulk", options[name]) is None and lab.have("spectrum", options[name]) is None]
if todo and not st.button("Compute these variants", key="compute_switches"):
    st.info(f"{len(todo)} more Jacobians to compute: {', '.join(todo)}.")
elif chosen:
    over = {name: lab.check(options[name]) for name in todo}  # stored results need no limits check
    runnable = [name for name in chosen if name not in over or over[name].ok]
    for name in todo:
        if not over[name].ok:
            st.warning(f"{name}: {over[name].message}")
    sw = {"main": spectra["main"][0], **{name: lab.get("bulk", options[name])[0] for name in runnable}}
    st.altair_chart(charts.series_chart({k: np.abs(s - 1) for k, s in sw.items()}, "|σ − 1|", True,
                                        "Distance from one against i / P", "i / P", fractions=True))
    st.dataframe(pd.DataFrame(bulk_table(sw, lab.tau())), hide_index=True)

st.subheader("Bulk vs the parameter-function Jacobian")
st.markdown("The Jacobian of the network's log-probabilities with respect to θ at θ₀: its smallest singular "
            "directions barely change what the network outputs on those inputs. Do they coincide with the bulk?")
input_names = {"test": "test digits", "noise": "Gaussian-noise images"}
which = st.radio("inputs", list(COMPARE.fjac_inputs), horizontal=True, key="fjac_inputs", format_func=input_names.get)
if lab.have("fjac", exp, which) is not None or st.button("Compute it", key="compute_fjac"):
    fj = lab.get("fjac", exp, which)
    st.altair_chart(charts.series_chart({input_names[which]: fj.singular_values[::-1]}, "singular value", True,
                                        "Spectrum of ∂ log p / ∂θ (descending)", "index"))
    fj_ks = COMPARE.ks(n)
    null_overlap = lab.get("null overlap", exp, which, fj_ks)
    st.altair_chart(charts.overlap_chart(fj_ks, {f"null space ({input_names[which]}) vs bulk": null_overlap},
                                         [random_overlap(n, kk) for kk in fj_ks], "Null space vs bulk"))
    null_by_count = n - fj.n_outputs
    st.caption(f"{fj.n_outputs:,} outputs (10 per input) for P = {n:,}: " +
               (f"at least {null_by_count:,} directions are exactly null." if null_by_count > 0 else
                "more outputs than parameters, so no direction is null by counting alone; the smallest singular "
                "values show the nearly null ones."))
st.page_link("views/perturb.py", label="Next: perturb θ along singular directions", icon="➡️")
