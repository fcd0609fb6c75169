"""Training Jacobian Lab: the router and the frame (sidebar with the current experiment)."""
import streamlit as st

import lab
import tj

st.set_page_config(page_title="Training Jacobian Lab", page_icon="🧭", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon="🏠", default=True),
    st.Page("views/build.py", title="Build an MLP", icon="🧱"),
    st.Page("views/jacobian.py", title="Training Jacobian", icon="🧮"),
    st.Page("views/spectrum.py", title="Spectrum", icon="📈"),
    st.Page("views/compare.py", title="Compare", icon="🔀"),
    st.Page("views/perturb.py", title="Perturb", icon="🎯"),
    st.Page("views/why.py", title="Why a bulk?", icon="💡"),
]
page = st.navigation(PAGES)


def _pick_preset():
    lab.set_current(tj.preset(st.session_state["preset_picker"]))


def sidebar():
    exp = lab.current()
    name = lab.preset_name(exp)
    options = list(tj.PRESETS) + ([] if name != "custom" else ["custom"])
    st.selectbox("Preset", options, index=options.index(name), key="preset_picker", on_change=_pick_preset,
                 help="lecture: small and fast for class; paper: Belrose & Scherlis's exact setup")
    widths = " → ".join(map(str, exp.model.sizes))
    if tj.networks.family(exp.model) == "cnn":
        convs = ", ".join(f"{c.channels}@{c.kernel}×{c.kernel}" + (f" pool {c.pool}" if c.pool > 1 else "")
                          for c in exp.model.convs)
        widths = f"conv {convs} → {widths}"
    st.markdown(f"**Current experiment:** {name}  \n"
                f"{tj.networks.family(exp.model).upper()} {widths}, {exp.model.activation}  \n"
                f"{exp.train.optimizer.upper()} lr {exp.train.lr:g}, {exp.train.epochs} epochs, seed {exp.seed}  \n"
                f"**P = {exp.model.n_params:,}** parameters")
    return st.empty()


lab.sync_url()
for error in st.session_state.pop("url_errors", ()):
    st.error(f"The link's settings were not used: {error}")
with st.sidebar:
    status = sidebar()
    if lab.classroom():
        st.caption("Classroom mode: advanced controls are hidden.")
    status.markdown("  \n".join(lab.status_lines(lab.current())))
page.run()
status.markdown("  \n".join(lab.status_lines(lab.current())))  # now including what the page computed
