"""A class at once: 8 browser sessions against ONE `streamlit run app.py`, all walking Build (Train) → Training
Jacobian (Compute J) → Spectrum on the lecture preset at the same time.

Every session must finish without a Streamlit error or exception box and with its charts drawn; they must all show
the same J (the app's result cache is shared by every session of a server: the first "Compute J" computes it, the
other seven wait for it), so the "computed in" metric — the seconds of that one computation — is identical in all
eight, as are the spectrum's numbers. The server's peak memory (VmHWM of the process and any children) is printed
with the wall time (`pytest -s` shows it; nothing is written into the checkout): the number docs/lecture.md
quotes for sizing a host.

One chromium, one browser context (= one Streamlit session, own cookies) per student, driven concurrently with
Playwright's async API. The steps are tests/browser_walk.py's STEPS[:3], the start of the lecture path.
"""
from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from pathlib import Path

import pytest

import browser_walk as bw

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bw.available() is not None, reason=f"browser test: {bw.available()}")]

SESSIONS = 8
WALK = bw.STEPS[:3]
assert [s.page for s in WALK] == ["Build a network", "Training Jacobian", "Spectrum"], WALK


# --- memory of the server -------------------------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:  # exited meanwhile
                pass
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process plus its live child processes, in MB (10^6 bytes)."""
    return sum(_status_kb(p, "VmHWM") for p in _descendants(pid)) * 1024 / 1e6


def rss_mb(pid: int) -> float:
    return sum(_status_kb(p, "VmRSS") for p in _descendants(pid)) * 1024 / 1e6


# --- one student, async -------------------------------------------------------------------------------------
async def wait_idle(page, timeout_s: float, started: bool = False) -> None:
    """browser_walk.wait_idle for the async API: the triggered script run has ended and the app is connected."""
    if not started:
        await page.wait_for_function(bw.RUN_ENDED, arg=bw.START_S * 1000, timeout=timeout_s * 1000, polling=100)
    await page.wait_for_selector(bw.APP_IDLE, state="attached", timeout=timeout_s * 1000)
    await page.wait_for_selector(bw.STATUS_WIDGET, state="hidden", timeout=timeout_s * 1000)


async def wait_charts(page, minimum: int, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await page.evaluate(bw._CHARTS_JS, bw.CHART)
        if (len(found) >= minimum and all(map(bw.chart_ok, found))) or time.monotonic() > deadline:
            return found
        await page.wait_for_timeout(250)


async def metrics(page) -> dict[str, str]:
    out = {}
    for m in await page.locator(bw.METRIC).all():
        out[(await m.locator(bw.METRIC_LABEL).inner_text()).strip()] = \
            (await m.locator(bw.METRIC_VALUE).inner_text()).strip()
    return out


async def run_step(page, step: bw.Step, where: str, timeout_s: float) -> dict[str, str]:
    """browser_walk.run_step, async and without screenshots: returns the page's metrics."""
    await page.locator(bw.NAV_LINK).filter(has=page.get_by_text(step.page, exact=True)).click()
    await wait_idle(page, timeout_s)
    await page.get_by_role("heading", level=1).first.wait_for(timeout=timeout_s * 1000)
    for button in step.buttons:
        await page.get_by_role("button", name=button, exact=True).click()
        await wait_idle(page, timeout_s)
    for text in step.texts:
        await page.get_by_text(text).filter(visible=True).first.wait_for(timeout=timeout_s * 1000)
    await wait_idle(page, timeout_s, started=True)

    errors = await page.locator(bw.ERRORS).all_inner_texts()
    assert not errors, f"{where}: Streamlit error/exception on the page: {errors}"
    found = await wait_charts(page, step.min_charts)
    broken = [(i, c) for i, c in enumerate(found) if not bw.chart_ok(c)]
    assert not broken, f"{where}: charts not rendered: {broken}; page errors: {page.js_errors}"
    assert len(found) >= step.min_charts, f"{where}: {len(found)} charts, expected at least {step.min_charts}"
    return bw.check_metrics(step, await metrics(page), where)


