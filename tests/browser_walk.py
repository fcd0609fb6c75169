"""The lecture path in a real browser: start the app with `streamlit run`, click through it with Playwright
driving Debian's chromium, check every page, save a screenshot of each.

Shared by tests/test_browser.py (pytest) and scripts/screenshots.py (docs/screenshots/*.png).
STEPS is the whole lecture path of docs/lecture.md, in the order the guide tells a class to click: keep the two
in step (same pages, same buttons). To walk another page or press another button, edit STEPS; nothing else needs
to change.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
P_LECTURE = 1_210  # parameters of the lecture preset: 64·16 + 16 + 16·10 + 10
VIEWPORT = {"width": 1280, "height": 720}  # a projector


@dataclass(frozen=True)
class Step:
    page: str                                  # the sidebar navigation link's title
    click: str | tuple[str, ...] | None = None  # button(s) to press once the page has loaded (exact labels), in
                                               # order; after each, its script run ends and its charts draw
    texts: tuple[str, ...] = ()                # must be visible on the page afterwards
    min_charts: int = 0                        # at least this many rendered Vega-Lite charts
    metrics: dict[str, str] = field(default_factory=dict)   # metric label -> exact displayed value
    check: Callable | None = None              # check(values: {metric label: value}) for anything else
    on_page: Callable | None = None            # on_page(page, where) for what the page shows beyond its metrics
    before: tuple[str, ...] = ()               # regexes, each visible before the first click: a wait's estimate
    gone: tuple[str, ...] = ()                 # not visible afterwards: what the clicks replaced
    notice: Callable | None = None             # notice(text of the guide's "what to notice", metrics): its
                                               # statements against the page's numbers (guided walks only)
    timeout_s: float = 120                     # for the click's script run and the texts to appear
    name: str = ""                             # screenshot file stem; default: from the page title

    @property
    def buttons(self) -> tuple[str, ...]:
        return () if self.click is None else (self.click,) if isinstance(self.click, str) else tuple(self.click)


def _integer(metrics: dict[str, str], label: str) -> int:
    value = metrics[label]
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", value), f"metric {label!r} is not an integer: {value!r}"
    return int(value.replace(",", ""))


def region_counts_sum_to_p(metrics: dict[str, str]) -> None:
    counts = {k: metrics[k] for k in ("chaotic", "bulk", "stable")}
    total = sum(_integer(metrics, label) for label in counts)
    assert total == P_LECTURE, f"region counts {counts} sum to {total}, not P = {P_LECTURE:,}"


def predicted_equals_measured(metrics: dict[str, str]) -> None:
    """Why a bulk?: every direction predicted untouched from the data alone is measured with |σ−1| < 1e-9, and
    the causes (dead pixels or the first layer's null space, the softmax shift, own symmetries) add up to it."""
    predicted, measured = _integer(metrics, "predicted in total"), _integer(metrics, "measured |σ−1| < 1e-9")
    assert predicted == measured, f"predicted {predicted:,} untouched directions, measured {measured:,}"
    causes = [label for label in metrics if label.endswith("directions") or label.endswith("symmetries")]
    parts = sum(_integer(metrics, label) for label in causes)
    assert parts == predicted, f"{' + '.join(causes)} = {parts:,}, not the predicted total {predicted:,}"


def _number(metrics: dict[str, str], label: str) -> float:
    return float(metrics[label].replace(",", ""))


def notice_says_the_jacobians_distance(text: str, metrics: dict[str, str]) -> None:
    shown = _number(metrics, "‖J − I‖_F / ‖I‖_F")
    said = float(re.search(r"‖J − I‖_F / ‖I‖_F = ([\d.e+-]+)", text).group(1))
    assert abs(said - shown) <= 5e-3 * abs(shown), f"the notice says {said}, the metric {shown}"


def notice_counts_the_bulk(text: str, metrics: dict[str, str]) -> None:
    assert f"{metrics['bulk']} of " in text, f"bulk {metrics['bulk']} is not what the notice counts: {text[:200]!r}"


def notice_counts_the_untouched(text: str, metrics: dict[str, str]) -> None:
    said = re.search(r"([\d,]+) of the [\d,]+ directions are predicted untouched", text)
    assert said and said.group(1) == metrics["predicted in total"], f"{said and said.group(1)} against {metrics}"


def _named(listed: str) -> list[str]:
    """'Shuffled labels, noise inputs and seed 1' → ['shuffled labels', 'noise inputs', 'seed 1']."""
    return [name.strip().lower() for name in re.split(r",| and ", listed) if name.strip()]


def notice_compare_follows_its_overlaps(text: str, metrics: dict[str, str]) -> None:
    """Compare's conclusion follows from the overlaps it states: what it says keeps a bulk lies above random and
    above what it says stays close to random, and 'set by the inputs' only when noise inputs do not keep it."""
    stated = re.search(r"at k = [\d,]+ \(two random subspaces: ([\d.]+)\): (.*?)\.(?: |$)", text)
    assert stated, f"no overlaps stated: {text[:300]!r}"
    random = float(stated.group(1))
    overlaps = {name.lower(): float(v) for name, v in (item.rsplit(" ", 1) for item in stated.group(2).split(", "))}
    kept = re.search(r"(?:^|\. )([^.]*?) keeps? a bulk far above random", text)
    lost = re.search(r"(?:^|\. )([^.]*?) stays? close to random", text)
    kept, lost = (_named(m.group(1)) if m else [] for m in (kept, lost))
    assert sorted(kept + lost) == sorted(overlaps), f"{kept} + {lost} against {overlaps}"
    assert all(overlaps[k] > random for k in kept), f"kept {kept} at or below random {random}: {overlaps}"
    assert not kept or not lost or min(overlaps[k] for k in kept) > max(overlaps[k] for k in lost), overlaps
    if "set by the inputs" in text:
        assert "shuffled labels" in kept and "noise inputs" in lost, text
    if "noise inputs" in kept:
        assert "noise inputs do not" not in text, text


def notice_perturb_follows_its_medians(text: str, metrics: dict[str, str]) -> None:
    """Perturb says the bulk is invisible only in distribution exactly when the KL ratios it states say so."""
    from tj.notes import IN_DISTRIBUTION
    said = re.search(r"median max-KL (?:of )?[\d.e+-]+ nats\)?, (.*?): (the bulk is invisible only in distribution|"
                     r"this run does not show)", text)
    assert said, f"no KL ratios stated: {text[:300]!r}"
    ratios = [float(r) for r in re.findall(r"images (\d+)× as much", said.group(1))]
    assert ratios, said.group(0)
    if said.group(2).startswith("the bulk"):  # ratios are printed rounded to integers
        assert min(ratios) >= IN_DISTRIBUTION - 0.5, said.group(0)
    else:
        assert min(ratios) < IN_DISTRIBUTION + 0.5, said.group(0)


def see_it_opens_where_the_test_predictions_hold(page, where: str) -> None:
    """Perturb's 'See it' opens at the step its caption names, picked by the rule from the class-change curves."""
    said = page.get_by_text("the largest step at which the test predictions still hold").first.inner_text()
    s = float(re.search(r"opens at s = ([\d.e+-]+), the largest step", said).group(1))
    shown = float(field(page, "size of the step s").input_value())
    assert abs(shown - s) <= 5e-3 * abs(s), f"{where}: 'See it' opens at s = {shown}, its caption says {s}"


def unseen(page, patterns) -> list[str]:
    """The regexes that no visible text on the page matches."""
    return [p for p in patterns if not page.get_by_text(re.compile(p)).filter(visible=True).count()]


# What a page says before a wait of more than a few seconds, on every family: what it computes and how long.
ESTIMATES = {"compare": r"Not computed yet: .* about \d+ s on this server",
             "why": (r"keeping J at every checkpoint.* about \d+ s on this server",
                     r"float64 .*: about \d+ s on this server")}

# The lecture path on the default (lecture) preset, in order: each step starts where the previous one left off.
# docs/lecture.md tells a class to click exactly these pages and buttons; change both together.
STEPS: list[Step] = [
    Step("Build a network", click="Train", texts=("Final test loss",), min_charts=3,
         metrics={"parameters P": f"{P_LECTURE:,}"}, name="build"),
    Step("Training Jacobian", click="Compute J", texts=("computed in",), min_charts=1, name="jacobian"),
    Step("Spectrum", texts=("chaotic", "bulk", "stable"), min_charts=7, check=region_counts_sum_to_p,
         name="spectrum"),
    # 4 more Jacobians (shuffled labels, noise inputs, seeds 1 and 2), then the parameter-function Jacobian.
    Step("Compare", click=("Compute the variants", "Compute it"), min_charts=6,
         texts=("Spectra side by side", "Bulk overlap", "Null space vs bulk", "outputs (10 per input)"),
         before=(ESTIMATES["compare"],), gone=("Not computed yet",), name="compare", timeout_s=600),
    # The spectrum is cached by now, so the page opens on the output-effect panel; retrain along the default
    # direction (nothing set), then train inside subspaces.
    Step("Perturb", click=("Retrain", "Train in subspaces"), min_charts=4,
         texts=("Median over each region", "exactly untouched directions"), name="perturb", timeout_s=600),
    Step("Why a bulk?", click=("Compute J through training", "Count them in a float64 J"), min_charts=5,
         texts=("Region counts by checkpoint", "Share of the predicted subspace"),
         metrics={"predicted in total": "65", "measured |σ−1| < 1e-9": "65"}, check=predicted_equals_measured,
         before=ESTIMATES["why"], name="why", timeout_s=600),
]

# --- selectors (Streamlit 1.67's DOM) -------------------------------------------------------------------
APP_IDLE = ('[data-testid="stApp"][data-test-script-state="notRunning"]'
            '[data-test-connection-state="CONNECTED"]')
STATUS_WIDGET = '[data-testid="stStatusWidget"]'          # "Running..." in the top right; gone when idle
NAV_LINK = '[data-testid="stSidebarNav"] [data-testid="stSidebarNavLink"]'
CHART = '.vega-embed, [data-testid="stVegaLiteChart"]'
GUIDE = '[data-testid="stMain"]'  # in guided mode the page's own "what to notice" is only in the guide
DATA_METRICS = {"training images", "test images", "pixels per image"}  # Build's description of the data set, not an answer
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'  # st.exception / st.error
METRIC, METRIC_LABEL, METRIC_VALUE = ('[data-testid="stMetric"]', '[data-testid="stMetricLabel"]',
                                      '[data-testid="stMetricValue"]')
SCROLLER = '[data-testid="stMain"]'                       # the element that scrolls, not the document
SVG_MARKS = "svg g.role-mark path, svg g.role-mark rect, svg g.role-mark symbol"  # data marks, not axes

# One entry per outermost chart container: what it rendered.
_CHARTS_JS = """sel => {
  const all = Array.from(document.querySelectorAll(sel));
  const outer = all.filter(e => !all.some(o => o !== e && o.contains(e)))
    .filter(e => e.getClientRects().length);  // not lab.fitted_chart's copy for the other screen
  return outer.map(e => {
    const canvases = Array.from(e.querySelectorAll('canvas'));
    return {
      canvas: canvases.filter(c => c.width > 0 && c.height > 0).length,
      svg: e.querySelectorAll('svg').length,
      marks: e.querySelectorAll('%s').length,
      text: e.innerText.slice(0, 200),
    };
  });
}""" % SVG_MARKS


# Every chart container, drawn or not (for a failure's message).
_ALL_CHARTS_JS = """sel => Array.from(document.querySelectorAll(sel)).map(e =>
  `${e.className}: rects ${e.getClientRects().length}, stale ${!!e.closest('[data-stale="true"]')}, ` +
  `${(e.innerText || '').slice(0, 40)}`)"""


# Layout at the projector's size, for every chart on the page: a list of what is wrong (empty when all is well).
_LAYOUT_JS = r"""() => {
  const problems = [];
  const visible = el => {
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    const paint = [cs.fill, cs.stroke].some(c => c && c !== 'none' && !/rgba\(.*,\s*0\)$/.test(c) && c !== 'transparent');
    return (r.width > 0 || r.height > 0) && paint && parseFloat(cs.opacity || '1') > 0 &&
      parseFloat(cs.fillOpacity || '1') + parseFloat(cs.strokeOpacity || '1') > 0;
  };
  const colorsOf = el => { const cs = getComputedStyle(el); return [cs.fill, cs.stroke]; };
  document.querySelectorAll('.vega-embed').forEach((chart, n) => {
    const svg = chart.querySelector('svg');
    if (!svg || !chart.getClientRects().length) return;  // not drawn on this screen (lab.fitted_chart's other one)
    const title = (chart.querySelector('.role-title-text') || {}).textContent || `chart ${n}`;
    const box = chart.closest('[data-testid="stElementContainer"]') || chart.parentElement;
    const column = chart.closest('[data-testid="stColumn"]') || document.querySelector('[data-testid="stMainBlockContainer"]') || box;
    const col = column.getBoundingClientRect();
    const right = Math.min(col.right, box.getBoundingClientRect().right) + 1;
    chart.querySelectorAll('g.role-legend, g.role-column-header, g.role-row-header, g.role-header').forEach(g => {
      const r = g.getBoundingClientRect();
      if (r.width && r.right > right) problems.push(`${title}: a legend or facet header ends ${Math.round(r.right - right)} px past its column`);
    });
    const sr = svg.getBoundingClientRect();
    if (sr.right > right + 2) problems.push(`${title}: the chart is ${Math.round(sr.right - right)} px wider than its column`);
    const marks = Array.from(chart.querySelectorAll('g.role-mark path, g.role-mark symbol, g.role-mark rect, g.role-mark line'));
    const markColors = new Set(marks.filter(visible).flatMap(colorsOf));
    chart.querySelectorAll('g.role-legend').forEach(legend => {
      if (legend.querySelector('.role-legend-gradient')) return;
      const labels = Array.from(legend.querySelectorAll('.role-legend-label text'));
      const symbols = Array.from(legend.querySelectorAll('.role-legend-symbol path'));
      labels.forEach((label, i) => {
        const sym = symbols[i];
        if (!sym || !visible(sym)) { problems.push(`${title}: legend entry "${label.textContent}" has no visible symbol`); return; }
        if (!colorsOf(sym).some(c => markColors.has(c))) problems.push(`${title}: legend entry "${label.textContent}" has no visible marks in the chart`);
        if (label.textContent.endsWith('…')) problems.push(`${title}: legend label cut: "${label.textContent}"`);
      });
    });
    chart.querySelectorAll('.role-title-text').forEach(t => {
      if (!t.textContent.trim()) return;
      if (t.textContent.endsWith('…')) problems.push(`${title}: title cut: "${t.textContent}"`);
      t.scrollIntoView({block: 'center'});
      const r = t.getBoundingClientRect(), top = box.getBoundingClientRect().top;
      if (r.top < top - 0.5) problems.push(`"${t.textContent}": title starts ${Math.round(top - r.top)} px above its container`);
      for (const fy of [0.2, 0.5, 0.8]) {
        const hit = document.elementFromPoint(r.left + Math.min(4, r.width / 2), r.top + fy * r.height);
        if (!hit || !chart.contains(hit)) { problems.push(`"${t.textContent}": title covered or clipped (${hit ? hit.tagName + '.' + hit.className : 'nothing'} on top)`); break; }
      }
    });
  });
  return problems;
}"""


def layout_problems(page) -> list[str]:
    """Charts wider than their column, legends or facet headers past it, legend entries without visible marks,
    titles clipped, covered or cut (13's item 6; 14's point 5)."""
    return page.evaluate(_LAYOUT_JS)


# A phone's column and a projector's captions: what is wrong (empty when all is well).
_READABLE_JS = r"""phone => {
  const problems = [], main = document.querySelector('[data-testid="stMain"]');
  if (phone && main.scrollWidth > main.clientWidth + 1)
    problems.push(`the page scrolls sideways: ${main.scrollWidth} px of content in ${main.clientWidth} px`);
  if (phone) document.querySelectorAll('[data-testid="stElementContainer"]').forEach(e => {
    const r = e.getBoundingClientRect();
    if (r.width && r.right > window.innerWidth + 1)
      problems.push(`"${e.innerText.slice(0, 40)}" ends ${Math.round(r.right - window.innerWidth)} px past the screen`);
  });
  const luminance = rgb => rgb.map(c => c / 255).map(c => c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)
    .reduce((sum, c, i) => sum + [0.2126, 0.7152, 0.0722][i] * c, 0);
  document.querySelectorAll('[data-testid="stCaptionContainer"]').forEach(c => {
    const cs = getComputedStyle(c), [r, g, b, a = 1] = cs.color.match(/[\d.]+/g).map(Number);
    const onWhite = [r, g, b].map(v => a * v + (1 - a) * 255);  // the page's background is white
    const contrast = 1.05 / (luminance(onWhite) + 0.05);
    const px = parseFloat(cs.fontSize);
    if (px < 16 || contrast < 7)
      problems.push(`caption "${c.innerText.slice(0, 40)}": ${px} px, contrast ${contrast.toFixed(1)}:1 on white`);
  });
  return problems;
}"""


def readability_problems(page, phone: bool) -> list[str]:
    """On a phone, anything past the screen's edge; everywhere, captions under 16 px or under 7:1 contrast (WCAG AAA)."""
    try:  # app.py's style sheet lands a moment after the first page's elements
        page.wait_for_function("() => [...document.querySelectorAll('style')].some(s => "
                               "s.textContent.includes('stCaptionContainer'))", timeout=10_000)
    except Exception:
        pass  # then the captions are measured as they are, and say so
    return page.evaluate(_READABLE_JS, phone)


def chart_ok(info: dict) -> bool:
    return info["canvas"] > 0 or (info["svg"] > 0 and info["marks"] > 0)


# --- the server -----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run app.py` on 127.0.0.1:<free port>, its stdout+stderr in a temporary file."""

    def __init__(self, log_dir: str | os.PathLike | None = None, timeout_s: float = 60):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        fd, self.log_path = tempfile.mkstemp(prefix="streamlit-", suffix=".log", dir=log_dir)
        self._log = os.fdopen(fd, "w")
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(self.port), "--browser.gatherUsageStats", "false",
               "--server.address", "127.0.0.1",      # localhost only
               "--server.fileWatcherType", "none"]   # others editing views/ must not pop up "Rerun?" mid-walk
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"streamlit did not answer 'ok' on {self.url}/_stcore/health within {timeout_s:.0f} s:"
                           f"\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return Path(self.log_path).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# Lines in the server log that are expected and harmless.
