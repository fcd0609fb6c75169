"""One progress reporter for every long computation: the app draws it as a bar with Stop, the CLI on stderr.

A reporter is `reporter(label, unit)`, a context manager that yields the callback every tj computation takes,
`progress(done, total) -> bool` (True asks the computation to stop)."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, ContextManager

Progress = Callable[[int, int], bool]
Reporter = Callable[[str, str], ContextManager[Progress]]


class Tracker:
    """Counts done of total and says so: elapsed time, and time left at the rate since the first report."""

    def __init__(self, label: str, unit: str, draw: Callable[[float, str], None]):
        self.label, self.unit, self.draw = label, unit, draw
        self.start, self.first = time.perf_counter(), None
        self.done = self.total = 0

    def __call__(self, done: int, total: int) -> bool:
        now = time.perf_counter()
        if self.first is None:
            self.first = (now, done)
        self.done, self.total = done, total
        self.draw(done / max(total, 1), self.text(now))
        return False

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def text(self, now: float | None = None) -> str:
        now = now or time.perf_counter()
        since, done_then = self.first or (now, 0)
        rate = (self.done - done_then) / (now - since) if now > since and self.done > done_then else 0.0
        left = f"~{(self.total - self.done) / rate:.0f} s left" if rate else "estimating time left"
        return (f"{self.label}: {self.done:,} / {self.total:,} {self.unit} · {now - self.start:.1f} s elapsed · "
                f"{left}")

    def stopped(self) -> str:
        return (f"Stopped after {self.done:,} of {self.total:,} {self.unit} ({self.label}), after "
                f"{self.elapsed:.1f} s. Nothing else was lost; run it again to start over.")


@contextmanager
def stderr(label: str, unit: str):
    """The command line's bar: one line on stderr, redrawn in place."""
    def draw(fraction, text):
        filled = int(30 * fraction)
        sys.stderr.write(f"\r  {'#' * filled}{'.' * (30 - filled)} {text}   ")
        sys.stderr.flush()

    tracker = Tracker(label, unit, draw)
    try:
        yield tracker
    finally:
        if tracker.first is not None:
            sys.stderr.write("\n")
            sys.stderr.flush()


@contextmanager
def silent(label: str, unit: str):
    """No report."""
    yield lambda done, total: False


def part_of(progress: Progress, part: int, parts: int) -> Reporter:
    """A reporter that counts its computation as part `part` (from 0) of `parts` equal parts of progress's job."""
    @contextmanager
    def reporter(label: str, unit: str):
        yield lambda done, total: progress(part * total + done, parts * total)
    return reporter
