"""Training Jacobian Lab: the router and the frame (sidebar: the current experiment, the bulk rule, the guided
lecture and the glossary)."""
import streamlit as st

import guide
import lab
import tj

st.set_page_config(page_title="Training Jacobian Lab", page_icon="🧭", layout="wide")
# Captions readable on a projector (Streamlit's default is 14 px at 60 % opacity), and of lab.fitted_chart's
# two drawings the one that fits the screen.
st.html("<style>[data-testid='stCaptionContainer'] {font-size: 1rem; color: #3b3d48;}"
        "@media (max-width: 640px) {[class*='st-key-wide_'] {display: none;}}"
        "@media (min-width: 641px) {[class*='st-key-phone_'] {display: none;}}</style>")

PAGES = [
    st.Page("views/home.py", title="Home", icon="🏠", default=True),
    st.Page("views/build.py", title="Build a network", icon="🧱"),
    st.Page("views/jacobian.py", title="Training Jacobian", icon="🧮"),
    st.Page("views/spectrum.py", title="Spectrum", icon="📈"),
    st.Page("views/compare.py", title="Compare", icon="🔀"),
    st.Page("views/perturb.py", title="Perturb", icon="🎯"),
    st.Page("views/why.py", title="Why a bulk?", icon="💡"),
]
page = st.navigation(PAGES)


def _pick_preset():
    lab.set_current(tj.preset(st.session_state["preset_picker"]))


def preset_picker():
    name = lab.preset_name(lab.current())
    options = list(tj.PRESETS) + ([] if name != "custom" else ["custom"])
    st.selectbox("Preset", options, index=options.index(name), key="preset_picker", on_change=_pick_preset,
                 help="lecture: small and fast for class; paper: Belrose & Scherlis's exact setup")


def experiment_panel():
    """The current experiment, the bulk rule and what exists: drawn before the page and again after it, so it
    shows what the page just computed (a page that changes the experiment reruns the app)."""
    exp = lab.current()
    name = lab.preset_name(exp)
    st.markdown(f"**Current experiment:** {name}  \n"
                f"{tj.networks.describe(exp.model)}  \n"
                f"{exp.train.optimizer.upper()} lr {exp.train.lr:g}, {exp.train.epochs} epochs, seed {exp.seed}  \n"
                f"**P = {exp.model.n_params:,}** parameters  \n"
                f"**{lab.bulk_rule()}** (set on Spectrum)")
    if lab.classroom():
        st.caption("Classroom mode: advanced controls are hidden.")
    st.markdown("  \n".join(lab.status_lines(exp)))


def go_to_step(i: int | None):
    lab.set_guide_step(i)
    if i is not None:
        st.switch_page(f"views/{guide.STEPS[i - 1].page}.py")


def guide_controls():
    """The guided lecture in the sidebar: where we are, previous / next."""
    i = lab.guide_step()
    st.markdown("**🎓 Guided lecture**")
    if i is None:
        if st.button("Start the guided lecture", key="guide_start", width="stretch"):
            go_to_step(1)
        return
    st.caption(f"Step {i} of {len(guide.STEPS)}: {guide.STEPS[i - 1].title}")
    back, forward = st.columns(2)
    if back.button("◀ Back", key="guide_prev", disabled=i == 1, width="stretch"):
        go_to_step(i - 1)
    if forward.button("Next ▶", key="guide_next", disabled=i == len(guide.STEPS), width="stretch"):
        go_to_step(i + 1)
    if st.button("End the guided lecture", key="guide_end", type="tertiary"):
        go_to_step(None)


def guide_panel():
    """The current step's instructions at the top of the page; returns the slot for its "what to notice"."""
    i = lab.guide_step()
    st.session_state["guide_page"] = False
    st.session_state.pop("guide_notice", None)
    if i is None:
        return None
    step = guide.STEPS[i - 1]
    with st.container(border=True):
        st.markdown(f"**🎓 Step {i} of {len(guide.STEPS)} · {step.title}**")
        if page.title != step.title:
            st.page_link(f"views/{step.page}.py", label=f"This step is on the {step.title} page: go there",
                         icon="➡️")
            return None
        st.session_state["guide_page"] = True
        press = " then ".join(f"**{b}**" for b in step.press) or "nothing: the page opens computed"
        st.markdown(f"**Ask first:** *{step.ask}*  \n**Press:** {press}, then **Reveal**.")
        if not lab.guide_revealed():
            if not st.button("Reveal", key="guide_reveal", type="primary",
                             help="Shows the page's results and what to notice, once the class has answered"):
                return None
            lab.reveal_guide_step()
        st.markdown(f"**What to notice.** {step.look}")
        return st.empty()


def show_notice(slot) -> None:
    """The page's own "what to notice" (set by lab.notice while it ran) in the guide's slot."""
    if slot is not None and st.session_state.get("guide_notice"):
        slot.markdown(st.session_state["guide_notice"])


def glossary():
    with st.expander("📖 Glossary"):
        st.markdown("\n".join(f"- **{term}**: {text}" for term, text in guide.GLOSSARY.items()))


lab.sync_url()
for error in st.session_state.pop("url_errors", ()):
    st.error(f"The link's settings were not used: {error}")
with st.sidebar:
    preset_picker()
    guide_controls()  # above the experiment: on a 720 px projector the guide's buttons stay above the fold
    st.divider()
    panel = st.empty()
    with panel.container():
        experiment_panel()
    glossary()
slot = guide_panel()
try:
    page.run()
finally:
    show_notice(slot)
with panel.container():
    experiment_panel()  # now including what the page computed
