"""A class on the paper preset (issue 13, acceptance 4, 5 and 7), measured; results go to docs/paper_class.json.

    python scripts/paper_class.py precompute --cache-dir DIR   # time, peak memory, store size on disk
    python scripts/paper_class.py walk --cache-dir DIR         # fresh server, real browser, every page ≤ 5 s?
    python scripts/paper_class.py sessions --cache-dir DIR     # 8 browser sessions at once, peak server memory
    python scripts/paper_class.py direction --cache-dir DIR    # the new default bulk direction next to i = 2,345

`walk`, `sessions` and `direction` read what `precompute` stored (DIR must hold the paper preset's store).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
REPORT = ROOT / "docs" / "paper_class.json"


def record(section: str, values: dict) -> None:
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    report[section] = {**values, "load_average": [round(x, 2) for x in os.getloadavg()],
                       "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    REPORT.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({section: report[section]}, indent=1, ensure_ascii=False))


def store_mb(folder: str) -> float:
    return round(sum(f.stat().st_size for f in Path(folder).glob("tj-*.npz")) / 1e6, 1)


def cmd_precompute(args):
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "tj", "precompute", "--preset", args.preset,
                          "--cache-dir", args.cache_dir], cwd=ROOT, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(f"precompute failed with exit {out.returncode}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e6
    record(f"precompute {args.preset}", {"wall_s": round(wall, 1), "peak_rss_mb": round(peak),
                                         "store_mb_on_disk": store_mb(args.cache_dir),
                                         "fits the 2.7 GB hosted-demo budget": peak <= 2700})


def _server(args):
    import browser_walk as bw
    os.environ["TJ_CACHE_DIR"] = args.cache_dir
    os.environ["TJ_MAX_PARAMS"] = os.environ.get("TJ_MAX_PARAMS", "6000")
    return bw.Server(timeout_s=120)


def _paper_url(server):
    from tj import preset
    from tj.validate import query_params
    from urllib.parse import urlencode
    return server.url + "/?" + urlencode(query_params(preset("paper"), compact=True))


def cmd_walk(args):
    import browser_walk as bw
    from playwright.sync_api import sync_playwright
    from test_sessions import peak_rss_mb

    server = _server(args)
    seconds = {}
    try:
        with sync_playwright() as p:
            browser = bw.launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.js_errors = []
            page.goto(_paper_url(server))
            bw.wait_idle(page, 120)
            assert "4,810" in page.inner_text("body"), "the URL did not select the paper preset"
            for i, step in enumerate(bw.STORED_WALK, 1):
                t = time.perf_counter()
                bw.run_step(page, step, i, None)
                seconds[step.page] = round(time.perf_counter() - t, 1)
            browser.close()
        peak = peak_rss_mb(server.proc.pid)
        problems = bw.log_problems(server.log())
    finally:
        server.stop()
    record("walk paper", {"seconds_per_page": seconds, "slowest_s": max(seconds.values()),
                          "every page ≤ 5 s": max(seconds.values()) <= 5, "server_peak_rss_mb": round(peak),
                          "server log problems": problems})


def cmd_sessions(args):
    import browser_walk as bw
    import test_sessions as ts

    ts.WALK = bw.STORED_WALK
    server = _server(args)
    try:
        url = _paper_url(server)
        t = time.perf_counter()
        runs = asyncio.run(_classroom(ts, url, args.n, Path(args.cache_dir)))
        wall = time.perf_counter() - t
        peak = ts.peak_rss_mb(server.proc.pid)
        problems = bw.log_problems(server.log())
    finally:
        server.stop()
    slowest = {step.page: round(max(r["seconds"][step.page] for r in runs), 1) for step in bw.STORED_WALK}
    record(f"{args.n} sessions paper", {"completed": len(runs), "wall_s": round(wall, 1),
                                        "slowest_seconds_per_page": slowest, "server_peak_rss_mb": round(peak),
                                        "≤ 2.5 GB": peak <= 2500, "server log problems": problems})


async def _classroom(ts, url, n, shots):
    """n students at once, each its own browser context, walking every page of the stored paper preset."""
    from playwright.async_api import async_playwright
    import browser_walk as bw

    async def student(browser, k):
        context = await browser.new_context(viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        page.js_errors = []
        try:
            await page.goto(url)
            await ts.wait_idle(page, 300)
            seconds = {}
            for step in bw.STORED_WALK:
                t = time.perf_counter()
                await ts.run_step(page, step, f"session {k}, page {step.page!r}", 300)
                seconds[step.page] = time.perf_counter() - t
            return {"seconds": seconds}
        finally:
            await context.close()

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=bw.CHROMIUM, args=bw.CHROMIUM_ARGS)
        try:
            return await asyncio.wait_for(asyncio.gather(*(student(browser, k) for k in range(1, n + 1))), 1800)
        finally:
            await browser.close()


def cmd_direction(args):
    import numpy as np
    import tj
    from tj.defaults import SPECTRUM
    from tj.perturb import linearity
    from tj.results import Results

    exp = tj.preset(args.preset)
    results = Results(folder=args.cache_dir)
    spec = results.have("spectrum", exp)
    if spec is None:
        raise SystemExit(f"no stored J for the {args.preset} preset in {args.cache_dir}; run precompute first")
    sigma = spec.singular_values
    dist = np.abs(sigma - 1)
    bulk = np.flatnonzero(dist < SPECTRUM.tau)
    approx = bulk[dist[bulk] >= 1e-6]
    old = int(approx[len(approx) // 2])              # the rule the Perturb page used before this issue
    new = results.get("bulk direction", exp)
    eps = (1.0, 100.0, 1000.0)
    rows = {}
    named = [("new default", new.index), ("before (middle of |σ−1| ≥ 1e-6)", old)]
    if args.preset == "paper" and old != 2345:  # the index issue 13 quotes, from the J of that day's code
        named.append(("i = 2,345 (quoted in issue 13)", 2345))
    for name, i in named:
        lin = linearity(exp, spec, i, eps)
        rows[name] = {"i": i, "|σ−1|": float(dist[i]),
                      "|δ·u|/(εσ)": {f"{e:g}": float(r) for e, r in zip(eps, lin.along / lin.predicted)},
                      "test loss": {f"{e:g}": float(t) for e, t in zip(eps, lin.test_loss)}}
    base = results.get("train", exp).metrics.test_loss[-1]
    record(f"bulk direction {args.preset}", {"test loss without the nudge": float(base),
                                             "untouched share of the new direction": new.untouched_share, **rows})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("precompute", "walk", "sessions", "direction"))
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("-n", type=int, default=8, help="browser sessions for `sessions`")
    args = parser.parse_args()
    {"precompute": cmd_precompute, "walk": cmd_walk, "sessions": cmd_sessions, "direction": cmd_direction}[args.what](args)


if __name__ == "__main__":
    main()
