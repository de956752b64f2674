"""Progress of a long command on stderr: step i of N, the time elapsed and an ETA.

The ETA is the mean time per step so far times the steps left, so it settles as steps
pass; a first step that builds what later steps reuse (a firmware, a C library) makes the
early estimates high.  On a terminal the line is rewritten in place; in a log (not a
terminal) a line is written for the first and the last step and at most every `every`
seconds between them.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

CLEAR_LINE = "\r\x1b[K"  # back to the line's start, erase it


def duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole // 60 % 60:02d} min"


class Progress:
    """Counts the steps of one command (total known up front) and reports each one."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None,
                 every: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.total, self.label, self.every, self.clock = max(total, 1), label, every, clock
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = clock()
        self.shown = None  # when the last line was written (not a terminal)
        self.done = 0

    def line(self, now: float, what: str = "") -> str:
        """The report at time now (of clock) after the steps done so far."""
        elapsed = now - self.start
        text = f"{self.label}: step {self.done}/{self.total}, {duration(elapsed)} elapsed, "
        if self.done >= self.total:
            text += "done"
        else:
            text += f"ETA {duration(elapsed / max(self.done, 1) * (self.total - self.done))}"
        return text + (f" ({what})" if what else "")

    def step(self, what: str = "") -> None:
        """One more step done; what: the step, in a few words."""
        self.done += 1
        now, last = self.clock(), self.done >= self.total
        due = last or self.shown is None or now - self.shown >= self.every
        if not (self.tty or due):
            return
        self.shown = now
        line = self.line(now, what)
        self.stream.write(CLEAR_LINE + line + ("\n" if last else "") if self.tty else line + "\n")
        self.stream.flush()
