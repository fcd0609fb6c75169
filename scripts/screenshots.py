"""Screenshots of the lecture path for the docs: the same browser walk as tests/test_browser.py.

    python scripts/screenshots.py [OUT_DIR]      # default: docs/screenshots/

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


def main(argv: list[str]) -> int:
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
