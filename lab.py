"""The app's glue: the session's experiment, one result cache shared by all sessions, progress bars."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

import guide
import tj
import tj.compare
import tj.perturb
import tj.precompute as recipes
import tj.why
from tj import defaults
from tj.cache import ResultCache
from tj.diskcache import DiskCache
from tj.limits import Limits
from tj.jacobian import block_norms, estimate_seconds, finite_difference_check
from tj.jacobian import identity_distance as distance_from_identity
from tj.jstore import StoreError, to_cache
from tj.spectrum import direction_by_block
from tj.spectrum import showcase_direction as showcase_rule
from tj.store import BadFile, cache_path, load_cached, restore, save_cached
from tj.store import load as load_file
from tj.validate import Validation, from_query_params, query_params, validate

DEFAULT_PRESET = "lecture"


def cache_tier(key) -> int:
    """Eviction tier of a cached result: training runs and time estimates (tiny, every page needs them) are
    kept longest, then J and its spectrum of the presets, then everything else."""
    kind, exp = key[0], key[1] if len(key) > 1 else None
    if kind in ("train", "estimate"):
        return 0
    if kind in ("jacobian", "spectrum") and exp in tj.PRESETS.values():
        return 1
    return 2


@st.cache_resource
def results() -> ResultCache:
    """One cache for every session of this server: a config is computed once and shared (tiered, see cache_tier)."""
    return ResultCache(max_entries=96, max_bytes=1_500_000_000, tier=cache_tier)


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
    sync_url()


def check(exp: tj.Experiment, with_time: bool = True) -> Validation:
    """Is this experiment within the server's limits (memory first, then the estimated time for J)?"""
    result = validate(exp, limits())
    if not result.ok or not with_time:
        return result
    return validate(exp, limits(), seconds=estimates(exp))


def refuse_if_over_limits(exp: tj.Experiment) -> None:
    """Stop the page with the reasons when the experiment is over this server's limits."""
    result = check(exp)
    if not result.ok:
        st.error("**This experiment is too big for this server.** " + result.message)
        st.stop()


def preset_name(exp: tj.Experiment) -> str:
    """The preset's name, or 'custom'."""
    return next((name for name, p in tj.PRESETS.items() if p == exp), "custom")


def trained(exp: tj.Experiment) -> tj.TrainResult:
    """θ_T and the per-epoch metrics (fast: no progress bar needed)."""
    return stored(("train", exp), lambda: recipes.trained(exp))


def estimates(exp: tj.Experiment) -> dict[str, float]:
    """Seconds for training, J and SVD on this server, from a short timed probe."""
    return stored(("estimate", exp), lambda: estimate_seconds(exp))


def disk() -> DiskCache | None:
    """The folder of stored results (TJ_CACHE_DIR; `python -m tj precompute` fills it), or None."""
    folder = limits().cache_dir
    return DiskCache(folder) if folder else None


class _NotStored(Exception):
    pass


def _load(key):
    """Read a stored result into the shared memory cache (once, whichever session asks first); None if absent."""
    store = disk()
    if store is None or key[0] in ("jacobian", "spectrum") or not store.has(key):
        return None

    def read():
        value = store.get(key)
        if value is None:
            raise _NotStored
        return value
    try:
        return results().get_or_compute(key, read)
    except _NotStored:
        return None


def stored(key, compute):
    """The memory cache, else the disk store, else compute (once across sessions) and store it on disk too."""
    found = results().peek(key)
    if found is not None:
        return found
    found = _load(key)
    if found is not None:
        return found

    def compute_and_store():
        value = compute()
        store = disk()
        if store is not None:
            try:
                store.put(key, value)
            except (OSError, TypeError):  # a read-only or full disk must not cost the user the result
                pass
        return value
    return results().get_or_compute(key, compute_and_store)


def have(kind: str, exp: tj.Experiment, *extra):
    """A cached result (memory, or the disk store) or None; never computes."""
    found = results().peek((kind, exp, *extra))
    if found is None and kind in ("jacobian", "spectrum") and not extra and _from_disk(exp):
        found = results().peek((kind, exp))
    if found is None:
        found = _load((kind, exp, *extra))
    return found


def cached(key, compute, label: str, unit: str = "steps"):
    """stored() with a live progress bar: compute(progress) reports (done, total)."""
    value = results().peek(key)
    if value is None:
        value = _load(key)
    if value is not None:
        return value
    if results().is_computing(key):
        st.info(f"Another session is computing this ({label}) right now; it will appear here when it is done.")
    slot = st.empty()
    slot.progress(0.0, text=f"{label}: starting")
    start = time.perf_counter()
    done_of = [0, 0]

    def progress(done, total):
        elapsed = time.perf_counter() - start
        done_of[:] = done, total
        left = f"~{elapsed / done * (total - done):.0f} s left" if done else "estimating time left"
        st.session_state["progress"] = (label, done, total)
        slot.progress(done / total, text=f"{label}: {done:,} / {total:,} {unit} · {elapsed:.1f} s elapsed · {left}")
        return False

    try:
        value = stored(key, lambda: compute(progress))
    except StopException:  # the Stop of Streamlit's own toolbar
        _last_words(slot, f"Stopped after {done_of[0]:,} of {done_of[1]:,} {unit} ({label}), after "
                          f"{time.perf_counter() - start:.1f} s. Nothing else was lost; run it again to start over.")
        raise
    except BaseException:
        slot.empty()
        raise
    slot.empty()
    return value


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


