"""Spectrum: σ by index with the three regions, alignment, movement, and what a direction looks like."""
import streamlit as st

import lab
import tj
from tj import charts, defaults
from tj.data import dead_pixels
from tj.notes import dead_pixel_share, spectrum_notes
from tj.store import BadFile
from tj.why import trained_inputs

st.title("Spectrum of the training Jacobian")
exp = lab.current()
n = exp.model.n_params

with st.expander("Load a saved result (.npz from the CLI or the download button)"):
    upload = st.file_uploader("result file", type=["npz"], key="upload")
    if upload is not None and st.session_state.get("loaded") != upload.file_id:
        try:
            exp = lab.load_upload(upload)
            st.session_state["loaded"] = upload.file_id
            st.success(f"Loaded: P = {exp.model.n_params:,}, {lab.preset_name(exp)} configuration.")
        except BadFile as err:
            st.error(lab.explain_failure(err))

if lab.have("spectrum", exp) is None:
    if lab.have("jacobian", exp) is None:
        st.warning("The spectrum needs the training Jacobian of the current experiment, which is not computed yet.")
        if not st.button(f"Compute J ({n:,} × {n:,}) and its spectrum", type="primary", key="compute_spectrum"):
            st.stop()
    try:
        lab.get("spectrum", exp)
    except (tj.Diverged, tj.Cancelled, tj.SVDFailed, MemoryError, RuntimeError) as err:
        st.error(lab.explain_failure(err))
        st.stop()
    st.rerun()

lab.hold_answers()
spec = lab.get("spectrum", exp)
sigma = spec.singular_values

left, right = st.columns([2, 1])
left.select_slider("bulk threshold τ on |σ − 1| (used by every page)", options=list(defaults.SPECTRUM.taus),
                   value=lab.tau(), key="tau", on_change=lambda: lab.set_tau(st.session_state["tau"]),
                   help="A direction is bulk when |σ − 1| < τ; Compare, Perturb and Why a bulk? use the same τ.")
labels = lab.regions(sigma)
log_y = right.toggle("log σ axis", value=defaults.SPECTRUM.log_y, key="log_y")
counts = tj.region_counts(labels)
a, b, c, d = st.columns(4)
a.metric("σ₁ (largest)", f"{sigma[0]:.2f}")
b.metric("chaotic", f"{counts['chaotic']:,}")
c.metric("bulk", f"{counts['bulk']:,}")
d.metric("stable", f"{counts['stable']:,}")
st.caption(f"The decomposition took {spec.seconds:.1f} s. Smallest σ = {sigma[-1]:.2e}"
           + (" (a float32 J resolves σ only to about 1e-5 of σ₁; use float64 for the stable tail)."
              if exp.dtype == "float32" else "."), help=f"LAPACK route: {spec.route}")

table = charts.spectrum_table(sigma, labels, spec.alignment, spec.movement)
event = st.altair_chart(charts.sigma_chart(table, log_y=log_y), on_select="rerun", key="sigma_pick")
st.caption("Click a point to look at that singular vector below.")
picked = ((event.selection or {}).get("pick") or [{}])[0].get("index") if event else None
if picked is not None and picked != st.session_state.get("last_pick"):
    st.session_state["direction_index"] = int(picked)  # before the widget exists: the click wins this run
st.session_state["last_pick"] = picked
c1, c2 = st.columns(2)
c1.altair_chart(charts.distance_chart(table))
c2.altair_chart(charts.alignment_chart(table))
c1.altair_chart(charts.log_sigma_histogram(table))
c2.altair_chart(charts.movement_chart(table))
st.download_button("spectrum table (.csv)", table.to_csv(index=False), file_name="spectrum.csv", mime="text/csv",
                   on_click="ignore")

st.subheader("One direction, up close")
dead = dead_pixels(trained_inputs(exp)).numpy()
if "direction_index" not in st.session_state or st.session_state.get("direction_for") != exp:
    st.session_state["direction_for"] = exp
    st.session_state["direction_index"] = lab.get("showcase", exp, lab.tau())
reads = tj.networks.first_layer(exp.model)
index = st.number_input("singular index i", min_value=0, max_value=n - 1, step=1, key="direction_index",
                        help="Opens on a bulk direction" + (": the one whose first-layer images put the most weight "
                                                            "on dead pixels" if reads and reads.kind == "dense"
                                                            and len(dead) else ""))
direction = lab.get("direction", exp, int(index))
st.markdown(f"σ_{index} = **{sigma[index]:.6g}** ({labels[index]}), alignment u·v = **{spec.alignment[index]:.4f}**, "
            f"training moved along it by **{spec.movement[index]:.3g}**.")
st.altair_chart(charts.block_share_chart(direction.names, direction.shares, labels[index]))
lab.fitted_chart("direction", lambda width: charts.direction_chart(direction, int(index), width=width))
st.caption(f"Drawn: {direction.block}, the block that holds most of v_{index}. The colour scale is the whole "
           f"vector's (±{direction.scale:.2g}), so a block that holds little of it stays pale.")
st.page_link("views/compare.py", label="Next: compare bulks across seeds, labels and inputs", icon="➡️")
lab.notice(spectrum_notes(sigma, labels, spec.alignment, lab.tau(), int(index),
                          dead_pixel_share(exp.model, spec.Vh[int(index)], dead), len(dead)))
