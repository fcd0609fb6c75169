"""AppTest helpers shared by the per-family page tests: open a page on an experiment, check a run, read a metric."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

import tj

APP = str(Path(__file__).resolve().parents[1] / "app.py")
# The lecture and cnn presets' networks and data on fewer training steps (4 epochs of 400 images, not 8 of 1,600),
# so that their precompute stores take a fraction of the presets' time; the tests that walk every stored page use them.
QUICK = {"data.n_train": 400, "train.epochs": 4}
QUICK_LECTURE = tj.preset("lecture").replace(**QUICK)
QUICK_CNN = tj.preset("cnn").replace(**QUICK)


def ok(at: AppTest, errors: bool = True) -> AppTest:
    """The run raised nothing (and, with `errors`, showed no st.error)."""
    assert not at.exception, [e.value for e in at.exception]
    if errors:
        assert not at.error, [e.value for e in at.error]
    return at


def open_page(page, exp, errors: bool = True) -> AppTest:
    """The app on `exp`, switched to views/{page}.py (None: Home), after one run."""
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.session_state["experiment"] = exp
    if page:
        at.switch_page(f"views/{page}.py")
    return ok(at.run(), errors)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)
