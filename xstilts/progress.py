"""Progress as lines a program reads: `::progress stage=train n=45 total=90`, one a second at most, and the last.

`xstilts run --local` (pipelines/liveview.py) reads every step's output to show how far each running step is. With
XSTILTS_PROGRESS_LINES=1 (it sets that for its steps unless --verbose) the library prints these lines on stdout
instead of drawing tqdm bars (env.progress_enabled() is then false); without it a Progress does nothing.

    progress = Progress("train", total_steps, n=resumed_step)
    for ...:
        progress.update(step)      # the position, not an increment
    progress.close()               # the last position, if it was not printed yet

Fields are `key=value` with no spaces in the value; a reader ignores keys it does not know.
"""

from __future__ import annotations

import sys
import time

from xstilts import env

PREFIX = "::progress"


class Progress:
    """One stage's position out of `total` (train: optimizer steps; eval: languages; generate: samples)."""

    def __init__(self, stage: str, total: int, n: int = 0, interval: float = 1.0, enabled: bool | None = None):
        self.stage, self.total, self.n, self.interval = stage, int(total), int(n), interval
        self.enabled = env.progress_lines_enabled() if enabled is None else enabled
        self._printed_n: int | None = None
        self._printed_at = 0.0
        if self.enabled:
            self._print()

    def update(self, n: int) -> None:
        self.n = int(n)
        if self.enabled and (self.n >= self.total or time.monotonic() - self._printed_at >= self.interval):
            self._print()

    def advance(self, k: int = 1) -> None:
        self.update(self.n + k)

    def close(self) -> None:
        if self.enabled and self._printed_n != self.n:
            self._print()

    def _print(self) -> None:
        self._printed_n, self._printed_at = self.n, time.monotonic()
        print(line(self.stage, self.n, self.total), file=sys.stdout, flush=True)


def line(stage: str, n: int, total: int) -> str:
    return f"{PREFIX} stage={stage} n={n} total={total}"


PHASE_PREFIX = "::phase"
# The phases a step's time is broken into by `make measure` (pipelines/measure.py), in the order they happen.
PHASES = ("import", "load", "compute", "export", "parity", "write")


class phase:
    """Time a part of a step: `with phase("load"): ...` prints `::phase name=load seconds=1.234` when it ends (with
    XSTILTS_PROGRESS_LINES=1, as `::progress` lines), for `make measure`'s per-step breakdown. Nested phases count
    in both (the reader takes each name's sum)."""

    def __init__(self, name: str, enabled: bool | None = None):
        if name not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, not {name!r}")
        self.name = name
        self.enabled = env.progress_lines_enabled() if enabled is None else enabled

    def __enter__(self) -> "phase":
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        report_phase(self.name, time.perf_counter() - self._started, self.enabled)


def report_phase(name: str, seconds: float, enabled: bool | None = None) -> None:
    """Print one `::phase` line (a phase timed elsewhere, e.g. the imports before a step's function starts)."""
    if env.progress_lines_enabled() if enabled is None else enabled:
        print(f"{PHASE_PREFIX} name={name} seconds={seconds:.3f}", file=sys.stdout, flush=True)


def process_seconds() -> float:
    """Wall seconds since this process started (a fork: since the fork), from /proc; 0.0 where there is none."""
    import os

    try:
        with open("/proc/self/stat", "rb") as stat, open("/proc/uptime", "rb") as uptime:
            started_ticks = int(stat.read().rsplit(b")", 1)[1].split()[19])
            return max(0.0, float(uptime.read().split()[0]) - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
