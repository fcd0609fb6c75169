"""Everything the pages show by default for one experiment, computed once and kept in a cache folder.

`python -m tj precompute --preset paper --cache-dir DIR`, then a server with TJ_CACHE_DIR=DIR opens every page
from the folder. The keys are tj.defaults.page_results (the pages' own defaults) and each is computed by its
recipe in tj.results, as the app computes it."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .defaults import page_results
from .presets import Experiment
from .progress import Reporter, silent
from .results import Results


def _difference(exp: Experiment, other: Experiment) -> str:
    """The settings in which `other` differs from `exp`, as dotted key=value."""
    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out
    a, b = flat(json.loads(exp.to_json())), flat(json.loads(other.to_json()))
    return ", ".join(f"{k}={v}" for k, v in b.items() if a.get(k) != v)


def refusal(exp: Experiment, limits=None) -> str | None:
    """Why this experiment cannot be precomputed (a dense J over the limits), or None."""
    from .validate import validate
    check = validate(exp, limits)
    if check.ok:
        return None
    return f"precompute needs a dense J and its SVD, and this experiment is over the limits: {check.message}"


def precompute(exp: Experiment, folder: str | Path, limits=None, say=print, reporter: Reporter = silent) -> dict:
    """Compute and store every page's results not stored yet; returns {'page: kind': 'stored' | 'computed in N s'
    | 'skipped: …'} and the total."""
    reason = refusal(exp, limits)
    if reason:
        raise ValueError(reason)
    results = Results(folder=folder, limits=limits)
    pages = page_results(exp, limits)
    total = sum(map(len, pages.values()))
    report, done, start = {}, 0, time.perf_counter()
    for page, keys in pages.items():
        for key in keys:
            done += 1
            label = page
            try:
                kind, e, *args = key(results) if callable(key) else key
                label = f"{page}: {kind}" + (f" ({_difference(exp, e)})" if e != exp else "")
                if results.have(kind, e, *args) is not None:
                    report[label] = "stored"
                    continue
                say(f"[{done}/{total}] {label}")
                t = time.perf_counter()
                results.get(kind, e, *args, reporter=reporter)
                report[label] = f"computed in {time.perf_counter() - t:.1f} s"
            except (ValueError, NotImplementedError) as err:  # a page that does not apply to this network family
                report[label] = f"skipped: {err}"
        results.clear()  # one page's results at a time in memory
    report["total"] = f"{time.perf_counter() - start:.1f} s"
    return report
