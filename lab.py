"""The app's glue: the session's experiment, one result cache shared by all sessions, progress bars."""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

import guide
import tj
from tj import defaults
from tj.limits import Limits
from tj.progress import Tracker
from tj.results import OverLimits, Results
from tj.store import BadFile, restore
from tj.store import load as load_file
from tj.validate import Validation, from_query_params, query_params, validate

DEFAULT_PRESET = "lecture"

# Streamlit runs a full garbage collection after every script run (runner.postScriptGC): with torch, Altair and
# pandas loaded, 0.12–0.16 s of every click here. What the server imports lives as long as it does, so it is
# imported now (the pages' charts, and what tracing a training step loads: dynamo, sympy) and frozen out of those
# collections (then 0.02 s); what the sessions create later is still collected.
import tj.charts  # noqa: E402,F401
import torch._inductor.config  # noqa: E402,F401
gc.freeze()


@st.cache_resource
def results() -> Results:
    """One result lookup for every session of this server: a config is computed once and shared, kept in
    memory (tiered, see Results.tier) and in the cache folder TJ_CACHE_DIR (`python -m tj precompute` fills it)."""
    return Results(folder=lambda: limits().cache_dir, limits=limits)


@st.cache_resource
def _limits(_secrets) -> Limits:
    return Limits.from_env(secrets=_secrets)


def limits() -> Limits:
    """This server's limits: environment variables TJ_*, then Streamlit secrets, then defaults for a 2.7 GB host."""
    try:
        secrets = dict(st.secrets)
    except Exception:  # no secrets.toml: environment and defaults only
        secrets = None
    return _limits(secrets)


def current() -> tj.Experiment:
    """The experiment this session is looking at; a new session starts from the URL's query parameters."""
    if "experiment" not in st.session_state:
        st.session_state["experiment"] = tj.preset(DEFAULT_PRESET)
        params = {k: st.query_params.get_all(k) for k in st.query_params}
        if set(params) - SESSION_PARAMS:
            check = from_query_params(params, tj.preset(DEFAULT_PRESET), limits())
            if check.ok:
                st.session_state["experiment"] = check.experiment
            else:
                st.session_state["url_errors"] = check.errors
    return st.session_state["experiment"]


def set_current(exp: tj.Experiment) -> None:
    st.session_state["experiment"] = exp
    sync_url()


SESSION_PARAMS = {"classroom", "tau", "step"}  # URL keys that are not the experiment


def sync_url() -> None:
    """Put the current experiment, the bulk threshold τ and the guide's step in the URL (classroom flag kept)."""
    wanted = query_params(current(), compact=True)
    if tau() != defaults.SPECTRUM.tau:
        wanted["tau"] = f"{tau():g}"
    if guide_step() is not None:
        wanted["step"] = str(guide_step())
    if classroom():
        wanted["classroom"] = "1"
    if {k: st.query_params.get(k) for k in st.query_params} != wanted:
        st.query_params.from_dict(wanted)


def classroom() -> bool:
    """Classroom mode (?classroom=1): advanced controls hidden, the lecture path kept, for the whole session."""
    if "classroom" in st.query_params:
        st.session_state["classroom"] = st.query_params.get("classroom") not in ("0", "", "false")
    return st.session_state.get("classroom", False)


def tau() -> float:
    """The session's bulk threshold τ on |σ − 1| (set on the Spectrum page, kept in the URL as tau=)."""
    if "bulk_tau" not in st.session_state:
        st.session_state["bulk_tau"] = defaults.SPECTRUM.tau
        raw = st.query_params.get("tau")
        if raw is not None:
            try:
                value = float(raw)
            except ValueError:
                value = None
            if value in defaults.SPECTRUM.taus:
                st.session_state["bulk_tau"] = value
            else:
                st.session_state["url_errors"] = [*st.session_state.get("url_errors", ()),
                    f"τ must be one of {', '.join(f'{t:g}' for t in defaults.SPECTRUM.taus)}; got {raw!r}."]
    return st.session_state["bulk_tau"]


def set_tau(value: float) -> None:
    st.session_state["bulk_tau"] = float(value)
    sync_url()


def regions(sigma) -> np.ndarray:
    """Region labels of σ under the session's bulk rule |σ − 1| < τ."""
    return tj.regions(sigma, threshold=tau())


def bulk_rule() -> str:
    return f"bulk: |σ − 1| < τ = {tau():g}"


def guide_step() -> int | None:
    """The guided lecture's step (1-based), or None when the guide is off; a link's step= turns it on."""
    if "guide_step" not in st.session_state:
        st.session_state["guide_step"] = guide.step_index(st.query_params.get("step"))
    return st.session_state["guide_step"]


def set_guide_step(step: int | None) -> None:
    st.session_state["guide_step"] = step
    st.session_state.pop("guide_revealed", None)  # every step starts with its answers hidden
    sync_url()


def guide_revealed() -> bool:
    """Whether the guided lecture's current step has been revealed (Reveal pressed since the step opened)."""
    step = guide_step()
    return step is not None and st.session_state.get("guide_revealed") == step


def reveal_guide_step() -> None:
    st.session_state["guide_revealed"] = guide_step()


