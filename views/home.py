"""Home: what the training Jacobian is, the lecture path, and how long each step takes."""
import pandas as pd
import streamlit as st

import lab
import tj

st.title("Training Jacobian Lab")
st.markdown(
    "Train a small network on the 8×8 digits, then ask: **if I had started from slightly different "
    "weights, where would training have ended?** The answer is a matrix, the *training Jacobian*:")
st.latex(r"J \;=\; \frac{\partial \theta_T}{\partial \theta_0} \in \mathbb{R}^{P\times P},"
         r"\qquad J = U\,\Sigma\,V^\top")
st.markdown(
    "Column *j* of J says how the trained parameters θ_T move when the *j*-th initial parameter is nudged. "
    "Its singular value decomposition sorts all directions of the initialisation: a right singular vector "
    "v_i is a direction you nudge at the start, u_i is where that nudge ends up, and σ_i is how much it "
    "was stretched. Belrose & Scherlis (2024) found three regions:")
st.markdown(
    "- **chaotic** (σ ≫ 1): small changes at the start are blown up by training;\n"
    "- **bulk** (σ ≈ 1, u_i ≈ v_i): training passes the nudge through *unchanged* — a huge part of parameter space "
    "that gradient descent never touches;\n"
    "- **stable** (σ < 1): training forgets the nudge.")
st.markdown("For plain gradient descent with step sizes η_t and loss Hessians H_t the chain rule gives")
st.latex(r"J = \prod_{t=T-1}^{0} \left(I - \eta_t H_t\right)")
st.markdown("so directions the loss never curves along keep σ = 1. We compute J exactly with forward-mode "
            "differentiation: P tangent vectors pushed through every step of training, momentum included.")

st.subheader("The lecture path")
st.page_link("views/build.py", label="1. Build a network — the data, an MLP or a CNN, train it", icon="🧱")
st.page_link("views/jacobian.py", label="2. Training Jacobian — compute J, check it against finite differences", icon="🧮")
st.page_link("views/spectrum.py", label="3. Spectrum — the three regions, alignment, and what bulk directions look like", icon="📈")
st.page_link("views/compare.py", label="4. Compare — seeds, shuffled labels, noise inputs: whose bulk is it?", icon="🔀")
st.page_link("views/perturb.py", label="5. Perturb — in and out of distribution, retraining, subspaces", icon="🎯")
st.page_link("views/why.py", label="6. Why a bulk? — how it forms, and the directions training cannot touch", icon="💡")
st.markdown("**Teaching a class?** Press **Start the guided lecture** in the sidebar: one step per part of the "
            "50-minute plan, each naming the page, what to press, the question to ask before revealing, and what "
            "to notice. Add `?classroom=1` to the URL for a projector.")
st.download_button("The printable lecture guide (.md)", lab.lecture_guide(), "lecture.md", "text/markdown",
                   on_click="ignore")
st.page_link("views/build.py", label="Next: build and train a network", icon="➡️")

st.subheader("How long each step takes on this server")
rows = []
for name, exp in tj.PRESETS.items():
    est = lab.get("estimate", exp)
    res, spec = lab.have("jacobian", exp), lab.have("spectrum", exp)
    rows.append({
        "preset": name, "P": f"{exp.model.n_params:,}", "steps": exp.train.epochs * (exp.data.n_train // exp.train.batch_size),
        "train (s)": f"{est['train']:.1f} (estimate)",
        "Jacobian (s)": f"{res.seconds:.1f} (measured)" if res else f"{est['jacobian']:.0f} (estimate)",
        "SVD (s)": f"{spec.seconds:.1f} (measured)" if spec else f"{est['svd']:.0f} (estimate)",
        "J size": lab.megabytes(exp.model.n_params ** 2 * exp.torch_dtype.itemsize),
    })
st.dataframe(pd.DataFrame(rows), hide_index=True)
st.caption("Estimates come from a short timed probe of the same computation on this machine; "
           "measured times replace them once a result exists.")
st.info("**What to notice.** J is square: P × P. For the paper's 4,810-parameter network that is 23 million "
        "numbers, each one the answer to 'what if this initial weight had been different?'. "
        "Start with the lecture preset: everything takes seconds.")