HARMLESS_LOG = (
    re.compile(r"Did not auto detect external IP"),        # no internet here; only affects the printed URLs
    re.compile(r"Please go to https://docs\.streamlit\.io/ for debugging hints"),  # follows the line above
)


def log_problems(log: str) -> list[str]:
    """Lines that are a Traceback or a warning, other than the known harmless ones."""
    bad = re.compile(r"Traceback|Warning|WARNING")
    return [line for line in log.splitlines()
            if bad.search(line) and not any(h.search(line) for h in HARMLESS_LOG)]


# --- the browser ----------------------------------------------------------------------------------------
def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# Counts the script runs that end, and notes the last user action (a click, a key, an edit): wait_idle then waits
# for a run that ended after the action, however late a loaded server starts it, and not for one from before.
RUNS = """(() => {
  const runs = window.__tjRuns = {ended: 0, seen: 0, acted: Date.now()};
  const acted = () => { runs.seen = runs.ended; runs.acted = Date.now(); };
  for (const type of ['click', 'keydown', 'input', 'change']) addEventListener(type, acted, true);
  new MutationObserver(records => records.forEach(r => { if (r.oldValue === 'running') runs.ended++; }))
    .observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                        attributeFilter: ['data-test-script-state']});
})();"""
START_S = 5  # an action whose run has not ended by then asked for none, unless the app shows one running (a run
# too fast to paint its running state stays unseen, and costs this wait)
RUN_ENDED = """ms => {
  const runs = window.__tjRuns;
  if (!runs || runs.ended > runs.seen) return true;
  const app = document.querySelector('[data-testid="stApp"]');
  return Date.now() - runs.acted > ms && !!app && app.dataset.testScriptState === 'notRunning';
}"""