def hold_answers() -> None:
    """In the guided lecture, on the step's own page, stop here until Reveal: the class answers first."""
    if st.session_state.get("guide_page") and not guide_revealed():
        st.info("🔒 The results are hidden until the class has answered: press **Reveal** in the guide above.")
        st.stop()


def notice(text: str) -> None:
    """The page's "what to notice", from its numbers: under the page, or in the guide once revealed."""
    if st.session_state.get("guide_page"):
        st.session_state["guide_notice"] = text
    else:
        st.info("**What to notice.** " + text)


def check(exp: tj.Experiment) -> Validation:
    """Is this experiment within the server's limits (memory first, then the estimated time for J)?"""
    return results().check(exp)


def preset_name(exp: tj.Experiment) -> str:
    """The preset's name, or 'custom'."""
    return next((name for name, p in tj.PRESETS.items() if p == exp), "custom")


def have(kind: str, exp: tj.Experiment, *args):
    """A result from memory or the cache folder, or None; never computes."""
    return results().have(kind, exp, *args)


def get(kind: str, exp: tj.Experiment, *args):
    """A result (tj.results.RECIPES[kind]), computed with a live progress bar when nothing has it yet; an
    experiment over this server's limits stops the page with the reasons."""
    found = results().have(kind, exp, *args)
    if found is not None:
        return found
    if results().is_computing(kind, exp, *args):
        st.info("Another session is computing this right now; it will appear here when it is done.")
    try:
        return results().get(kind, exp, *args, reporter=bar)
    except OverLimits as err:
        st.error(f"**This experiment is too big for this server.** {err}")
        st.stop()


@contextmanager
def bar(label: str, unit: str):
    """The app's progress reporter (tj.progress): a bar with elapsed and remaining time; after Streamlit's Stop,
    a note of how far it got."""
    slot = st.empty()
    slot.progress(0.0, text=f"{label}: starting")

    def draw(fraction, text):
        st.session_state["progress"] = (label, tracker.done, tracker.total)
        slot.progress(min(fraction, 1.0), text=text)

    tracker = Tracker(label, unit, draw)
    try:
        yield tracker
    except StopException:  # the Stop of Streamlit's own toolbar
        _last_words(slot, tracker.stopped())
        raise
    except BaseException:
        slot.empty()
        raise
    slot.empty()


def _last_words(slot, message: str) -> None:
    """Put a warning in place of a progress bar after Streamlit's toolbar Stop.

    After that Stop every st call of the script thread raises StopException again, so the bar would stay on
    screen, frozen; a helper thread carrying the script's context may still send this one element."""
    def say():
        slot.warning(message, icon="⏹️")

    helper = threading.Thread(target=say, daemon=True)
    add_script_run_ctx(helper, get_script_run_ctx())
    helper.start()
    helper.join(timeout=5)


def load_upload(data) -> tj.Experiment:
    """A saved .npz (CLI or download button): validated, put in the cache, made the current experiment."""
    saved = load_file(data)  # BadFile on anything malformed
    over = validate(saved.experiment, limits())
    if not over.ok:
        raise BadFile("its experiment is over this server's limits: " + over.message)
    res, spec = restore(saved)
    results().put("jacobian", saved.experiment, value=res)
    results().put("spectrum", saved.experiment, value=spec)
    set_current(saved.experiment)
    return saved.experiment


def explain_failure(err: Exception) -> str:
    """Words for a failed computation: what happened and what to change."""
    if isinstance(err, tj.Diverged):
        return (f"**Training diverged.** {err}. The learning rate is too large for this network: "
                "the loss blew up to infinity. Lower the learning rate (try 0.1 or less) or switch on the cosine schedule.")
    if isinstance(err, tj.Cancelled):
        return f"**Stopped.** {err}. Everything computed before is kept."
    if isinstance(err, BadFile):
        return f"**That file cannot be loaded:** {err}."
    if isinstance(err, tj.SVDFailed):
        return f"**The SVD failed.** {err}. Try float64 or a smaller network."
    if isinstance(err, MemoryError) or "alloc" in str(err).lower() or "memory" in str(err).lower():
        return "**Out of memory.** This network's Jacobian does not fit on this server; make it narrower."
    return f"**Something went wrong:** {type(err).__name__}: {err}"


def status_lines(exp: tj.Experiment) -> list[str]:
    """What exists for the current experiment."""
    marks = {True: "✅", False: "⬜"}
    return [f"{marks[have(kind, exp) is not None]} {label}"
            for kind, label in (("train", "trained"), ("jacobian", "Jacobian"), ("spectrum", "spectrum"))]


def lecture_guide() -> str:
    """docs/lecture.md, the printable lecture guide (offered as a download on the home page)."""
    path = Path(__file__).with_name("docs") / "lecture.md"
    return path.read_text() if path.exists() else "The lecture guide is missing from this installation."


def fitted_chart(key: str, make) -> None:
    """A chart that no screen cuts: `make(width=None)` for a wide screen and `make(width=charts.PHONE_WIDTH)`
    for a phone, each in its own container; app.py's CSS shows the one that fits (phones: up to 640 px, where
    Streamlit stacks columns)."""
    from tj.charts import PHONE_WIDTH
    with st.container(key=f"wide_{key}"):
        st.altair_chart(make(width=None))
    with st.container(key=f"phone_{key}"):
        st.altair_chart(make(width=PHONE_WIDTH))


def megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"