_UNUSABLE: set = set()  # disk-cache files found bad once, by (path, mtime): not re-read on every rerun
_READING: dict = {}     # one lock per experiment: sessions arriving together read its J file once, not each
_READING_LOCK = threading.Lock()


def _from_disk(exp: tj.Experiment) -> bool:
    """Fill the memory cache from the disk cache (precomputed with `python -m tj jacobian --cache-dir`)."""
    folder = limits().cache_dir
    if not folder:
        return False
    path = cache_path(folder, exp)
    if not path.exists() and not _from_store(folder, exp):
        return False
    with _READING_LOCK:
        reading = _READING.setdefault(exp, threading.Lock())
    with reading:
        if results().peek(("jacobian", exp)) is not None and results().peek(("spectrum", exp)) is not None:
            return True  # another session read it while this one waited
        stamp = (path, path.stat().st_mtime_ns)
        if stamp in _UNUSABLE:
            return False
        found = load_cached(folder, exp)
        if found is None:
            _UNUSABLE.add(stamp)
            return False
        results().put(("jacobian", exp), found[0])
        results().put(("spectrum", exp), found[1])
        return True


def _from_store(folder, exp: tj.Experiment) -> bool:
    """A finished J store of this experiment in the cache folder (`python -m tj jacobian --store`) becomes its .npz."""
    if not any(Path(folder).glob("*.zarr")):
        return False
    with st.spinner("Found a finished Jacobian store of this experiment in the cache folder: computing its SVD once…"):
        try:
            return to_cache(folder, exp) is not None
        except (OSError, StoreError):
            return False


def jacobian(exp: tj.Experiment) -> tj.JacobianResult:
    """J with a live progress bar (columns, elapsed, remaining); cached by config, in memory and on disk."""
    if have("jacobian", exp) is None and not _from_disk(exp):
        refuse_if_over_limits(exp)
    return cached(("jacobian", exp), lambda p: tj.training_jacobian(exp, progress=p),
                  f"Training Jacobian ({exp.model.n_params:,} columns)", "columns")


def load_upload(data) -> tj.Experiment:
    """A saved .npz (CLI or download button): validated, put in the cache, made the current experiment."""
    saved = load_file(data)  # BadFile on anything malformed
    over = validate(saved.experiment, limits())
    if not over.ok:
        raise BadFile("its experiment is over this server's limits: " + over.message)
    res, spec = restore(saved)
    results().put(("jacobian", saved.experiment), res)
    results().put(("spectrum", saved.experiment), spec)
    set_current(saved.experiment)
    return saved.experiment


def spectrum(exp: tj.Experiment) -> tj.Spectrum:
    """The SVD of J (which must be computed already)."""
    def compute():
        res = jacobian(exp)
        spec = tj.spectrum(res.jacobian, res.theta0, res.theta_final)
        try:
            save_cached(limits().cache_dir, res, spec)
        except OSError:  # a read-only or full disk must not cost the user the result
            pass
        return spec
    if have("spectrum", exp) is None:
        with st.spinner(f"Singular value decomposition of J in float64 (about {estimates(exp)['svd']:.0f} s)…"):
            return results().get_or_compute(("spectrum", exp), compute)
    return results().get_or_compute(("spectrum", exp), compute)


def bulk_of(exp: tj.Experiment, label: str):
    """(σ, Vᵀ in float32) of a variant: its J is computed, decomposed and dropped to save memory."""
    full = have("spectrum", exp)
    if full is not None:
        return full.singular_values, full.Vh
    if have("bulk", exp) is None:  # stored results need no time estimate
        refuse_if_over_limits(exp)

    return cached(("bulk", exp), lambda p: recipes.bulk_of(exp, p), f"{label}: J and its SVD", "columns")


def comparison(exp: tj.Experiment, n_seeds: int) -> dict:
    """(σ, Vᵀ) of the experiment and its variants (shuffled labels, noise inputs, other seeds), by name."""
    runs = {"main": exp, **tj.compare.variants(exp, n_seeds)}
    return {name: bulk_of(e, name) for name, e in runs.items()}


def overlap_sweeps(exp: tj.Experiment, n_seeds: int, ks: tuple) -> dict:
    """Bulk overlap of main with each variant over k: SVDs up to (P/2)², so held in the cache, not redone per rerun."""
    spectra = comparison(exp, n_seeds)
    return stored(("sweeps", exp, n_seeds, ks), lambda: recipes.sweeps(spectra, ks))


def overlap_matrix(exp: tj.Experiment, n_seeds: int, k: int):
    spectra = comparison(exp, n_seeds)
    return stored(("overlap matrix", exp, n_seeds, k), lambda: tj.compare.overlap_matrix(spectra, k))