async def student(browser, url: str, n: int, start: asyncio.Barrier, timeout_s: float, shots: Path) -> dict:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    await context.add_init_script(bw.RUNS)
    page = await context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda err: page.js_errors.append(str(err)))
    try:
        await page.goto(url + "/")
        await wait_idle(page, timeout_s)
        await start.wait()  # every session has its home page: all press Train at the same moment
        seen, seconds = {}, {}
        for step in WALK:
            t = time.perf_counter()
            seen[step.page] = await run_step(page, step, f"session {n}, page {step.page!r}", timeout_s)
            seconds[step.page] = time.perf_counter() - t
        return {"metrics": seen, "seconds": seconds, "js_errors": page.js_errors}
    except Exception as err:
        await start.abort()  # the others must not wait at the barrier for this one
        shot = shots / f"session_{n}.png"
        state = said = ""
        try:
            await page.screenshot(path=str(shot), full_page=True)
            state = await page.evaluate("() => JSON.stringify({...document.querySelector('[data-testid=stApp]')"
                                        "?.dataset, runs: window.__tjRuns})")
            said = (await page.locator(bw.SCROLLER).inner_text())[-800:]
        except Exception:
            pass
        raise AssertionError(f"session {n} failed (screenshot {shot}; app {state}; the page ends: {said!r}): "
                             f"{err!r}") from err
    finally:
        await context.close()


async def classroom(url: str, sessions: int, shots: Path, timeout_s: float = 300, total_s: float = 900) -> list[dict]:
    """`sessions` students in one chromium, each its own browser context; per wait timeout_s, all in total_s."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=bw.CHROMIUM, args=bw.CHROMIUM_ARGS)
        try:
            start = asyncio.Barrier(sessions)
            walks = asyncio.gather(*(student(browser, url, n, start, timeout_s, shots)
                                     for n in range(1, sessions + 1)))
            return await asyncio.wait_for(walks, total_s)
        finally:
            await browser.close()


def test_eight_students_at_once_share_one_jacobian(tmp_path):
    server = bw.Server(log_dir=tmp_path)
    try:
        idle_mb = rss_mb(server.proc.pid)
        t0 = time.perf_counter()
        runs = asyncio.run(classroom(server.url, SESSIONS, tmp_path))
        wall = time.perf_counter() - t0
        peak = peak_rss_mb(server.proc.pid)
        log = server.log()
    finally:
        server.stop()

    computed_in = {r["metrics"]["Training Jacobian"]["computed in"] for r in runs}
    assert len(computed_in) == 1, f"the sessions saw different Jacobians (computed more than once?): {computed_in}"
    spectra = {tuple(sorted(r["metrics"]["Spectrum"].items())) for r in runs}
    assert len(spectra) == 1, f"the sessions saw different spectra: {spectra}"
    assert not bw.log_problems(log), f"unexpected lines in the streamlit log:\n{log}"

    j_seconds = float(computed_in.pop().removesuffix(" s"))
    j_phase = max(r["seconds"]["Training Jacobian"] for r in runs)
    report = {
        "sessions": SESSIONS,
        "walk": [s.page for s in WALK],
        "preset": "lecture",
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak),
        "idle_rss_mb": round(idle_mb),
        "jacobian_computed_in_s": j_seconds,
        "jacobian_page_wall_s_max": round(j_phase, 1),
        "spectrum": runs[0]["metrics"]["Spectrum"],
        "machine": {"cpus": os.cpu_count(), "load_avg_1m_after": round(os.getloadavg()[0], 2),
                    "python": platform.python_version()},
        "measured_by": "tests/test_sessions.py",
    }
    print(f"\n{SESSIONS} sessions: wall {wall:.1f} s, server peak RSS {peak:.0f} MB (idle {idle_mb:.0f} MB), "
          f"J computed once in {j_seconds} s, the J page took at most {j_phase:.1f} s in any session")
    print(json.dumps(report, ensure_ascii=False))  # the test writes nothing into the checkout
    (tmp_path / "sessions.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
