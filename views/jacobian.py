"""Training Jacobian: compute J with progress, its block structure, a finite-difference check, downloads."""
import io

import streamlit as st

import lab
import tj
from tj import charts
from tj.store import save

st.title("Training Jacobian")
st.latex(r"J_{ij} = \frac{\partial\, (\theta_T)_i}{\partial\, (\theta_0)_j}")
exp = lab.current()
n = exp.model.n_params

if lab.have("jacobian", exp) is None:
    est = lab.get("estimate", exp)
    st.markdown(f"J for the current experiment is not computed yet: **{n:,} × {n:,}** "
                f"({lab.megabytes(tj.memory_estimate(exp)['jacobian'])}), about **{est['jacobian']:.0f} s** on this "
                f"server. Each column is one tangent vector pushed through all "
                f"{exp.train.epochs * (exp.data.n_train // exp.train.batch_size)} training steps.")
    stop_col, go_col = st.columns([1, 4])
    stopped = stop_col.button("Stop", key="stop_jacobian", help="Stops a running computation")
    go = go_col.button("Compute J", type="primary", key="compute_jacobian")
    if stopped:
        _, done, total = st.session_state.get("progress", ("", 0, n))
        st.warning(f"Stopped after {done:,} of {total:,} columns. Nothing else was lost; press Compute J to start again.")
    if not go:
        st.stop()
    try:
        lab.get("jacobian", exp)
    except (tj.Diverged, tj.Cancelled, MemoryError, RuntimeError) as err:
        st.error(lab.explain_failure(err))
        st.stop()
    st.rerun()  # redraw without the 'not computed yet' panel

lab.hold_answers()
res = lab.get("jacobian", exp)
relative, largest = lab.get("identity distance", exp)
c1, c2, c3 = st.columns(3)
c1.metric("computed in", f"{res.seconds:.1f} s")
c2.metric("‖J − I‖_F / ‖I‖_F", f"{relative:.4f}",
          help="How far J is from the identity matrix I (training that changes nothing), relative to I's size: "
               "0 means every nudge passes through training unchanged")
c3.metric("largest |J − I| entry", f"{largest:.3g}")
names, norms = lab.get("blocks", exp)
top = divmod(int(norms.argmax()), norms.shape[1])
block_top = f"effect on {names[top[0]]} of a nudge to {names[top[1]]}"
st.altair_chart(charts.block_heatmap(names, norms.numpy()))
st.caption("Each cell is the Frobenius norm of one block of J − I: rows are where the effect lands after training, "
           "columns where the nudge was made at initialisation. A raw P×P picture would hide this.")

st.subheader("Is it real? Check against retraining")
st.markdown("Pick a random unit direction v, retrain from θ₀ + εv and θ₀ − εv (in float64), and compare the "
            "central difference with J·v read off the matrix.")
seed = st.number_input("random direction seed", min_value=0, value=0, step=1)
if st.button("Check J·v against finite differences", key="fd_check"):
    check = lab.get("fd", exp, int(seed))
    a, b = st.columns(2)
    a.metric("relative error ‖J·v − FD‖ / ‖FD‖", f"{check.relative_error:.2e}")
    b.metric("‖J·v‖", f"{check.jv.norm().item():.4f}")
    st.caption(f"ε = {check.eps:g}. J is in {exp.dtype}, the retraining in float64, so float32 rounding of J "
               "(about 1e-6 relative per step) sets the floor.")

st.subheader("Downloads")


def npz_bytes() -> bytes:
    buf = io.BytesIO()
    save(buf, res, lab.get("spectrum", exp))
    return buf.getvalue()


st.download_button("J and its SVD (.npz)", npz_bytes, file_name=f"jacobian_{lab.preset_name(exp)}.npz",
                   mime="application/octet-stream", on_click="ignore")
st.caption("Arrays: jacobian, singular_values, U, Vh, theta0, theta_final, config (JSON). The SVD is computed "
           "on first download if the Spectrum page has not done so yet.")
st.page_link("views/spectrum.py", label="Next: its spectrum", icon="➡️")
near = relative < 0.5
lab.notice(f"‖J − I‖_F / ‖I‖_F = {relative:.3g}: J is "
        + ("close to the identity" if near else f"not close to the identity in this norm ({relative:.2g} times ‖I‖)")
        + f". Most of J − I's weight sits in a few blocks (the largest is {block_top}); "
        + ("" if near else "a few directions are stretched a lot, while most pass through almost unchanged — "
           "the Spectrum page sorts them. ")
        + "Every column is exact (forward-mode derivatives, not sampling): the finite-difference check agrees to "
        "the precision the number format allows.")