def null_space_overlap(exp: tj.Experiment, which: str, ks: tuple) -> list[float]:
    """Overlap of the parameter-function Jacobian's k-dimensional null space with the rank-k bulk, over k."""
    fj, main = function_jacobian(exp, which), comparison(exp, 0)["main"]
    return stored(("null overlap", exp, which, ks), lambda: recipes.null_overlaps(fj, main, ks))


def function_jacobian(exp: tj.Experiment, which: str):
    """The parameter-function Jacobian at θ_0 on an input set, decomposed."""
    def compute(progress):
        progress(0, 1)
        out = recipes.function_jacobian(exp, which)
        progress(1, 1)
        return out
    return cached(("fjac", exp, which), compute, f"parameter-function Jacobian on {which} inputs", "parts")


def output_effect(exp: tj.Experiment, alpha: float):
    res, spec = jacobian(exp), spectrum(exp)
    return cached(("kl", exp, alpha), lambda p: tj.perturb.output_effect(exp, res.theta_final, spec.Vh, alpha, p),
                  "output change along every v_i", "input sets")


def bulk_direction(exp: tj.Experiment) -> tj.perturb.BulkDirection:
    """Perturb's default: σ closest to 1 outside the exactly untouched subspace."""
    spec = spectrum(exp)
    return stored(("bulk direction", exp), lambda: recipes.bulk_direction(exp, spec))


def spread(exp: tj.Experiment) -> tj.perturb.Spread:
    spec = spectrum(exp)
    return cached(("spread", exp, tau()), lambda p: recipes.spread(exp, spec, p, tau()),
                  "retraining along several bulk directions", "retrainings")


def linearity(exp: tj.Experiment, index: int, eps: tuple):
    spec = spectrum(exp)
    return cached(("linearity", exp, index, eps), lambda p: tj.perturb.linearity(exp, spec, index, eps, progress=p),
                  f"retraining from θ_0 + ε v_{index}", "retrainings")


def subspace(exp: tj.Experiment, ks: tuple):
    spec = spectrum(exp)
    return cached(("subspace", exp, ks), lambda p: tj.perturb.subspace_training(exp, spec, ks, progress=p),
                  "restricted trainings", "runs")


def evolution_steps(exp: tj.Experiment) -> tuple[int, ...]:
    """Checkpoints for the spectrum through training: every epoch, or 4 epochs for big nets (P² bytes each)."""
    return recipes.evolution_steps(exp)


def evolution(exp: tj.Experiment):
    """σ at every checkpoint from one forward-mode run."""
    refuse_if_over_limits(exp)
    steps = evolution_steps(exp)
    return cached(("evolution", exp, steps), lambda p: tj.why.spectra_through_training(exp, steps, p),
                  "J at every checkpoint", "columns")


def exact_check(exp: tj.Experiment):
    """Predicted untouched directions against a float64 J of the same run: (Untouched, σ, Vᵀ rows with σ = 1)."""
    exp64 = exp.replace(dtype="float64")
    if have("exact", exp64) is None:
        refuse_if_over_limits(exp64)

    return cached(("exact", exp64), lambda p: recipes.exact_check(exp64, p), "float64 J for the exact count", "columns")


def gd_prediction(exp: tj.Experiment, segments: int):
    return cached(("gd", exp, segments), lambda p: tj.why.gd_prediction(exp, segments, progress=p),
                  f"J, then {segments} Hessians along the run", "columns")


def gd_seconds(exp: tj.Experiment, segments: int) -> float:
    """Estimated seconds for gd_prediction: J and its SVD, then `segments` Hessians and their eigenvalues."""
    est = estimates(exp)
    hessian = results().get_or_compute(("estimate", exp, "hessian"), lambda: tj.why.hessian_seconds(exp))
    return est["jacobian"] + est["svd"] + segments * (hessian + est["svd"])


def fd_check(exp: tj.Experiment, seed: int):
    res = jacobian(exp)
    return stored(("fd", exp, seed), lambda: finite_difference_check(exp, res.jacobian, seed=seed))


def identity_distance(exp: tj.Experiment) -> tuple[float, float]:
    """‖J − I‖_F / ‖I‖_F and the largest |J − I| entry, once per server."""
    res = jacobian(exp)
    return results().get_or_compute(("identity distance", exp), lambda: distance_from_identity(res.jacobian))


def showcase_direction(exp: tj.Experiment, dead) -> int:
    """The bulk index Spectrum opens on (tj.spectrum.showcase_direction), once per server and τ."""
    spec = spectrum(exp)
    return results().get_or_compute(("showcase", exp, tau()), lambda: showcase_rule(
        exp.model, spec.singular_values, spec.Vh, dead, regions(spec.singular_values) == "bulk"))


def structure(exp: tj.Experiment):
    res = jacobian(exp)
    return stored(("blocks", exp), lambda: block_norms(exp.model, res.jacobian))


def direction(exp: tj.Experiment, index: int):
    return direction_by_block(exp.model, spectrum(exp).Vh[index])


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


def megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"

