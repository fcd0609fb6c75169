"""Screenshots of the lecture path for the docs: the same browser walk as tests/test_browser.py.

    python scripts/screenshots.py [OUT_DIR]      # default: docs/screenshots/
    python scripts/screenshots.py OUT_DIR --store DIR --preset cnn [--size 390x844]
                                   # every page of a `python -m tj precompute` store, as it opens, at that size

Needs Debian's chromium at /usr/bin/chromium (apt-get install chromium) and the playwright Python package
(requirements-dev.txt); no Playwright browser download. Starts its own `streamlit run app.py` on a free
port, walks tests/browser_walk.py's STEPS — the whole lecture path of docs/lecture.md, Build to "Why a bulk?" —
checking each page as the test does, and writes NN_<page>.png (01_build … 06_why). About a minute on an idle
2-core machine; several on a busy one.
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import browser_walk  # noqa: E402


PAGES = ("", "build", "jacobian", "spectrum", "compare", "perturb", "why")


def stored_pages(out: Path, store: str, preset: str, size: str) -> list[Path]:
    """Each page of a precomputed run as it opens (nothing pressed), full height, at a width × height viewport."""
    import os
    from playwright.sync_api import sync_playwright

    width, height = (int(v) for v in size.split("x"))
    os.environ["TJ_CACHE_DIR"] = store
    server, paths = browser_walk.Server(), []
    try:
        with sync_playwright() as p:
            browser = browser_walk.launch(p)
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                for i, name in enumerate(PAGES):
                    page.goto(f"{server.url}/{name}?preset={preset}")
                    browser_walk.wait_idle(page, 300)
                    page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
                    browser_walk.wait_charts(page, 0)
                    path = out / f"{preset}_{size}_{i:02d}_{name or 'home'}.png"
                    browser_walk.screenshot(page, path)
                    paths.append(path)
            finally:
                browser.close()
    finally:
        server.stop()
    return paths


def main(argv: list[str]) -> int:
    if "--store" in argv:
        opts = dict(zip(argv[1::2], argv[2::2]))
        for path in stored_pages(Path(argv[0]), opts["--store"], opts.get("--preset", "lecture"),
                                 opts.get("--size", "1280x720")):
            print(path)
        return 0
    if argv and argv[0].startswith("-"):  # -h, --help: not an output folder
        print(__doc__)
        return 0 if argv[0] in ("-h", "--help") else 2
    out = Path(argv[0]) if argv else REPO / "docs" / "screenshots"
    why = browser_walk.available()
    if why:
        print(f"cannot take screenshots: {why}", file=sys.stderr)
        return 2
    for path in browser_walk.walk(out):
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