def open_page(browser, viewport: dict = VIEWPORT):
    """A page in a session of its own, at this size, counting its script runs (RUNS)."""
    page = browser.new_page(viewport=viewport)
    page.add_init_script(RUNS)
    return page


def new_page(browser, base_url: str):
    page = open_page(browser)
    page.js_errors = []   # uncaught exceptions in the page, reported with failures
    page.on("pageerror", lambda err: page.js_errors.append(str(err)))
    page.goto(base_url + "/")
    wait_idle(page, 60)
    return page


def wait_idle(page, timeout_s: float, started: bool = False) -> None:
    """Wait for the script run an action just triggered to finish (RUNS: one that ended after the action; none
    within START_S means the action asked for none), then for Streamlit's state to say notRunning, connected,
    with the running indicator (status widget) gone. `started`: the run is known to have begun already."""
    if not started:
        page.wait_for_function(RUN_ENDED, arg=START_S * 1000, timeout=timeout_s * 1000, polling=100)
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout_s * 1000)
    page.wait_for_selector(STATUS_WIDGET, state="hidden", timeout=timeout_s * 1000)


def charts(page) -> list[dict]:
    return page.evaluate(_CHARTS_JS, CHART)


def wait_charts(page, minimum: int, timeout_s: float = 30) -> list[dict]:
    """Vega-Embed renders after the script run ends; poll until all charts are drawn (or time out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = charts(page)
        if (len(found) >= minimum and all(map(chart_ok, found))) or time.monotonic() > deadline:
            return found
        page.wait_for_timeout(250)


def metrics(page) -> dict[str, str]:
    out = {}
    for m in page.locator(METRIC).all():
        label = m.locator(METRIC_LABEL).inner_text().strip()
        out[label] = m.locator(METRIC_VALUE).inner_text().strip()
    return out


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside stMain, so grow the viewport to its content height first."""
    size = page.viewport_size
    height = page.evaluate(f"() => document.querySelector('{SCROLLER}').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 16_000)})
    page.wait_for_timeout(500)  # let charts re-layout
    wait_charts(page, 0, 10)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def check_metrics(step: Step, values: dict[str, str], where: str) -> dict[str, str]:
    """The step's expected metric values and its own check, on the metrics read off the page."""
    for label, expected in step.metrics.items():
        assert values.get(label) == expected, f"{where}: metric {label!r} is {values.get(label)!r}, not {expected!r}"
    if step.check:
        try:
            step.check(values)
        except (AssertionError, KeyError) as err:
            raise AssertionError(f"{where}: {err!r} (metrics: {values})") from err
    return values


def run_step(page, step: Step, index: int, shots: Path | None, guided: bool = False,
             computed: bool = False) -> Path | None:
    """Do one step and check its page; raise AssertionError (naming the page) when something is wrong.
    guided: reach the page through the guided lecture's Start / Next buttons, not the sidebar's page list, and
    press its Reveal; computed (with guided): the page's results exist already, so they must open hidden."""
    where = f"step {index} ({step.page!r})"
    if guided:
        sidebar = page.locator('[data-testid="stSidebar"]')
        label = "Start the guided lecture" if index == 1 else "Next ▶"
        sidebar.get_by_role("button", name=label, exact=True).click()
        wait_idle(page, step.timeout_s)
        page.get_by_text(f"Step {index} of {len(STEPS)}").first.wait_for(timeout=30_000)
        assert f"step={index}" in page.url, f"{where}: the guide's step is not in the URL: {page.url}"
        active = page.locator(NAV_LINK + '[aria-current="page"]').inner_text().strip()
        assert active.endswith(step.page), f"{where}: the guide's Next led to {active!r}"
    else:
        page.locator(NAV_LINK).filter(has=page.get_by_text(step.page, exact=True)).click()
        wait_idle(page, step.timeout_s)
    page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
    reveal = page.get_by_role("button", name="Reveal", exact=True)
    if guided:  # the class answers first: no results and nothing to notice before Reveal, even when computed
        assert reveal.count() == 1, f"{where}: the guide has no Reveal button"
        deadline = time.monotonic() + 30  # the last page's elements linger, greyed, until this run replaces them
        while page.get_by_text("What to notice").count() and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        shown = [label for label in step.metrics if label in metrics(page)]
        assert not shown and page.get_by_text("What to notice").count() == 0, \
            f"{where}: answers on the page before Reveal: {shown}"
        if computed:
            try:
                page.get_by_text("The results are hidden until the class has answered").first.wait_for(timeout=30_000)
            except Exception as err:
                raise AssertionError(f"{where}: a computed page did not hide its results before Reveal") from err
            answers = set(metrics(page)) - DATA_METRICS
            assert not answers, f"{where}: metrics on the page before Reveal: {answers}"

    def press(button):
        button.click()
        wait_idle(page, step.timeout_s)
        wait_charts(page, 0)  # whatever this button drew, drawn before the next one is pressed
    for n, label in enumerate(step.buttons):
        button = page.get_by_role("button", name=label, exact=True)
        if guided and button.count() == 0 and reveal.count():
            press(reveal)  # this button is further down, among the results
        if n == 0:
            missing = unseen(page, step.before)
            assert not missing, f"{where}: before {label!r}, nothing on the page matches {missing}"
        press(button)
    if guided and reveal.count():
        press(reveal)
    for text in step.texts:
        page.get_by_text(text).filter(visible=True).first.wait_for(timeout=step.timeout_s * 1000)
    wait_idle(page, step.timeout_s, started=True)

    errors = page.locator(ERRORS).all_inner_texts()
    assert not errors, f"{where}: Streamlit error/exception on the page: {errors}"
    stale = [text for text in step.gone if page.get_by_text(text).filter(visible=True).count()]
    assert not stale, f"{where}: still on the page after its results arrived: {stale}"

    found = wait_charts(page, step.min_charts)
    broken = [(i, c) for i, c in enumerate(found) if not chart_ok(c)]
    assert not broken, (f"{where}: charts not rendered (index, what they contain): {broken}; "
                        f"page errors: {page.js_errors}")
    if len(found) < step.min_charts:
        if shots is not None:
            screenshot(page, Path(shots) / f"{index:02d}_failed.png")
        raise AssertionError(f"{where}: {len(found)} charts, expected at least {step.min_charts}: "
                             f"{[c['text'][:60] for c in found]}; in the DOM: {page.evaluate(_ALL_CHARTS_JS, CHART)}")

    values = check_metrics(step, metrics(page), where)
    if step.on_page:
        step.on_page(page, where)
    if guided:
        said = page.locator(GUIDE).inner_text()
        assert "What to notice" in said, f"{where}: no 'what to notice' after Reveal"
        if step.notice:
            try:
                step.notice(said, values)
            except (AssertionError, AttributeError, KeyError) as err:
                raise AssertionError(f"{where}: the guide's notice against the page: {err!r}") from err
    problems = layout_problems(page)
    assert not problems, f"{where}: layout at {VIEWPORT['width']}×{VIEWPORT['height']}: {problems}"

    if shots is None:
        return None
    stem = step.name or re.sub(r"\W+", "_", step.page.lower()).strip("_")
    path = Path(shots) / f"{index:02d}_{stem}.png"
    screenshot(page, path)
    return path


def available() -> str | None:
    """Why the browser walk cannot run here, or None if it can."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -r requirements-dev.txt)"
    return None


def walk(shots: Path | None, steps: list[Step] = STEPS, guided: bool = True) -> list[Path]:
    """Start a server, walk `steps` in a fresh browser (through the guided lecture), stop everything; return the
    screenshots (the home page's first)."""
    from playwright.sync_api import sync_playwright

    server = Server()
    try:
        with sync_playwright() as p:
            browser = launch(p)
            try:
                page = new_page(browser, server.url)
                paths = []
                if shots is not None:
                    page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
                    wait_charts(page, 0)
                    screenshot(page, Path(shots) / "00_home.png")
                    paths.append(Path(shots) / "00_home.png")
                paths += [run_step(page, step, i, shots, guided) for i, step in enumerate(steps, 1)]
            finally:
                browser.close()
        problems = log_problems(server.log())
        assert not problems, f"server log: {problems}"
        return [p for p in paths if p]
    finally:
        server.stop()
        print(f"streamlit log: {server.log_path}", file=sys.stderr)


# The walk on a server whose TJ_CACHE_DIR holds `python -m tj precompute` output: every page shows its results
# with no compute button left to press, except the ones whose defaults are cheap buttons (Train, the FD check).
STORED_WALK: list[Step] = [
    Step("Build a network", click="Train", texts=("Final test loss",), min_charts=3, name="build"),
    Step("Training Jacobian", click="Check J·v against finite differences", texts=("computed in", "relative error"),
         min_charts=1, name="jacobian", notice=notice_says_the_jacobians_distance),
    Step("Spectrum", texts=("chaotic", "bulk", "stable"), min_charts=7, name="spectrum",
         notice=notice_counts_the_bulk),
    Step("Compare", min_charts=6, texts=("Spectra side by side", "Bulk overlap", "outputs (10 per input)"),
         name="compare", notice=notice_compare_follows_its_overlaps),
    Step("Perturb", min_charts=4, texts=("Median over each region", "under 1% of their weight",
                                         "Test loss without the nudge"), name="perturb",
         on_page=see_it_opens_where_the_test_predictions_hold, notice=notice_perturb_follows_its_medians),
    Step("Why a bulk?", min_charts=4, texts=("Region counts by checkpoint", "Share of the predicted subspace"),
         check=predicted_equals_measured, name="why", notice=notice_counts_the_untouched),
]


# --- one network's own path (tests/test_browser_cnn.py, tests/test_browser_attention.py) --------------------
@contextmanager
def projector_page(log_dir, path: str = "/"):
    """A fresh `streamlit run app.py` and one chromium page at 1280×720 on `path`; on the way out, the server's
    log must hold no traceback or warning."""
    from playwright.sync_api import sync_playwright

    server = Server(log_dir=log_dir)
    try:
        with sync_playwright() as p:
            browser = launch(p)
            try:
                page = open_page(browser)
                page.goto(server.url + path)
                wait_idle(page, 120)
                page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
                yield page
            finally:
                browser.close()
        assert not log_problems(server.log()), f"unexpected lines in the streamlit log:\n{server.log()}"
    finally:
        server.stop()


def goto(page, title: str) -> None:
    """Click the sidebar link `title` and wait for its page."""
    page.locator(NAV_LINK).filter(has=page.get_by_text(title, exact=True)).click()
    wait_idle(page, 600)  # a page may compute first (Perturb's output effect on a P = 2,074 net on one thread)
    page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)


def field(page, label: str):
    """The one widget with this label, once Streamlit has dropped the previous run's copy of it."""
    loc = page.get_by_label(label, exact=True)
    for _ in range(120):
        if loc.count() == 1:
            return loc
        page.wait_for_timeout(250)
    raise AssertionError(f"{loc.count()} widgets labelled {label!r}")


def no_errors(page, where: str, charts: int = 1) -> None:
    """No Streamlit error or exception on the page, and at least `charts` charts rendered."""
    errors = page.locator(ERRORS).all_inner_texts()
    assert not errors, f"{where}: Streamlit error/exception on the page: {errors}"
    if charts:
        found = wait_charts(page, charts)
        assert found and all(map(chart_ok, found)), f"{where}: charts not rendered: {found}"


def train_jacobian_and_spectrum(page, timeout_s: float = 600) -> dict[str, str]:
    """Press Train on Build, then Compute J, then open Spectrum; the Spectrum page's metrics."""
    page.get_by_role("button", name="Train", exact=True).click()
    wait_idle(page, timeout_s)
    page.get_by_text("Final test loss").first.wait_for(timeout=timeout_s * 1000)
    no_errors(page, "Build")
    built = metrics(page)
    goto(page, "Training Jacobian")
    page.get_by_role("button", name="Compute J", exact=True).click()
    wait_idle(page, timeout_s)
    page.get_by_text("computed in").first.wait_for(timeout=timeout_s * 1000)
    no_errors(page, "Training Jacobian")
    goto(page, "Spectrum")
    page.get_by_text("One direction, up close").first.wait_for(timeout=timeout_s * 1000)
    page.locator(METRIC).first.wait_for(timeout=60_000)
    no_errors(page, "Spectrum")
    return {**built, **metrics(page)}
